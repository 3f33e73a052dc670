// The airlockd of the server fuzz targets, built once per process as main.cc builds it (the routes
// of AddAirlockdRoutes over a real SQLite store, a file vault with the cheap test KDF, a real
// access store) with one app whose root is installed, so the device and Capgo routes reach their
// body parsers. The clocks are fixed except the steady clock, which moves an hour per request so
// that rate limits never turn the fuzzer's requests away. Placeholders in fuzz inputs: "@OWNER@" is
// replaced by an owner token and "@ENROLL@" by the app's enrollment token. Device "fuzz-device"
// (signing key kEd25519KeyPem, fuzz_keys.h) is enrolled, and SignedHeaders() signs a body for it
// (crypto/device_request.h), so /v1/check and /v1/report bodies are read past authentication.
#ifndef AIRLOCK_FUZZ_SERVER_FIXTURE_H_
#define AIRLOCK_FUZZ_SERVER_FIXTURE_H_

#include <atomic>
#include <cctype>
#include <functional>
#include <map>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "access/access_store.h"
#include "audit/audit_log.h"
#include "crypto/device_request.h"
#include "crypto/keys.h"
#include "fuzz_keys.h"
#include "fuzz_util.h"
#include "keys/file_vault.h"
#include "metadata/metadata.h"
#include "server/app_repo.h"
#include "server/capgo_routes.h"
#include "server/channel_cache.h"
#include "server/metrics.h"
#include "server/release_policy.h"
#include "server/routes.h"
#include "server/server_api.h"
#include "server/static_files.h"
#include "server/store_catalog.h"
#include "storage/store.h"

namespace airlock::fuzz {

inline constexpr int64_t kServerNow = 1'800'000'000;
inline constexpr char kServerApp[] = "com.example.app";
inline constexpr char kFuzzDevice[] = "fuzz-device";

// A Request::header function over `headers` (names matched case-insensitively).
inline std::function<std::string_view(std::string_view)> LowerCaseHeaders(
    std::map<std::string, std::string> headers) {
  auto lowered = std::make_shared<std::map<std::string, std::string>>();
  for (auto& [name, value] : headers) {
    std::string key = name;
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    (*lowered)[key] = std::move(value);
  }
  return [lowered](std::string_view name) -> std::string_view {
    std::string key(name);
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto it = lowered->find(key);
    return it == lowered->end() ? std::string_view() : std::string_view(it->second);
  };
}

class FuzzServer {
 public:
  static FuzzServer& Get() {
    static FuzzServer* server = new FuzzServer();
    return *server;
  }

  const server::Router& router() const { return router_; }
  server::Metrics* metrics() { return &metrics_; }

  // Replaces the placeholders (see the file comment).
  std::string Expand(std::string text) const {
    Replace(text, "@OWNER@", owner_token_);
    Replace(text, "@ENROLL@", enrollment_token_);
    return text;
  }

  // Routes `req` as HttpServer does after parsing (pre-body check, then the handler); the status.
  int Call(server::Request& req) {
    auto match = router_.Find(&req);
    if (match.kind != server::Router::Match::Kind::kFound) return 404;
    if (match.check != nullptr && *match.check) {
      if (auto refused = (*match.check)(&req)) return refused->status;
    }
    return (*match.handler)(req).status;
  }

  int64_t steady() { return steady_.fetch_add(3600) + 3600; }

  // The device request headers (lower-case names) signing `body` for kFuzzDevice.
  std::map<std::string, std::string> SignedHeaders(std::string_view method, std::string_view path,
                                                   std::string_view body) const {
    auto sig = crypto::SignDeviceRequest(*device_key_, method, path, kFuzzDevice, kServerNow,
                                         AsBytes(body));
    Check(sig.has_value());
    return {{"x-airlock-device", sig->device_id},
            {"x-airlock-timestamp", sig->timestamp},
            {"x-airlock-signature", sig->signature}};
  }

 private:
  FuzzServer() {
    data_ = ScratchDir() / "data";
    Check(server::EnsureDataLayout(data_).has_value());
    auto store = storage::OpenStore("sqlite:" + (data_ / "airlock.db").string(), kServerNow);
    Check(store.has_value());
    store_ = std::move(*store);
    auto vault_path = ScratchDir() / "server.vault";
    keys::KeyStoreOptions vault_options;
    vault_options.kdf = keys::KdfParams::ForTests();
    vault_options.secret = [] { return Result<std::string>(std::string("fuzz passphrase")); };
    vault_options.now = [] { return kServerNow; };
    auto vault = keys::OpenFileVault(vault_path, vault_options, /*create=*/true);
    Check(vault.has_value());
    server::AppRepoOptions repo_options;
    repo_options.data_dir = data_;
    repo_options.now = [] { return kServerNow; };
    repo_ = std::make_unique<server::AppRepo>(std::move(*vault), repo_options);
    access::AccessOptions access_options;
    access_options.clock = [] { return kServerNow; };
    auto access = access::AccessStore::Open(data_ / "access.db", access_options);
    Check(access.has_value());
    access_.emplace(std::move(*access));
    owner_token_ = access_->CreateToken("owner", {access::Role::kOwner})->token;

    server::ChannelCache::Options cache_options;
    cache_options.clock = [this] { return std::chrono::steady_clock::time_point(
                                       std::chrono::seconds(steady_.load())); };
    cache_options.release_gate = server::SignedReleaseGate(repo_.get(), nullptr);
    cache_ = std::make_unique<server::ChannelCache>(store_.get(), cache_options);

    server::ServerApiDeps deps;
    deps.store = store_.get();
    deps.repo = repo_.get();
    deps.access = &*access_;
    deps.cache = cache_.get();
    deps.data_dir = data_;
    deps.public_url = "https://ota.example.com";
    deps.clock = [] { return kServerNow; };
    deps.audit_log = audit::AuditPathForVault(vault_path);
    deps.wrap_for_device = [this](const std::string& app_id, const std::string& sha256,
                                  const crypto::PublicKey& key) {
      return repo_->WrapForDevice(app_id, server::api_internal::BlobPath(data_, sha256), key);
    };
    deps.steady_clock = [this] { return std::chrono::steady_clock::time_point(
                                     std::chrono::seconds(steady())); };
    catalog_ = std::make_unique<server::StoreCatalog>(store_.get(), "https://ota.example.com",
                                                      cache_.get());
    registry_ = std::make_unique<server::StoreChannelRegistry>(store_.get(), cache_.get());
    stats_ = std::make_unique<server::StoreStatsSink>(store_.get(), [] { return kServerNow; });
    routes_ = server::AddAirlockdRoutes(&router_, deps, &metrics_,
                                        {catalog_.get(), registry_.get(), stats_.get(), nullptr});
    CreateApp();
    EnrollDevice();
  }

