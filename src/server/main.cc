// airlockd: the Airlock update server. Thin: settings (flags over an optional TOML file), the data
// folder, the online key store, routes, the timestamp refresher and signals.
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
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
#include "monitor/monitor.h"
#include "server/app_repo.h"
#include "server/blob_gc.h"
#include "server/capgo_api.h"
#include "server/capgo_routes.h"
#include "server/channel_cache.h"
#include "server/config.h"
#include "server/data_dir.h"
#include "server/http_server.h"
#include "server/last_seen_writer.h"
#include "server/metrics.h"
#include "server/corroboration.h"
#include "server/monitor_actions.h"
#include "server/release_metrics.h"
#include "server/release_policy.h"
#include "server/router.h"
#include "server/routes.h"
#include "server/server_api.h"
#include "server/static_files.h"
#include "server/store_catalog.h"
#include "server/vault_secret.h"
#include "storage/store.h"

namespace {

namespace server = airlock::server;
namespace keys = airlock::keys;
namespace monitor = airlock::monitor;
namespace audit = airlock::audit;
using airlock::ErrorCode;
using airlock::ReadTextFile;
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
  // DATA holds token hashes, device keys and events: owner only (installs from before this rule
  // are tightened here, and say so).
  AIRLOCK_ASSIGN_OR_RETURN(std::vector<std::string> tightened, server::TightenDataDir(data));
  for (const std::string& path : tightened) {
    LogLine("info", "tightened " + path + " to owner-only (mode " +
                        (path == data.string() ? "0700" : "0600") + ")");
  }
  return {};
}

// The SQLite store given or implied (the default DATA/airlock.db): one process only.
bool UsesSqlite(const server::ServerConfig& config) {
  return config.database.empty() || config.database.rfind("sqlite:", 0) == 0;
}

std::string DatabaseUrl(const server::ServerConfig& config) {
  if (!config.database.empty()) return config.database;
  return "sqlite:" + (std::filesystem::path(config.data) / "airlock.db").string();
}

