// The fixture of the admin and device API tests (server_api_test.cc, device_auth_test.cc): the API
// driven through a Router (handlers called directly), over a real SQLite store, a real AppRepo on a
// file vault and a real access store. Device requests are signed with each device's signing key
// (crypto/device_request.h), made at its first Enroll.
#ifndef AIRLOCK_SERVER_SERVER_API_TEST_FIXTURE_H_
#define AIRLOCK_SERVER_SERVER_API_TEST_FIXTURE_H_

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "access/access_store.h"
#include "audit/audit_log.h"
#include "bundle/bundle.h"
#include "common/bytes.h"
#include "common/file.h"
#include "crypto/base64.h"
#include "crypto/device_request.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/wrap.h"
#include "keys/file_vault.h"
#include "metadata/metadata.h"
#include "server/capgo_routes.h"
#include "server/channel_cache.h"
#include "server/release_policy.h"
#include "server/routes.h"
#include "server/server_api.h"
#include "server/static_files.h"
#include "server/store_catalog.h"
#include "storage/store.h"

namespace airlock::server {
namespace testing_fixture {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr int64_t kNow = 1'800'000'000;
constexpr int64_t kDay = 86400;
constexpr char kApp[] = "com.example.app";
constexpr char kPublicUrl[] = "https://ota.example.com";

inline crypto::PrivateKey NewKey(crypto::KeyType type = crypto::KeyType::kEd25519) {
  auto key = crypto::PrivateKey::Generate(type);
  EXPECT_TRUE(key.has_value());
  return std::move(*key);
}

struct Reply {
  int status = 0;
  Json body;
  std::string raw;  // the body bytes as sent
  std::string error() const {
    return body.is_object() && body.contains("error") ? body["error"].get<std::string>() : "";
  }
};

class ServerApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ScopedTempDir::Create({}, "server-api-");
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
    data_ = dir_->path() / "data";
    ASSERT_TRUE(EnsureDataLayout(data_));
    auto store = storage::OpenStore("sqlite:" + (data_ / "airlock.db").string(), kNow);
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);

    vault_ = dir_->path() / "server.vault";
    auto vault = keys::OpenFileVault(vault_, VaultOptions(), /*create=*/true);
    ASSERT_TRUE(vault) << vault.error().ToString();
    AppRepoOptions repo_options;
    repo_options.data_dir = data_;
    repo_options.now = [this] { return now_; };
    repo_ = std::make_unique<AppRepo>(std::move(*vault), repo_options);

    access::AccessOptions access_options;
    access_options.clock = [this] { return now_; };
    auto access = access::AccessStore::Open(data_ / "access.db", access_options);
    ASSERT_TRUE(access) << access.error().ToString();
    access_.emplace(std::move(*access));
    owner_token_ = access_->CreateToken("owner", {access::Role::kOwner})->token;
    reader_token_ = access_->CreateToken("reader", {access::Role::kReadOnly})->token;

    ChannelCache::Options cache_options;
    cache_options.clock = [this] { return steady_; };
    cache_options.release_gate = SignedReleaseGate(repo_.get(), nullptr);
    cache_ = std::make_unique<ChannelCache>(store_.get(), cache_options);

