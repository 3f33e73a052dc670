// airlockd: the Airlock update server. Thin: flags, data folder, routes, signals.
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "keys/access.h"
#include "server/capgo_api.h"
#include "server/capgo_routes.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/router.h"
#include "server/static_files.h"
#include "server/store_catalog.h"
#include "storage/store.h"

namespace {

namespace server = airlock::server;

bool SplitListen(const std::string& listen, std::string* host, uint16_t* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  *host = listen.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  std::string port_text = listen.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5) return false;
  unsigned long value = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned long>(c - '0');
  }
  if (value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return !host->empty();
}

void LogLine(const std::string& level, const std::string& msg) {
  std::fprintf(stderr, "{\"level\":\"%s\",\"msg\":\"%s\"}\n", level.c_str(), msg.c_str());
}

int Init(const std::filesystem::path& data) {
  if (auto ok = server::EnsureDataLayout(data); !ok) {
    std::cerr << "airlockd init: " << ok.error().ToString() << "\n";
    return 1;
  }
  auto store = airlock::keys::AccessStore::Open(data / "access.db");
  if (!store) {
    std::cerr << "airlockd init: " << store.error().ToString() << "\n";
    return 1;
  }
  auto empty = store->Empty();
  if (!empty) {
    std::cerr << "airlockd init: " << empty.error().ToString() << "\n";
    return 1;
  }
  if (!*empty) {
    std::cerr << "airlockd init: " << data.string()
              << " already has principals; create more tokens with the admin API or "
                 "`airlock access token-create`\n";
    return 1;
  }
  auto token = store->CreateToken("owner", {airlock::keys::Role::kOwner});
  if (!token) {
    std::cerr << "airlockd init: " << token.error().ToString() << "\n";
    return 1;
  }
  std::cout << "Initialised " << data.string() << "\n"
            << "Owner API token (shown once, store it now): " << token->token << "\n";
  return 0;
}

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int Serve(const std::filesystem::path& data, const std::string& listen, unsigned threads,
          uint64_t max_body, std::string database, std::string public_url) {
  server::ServerOptions options;
  if (!SplitListen(listen, &options.address, &options.port)) {
    std::cerr << "airlockd: --listen wants HOST:PORT, got " << listen << "\n";
    return 2;
  }
  options.threads = threads;
  options.max_body_bytes = max_body;
  if (auto ok = server::EnsureDataLayout(data); !ok) {
    std::cerr << "airlockd: " << ok.error().ToString() << "\n";
    return 1;
  }
  if (database.empty()) database = "sqlite:" + (data / "airlock.db").string();
  auto store = airlock::storage::OpenStore(database, UnixNow());
  if (!store) {
    std::cerr << "airlockd: database: " << store.error().ToString() << "\n";
    return 1;
  }
  if (public_url.empty()) public_url = "http://" + listen;

  // Block the stop signals in every thread (the workers inherit the mask); this thread waits for
  // them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  server::Metrics metrics;
  server::Router router;
  server::AddHealthRoutes(&router, &metrics);
  server::AddStaticRoutes(&router, data);
  server::StoreCatalog capgo_catalog(store->get(), public_url);
  server::StoreChannelRegistry capgo_channels(store->get());
  server::StoreStatsSink capgo_stats(store->get(), UnixNow);
  server::CapgoRateLimiter capgo_limiter({}, [] { return std::chrono::steady_clock::now(); });
  server::AddCapgoRoutes(&router, {&capgo_catalog, &capgo_channels, &capgo_stats, &capgo_limiter});
  server::HttpServer http(options, &router, &metrics);
  if (auto ok = http.Start(); !ok) {
    std::cerr << "airlockd: " << ok.error().ToString() << "\n";
    return 1;
  }
  LogLine("info", "listening on " + options.address + ":" + std::to_string(http.port()));
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  LogLine("info", std::string("stopping on ") + (signal_number == SIGTERM ? "SIGTERM" : "SIGINT"));
  http.Stop();
  http.Wait();
  LogLine("info", "stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"airlockd: the Airlock update server"};
  std::string data;
  std::string listen = "127.0.0.1:8080";
  unsigned threads = 0;
  uint64_t max_body = 1 << 20;
  std::string database;
  std::string public_url;
  app.add_option("--data", data, "data folder (created if missing)")->required();
  app.add_option("--listen", listen, "HOST:PORT to listen on")->capture_default_str();
  app.add_option("--threads", threads, "I/O threads (0 = one per core)")->capture_default_str();
  app.add_option("--max-body", max_body, "largest request body in bytes")->capture_default_str();
  app.add_option("--database", database,
                 "store URL: sqlite:PATH or postgresql://... (default sqlite:DATA/airlock.db)");
  app.add_option("--public-url", public_url,
                 "base URL devices use to download bundles (default http://LISTEN)");
  app.fallthrough();
  CLI::App* init = app.add_subcommand("init", "create the data folder and the first owner token");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (*init) return Init(data);
  return Serve(data, listen, threads, max_body, database, public_url);
}