// airlockd gc: removes the blobs nothing references that are older than the grace period.
int CollectGarbage(const server::ServerConfig& config, int64_t grace, bool dry_run) {
  const std::filesystem::path data = config.data;
  // Never a new, empty store (which names no release): the server's own database or nothing.
  std::error_code ec;
  if (config.database.empty() && !std::filesystem::exists(data / "airlock.db", ec)) {
    std::cerr << "airlockd gc: " << (data / "airlock.db").string()
              << " does not exist; pass the server's --database (or its --config)\n";
    return 1;
  }
  auto store = airlock::storage::OpenStore(DatabaseUrl(config), UnixNow());
  if (!store) {
    std::cerr << "airlockd gc: database: " << store.error().ToString() << "\n";
    return 1;
  }
  server::BlobGcOptions options{UnixNow(), grace, dry_run};
  auto stats = server::CollectBlobs(store->get(), data, options);
  if (!stats) {
    std::cerr << "airlockd gc: " << stats.error().ToString() << "\n";
    return 1;
  }
  std::cout << (dry_run ? "would remove " : "removed ") << stats->removed
            << " unreferenced blob(s) older than " << grace << " s (" << stats->removed_bytes
            << " bytes); kept " << stats->kept << " referenced and " << stats->fresh
            << " recent unreferenced\n";
  return 0;
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
              << " already has principals; create more tokens with "
                 "`airlock token create` (the admin API)\n";
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

// Runs `task` now and then every `interval`, until Stop (which wakes it at once).
class PeriodicTask {
 public:
  // kBackground: the thread runs at the lowest CPU priority (nice 19), for work that may wait for
  // idle CPU rather than take it from the requests.
  enum class Priority { kNormal, kBackground };
  PeriodicTask(std::function<void()> task, std::chrono::seconds interval,
               Priority priority = Priority::kNormal)
      : task_(std::move(task)), interval_(interval), priority_(priority) {
    thread_ = std::thread([this] { Run(); });
  }
  ~PeriodicTask() { Stop(); }
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
    // Linux: a thread's nice value is its own (setpriority on its thread id).
    if (priority_ == Priority::kBackground && setpriority(PRIO_PROCESS, gettid(), 19) != 0) {
      LogLine("warning", std::string("background task: setpriority: ") + std::strerror(errno));
    }
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      lock.unlock();
      task_();
      lock.lock();
      cv_.wait_for(lock, interval_, [this] { return stop_; });
    }
  }

  std::function<void()> task_;
  std::chrono::seconds interval_;
  Priority priority_;
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
  // A host name is resolved before anything is created; one that does not resolve stops here.
  auto address = server::ResolveListenHost(options.address);
  if (!address) {
    std::cerr << "airlockd: " << address.error().message() << "\n";
    return 1;
  }
  options.address = *address;
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
  // Held until exit: a second airlockd on DATA refuses to start (server/data_dir.h).
  auto data_lock = server::LockDataDir(data, UsesSqlite(config));
  if (!data_lock) {
    std::cerr << "airlockd: " << data_lock.error().message() << "\n";
    return 1;
  }
  auto store = airlock::storage::OpenStore(DatabaseUrl(config), UnixNow());
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
  cache_options.release_gate = server::SignedReleaseGate(
      &repo, [](const std::string& why) { std::fprintf(stderr, "airlockd: %s\n", why.c_str()); });
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
  // last_seen behind the request (last_seen_writer.h): written every second, and at the stop, on a
  // store connection of its own. Each batch moves up to 500 entries of the devices_by_last_seen
  // index; at 1 M devices those sit on as many scattered pages, and a batch took 40-170 ms in a
  // test of the statement alone (plus SQLite's checkpoint of them), which would otherwise hold the
  // requests' one SQLite connection. With WAL the requests' reads go on beside this writer.
  auto touch_store = airlock::storage::OpenStore(DatabaseUrl(config), UnixNow(), 1);
  if (!touch_store) {
    std::cerr << "airlockd: database (last_seen): " << touch_store.error().ToString() << "\n";
    return 1;
  }
  server::LastSeenWriter last_seen(touch_store->get(), server::LastSeenWriter::Mode::kBehind);
  deps.last_seen = &last_seen;

  // The monitor (docs/operations/alerts.md): its own connection to the database, its own handle on
  // the usage log (for its records), the actions on this server's vault and store.
  auto monitor_store = monitor::MonitorStore::Open(DatabaseUrl(config));
  if (!monitor_store) {
    std::cerr << "airlockd: monitor database: " << monitor_store.error().ToString() << "\n";
    return 1;
  }
  std::optional<monitor::WebhookNotifier> webhook;
  if (!config.alert_webhook_url.empty()) {
    auto secret = ReadTextFile(config.alert_webhook_secret_file, 4096);
    if (!secret) {
      std::cerr << "airlockd: alert webhook secret: " << secret.error().ToString() << "\n";
      return 1;
    }
    while (!secret->empty() && (secret->back() == '\n' || secret->back() == '\r')) {
      secret->pop_back();
    }
    auto hook = monitor::WebhookNotifier::Create({config.alert_webhook_url, *secret});
    if (!hook) {
      std::cerr << "airlockd: alert webhook: " << hook.error().ToString() << "\n";
      return 1;
    }
    webhook.emplace(std::move(*hook));
  }
  std::mutex monitor_audit_mu;
  std::optional<audit::AuditLog> monitor_audit;
  server::ServerResponder responder(store->get(), &repo, &cache);
  monitor::MonitorOptions monitor_options;
  monitor_options.usage_log = repo_options.audit_log;
  monitor_options.audit = [&](const audit::UsageRecord& record) -> Result<void> {
    std::lock_guard<std::mutex> lock(monitor_audit_mu);
    if (!monitor_audit) {
      AIRLOCK_ASSIGN_OR_RETURN(auto log, audit::AuditLog::Open(repo_options.audit_log));
      monitor_audit.emplace(std::move(log));
    }
    AIRLOCK_TRY(monitor_audit->Append(record));
    return {};
  };
  monitor_options.responder = &responder;
  monitor_options.notifier = webhook ? &*webhook : nullptr;
  monitor_options.corroboration =
      server::ServerCorroboration({&repo, data, repo_options.audit_log});
  monitor::Monitor monitor(std::move(*monitor_store), monitor_options);
  deps.monitor = &monitor;

  server::StoreCatalog capgo_catalog(store->get(), public_url, &cache);
  server::StoreChannelRegistry capgo_channels(store->get(), &cache);
  server::StoreStatsSink capgo_stats(store->get(), UnixNow);
  server::CapgoRateLimiter capgo_limiter({}, [] { return std::chrono::steady_clock::now(); });
  server::AirlockdRoutes routes = server::AddAirlockdRoutes(
      &router, deps, &metrics, {&capgo_catalog, &capgo_channels, &capgo_stats, &capgo_limiter});

  server::HttpServer http(options, &router, &metrics);
  if (auto ok = http.Start(); !ok) {
    std::cerr << "airlockd: " << ok.error().ToString() << "\n";
    return 1;
  }
  const auto refresh_every =
      std::chrono::seconds(std::clamp<int64_t>(config.timestamp_expiry / 10, 1, 60));
  PeriodicTask refresher(
      [&repo] {
        auto refreshed = repo.RefreshTimestamps();
        if (!refreshed) {
          LogLine("error", "timestamp refresh: " + refreshed.error().ToString());
          return;
        }
        for (const std::string& app : *refreshed) {
          LogLine("info", "re-signed the timestamp of " + app);
        }
      },
      refresh_every);
  // Unreferenced blobs older than gc_grace, every gc_interval (0: only `airlockd gc`).
  std::optional<PeriodicTask> collector;
  if (config.gc_interval > 0) {
    airlock::storage::Store* db = store->get();
    collector.emplace(
        [db, data, grace = config.gc_grace] {
          auto stats = server::CollectBlobs(db, data, {UnixNow(), grace, false});
          if (!stats) {
            LogLine("error", "blob collection: " + stats.error().ToString());
          } else if (stats->removed > 0) {
            LogLine("info", "blob collection removed " + std::to_string(stats->removed) +
                                " unreferenced blob(s) (" + std::to_string(stats->removed_bytes) +
                                " bytes)");
          }
        },
        std::chrono::seconds(config.gc_interval));
  }
  PeriodicTask last_seen_flusher(
      [&last_seen] {
        if (auto written = last_seen.Flush(); !written) {
          LogLine("error", "last_seen: " + written.error().ToString() + " (" +
                               std::to_string(last_seen.pending()) + " kept for the next try)");
        }
      },
      std::chrono::seconds(1));
  // Release statistics on /metrics (release_metrics.h), computed off the request path, on a store
  // connection of their own: their counts over the devices table (seconds at millions of devices)
  // must not hold the connection the requests use, nor take a core from them (nice 19).
  auto stats_store = airlock::storage::OpenStore(DatabaseUrl(config), UnixNow(), 1);
  if (!stats_store) {
    std::cerr << "airlockd: database (statistics): " << stats_store.error().ToString() << "\n";
    return 1;
  }
  PeriodicTask statistician(
      [db = stats_store->get(), &metrics] {
        auto text = server::RenderReleaseMetrics(db, UnixNow());
        if (!text) {
          LogLine("error", "release statistics: " + text.error().ToString());
          return;
        }
        metrics.SetSection(std::move(*text));
      },
      std::chrono::seconds(config.stats_interval), PeriodicTask::Priority::kBackground);
  PeriodicTask watcher(
      [&monitor] {
        auto report = monitor.Tick();
        if (!report) LogLine("error", "monitor: " + report.error().ToString());
      },
      std::chrono::seconds(config.monitor_interval));
  LogLine("info", std::string("listening on ") +
                      (options.tls_cert_file.empty() ? "http" : "https") + "://" + options.address +
                      ":" + std::to_string(http.port()) + " (public url " + public_url + ")");
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  LogLine("info", std::string("stopping on ") + (signal_number == SIGTERM ? "SIGTERM" : "SIGINT"));
  refresher.Stop();
  watcher.Stop();
  statistician.Stop();
  if (collector) collector->Stop();
  http.Stop();
  http.Wait();
  last_seen_flusher.Stop();
  if (auto written = last_seen.Flush(); !written) {
    LogLine("error", "last_seen at the stop: " + written.error().ToString());
  }
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
      {"gc_interval", "--gc-interval",
       "seconds between collections of unreferenced blobs (default 86400; 0 = only `airlockd gc`)"},
      {"gc_grace", "--gc-grace",
       "an unreferenced blob is collected once older than this, in seconds (default 86400)"},
      {"monitor_interval", "--monitor-interval",
       "seconds between runs of the alert rules (default 10)"},
      {"stats_interval", "--stats-interval",
       "seconds between updates of the release statistics on /metrics (default 60)"},
      {"alert_webhook_url", "--alert-webhook-url",
       "http(s) URL alerts are POSTed to, HMAC-signed (default: none, log only)"},
      {"alert_webhook_secret_file", "--alert-webhook-secret-file",
       "file holding the webhook's HMAC key (at least 16 bytes; required with the URL)"},
  };
  for (Flag& flag : flags) flag.option = app.add_option(flag.name, flag.value, flag.help);
  app.fallthrough();
  CLI::App* init = app.add_subcommand(
      "init", "create the data folder, the online key store and the first owner token");
  CLI::App* gc = app.add_subcommand(
      "gc", "remove the blobs no release or targets metadata references, older than --gc-grace");
  bool dry_run = false;
  gc->add_flag("--dry-run", dry_run, "count what would be removed, remove nothing");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is 0; every usage error is 2 (CLI11's own codes would be 105..115).
    return app.exit(e) == 0 ? 0 : 2;
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
  // New files (databases, vault, blobs) are owner-only; DATA is tightened in EnsureLayout.
  ::umask(0077);
  if (*init) return Init(config);
  if (*gc) return CollectGarbage(config, config.gc_grace, dry_run);
  return Serve(config);
}