  static void Check(bool ok) {
    if (!ok) std::abort();
  }

  static void Replace(std::string& text, std::string_view from, const std::string& to) {
    for (size_t pos = text.find(from); pos != std::string::npos;
         pos = text.find(from, pos + to.size()))
      text.replace(pos, from.size(), to);
  }

  std::pair<int, std::string> Admin(const std::string& method, const std::string& path,
                                    const std::string& body,
                                    std::map<std::string, std::string> headers = {}) {
    server::Request req;
    req.method = method;
    req.path = path;
    for (size_t start = 1; start <= path.size();) {
      size_t end = path.find('/', start);
      if (end == std::string::npos) end = path.size();
      if (end > start) req.segments.push_back(path.substr(start, end - start));
      start = end + 1;
    }
    req.body = body;
    req.remote = "127.0.0.1";
    headers["authorization"] = "Bearer " + owner_token_;
    req.header = LowerCaseHeaders(std::move(headers));
    auto match = router_.Find(&req);
    Check(match.kind == server::Router::Match::Kind::kFound);
    if (match.check != nullptr && *match.check) {
      if (auto refused = (*match.check)(&req)) return {refused->status, refused->body};
    }
    server::Response response = (*match.handler)(req);
    return {response.status, response.body};
  }

  void EnrollDevice() {
    auto key = crypto::PrivateKey::FromPem(kEd25519KeyPem);
    auto wrap_key = crypto::PrivateKey::FromPem(kX25519KeyPem);
    Check(key && wrap_key);
    device_key_.emplace(std::move(*key));
    std::string body =
        nlohmann::json{{"app_id", kServerApp},
                       {"device_id", kFuzzDevice},
                       {"public_key", HexEncode(*wrap_key->Public().RawPublic())},
                       {"signing_key", HexEncode(*device_key_->Public().RawPublic())},
                       {"platform", "linux"},
                       {"enrollment_token", enrollment_token_}}
            .dump();
    auto [status, reply] = Admin("POST", "/v1/enroll", body, SignedHeaders("POST", "/v1/enroll", body));
    Check(status == 200 || status == 201);
  }

  void CreateApp() {
    auto [status, body] = Admin("POST", "/api/v1/apps",
                                nlohmann::json{{"app_id", kServerApp}, {"display_name", "Fuzz"}}.dump());
    Check(status == 201);
    auto created = nlohmann::json::parse(body);
    enrollment_token_ = created["enrollment_token"].get<std::string>();
    auto root_key = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
    auto targets_key = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
    Check(root_key && targets_key);
    metadata::Root root;
    root.version = 1;
    root.expires = kServerNow + 365 * 86400;
    root.consistent_snapshot = true;
    Check(root.AddKey("root", root_key->Public()).has_value());
    Check(root.AddKey("targets", targets_key->Public()).has_value());
    auto snap = metadata::Key::FromJson(created["online_keys"]["snapshot"]);
    auto ts = metadata::Key::FromJson(created["online_keys"]["timestamp"]);
    Check(snap && snap->usable() && ts && ts->usable());
    Check(root.AddKey("snapshot", *snap->public_key).has_value());
    Check(root.AddKey("timestamp", *ts->public_key).has_value());
    auto md = metadata::SignMetadata(root, {&*root_key});
    Check(md.has_value());
    auto text = md->ToBytes();
    Check(text.has_value());
    Check(Admin("PUT", std::string("/api/v1/apps/") + kServerApp + "/root", *text).first == 200);
    Check(Admin("POST", std::string("/api/v1/apps/") + kServerApp + "/channels",
                nlohmann::json{{"name", "production"}, {"default", true}}.dump())
              .first == 201);
  }

  std::filesystem::path data_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<server::AppRepo> repo_;
  std::optional<access::AccessStore> access_;
  std::unique_ptr<server::ChannelCache> cache_;
  std::unique_ptr<server::StoreCatalog> catalog_;
  std::unique_ptr<server::StoreChannelRegistry> registry_;
  std::unique_ptr<server::StoreStatsSink> stats_;
  server::Metrics metrics_;
  server::Router router_;
  server::AirlockdRoutes routes_;
  std::optional<crypto::PrivateKey> device_key_;
  std::string owner_token_;
  std::string enrollment_token_;
  std::atomic<int64_t> steady_{0};
};

}  // namespace airlock::fuzz

#endif  // AIRLOCK_FUZZ_SERVER_FIXTURE_H_
