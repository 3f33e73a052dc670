// airlockd: the Airlock update server. Thin: settings (flags over an optional TOML file), the data
// folder, the online key store, routes, the timestamp refresher and signals.
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "access/access_store.h"
#include "audit/audit_log.h"
#include "common/bytes.h"
#include "common/file.h"
#include "keys/key_store.h"
#include "keys/key_uri.h"
#include "keys/vault_paths.h"
#include "server/app_repo.h"
#include "server/capgo_api.h"
#include "server/capgo_routes.h"
#include "server/channel_cache.h"
#include "server/config.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/release_policy.h"
#include "server/router.h"
#include "server/server_api.h"
#include "server/static_files.h"
#include "server/vault_secret.h"
#include "server/store_catalog.h"
#include "storage/store.h"

namespace {

namespace server = airlock::server;
namespace keys = airlock::keys;
using airlock::ErrorCode;
using airlock::Result;

void LogLine(const std::string& level, const std::string& msg) {
  std::string line =
      "{\"level\":\"" + level + "\",\"msg\":" +
      nlohmann::json(msg).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "}\n";
  std::fwrite(line.data(), 1, line.size(), stderr);
}

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The default vault (file:DATA/vault.db) when the settings name none.
std::string VaultUri(const server::ServerConfig& config) { return server::ServerVaultUri(config); }

// Opens the online key store, creating a missing file vault.
Result<std::unique_ptr<keys::KeyStore>> OpenVault(const server::ServerConfig& config) {
  AIRLOCK_ASSIGN_OR_RETURN(keys::KeyUri uri, keys::ParseKeyUri(VaultUri(config)));
  keys::KeyStoreOptions options;
  // Never the CLI's $AIRLOCK_VAULT_PASSPHRASE (server/vault_secret.h); one line says the source.
  AIRLOCK_ASSIGN_OR_RETURN(server::VaultSecret secret, server::ChooseVaultSecret(config));
  LogLine("info", "vault " + uri.StoreUri() + ": secret from " + secret.source);
  options.secret = std::move(secret.secret);
  auto store = keys::OpenKeyStore(uri, options);
  if (!store && store.error().code() == ErrorCode::kNotFound &&
      uri.scheme == keys::KeyUriScheme::kFile) {
    std::filesystem::create_directories(std::filesystem::path(uri.path).parent_path());
    LogLine("info", "creating the key store " + uri.StoreUri());
    return keys::InitKeyStore(uri, options);
  }
  return store;
}

// The vault's usage log: beside a file vault, else DATA/keys.audit.
std::filesystem::path AuditLogPath(const server::ServerConfig& config) {
  auto path = keys::AuditPathForVaultUri(VaultUri(config));
  if (path) return *path;
  return std::filesystem::path(config.data) / "keys.audit";
}

Result<void> EnsureLayout(const std::filesystem::path& data) {
  AIRLOCK_TRY(server::EnsureDataLayout(data));
  std::error_code ec;
  std::filesystem::create_directories(data / "uploads", ec);
  if (ec) {
    return airlock::MakeError(ErrorCode::kIo,
                              "cannot create " + (data / "uploads").string() + ": " + ec.message());
  }
  return {};
}

int Init(const server::ServerConfig& config) {
  const std::filesystem::path data = config.data;
  if (auto ok = EnsureLayout(data); !ok) {
    std::cerr << "airlockd init: " << ok.error().ToString() << "\n";
    return 1;
  }
  if (auto vault = OpenVault(config); !vault) {
    std::cerr << "airlockd init: key store " << VaultUri(config) << ": " << vault.error().ToString()
              << "\n";
    return 1;
  }
  auto store = airlock::access::AccessStore::Open(data / "access.db");
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
  auto token = store->CreateToken("owner", {airlock::access::Role::kOwner});
  if (!token) {
    std::cerr << "airlockd init: " << token.error().ToString() << "\n";
    return 1;
  }
  std::cout << "Initialised " << data.string() << " (key store " << VaultUri(config) << ")\n"
            << "Owner API token (shown once, store it now): " << token->token << "\n";
  return 0;
}

// Re-signs timestamps that are getting old, every `interval`, until Stop (which wakes it at once).
class TimestampRefresher {
 public:
  TimestampRefresher(server::AppRepo* repo, std::chrono::seconds interval)
      : repo_(repo), interval_(interval) {
    thread_ = std::thread([this] { Run(); });
  }
  ~TimestampRefresher() { Stop(); }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      lock.unlock();
      auto refreshed = repo_->RefreshTimestamps();
      if (!refreshed) {
        LogLine("error", "timestamp refresh: " + refreshed.error().ToString());
      } else {
        for (const std::string& app : *refreshed)
          LogLine("info", "re-signed the timestamp of " + app);
      }
      lock.lock();
      cv_.wait_for(lock, interval_, [this] { return stop_; });
    }
  }

  server::AppRepo* repo_;
  std::chrono::seconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