    ServerApiDeps deps;
    deps.store = store_.get();
    deps.repo = repo_.get();
    deps.access = &*access_;
    deps.cache = cache_.get();
    deps.data_dir = data_;
    deps.public_url = kPublicUrl;
    deps.clock = [this] { return now_; };
    deps.audit_log = audit::AuditPathForVault(vault_);
    deps.wrap_for_device = [this](const std::string& app_id, const std::string& sha256,
                                  const crypto::PublicKey& key) {
      ++wrap_calls_;
      return repo_->WrapForDevice(app_id, api_internal::BlobPath(data_, sha256), key);
    };
    deps.steady_clock = [this] { return steady_; };
    CustomizeDeps(&deps);
    catalog_ = std::make_unique<StoreCatalog>(store_.get(), kPublicUrl, cache_.get());
    registry_ = std::make_unique<StoreChannelRegistry>(store_.get(), cache_.get());
    stats_ = std::make_unique<StoreStatsSink>(store_.get(), [this] { return now_; });
    // The routes airlockd serves, built as main.cc builds them (no Capgo rate limiter).
    AirlockdRoutes routes = AddAirlockdRoutes(
        &router_, deps, &metrics_, {catalog_.get(), registry_.get(), stats_.get(), nullptr});
    admin_ = routes.admin;
    device_routes_ = routes.device;
  }

  Reply Call(const std::string& method, const std::string& target, const std::string& body = "",
             std::optional<std::string> token = std::nullopt,
             std::map<std::string, std::string> headers = {},
             std::optional<UploadedFile> upload = std::nullopt) {
    Request req;
    req.method = method;
    size_t q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) req.query = target.substr(q + 1);
    size_t start = 1;
    while (start <= req.path.size()) {
      size_t end = req.path.find('/', start);
      if (end == std::string::npos) end = req.path.size();
      if (end > start) req.segments.push_back(req.path.substr(start, end - start));
      start = end + 1;
    }
    req.body = body;
    req.upload = std::move(upload);
    req.remote = "127.0.0.1";
    if (token) headers["authorization"] = "Bearer " + *token;
    auto lowered = std::make_shared<std::map<std::string, std::string>>();
    for (const auto& [k, v] : headers) {
      std::string key = k;
      for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      (*lowered)[key] = v;
    }
    req.header = [lowered](std::string_view name) -> std::string_view {
      std::string key(name);
      for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      auto it = lowered->find(key);
      return it == lowered->end() ? std::string_view() : std::string_view(it->second);
    };
    auto match = router_.Find(&req);
    if (match.kind != Router::Match::Kind::kFound)
      return Reply{match.kind == Router::Match::Kind::kNotFound ? 404 : 405, {}};
    EXPECT_EQ(match.upload, upload_route_expected(req.path));
    Response response = (*match.handler)(req);
    Reply reply;
    reply.status = response.status;
    reply.body = Json::parse(response.body, nullptr, false);
    reply.raw = response.body;
    return reply;
  }
  static bool upload_route_expected(const std::string& path) { return path == "/api/v1/blobs"; }

  Reply Admin(const std::string& method, const std::string& target, const Json& body = nullptr) {
    return Call(method, target, body.is_null() ? "" : body.dump(), owner_token_);
  }

  // POST /api/v1/apps and PUT root v1.
  void CreateApp() {
    Reply created = Admin("POST", "/api/v1/apps", {{"app_id", kApp}, {"display_name", "Example"}});
    ASSERT_EQ(created.status, 201) << created.body.dump();
    created_ = created.body;
    enrollment_token_ = created.body["enrollment_token"];
    content_key_pem_ = created.body["content_key"];
    metadata::Root root;
    root.version = 1;
    root.expires = now_ + 365 * kDay;
    root.consistent_snapshot = true;
    ASSERT_TRUE(root.AddKey("root", root_key_.Public()));
    ASSERT_TRUE(root.AddKey("targets", targets_key_.Public()));
    auto snap = metadata::Key::FromJson(created.body["online_keys"]["snapshot"]);
    auto ts = metadata::Key::FromJson(created.body["online_keys"]["timestamp"]);
    ASSERT_TRUE(snap && snap->usable() && ts && ts->usable());
    ASSERT_TRUE(root.AddKey("snapshot", *snap->public_key));
    ASSERT_TRUE(root.AddKey("timestamp", *ts->public_key));
    auto md = metadata::SignMetadata(root, {&root_key_});
    ASSERT_TRUE(md);
    Reply put =
        Call("PUT", std::string("/api/v1/apps/") + kApp + "/root", *md->ToBytes(), owner_token_);
    ASSERT_EQ(put.status, 200) << put.body.dump();
    EXPECT_EQ(put.body["version"], 1);
  }

  void CreateChannel(const std::string& name, bool is_default) {
    Reply c = Admin("POST", std::string("/api/v1/apps/") + kApp + "/channels",
                    {{"name", name}, {"default", is_default}});
    ASSERT_EQ(c.status, 201) << c.body.dump();
  }

  // Uploads `content` through POST /api/v1/blobs; returns the reply.
  Reply Upload(std::string_view content, std::map<std::string, std::string> headers = {}) {
    fs::path tmp = dir_->path() / ("upload-" + std::to_string(upload_counter_++));
    EXPECT_TRUE(WriteFileAtomic(tmp, AsBytes(content)));
    UploadedFile up{tmp, content.size(), HexEncode(crypto::Sha256(AsBytes(content)))};
    return Call("POST", "/api/v1/blobs", "", owner_token_, std::move(headers), up);
  }

  // A sealed bundle for `version` with recipients: the app's content key and recipient_key_.
  std::string SealedBundle(const std::string& version) {
    fs::path in = dir_->path() / ("in-" + version);
    fs::create_directories(in);
    EXPECT_TRUE(WriteFileAtomic(in / "index.html", AsBytes("<h1>" + version + "</h1>")));
    fs::path out = dir_->path() / ("bundle-" + version + ".alb");
    bundle::SealOptions options;
    options.app_id = kApp;
    options.version = version;
    auto content_key = crypto::PublicKey::FromPem(content_key_pem_);
    EXPECT_TRUE(content_key);
    auto sealed =
        bundle::SealBundle(in, options, signing_key_, {*content_key, recipient_key_.Public()}, out);
    EXPECT_TRUE(sealed) << sealed.error().ToString();
    auto bytes = ReadTextFile(out, 1 << 24);
    EXPECT_TRUE(bytes);
    return bytes ? *bytes : std::string();
  }

  static void AddTarget(metadata::Targets* t, const std::string& name, std::string_view content,
                        Json custom) {
    metadata::TargetFile file = metadata::TargetFile::FromData(AsBytes(content));
    file.custom = std::move(custom);
    t->targets[name] = file;
  }

  Json SignTargets(const metadata::Targets& t, const crypto::PrivateKey& key) {
    auto md = metadata::SignMetadata(t, {&key});
    EXPECT_TRUE(md);
    return md->ToJson();
  }

  // Signed release rules (metadata/release_rules.h): the channels, floor and rollback permission.
  static Json Custom(const std::string& version, bool rollback_allowed = false,
                     Json channels = Json::array({"production"}), uint64_t floor = 0) {
    Json c = {{"app_id", kApp}, {"version", version}, {"channels", std::move(channels)}};
    if (rollback_allowed) c["rollback_allowed"] = true;
    if (floor > 0) c["security_floor"] = floor;
    return c;
  }

  std::string BundleName(const std::string& version) {
    return "releases/" + version + "/bundle.alb";
  }
  std::string CapgoName(const std::string& version) { return "releases/" + version + "/capgo.zip"; }

  // Seals and uploads the bundle (and a Capgo zip) of `version`; adds both to `t`.
  void AddRelease(metadata::Targets* t, const std::string& version, bool rollback_allowed = false,
                  Json channels = Json::array({"production"}), uint64_t floor = 0) {
    std::string bundle = SealedBundle(version);
    ASSERT_EQ(Upload(bundle).status, 201);
    bundles_[version] = bundle;
    std::string capgo = "capgo zip of " + version;
    Reply up = Upload(capgo);
    ASSERT_TRUE(up.status == 201 || up.status == 200);
    capgo_sha_[version] = up.body["sha256"];
    AddTarget(t, BundleName(version), bundle, Custom(version, rollback_allowed, channels, floor));
    AddTarget(t, CapgoName(version), capgo, Custom(version, rollback_allowed, channels, floor));
  }

  Json PublishBody(const std::string& version, const Json& targets_md,
                   const std::string& channel = "production") {
    return {{"version", version},
            {"channel", channel},
            {"encryption", "device"},
            {"target", BundleName(version)},
            {"targets_metadata", targets_md},
            {"capgo",
             {{"target", CapgoName(version)}, {"session_key", "iv:key"}, {"checksum", "abc123"}}}};
  }

  // App, production channel (default), release 1.0.0 published (targets v1).
  void PublishFirstRelease(bool rollback_allowed = false) {
    ASSERT_NO_FATAL_FAILURE(CreateApp());
    ASSERT_NO_FATAL_FAILURE(CreateChannel("production", true));
    metadata::Targets t;
    t.version = 1;
    t.expires = now_ + 90 * kDay;
    ASSERT_NO_FATAL_FAILURE(AddRelease(&t, "1.0.0", rollback_allowed));
    targets_v1_ = t;
    Reply pub = Admin("POST", std::string("/api/v1/apps/") + kApp + "/releases",
                      PublishBody("1.0.0", SignTargets(t, targets_key_)));
    ASSERT_EQ(pub.status, 201) << pub.body.dump();
  }

  // `from` as targets `targets_version` with release `version` added (AddRelease), published to
  // production (201, else a test failure). Writes the metadata published to `*out`.
  void PublishNext(const metadata::Targets& from, uint64_t targets_version,
                   const std::string& version, metadata::Targets* out) {
    *out = from;
    out->version = targets_version;
    ASSERT_NO_FATAL_FAILURE(AddRelease(out, version));
    Reply pub = Admin("POST", std::string("/api/v1/apps/") + kApp + "/releases",
                      PublishBody(version, SignTargets(*out, targets_key_)));
    ASSERT_EQ(pub.status, 201) << pub.body.dump();
  }

  // Tests change deps before the routes are made (wrap function, limits).
  virtual void CustomizeDeps(ServerApiDeps*) {}

  // The device's signing key (made on first use).
  const crypto::PrivateKey& SigningKey(const std::string& device) {
    auto it = signing_keys_.find(device);
    if (it == signing_keys_.end()) it = signing_keys_.emplace(device, NewKey()).first;
    return it->second;
  }

  // A device request signed as `device` with `key` (default: the device's signing key) at `when`
  // (default: now_).
  Reply DeviceCall(const std::string& path, const std::string& body, const std::string& device,
                   const crypto::PrivateKey* key = nullptr, std::optional<int64_t> when = {}) {
    auto sig = crypto::SignDeviceRequest(key ? *key : SigningKey(device), "POST", path, device,
                                         when.value_or(now_), AsBytes(body));
    EXPECT_TRUE(sig);
    return Call("POST", path, body, std::nullopt,
                {{std::string(crypto::kDeviceIdHeader), sig->device_id},
                 {std::string(crypto::kDeviceTimestampHeader), sig->timestamp},
                 {std::string(crypto::kDeviceSignatureHeader), sig->signature}});
  }

  static Json EnrollBody(const std::string& device, const crypto::PrivateKey& key,
                         const crypto::PrivateKey& signing, const std::string& token) {
    Json body = {{"app_id", kApp},
                 {"device_id", device},
                 {"public_key", HexEncode(*key.Public().RawPublic())},
                 {"signing_key", HexEncode(*signing.Public().RawPublic())},
                 {"platform", "android"}};
    if (!token.empty()) body["enrollment_token"] = token;
    return body;
  }

  Reply Enroll(const std::string& device, const crypto::PrivateKey& key,
               const std::string& token = "") {
    Json body = EnrollBody(device, key, SigningKey(device), token.empty() ? enrollment_token_ : token);
    return DeviceCall("/v1/enroll", body.dump(), device);
  }

  static Json CheckBody(const std::string& device, const std::string& version,
                        const std::string& platform = "android") {
    return {{"app_id", kApp},
            {"device_id", device},
            {"version", version},
            {"native_version", "1.0.0"},
            {"platform", platform}};
  }

  // One signed check.
  Reply CheckOnce(const std::string& device, const std::string& version,
                  const std::string& platform = "android") {
    return DeviceCall("/v1/check", CheckBody(device, version, platform).dump(), device);
  }

  // A signed check; when the answer is key_pending (a device-mode key being wrapped), waits for the
  // key service and checks again.
  Reply Check(const std::string& device, const std::string& version,
              const std::string& platform = "android") {
    Reply reply = CheckOnce(device, version, platform);
    if (reply.status == 200 && reply.body.value("reason", "") == "key_pending") {
      WaitForDeviceKeyWraps(device_routes_.get());
      reply = CheckOnce(device, version, platform);
    }
    return reply;
  }

  // How the server's vault (vault_) is opened: test KDF parameters, a fixed passphrase, now_.
  keys::KeyStoreOptions VaultOptions() {
    keys::KeyStoreOptions o;
    o.kdf = keys::KdfParams::ForTests();
    o.secret = [] { return Result<std::string>(std::string("test passphrase")); };
    o.now = [this] { return now_; };
    return o;
  }

  std::map<std::string, std::string> TufFiles() {
    std::map<std::string, std::string> out;
    fs::path dir = data_ / "tuf" / kApp;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      out[fs::relative(e.path(), dir).string()] = ReadTextFile(e.path(), 1 << 24).value_or("");
    }
    return out;
  }

  std::optional<ScopedTempDir> dir_;
  fs::path data_;
  fs::path vault_;
  int64_t now_ = kNow;
  std::chrono::steady_clock::time_point steady_{std::chrono::seconds(1000)};
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<AppRepo> repo_;
  std::optional<access::AccessStore> access_;
  std::unique_ptr<ChannelCache> cache_;
  std::string owner_token_;
  std::string reader_token_;
  Metrics metrics_;
  Router router_;
  std::shared_ptr<AdminApi> admin_;
  std::shared_ptr<DeviceRoutes> device_routes_;
  std::map<std::string, crypto::PrivateKey> signing_keys_;
  std::atomic<int> wrap_calls_{0};
  std::unique_ptr<StoreCatalog> catalog_;
  std::unique_ptr<StoreChannelRegistry> registry_;
  std::unique_ptr<StoreStatsSink> stats_;

  crypto::PrivateKey root_key_ = NewKey();
  crypto::PrivateKey targets_key_ = NewKey();
  crypto::PrivateKey signing_key_ = NewKey();
  crypto::PrivateKey recipient_key_ = NewKey(crypto::KeyType::kX25519);
  Json created_;
  std::string enrollment_token_;
  std::string content_key_pem_;
  metadata::Targets targets_v1_;
  std::map<std::string, std::string> bundles_;
  std::map<std::string, std::string> capgo_sha_;
  int upload_counter_ = 0;
};


}  // namespace testing_fixture
}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_SERVER_API_TEST_FIXTURE_H_