int Serve(const server::ServerConfig& config) {
  const std::filesystem::path data = config.data;
  server::ServerOptions options;
  if (!server::ParseListen(config.listen, &options.address, &options.port)) {
    std::cerr << "airlockd: --listen wants HOST:PORT, got " << config.listen << "\n";
    return 2;
  }
  options.threads = config.threads;
  options.max_body_bytes = config.max_body;
  options.access_log = config.access_log;
  options.upload_dir = data / "uploads";
  options.max_uploads = config.max_uploads;
  options.tls_cert_file = config.tls_cert;
  options.tls_key_file = config.tls_key;
  if (auto ok = EnsureLayout(data); !ok) {
    std::cerr << "airlockd: " << ok.error().ToString() << "\n";
    return 1;
  }
  std::string database = config.database;
  if (database.empty()) database = "sqlite:" + (data / "airlock.db").string();
  auto store = airlock::storage::OpenStore(database, UnixNow());
  if (!store) {
    std::cerr << "airlockd: database: " << store.error().ToString() << "\n";
    return 1;
  }
  auto access = airlock::access::AccessStore::Open(data / "access.db");
  if (!access) {
    std::cerr << "airlockd: " << access.error().ToString() << "\n";
    return 1;
  }
  auto vault = OpenVault(config);
  if (!vault) {
    std::cerr << "airlockd: key store " << VaultUri(config) << ": " << vault.error().ToString()
              << "\n";
    return 1;
  }
  std::string public_url = config.public_url;
  if (public_url.empty()) {
    public_url = (config.tls_cert.empty() ? "http://" : "https://") + config.listen;
  }

  server::AppRepoOptions repo_options;
  repo_options.data_dir = data;
  repo_options.snapshot_expiry = config.snapshot_expiry;
  repo_options.timestamp_expiry = config.timestamp_expiry;
  repo_options.now = UnixNow;
  repo_options.audit_log = AuditLogPath(config);
  server::AppRepo repo(std::move(*vault), repo_options);

  server::ChannelCache::Options cache_options;
  cache_options.ttl = std::chrono::milliseconds(config.cache_ttl_ms);
  // Serve only what the signed release rules allow, whatever the database says (release_policy.h).
  cache_options.release_gate = server::SignedReleaseGate(&repo, [](const std::string& why) {
    std::fprintf(stderr, "airlockd: %s\n", why.c_str());
  });
  server::ChannelCache cache(store->get(), cache_options);

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

  server::ServerApiDeps deps;
  deps.store = store->get();
  deps.repo = &repo;
  deps.access = &*access;
  deps.cache = &cache;
  deps.data_dir = data;
  deps.public_url = public_url;
  deps.clock = UnixNow;
  deps.max_upload_bytes = config.max_upload;
  deps.audit_log = repo_options.audit_log;
  std::shared_ptr<server::AdminApi> admin = server::AddAdminRoutes(&router, deps);
  server::AddDeviceRoutes(&router, deps);

  server::StoreCatalog capgo_catalog(store->get(), public_url, &cache);
  server::StoreChannelRegistry capgo_channels(store->get(), &cache);
  server::StoreStatsSink capgo_stats(store->get(), UnixNow);
  server::CapgoRateLimiter capgo_limiter({}, [] { return std::chrono::steady_clock::now(); });
  server::AddCapgoRoutes(&router, {&capgo_catalog, &capgo_channels, &capgo_stats, &capgo_limiter});

  server::HttpServer http(options, &router, &metrics);
  if (auto ok = http.Start(); !ok) {
    std::cerr << "airlockd: " << ok.error().ToString() << "\n";
    return 1;
  }
  const auto refresh_every =
      std::chrono::seconds(std::clamp<int64_t>(config.timestamp_expiry / 10, 1, 60));
  TimestampRefresher refresher(&repo, refresh_every);
  LogLine("info", std::string("listening on ") +
                      (options.tls_cert_file.empty() ? "http" : "https") + "://" + options.address +
                      ":" + std::to_string(http.port()) + " (public url " + public_url + ")");
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  LogLine("info", std::string("stopping on ") + (signal_number == SIGTERM ? "SIGTERM" : "SIGINT"));
  refresher.Stop();
  http.Stop();
  http.Wait();
  LogLine("info", "stopped");
  return 0;
}

struct Flag {
  std::string key;   // ServerConfig key
  std::string name;  // --flag
  std::string help;
  std::string value;
  CLI::Option* option = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"airlockd: the Airlock update server"};
  std::string config_file;
  app.add_option("--config", config_file,
                 "TOML settings file (keys as the flags, with '_' for '-'); flags override it");
  std::vector<Flag> flags = {
      {"data", "--data", "data folder (created if missing; required here or in --config)"},
      {"listen", "--listen", "HOST:PORT to listen on (default 127.0.0.1:8080)"},
      {"threads", "--threads", "I/O threads (default 0 = one per core)"},
      {"database", "--database",
       "store URL: sqlite:PATH or postgresql://... (default sqlite:DATA/airlock.db)"},
      {"public_url", "--public-url",
       "base URL devices use to download bundles (default http(s)://LISTEN)"},
      {"max_body", "--max-body", "largest JSON request body in bytes (default 1048576)"},
      {"max_upload", "--max-upload", "largest blob upload in bytes (default 2147483648)"},
      {"max_uploads", "--max-uploads",
       "blob uploads received at once (default 4; beyond: 503 with Retry-After)"},
      {"tls_cert", "--tls-cert", "PEM certificate chain: serve HTTPS (with --tls-key)"},
      {"tls_key", "--tls-key", "PEM private key (unencrypted) for --tls-cert"},
      {"access_log", "--access-log", "one JSON line per request on stderr: on|off (default on)"},
      {"cache_ttl_ms", "--cache-ttl-ms",
       "how long channel state is cached, in ms (default 2000; other airlockd see changes then)"},
      {"vault", "--vault", "online key store URI (default file:DATA/vault.db)"},
      {"vault_passphrase_file", "--vault-passphrase-file",
       "file holding the vault passphrase, or a pkcs11: store's PIN (default "
       "$AIRLOCKD_VAULT_PASSPHRASE, else DATA/vault.pass for the default vault; never the "
       "CLI's $AIRLOCK_VAULT_PASSPHRASE)"},
      {"timestamp_expiry", "--timestamp-expiry",
       "seconds a signed timestamp is valid (default 86400)"},
      {"snapshot_expiry", "--snapshot-expiry",
       "seconds a signed snapshot is valid (default 604800)"},
  };
  for (Flag& flag : flags) flag.option = app.add_option(flag.name, flag.value, flag.help);
  app.fallthrough();
  CLI::App* init = app.add_subcommand(
      "init", "create the data folder, the online key store and the first owner token");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  server::ServerConfig config;
  if (!config_file.empty()) {
    auto loaded = server::LoadConfig(config_file);
    if (!loaded) {
      std::cerr << "airlockd: " << loaded.error().ToString() << "\n";
      return 2;
    }
    config = std::move(*loaded);
  }
  for (const Flag& flag : flags) {
    if (flag.option->count() == 0) continue;
    if (auto ok = server::SetConfigValue(&config, flag.key, flag.value); !ok) {
      std::cerr << "airlockd: " << flag.name << ": " << ok.error().message() << "\n";
      return 2;
    }
  }
  if (auto ok = server::ValidateConfig(config); !ok) {
    std::cerr << "airlockd: " << ok.error().message() << "\n";
    return 2;
  }
  if (*init) return Init(config);
  return Serve(config);
}
