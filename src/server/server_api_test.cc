// The admin and device API driven through a Router (handlers called directly), over a real SQLite
// store, a real AppRepo on a file vault and a real access store.
#include "server/release_policy.h"
#include "server/server_api.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bundle/bundle.h"
#include "common/bytes.h"
#include "common/file.h"
#include "crypto/base64.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/wrap.h"
#include "access/access_store.h"
#include "audit/audit_log.h"
#include "keys/file_vault.h"
#include "metadata/metadata.h"
#include "server/capgo_routes.h"
#include "server/channel_cache.h"
#include "server/static_files.h"
#include "server/store_catalog.h"
#include "storage/store.h"

namespace airlock::server {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr int64_t kNow = 1'800'000'000;
constexpr int64_t kDay = 86400;
constexpr char kApp[] = "com.example.app";
constexpr char kPublicUrl[] = "https://ota.example.com";

crypto::PrivateKey NewKey(crypto::KeyType type = crypto::KeyType::kEd25519) {
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
    keys::KeyStoreOptions vault_options;
    vault_options.kdf = keys::KdfParams::ForTests();
    vault_options.secret = [] { return Result<std::string>(std::string("test passphrase")); };
    vault_options.now = [this] { return now_; };
    auto vault = keys::OpenFileVault(vault_, vault_options, /*create=*/true);
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
    admin_ = AddAdminRoutes(&router_, deps);
    AddDeviceRoutes(&router_, deps);
    catalog_ = std::make_unique<StoreCatalog>(store_.get(), kPublicUrl, cache_.get());
    registry_ = std::make_unique<StoreChannelRegistry>(store_.get(), cache_.get());
    stats_ = std::make_unique<StoreStatsSink>(store_.get(), [this] { return now_; });
    AddCapgoRoutes(&router_, {catalog_.get(), registry_.get(), stats_.get(), nullptr});
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

  Reply Enroll(const std::string& device, const crypto::PrivateKey& key,
               const std::string& token = "") {
    Json body = {{"app_id", kApp},
                 {"device_id", device},
                 {"public_key", HexEncode(*key.Public().RawPublic())},
                 {"platform", "android"},
                 {"enrollment_token", token.empty() ? enrollment_token_ : token}};
    return Call("POST", "/v1/enroll", body.dump());
  }

  Reply Check(const std::string& device, const std::string& version,
              const std::string& platform = "android") {
    Json body = {{"app_id", kApp},
                 {"device_id", device},
                 {"version", version},
                 {"native_version", "1.0.0"},
                 {"platform", platform}};
    return Call("POST", "/v1/check", body.dump());
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
  Router router_;
  std::shared_ptr<AdminApi> admin_;
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

// --- authentication and input validation

TEST_F(ServerApiTest, AdminRoutesNeedAKnownTokenWithTheRole) {
  Json body = {{"app_id", kApp}};
  Reply none = Call("POST", "/api/v1/apps", body.dump());
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.error(), "unauthorized");
  Reply unknown = Call("POST", "/api/v1/apps", body.dump(), "alk_" + std::string(64, '0'));
  EXPECT_EQ(unknown.status, 401);
  Reply garbage = Call("POST", "/api/v1/apps", body.dump(), "nonsense");
  EXPECT_EQ(garbage.status, 401);
  Reply reader = Call("POST", "/api/v1/apps", body.dump(), reader_token_);
  EXPECT_EQ(reader.status, 403);
  EXPECT_EQ(reader.error(), "forbidden");
  EXPECT_EQ(store_->ListApps()->size(), 0u);
  // Reading is allowed to the read-only token.
  Reply list = Call("GET", "/api/v1/apps", "", reader_token_);
  EXPECT_EQ(list.status, 200);
  EXPECT_EQ(list.body["apps"], Json::array());
}

TEST_F(ServerApiTest, CreateAppReturnsKeysAndTokenOnceAndRefusesDuplicatesAndBadInput) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  EXPECT_EQ(created_["app_id"], kApp);
  std::string token = created_["enrollment_token"];
  ASSERT_EQ(token.size(), 4u + 64u);
  EXPECT_EQ(token.substr(0, 4), "enr_");
  EXPECT_TRUE(created_["online_keys"].contains("snapshot_keyid"));
  auto app = store_->GetApp(kApp);
  ASSERT_TRUE(app);
  EXPECT_EQ(app->enroll_token_sha256, HexEncode(crypto::Sha256(AsBytes(token))));

  Reply dup = Admin("POST", "/api/v1/apps", {{"app_id", kApp}});
  EXPECT_EQ(dup.status, 409);
  EXPECT_EQ(dup.error(), "already_exists");
  Reply bad_json = Call("POST", "/api/v1/apps", "{\"app_id\": ", owner_token_);
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_EQ(bad_json.error(), "bad_request");
  Reply long_id = Admin("POST", "/api/v1/apps", {{"app_id", std::string(129, 'a')}});
  EXPECT_EQ(long_id.status, 400);
  Reply bad_chars = Admin("POST", "/api/v1/apps", {{"app_id", "com/example"}});
  EXPECT_EQ(bad_chars.status, 400);
  Reply bad_key = Admin("POST", "/api/v1/apps", {{"app_id", "x.y"}, {"app_key", "not a pem"}});
  EXPECT_EQ(bad_key.status, 400);
  EXPECT_EQ(store_->ListApps()->size(), 1u);

  Reply got = Admin("GET", std::string("/api/v1/apps/") + kApp);
  ASSERT_EQ(got.status, 200) << got.body.dump();
  EXPECT_EQ(got.body["root_version"], 1);
  EXPECT_EQ(got.body["content_key"], content_key_pem_);
  EXPECT_TRUE(got.body["app_key"].is_null());
  EXPECT_EQ(Admin("GET", "/api/v1/apps/no.such.app").status, 404);
}

TEST_F(ServerApiTest, EnrollmentTokenRotationRetiresTheOldToken) {
  CreateApp();
  const std::string old_token = enrollment_token_;
  auto device_key = NewKey(crypto::KeyType::kX25519);
  ASSERT_EQ(Enroll("dev-1", device_key).status, 201);

  const std::string path = std::string("/api/v1/apps/") + kApp + "/enrollment-token";
  EXPECT_EQ(Call("POST", path, "", reader_token_).status, 403);
  EXPECT_EQ(Call("POST", path, "").status, 401);
  EXPECT_EQ(Enroll("dev-2", NewKey(crypto::KeyType::kX25519), old_token).status, 201);  // unchanged

  Reply rotated = Admin("POST", path);
  ASSERT_EQ(rotated.status, 200) << rotated.raw;
  EXPECT_EQ(rotated.body["app_id"], kApp);
  const std::string new_token = rotated.body["enrollment_token"];
  EXPECT_EQ(new_token.rfind("enr_", 0), 0u);
  EXPECT_EQ(new_token.size(), 4u + 64u);
  EXPECT_NE(new_token, old_token);
  EXPECT_EQ(store_->GetApp(kApp)->enroll_token_sha256,
            HexEncode(crypto::Sha256(AsBytes(new_token))));

  Reply refused = Enroll("dev-3", NewKey(crypto::KeyType::kX25519), old_token);
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(refused.error(), "unauthorized");
  EXPECT_EQ(Enroll("dev-3", NewKey(crypto::KeyType::kX25519), new_token).status, 201);
  // Devices enrolled before stay enrolled (same key again: 200).
  EXPECT_EQ(Enroll("dev-1", device_key, new_token).status, 200);
  EXPECT_EQ(Check("dev-1", "0.9.0").status, 200);

  EXPECT_EQ(Admin("POST", "/api/v1/apps/no.such.app/enrollment-token").status, 404);
  EXPECT_EQ(Admin("POST", "/api/v1/apps/bad%20id/enrollment-token").status, 400);
}

TEST_F(ServerApiTest, ChannelsAreCreatedPatchedAndValidated) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  std::string base = std::string("/api/v1/apps/") + kApp + "/channels";
  Reply c = Admin("POST", base,
                  {{"name", "beta"},
                   {"allow_self_assign", true},
                   {"rollout_percent", 50},
                   {"min_native_version", "2.0.0"}});
  ASSERT_EQ(c.status, 201) << c.body.dump();
  EXPECT_EQ(c.body["rollout_percent"], 50);
  EXPECT_EQ(c.body["min_native_version"], "2.0.0");
  EXPECT_TRUE(c.body["current_version"].is_null());
  EXPECT_EQ(Admin("POST", base, {{"name", "beta"}}).status, 409);
  EXPECT_EQ(Admin("POST", base, {{"name", "x"}, {"rollout_percent", 101}}).status, 400);
  EXPECT_EQ(Admin("POST", base, {{"name", "x"}, {"min_native_version", "1.0"}}).status, 400);
  EXPECT_EQ(Admin("POST", base, {{"name", "x"}, {"ios", "yes"}}).status, 400);
  EXPECT_EQ(Admin("POST", "/api/v1/apps/no.such.app/channels", {{"name", "x"}}).status, 404);

  Reply patched = Admin("PATCH", base + "/beta", {{"ios", false}, {"paused", true}});
  ASSERT_EQ(patched.status, 200) << patched.body.dump();
  EXPECT_EQ(patched.body["ios"], false);
  EXPECT_EQ(patched.body["paused"], true);
  EXPECT_EQ(patched.body["rollout_percent"], 50);
  Reply bad_patch = Admin("PATCH", base + "/beta", {{"rollout_percent", -1}});
  EXPECT_EQ(bad_patch.status, 400);
  EXPECT_EQ(store_->GetChannel(kApp, "beta")->rollout_percent, 50);
  EXPECT_EQ(Admin("GET", base + "/nope").status, 404);
  Reply list = Admin("GET", base);
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.body["channels"].size(), 1u);
}

// --- blobs

TEST_F(ServerApiTest, BlobUploadIsContentAddressedAndChecksTheClaimedDigest) {
  std::string content = "some bundle bytes";
  std::string sha = HexEncode(crypto::Sha256(AsBytes(content)));
  Reply wrong = Upload(content, {{"X-Airlock-Sha256", std::string(64, 'f')}});
  EXPECT_EQ(wrong.status, 422);
  EXPECT_EQ(wrong.error(), "verification_failed");
  EXPECT_FALSE(fs::exists(data_ / "blobs" / sha.substr(0, 2) / sha));

  Reply first = Upload(content, {{"X-Airlock-Sha256", sha}});
  ASSERT_EQ(first.status, 201) << first.body.dump();
  EXPECT_EQ(first.body["sha256"], sha);
  EXPECT_EQ(first.body["length"], content.size());
  EXPECT_EQ(ReadTextFile(data_ / "blobs" / sha.substr(0, 2) / sha, 1024).value_or(""), content);
  Reply again = Upload(content);
  EXPECT_EQ(again.status, 200);

  Reply reader = Call("POST", "/api/v1/blobs", "", reader_token_, {},
                      UploadedFile{dir_->path() / "none", 0, std::string(64, '0')});
  EXPECT_EQ(reader.status, 403);
}

// --- releases

TEST_F(ServerApiTest, ReleaseWithBadVersionOrUnknownChannelIsRefused) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  ASSERT_NO_FATAL_FAILURE(CreateChannel("production", true));
  std::string path = std::string("/api/v1/apps/") + kApp + "/releases";
  Json body = PublishBody("1.0", Json::object());
  Reply bad = Admin("POST", path, body);
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.error(), "bad_request");
  body = PublishBody("1.0.0", Json::object(), "nope");
  EXPECT_EQ(Admin("POST", path, body).status, 404);
  body = PublishBody("1.0.0", Json::object());
  body["encryption"] = "rot13";
  EXPECT_EQ(Admin("POST", path, body).status, 400);
  Reply reader = Call("POST", path, PublishBody("1.0.0", Json::object()).dump(), reader_token_);
  EXPECT_EQ(reader.status, 403);
  EXPECT_TRUE(store_->ListReleases(kApp)->empty());
}

TEST_F(ServerApiTest, TargetsSignedByAWrongKeyChangeNothing) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  ASSERT_NO_FATAL_FAILURE(CreateChannel("production", true));
  metadata::Targets t;
  t.version = 1;
  t.expires = now_ + 90 * kDay;
  ASSERT_NO_FATAL_FAILURE(AddRelease(&t, "1.0.0"));
  auto before = TufFiles();
  crypto::PrivateKey wrong = NewKey();
  Reply pub = Admin("POST", std::string("/api/v1/apps/") + kApp + "/releases",
                    PublishBody("1.0.0", SignTargets(t, wrong)));
  EXPECT_EQ(pub.status, 422) << pub.body.dump();
  EXPECT_EQ(pub.error(), "verification_failed");
  EXPECT_TRUE(store_->ListReleases(kApp)->empty());
  EXPECT_FALSE(store_->GetChannel(kApp, "production")->current_version.has_value());
  EXPECT_EQ(TufFiles(), before);

  // Listed without the app/version custom: also refused, nothing written.
  metadata::Targets plain = t;
  for (auto& [name, file] : plain.targets)
    file.custom = Json{{"app_id", kApp}, {"version", "9.9.9"}};
  Reply mislabeled = Admin("POST", std::string("/api/v1/apps/") + kApp + "/releases",
                           PublishBody("1.0.0", SignTargets(plain, targets_key_)));
  EXPECT_EQ(mislabeled.status, 422) << mislabeled.body.dump();
  EXPECT_EQ(TufFiles(), before);
  EXPECT_TRUE(store_->ListReleases(kApp)->empty());
}

TEST_F(ServerApiTest, PublishAndDeviceModeCheckWrapsTheContentKeyToTheDevice) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  Reply releases = Admin("GET", std::string("/api/v1/apps/") + kApp + "/releases");
  ASSERT_EQ(releases.status, 200);
  ASSERT_EQ(releases.body["releases"].size(), 1u);
  const Json& rel = releases.body["releases"][0];
  EXPECT_EQ(rel["version"], "1.0.0");
  EXPECT_EQ(rel["encryption"], "device");
  EXPECT_EQ(rel["format"], "alb");
  EXPECT_EQ(rel["capgo"]["sha256"], capgo_sha_["1.0.0"]);
  EXPECT_TRUE(fs::exists(data_ / "tuf" / kApp / "1.targets.json"));
  EXPECT_TRUE(fs::exists(data_ / "tuf" / kApp / "timestamp.json"));
  EXPECT_EQ(Admin("POST", std::string("/api/v1/apps/") + kApp + "/releases",
                  PublishBody("1.0.0", SignTargets(targets_v1_, targets_key_)))
                .status,
            409);

  // Enrollment.
  crypto::PrivateKey device_key = NewKey(crypto::KeyType::kX25519);
  Reply wrong_token = Enroll("dev-1", device_key, "enr_" + std::string(64, '0'));
  EXPECT_EQ(wrong_token.status, 401);
  EXPECT_EQ(wrong_token.error(), "unauthorized");
  Reply unenrolled = Check("dev-1", "0.9.0");
  EXPECT_EQ(unenrolled.status, 403);
  EXPECT_EQ(unenrolled.error(), "device_not_enrolled");
  Reply enrolled = Enroll("dev-1", device_key);
  ASSERT_EQ(enrolled.status, 201) << enrolled.body.dump();
  EXPECT_EQ(enrolled.body["enrolled"], true);
  EXPECT_EQ(Enroll("dev-1", device_key).status, 200);
  Reply other_key = Enroll("dev-1", NewKey(crypto::KeyType::kX25519));
  EXPECT_EQ(other_key.status, 409);
  EXPECT_EQ(other_key.error(), "conflict");
  Json bad_platform = {{"app_id", kApp},
                       {"device_id", "dev-2"},
                       {"public_key", std::string(64, 'a')},
                       {"platform", "Android!"},
                       {"enrollment_token", enrollment_token_}};
  EXPECT_EQ(Call("POST", "/v1/enroll", bad_platform.dump()).status, 400);

  // Check: an update with the content key wrapped to this device.
  Reply check = Check("dev-1", "0.9.0");
  ASSERT_EQ(check.status, 200) << check.body.dump();
  EXPECT_EQ(check.body["update"], true);
  EXPECT_EQ(check.body["version"], "1.0.0");
  EXPECT_EQ(check.body["channel"], "production");
  EXPECT_EQ(check.body["rollback"], false);
  std::string bundle = bundles_["1.0.0"];
  std::string sha = HexEncode(crypto::Sha256(AsBytes(bundle)));
  EXPECT_EQ(check.body["target"]["name"], BundleName("1.0.0"));
  EXPECT_EQ(check.body["target"]["sha256"], sha);
  EXPECT_EQ(check.body["target"]["length"], bundle.size());
  EXPECT_EQ(check.body["url"], std::string(kPublicUrl) + "/v1/blobs/" + sha);
  EXPECT_EQ(check.body["tuf_url"], std::string(kPublicUrl) + "/tuf/" + kApp + "/");
  EXPECT_EQ(check.body["encryption"], "device");
  auto wrapped = crypto::Base64Decode(check.body["wrapped_key"].get<std::string>());
  ASSERT_TRUE(wrapped);
  Bytes aad = bundle::ContentKeyAad(kApp, "1.0.0");
  auto device_content_key = crypto::UnwrapKey(device_key, *wrapped, aad);
  ASSERT_TRUE(device_content_key) << device_content_key.error().ToString();
  // The same content key the bundle wraps to our own test recipient.
  auto info = bundle::InspectBundle(dir_->path() / "bundle-1.0.0.alb", nullptr);
  ASSERT_TRUE(info);
  std::optional<Bytes> expected;
  for (const auto& r : info->header.recipients) {
    auto k = crypto::UnwrapKey(recipient_key_, r.wrapped_key, aad);
    if (k) expected = *k;
  }
  ASSERT_TRUE(expected.has_value());
  EXPECT_EQ(*device_content_key, *expected);

  Reply same = Check("dev-1", "1.0.0");
  EXPECT_EQ(same.body, (Json{{"update", false}, {"reason", "up_to_date"}}));
  Reply bad_version = Check("dev-1", "1.0");
  EXPECT_EQ(bad_version.status, 400);

  // The warm check path made no further channel loads than the first.
  uint64_t loads = cache_->channel_loads();
  ASSERT_EQ(Check("dev-1", "0.9.0").status, 200);
  EXPECT_EQ(cache_->channel_loads(), loads);

  // Admin listing of devices.
  Reply devices = Admin("GET", std::string("/api/v1/apps/") + kApp + "/devices?limit=10");
  ASSERT_EQ(devices.status, 200);
  ASSERT_EQ(devices.body["devices"].size(), 1u);
  EXPECT_EQ(devices.body["devices"][0]["device_id"], "dev-1");
  EXPECT_EQ(Admin("GET", std::string("/api/v1/apps/") + kApp + "/devices?limit=0").status, 400);
}

TEST_F(ServerApiTest, RolloutPausePlatformAndNativeFloorGateTheUpdate) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  std::string channel = std::string("/api/v1/apps/") + kApp + "/channels/production";

  Reply rollout = Admin("PUT", channel + "/rollout", {{"percent", 0}});
  ASSERT_EQ(rollout.status, 200) << rollout.body.dump();
  EXPECT_EQ(rollout.body["rollout_percent"], 0);
  EXPECT_EQ(Check("dev-1", "0.9.0").body["reason"], "not_in_rollout");
  EXPECT_EQ(Admin("PUT", channel + "/rollout", {{"percent", 101}}).status, 400);
  ASSERT_EQ(Admin("PUT", channel + "/rollout", {{"percent", 100}}).status, 200);

  Reply paused = Admin("POST", channel + "/pause");
  ASSERT_EQ(paused.status, 200);
  EXPECT_EQ(paused.body["paused"], true);
  EXPECT_EQ(Check("dev-1", "0.9.0").body["reason"], "paused");
  ASSERT_EQ(Admin("POST", channel + "/resume").status, 200);
  EXPECT_EQ(Check("dev-1", "0.9.0").body["update"], true);

  ASSERT_EQ(Admin("PATCH", channel, {{"android", false}}).status, 200);
  EXPECT_EQ(Check("dev-1", "0.9.0").body["reason"], "platform_disabled");
  EXPECT_EQ(Check("dev-1", "0.9.0", "ios").body["update"], true);
  ASSERT_EQ(Admin("PATCH", channel, {{"android", true}, {"min_native_version", "2.0.0"}}).status,
            200);
  EXPECT_EQ(Check("dev-1", "0.9.0").body["reason"], "native_too_old");
}

TEST_F(ServerApiTest, RollbackNeedsASignedRollbackTarget) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease(/*rollback_allowed=*/true));
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  std::string channel = std::string("/api/v1/apps/") + kApp + "/channels/production";

  // 1.1.0 in targets v2, which still lists 1.0.0 as a rollback target.
  metadata::Targets t2 = targets_v1_;
  t2.version = 2;
  ASSERT_NO_FATAL_FAILURE(AddRelease(&t2, "1.1.0"));
  Reply pub = Admin("POST", std::string("/api/v1/apps/") + kApp + "/releases",
                    PublishBody("1.1.0", SignTargets(t2, targets_key_)));
  ASSERT_EQ(pub.status, 201) << pub.body.dump();
  EXPECT_EQ(Check("dev-1", "1.1.0").body["reason"], "up_to_date");

  EXPECT_EQ(Admin("POST", channel + "/rollback", {{"to", "0.5.0"}}).status, 404);
  EXPECT_EQ(Admin("POST", channel + "/rollback", {{"to", "1.0"}}).status, 400);
  Reply rolled = Admin("POST", channel + "/rollback", {{"to", "1.0.0"}});
  ASSERT_EQ(rolled.status, 200) << rolled.body.dump();
  EXPECT_EQ(rolled.body["current_version"], "1.0.0");
  Reply check = Check("dev-1", "1.1.0");
  ASSERT_EQ(check.status, 200);
  EXPECT_EQ(check.body["update"], true);
  EXPECT_EQ(check.body["version"], "1.0.0");
  EXPECT_EQ(check.body["rollback"], true);

  // 1.1.0 is not a rollback target: refused, the channel stays.
  Reply refused = Admin("POST", channel + "/rollback", {{"to", "1.1.0"}});
  EXPECT_EQ(refused.status, 422) << refused.body.dump();
  EXPECT_EQ(refused.error(), "verification_failed");
  EXPECT_EQ(store_->GetChannel(kApp, "production")->current_version, "1.0.0");
}

// Issue 10 item 2: a token holder can only withhold releases, never re-route or downgrade them.
TEST_F(ServerApiTest, PublishObeysTheSignedChannelsAndFloor) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_NO_FATAL_FAILURE(CreateChannel("beta", false));
  const std::string releases = std::string("/api/v1/apps/") + kApp + "/releases";
  auto targets_version = [&] {
    return Admin("GET", std::string("/api/v1/apps/") + kApp).body["targets_version"];
  };
  const Json listed = targets_version();

  // Signed for beta only; a token holder asks for production: 422, nothing changed.
  metadata::Targets t2 = targets_v1_;
  t2.version = 2;
  ASSERT_NO_FATAL_FAILURE(AddRelease(&t2, "1.1.0", false, Json::array({"beta"})));
  Reply rerouted = Admin("POST", releases, PublishBody("1.1.0", SignTargets(t2, targets_key_)));
  EXPECT_EQ(rerouted.status, 422) << rerouted.body.dump();
  EXPECT_EQ(rerouted.error(), "verification_failed");
  EXPECT_NE(rerouted.body["message"].get<std::string>().find("is not signed for channel production"),
            std::string::npos)
      << rerouted.body.dump();
  EXPECT_EQ(store_->GetChannel(kApp, "production")->current_version, "1.0.0");
  EXPECT_EQ(store_->GetRelease(kApp, "1.1.0").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(targets_version(), listed);
  // The same metadata to the channel it names is accepted.
  Reply beta = Admin("POST", releases, PublishBody("1.1.0", SignTargets(t2, targets_key_), "beta"));
  ASSERT_EQ(beta.status, 201) << beta.body.dump();

  // A floor of 2 signed in 1.2.0; then 1.3.0 signed with floor 0: refused.
  metadata::Targets t3 = t2;
  t3.version = 3;
  ASSERT_NO_FATAL_FAILURE(AddRelease(&t3, "1.2.0", false, Json::array({"production"}), 2));
  ASSERT_EQ(Admin("POST", releases, PublishBody("1.2.0", SignTargets(t3, targets_key_))).status, 201);
  metadata::Targets t4 = t3;
  t4.version = 4;
  ASSERT_NO_FATAL_FAILURE(AddRelease(&t4, "1.3.0"));
  Reply low = Admin("POST", releases, PublishBody("1.3.0", SignTargets(t4, targets_key_)));
  EXPECT_EQ(low.status, 422) << low.body.dump();
  EXPECT_NE(low.body["message"].get<std::string>().find("below the highest signed (2)"),
            std::string::npos)
      << low.body.dump();
  EXPECT_EQ(store_->GetChannel(kApp, "production")->current_version, "1.2.0");
  EXPECT_EQ(store_->GetRelease(kApp, "1.3.0").error().code(), ErrorCode::kNotFound);
}

TEST_F(ServerApiTest, RollbackObeysTheSignedChannelsAndTakesASignedPermissionInOneStep) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_NO_FATAL_FAILURE(CreateChannel("beta", false));
  const std::string app = std::string("/api/v1/apps/") + kApp;
  metadata::Targets t2 = targets_v1_;
  t2.version = 2;
  ASSERT_NO_FATAL_FAILURE(AddRelease(&t2, "1.1.0"));
  ASSERT_EQ(Admin("POST", app + "/releases", PublishBody("1.1.0", SignTargets(t2, targets_key_))).status,
            201);

  // 1.0.0 is not signed as a rollback target: refused.
  Reply plain = Admin("POST", app + "/channels/production/rollback", {{"to", "1.0.0"}});
  EXPECT_EQ(plain.status, 422) << plain.body.dump();

  // The developer signs it as a rollback target, for production only.
  metadata::Targets t3 = t2;
  t3.version = 3;
  for (auto& [name, file] : t3.targets) {
    if ((*file.custom)["version"] == "1.0.0") (*file.custom)["rollback_allowed"] = true;
  }
  const Json signed3 = SignTargets(t3, targets_key_);
  // Beta is not among its channels: refused, and the signed metadata is not taken either.
  Reply beta = Admin("POST", app + "/channels/beta/rollback",
                     {{"to", "1.0.0"}, {"targets_metadata", signed3}});
  EXPECT_EQ(beta.status, 422) << beta.body.dump();
  EXPECT_NE(beta.body["message"].get<std::string>().find("is not signed for channel beta"),
            std::string::npos)
      << beta.body.dump();
  Reply info = Admin("GET", app);
  EXPECT_EQ(info.body["targets_version"], 2);
  // Production, with the permission: one step, targets v3 served, channel rolled back.
  Reply rolled = Admin("POST", app + "/channels/production/rollback",
                       {{"to", "1.0.0"}, {"targets_metadata", signed3}});
  ASSERT_EQ(rolled.status, 200) << rolled.body.dump();
  EXPECT_EQ(rolled.body["current_version"], "1.0.0");
  EXPECT_EQ(Admin("GET", app).body["targets_version"], 3);
  // Metadata signed by another key is refused (422) and changes nothing.
  metadata::Targets t4 = t3;
  t4.version = 4;
  const crypto::PrivateKey wrong = NewKey(crypto::KeyType::kEd25519);
  Reply forged = Admin("POST", app + "/channels/production/rollback",
                       {{"to", "1.0.0"}, {"targets_metadata", SignTargets(t4, wrong)}});
  EXPECT_EQ(forged.status, 422) << forged.body.dump();
  EXPECT_EQ(Admin("GET", app).body["targets_version"], 3);
}

// A database holder (no API, no key) points a channel at a release its signed rules do not allow: the
// server withholds it instead of serving it.
TEST_F(ServerApiTest, ChannelRowsWrittenBehindTheApiCannotRerouteOrDowngrade) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_NO_FATAL_FAILURE(CreateChannel("beta", false));
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  metadata::Targets t2 = targets_v1_;
  t2.version = 2;
  ASSERT_NO_FATAL_FAILURE(AddRelease(&t2, "1.1.0"));
  ASSERT_EQ(Admin("POST", std::string("/api/v1/apps/") + kApp + "/releases",
                  PublishBody("1.1.0", SignTargets(t2, targets_key_)))
                .status,
            201);
  // Downgrade: production "rolled back" to 1.0.0, which is not a signed rollback target.
  ASSERT_TRUE(store_->SetChannelCurrentVersion(kApp, "production", "1.0.0", true));
  cache_->Invalidate(kApp);
  Reply down = Check("dev-1", "1.1.0");
  ASSERT_EQ(down.status, 200);
  EXPECT_EQ(down.body["update"], false);
  EXPECT_EQ(down.body["reason"], "no_release");
  // Re-route: beta pointed at 1.1.0, which is signed for production only.
  ASSERT_TRUE(store_->SetChannelCurrentVersion(kApp, "beta", "1.1.0", false));
  cache_->Invalidate(kApp);
  auto snapshot = cache_->Channels(kApp);
  ASSERT_TRUE(snapshot) << snapshot.error().ToString();
  for (const storage::ChannelRelease& row : (*snapshot)->channels) {
    EXPECT_FALSE(row.release.has_value()) << row.channel.name << " serves " << row.release->version;
  }
  // Downgrade without the rolled_back flag: 1.2.0 raises the floor to 1; a row pointing production
  // back at 1.1.0 (floor 0), flag off, is withheld too.
  metadata::Targets t3 = t2;
  t3.version = 3;
  ASSERT_NO_FATAL_FAILURE(AddRelease(&t3, "1.2.0", false, Json::array({"production"}), 1));
  ASSERT_EQ(Admin("POST", std::string("/api/v1/apps/") + kApp + "/releases",
                  PublishBody("1.2.0", SignTargets(t3, targets_key_)))
                .status,
            201);
  ASSERT_TRUE(store_->SetChannelCurrentVersion(kApp, "production", "1.1.0", false));
  cache_->Invalidate(kApp);
  Reply below = Check("dev-1", "1.0.0");
  EXPECT_EQ(below.body["update"], false) << below.body.dump();
  EXPECT_EQ(below.body["reason"], "no_release");
  // The Capgo blob of another release swapped into 1.2.0's row: withheld as well.
  {
    auto row = store_->GetRelease(kApp, "1.2.0");
    ASSERT_TRUE(row);
    storage::ChannelRelease swapped{*store_->GetChannel(kApp, "production"), *row};
    swapped.release->capgo_sha256 = capgo_sha_["1.1.0"];
    auto targets = repo_->CurrentTargets(kApp);
    ASSERT_TRUE(targets);
    EXPECT_FALSE(ChannelReleaseAllowed(*targets, swapped));
    swapped.release->capgo_sha256 = capgo_sha_["1.2.0"];
    swapped.channel.rolled_back = false;
    EXPECT_TRUE(ChannelReleaseAllowed(*targets, swapped));
  }
  // What the rules allow is still served.
  ASSERT_TRUE(store_->SetChannelCurrentVersion(kApp, "production", "1.2.0", false));
  cache_->Invalidate(kApp);
  Reply fine = Check("dev-1", "1.0.0");
  EXPECT_EQ(fine.body["update"], true);
  EXPECT_EQ(fine.body["version"], "1.2.0");
}

TEST_F(ServerApiTest, ReportsAreValidatedAndIdempotent) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  Json body = {{"app_id", kApp},
               {"device_id", "dev-1"},
               {"events",
                {{{"seq", 1}, {"version", "1.0.0"}, {"kind", "downloaded"}, {"occurred_at", kNow}},
                 {{"seq", 2},
                  {"version", "1.0.0"},
                  {"kind", "failed"},
                  {"reason_code", "E_DISK_FULL"},
                  {"detail", "no space"},
                  {"occurred_at", kNow}}}}};
  Reply first = Call("POST", "/v1/report", body.dump());
  ASSERT_EQ(first.status, 200) << first.body.dump();
  EXPECT_EQ(first.body["stored"], 2);
  Reply again = Call("POST", "/v1/report", body.dump());
  EXPECT_EQ(again.body["stored"], 0);

  Json bad_kind = body;
  bad_kind["events"][0]["kind"] = "exploded";
  bad_kind["events"][0]["seq"] = 3;
  EXPECT_EQ(Call("POST", "/v1/report", bad_kind.dump()).status, 400);
  Json empty = body;
  empty["events"] = Json::array();
  EXPECT_EQ(Call("POST", "/v1/report", empty.dump()).status, 400);
  Json stranger = body;
  stranger["device_id"] = "dev-9";
  EXPECT_EQ(Call("POST", "/v1/report", stranger.dump()).status, 403);
  EXPECT_EQ(store_->ListDeviceEvents(kApp, "dev-1")->size(), 2u);

  Reply events = Admin("GET", std::string("/api/v1/apps/") + kApp + "/devices/dev-1/events");
  ASSERT_EQ(events.status, 200);
  ASSERT_EQ(events.body["events"].size(), 2u);
  EXPECT_EQ(events.body["events"][1]["reason_code"], "E_DISK_FULL");
}

TEST_F(ServerApiTest, ChecksRecordLastSeenAtMostOncePerInterval) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  EXPECT_EQ(store_->GetDevice(kApp, "dev-1")->last_seen, kNow);
  now_ = kNow + 59;
  Reply first = Check("dev-1", "1.0.0");
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(store_->GetDevice(kApp, "dev-1")->last_seen, kNow);
  now_ = kNow + 60;
  ASSERT_EQ(Check("dev-1", "1.0.0").status, 200);
  EXPECT_EQ(store_->GetDevice(kApp, "dev-1")->last_seen, kNow + 60);
  now_ = kNow + 100;
  ASSERT_EQ(Check("dev-1", "1.0.0").status, 200);
  EXPECT_EQ(store_->GetDevice(kApp, "dev-1")->last_seen, kNow + 60);
}

TEST_F(ServerApiTest, RepeatedDeviceModeChecksGiveTheSameWrappedKey) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  ASSERT_EQ(Enroll("dev-2", NewKey(crypto::KeyType::kX25519)).status, 201);
  Reply a = Check("dev-1", "0.9.0");
  Reply b = Check("dev-1", "0.9.0");
  Reply c = Check("dev-2", "0.9.0");
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(a.body["wrapped_key"], b.body["wrapped_key"]);
  EXPECT_NE(a.body["wrapped_key"], c.body["wrapped_key"]);
}

TEST_F(ServerApiTest, OversizedJsonBodiesAre413) {
  std::string big = "{\"app_id\": \"" + std::string(1 << 20, 'a') + "\"}";
  Reply admin = Call("POST", "/api/v1/apps", big, owner_token_);
  EXPECT_EQ(admin.status, 413);
  EXPECT_EQ(admin.error(), "body_too_large");
  Reply device = Call("POST", "/v1/check", big);
  EXPECT_EQ(device.status, 413);
  Reply deep = Call("POST", "/v1/check", std::string(40, '[') + std::string(40, ']'));
  EXPECT_EQ(deep.status, 400);
}

TEST_F(ServerApiTest, CapgoUpdatesOffersTheCapgoBlob) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  Json request = {{"platform", "android"},
                  {"device_id", "7239a82f-4ea8-4e33-9085-f4ad974d3fc4"},
                  {"app_id", kApp},
                  {"version_build", "0.9.0"},
                  {"version_name", "builtin"},
                  {"plugin_version", "8.51.23"},
                  {"is_emulator", false},
                  {"is_prod", true}};
  Reply reply = Call("POST", "/updates", request.dump());
  ASSERT_EQ(reply.status, 200) << reply.body.dump();
  EXPECT_EQ(reply.body["version"], "1.0.0") << reply.body.dump();
  EXPECT_EQ(reply.body["url"], std::string(kPublicUrl) + "/v1/blobs/" + capgo_sha_["1.0.0"]);
  EXPECT_EQ(reply.body["session_key"], "iv:key");
  EXPECT_EQ(reply.body["checksum"], "abc123");
}

// The /v1/check and /updates replies are built by hand; they must be the bytes the nlohmann::json
// dump they replaced gave for the same values (std::map key order for /v1/check, insertion order
// for /updates).
TEST_F(ServerApiTest, HandBuiltRepliesMatchTheNlohmannDump) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  Reply check = Check("dev-1", "0.9.0");
  ASSERT_EQ(check.status, 200) << check.raw;
  std::string bundle = bundles_["1.0.0"];
  std::string sha = HexEncode(crypto::Sha256(AsBytes(bundle)));
  Json expected = {
      {"update", true},
      {"version", "1.0.0"},
      {"channel", "production"},
      {"rollback", false},
      {"target", {{"name", BundleName("1.0.0")}, {"length", bundle.size()}, {"sha256", sha}}},
      {"url", std::string(kPublicUrl) + "/v1/blobs/" + sha},
      {"tuf_url", std::string(kPublicUrl) + "/tuf/" + kApp + "/"},
      {"encryption", "device"},
      {"wrapped_key", check.body["wrapped_key"]}};
  EXPECT_EQ(check.raw, expected.dump());
  EXPECT_EQ(check.raw, check.body.dump());

  Reply same = Check("dev-1", "1.0.0");
  EXPECT_EQ(same.raw, R"({"reason":"up_to_date","update":false})");

  Json request = {{"platform", "android"},
                  {"device_id", "not-enrolled-1"},
                  {"app_id", kApp},
                  {"version_build", "0.9.0"},
                  {"version_name", "0.9.0"},
                  {"plugin_version", "6.0.0"}};
  Reply updates = Call("POST", "/updates", request.dump());
  ASSERT_EQ(updates.status, 200) << updates.raw;
  nlohmann::ordered_json capgo;
  capgo["version"] = "1.0.0";
  capgo["url"] = std::string(kPublicUrl) + "/v1/blobs/" + capgo_sha_["1.0.0"];
  capgo["session_key"] = "iv:key";
  capgo["checksum"] = "abc123";
  EXPECT_EQ(updates.raw, capgo.dump());
}

// Capgo traffic from devices not enrolled here reads no device row (the app snapshot holds the
// overrides); /v1/check of such a device is served from the negative device cache after one read;
// enrolling through this process makes the device visible at once.
TEST_F(ServerApiTest, UnknownDevicesAreServedFromTheCacheUntilTheyEnroll) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  Json request = {{"platform", "android"},     {"device_id", "dev-9"},
                  {"app_id", kApp},            {"version_build", "0.9.0"},
                  {"version_name", "0.9.0"},   {"plugin_version", "6.0.0"}};
  ASSERT_EQ(Call("POST", "/updates", request.dump()).status, 200);
  uint64_t loads = cache_->device_loads();
  Reply again = Call("POST", "/updates", request.dump());
  ASSERT_EQ(again.status, 200);
  EXPECT_EQ(again.body["version"], "1.0.0");
  EXPECT_EQ(cache_->device_loads(), loads);  // warm: no database read
  EXPECT_EQ(Check("dev-9", "0.9.0").status, 403);
  EXPECT_EQ(cache_->device_loads(), loads + 1);  // /v1/check needs the row: one read...
  EXPECT_EQ(Check("dev-9", "0.9.0").status, 403);
  EXPECT_EQ(cache_->device_loads(), loads + 1);  // ...then the cached "unknown"

  ASSERT_EQ(Enroll("dev-9", NewKey(crypto::KeyType::kX25519)).status, 201);
  Reply check = Check("dev-9", "0.9.0");
  ASSERT_EQ(check.status, 200) << check.raw;
  EXPECT_EQ(check.body["update"], true);
}

TEST_F(ServerApiTest, TokensAreCreatedWithoutEscalationAndTheAuditLogIsReadable) {
  Reply created = Admin("POST", "/api/v1/tokens", {{"name", "ci"}, {"roles", {"release-manager"}}});
  ASSERT_EQ(created.status, 201) << created.body.dump();
  std::string ci = created.body["token"];
  EXPECT_EQ(ci.substr(0, 4), "alk_");
  EXPECT_EQ(Admin("POST", "/api/v1/tokens", {{"name", "ci"}, {"roles", {"read-only"}}}).status,
            409);
  EXPECT_EQ(Admin("POST", "/api/v1/tokens", {{"name", "x"}, {"roles", {"wizard"}}}).status, 400);
  // The release manager may publish, but not mint tokens.
  Reply minted =
      Call("POST", "/api/v1/tokens", Json{{"name", "y"}, {"roles", {"owner"}}}.dump(), ci);
  EXPECT_EQ(minted.status, 403);
  Reply app = Call("POST", "/api/v1/apps", Json{{"app_id", kApp}}.dump(), ci);
  EXPECT_EQ(app.status, 201) << app.body.dump();

  Reply tokens = Admin("GET", "/api/v1/tokens");
  ASSERT_EQ(tokens.status, 200);
  EXPECT_EQ(tokens.body["principals"].size(), 3u);

  Reply audit = Admin("GET", "/api/v1/audit?limit=2");
  ASSERT_EQ(audit.status, 200) << audit.body.dump();
  ASSERT_EQ(audit.body["records"].size(), 2u);
  EXPECT_LT(audit.body["records"][0]["seq"], audit.body["records"][1]["seq"]);
  EXPECT_EQ(Call("GET", "/api/v1/audit", "", reader_token_).status, 403);
}

TEST_F(ServerApiTest, AdminSetsAndClearsADeviceChannelOverride) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  const std::string apps = std::string("/api/v1/apps/") + kApp;
  ASSERT_EQ(Admin("POST", apps + "/channels", {{"name", "beta"}}).status, 201);
  EXPECT_EQ(Check("dev-1", "0.9.0").body["update"], true);  // default channel: production

  Reply set = Admin("PUT", apps + "/devices/dev-1/channel", {{"channel", "beta"}});
  ASSERT_EQ(set.status, 200) << set.body.dump();
  EXPECT_EQ(set.body["channel_override"], "beta");
  // Seen at once by the check path (the device's cache entry is invalidated): beta has no release.
  EXPECT_EQ(Check("dev-1", "0.9.0").body["reason"], "no_release");

  Reply unknown_channel = Admin("PUT", apps + "/devices/dev-1/channel", {{"channel", "nightly"}});
  EXPECT_EQ(unknown_channel.status, 404);
  Reply unknown_device = Admin("PUT", apps + "/devices/dev-2/channel", {{"channel", "beta"}});
  EXPECT_EQ(unknown_device.status, 404);
  EXPECT_EQ(Admin("PUT", apps + "/devices/dev-1/channel", {{"channel", 5}}).status, 400);
  EXPECT_EQ(Admin("PUT", apps + "/devices/dev-1/channel", Json::object()).status, 400);
  EXPECT_EQ(Check("dev-1", "0.9.0").body["reason"], "no_release");  // refusals changed nothing

  Reply cleared = Admin("PUT", apps + "/devices/dev-1/channel", {{"channel", nullptr}});
  ASSERT_EQ(cleared.status, 200) << cleared.body.dump();
  EXPECT_TRUE(cleared.body["channel_override"].is_null());
  EXPECT_EQ(Check("dev-1", "0.9.0").body["update"], true);
}

// --- Capgo /updates reads device channel overrides from the cached app snapshot

// A Capgo /updates request for `device`, running 0.9.0.
std::string UpdatesBody(const std::string& device) {
  return Json{{"platform", "android"},     {"device_id", device},
              {"app_id", kApp},            {"version_build", "0.9.0"},
              {"version_name", "0.9.0"},   {"plugin_version", "6.0.0"}}
      .dump();
}

TEST_F(ServerApiTest, WarmCapgoUpdatesOfNewDevicesReadNoDeviceRowAndNoChannels) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_NO_FATAL_FAILURE(CreateChannel("beta", false));
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  const std::string apps = std::string("/api/v1/apps/") + kApp;
  ASSERT_EQ(Admin("PUT", apps + "/devices/dev-1/channel", {{"channel", "beta"}}).status, 200);
  ASSERT_EQ(Call("POST", "/updates", UpdatesBody("dev-0")).status, 200);  // loads the snapshot
  const uint64_t device_loads = cache_->device_loads();
  const uint64_t channel_loads = cache_->channel_loads();
  for (int i = 1; i <= 50; ++i) {
    Reply reply = Call("POST", "/updates", UpdatesBody("new-" + std::to_string(i)));
    ASSERT_EQ(reply.status, 200);
    ASSERT_EQ(reply.body["version"], "1.0.0") << reply.raw;
  }
  // The enrolled device with an override gets its channel (beta: no release yet), still from the
  // snapshot.
  Reply overridden = Call("POST", "/updates", UpdatesBody("dev-1"));
  ASSERT_EQ(overridden.status, 200);
  EXPECT_EQ(overridden.body["error"], "no_bundle") << overridden.raw;
  EXPECT_EQ(cache_->device_loads(), device_loads);
  EXPECT_EQ(cache_->channel_loads(), channel_loads);
}

TEST_F(ServerApiTest, OverridesSetThroughThisProcessAreSeenByTheNextCapgoUpdates) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  const std::string apps = std::string("/api/v1/apps/") + kApp;
  ASSERT_EQ(Admin("POST", apps + "/channels", {{"name", "beta"}, {"allow_self_assign", true}}).status,
            201);
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  EXPECT_EQ(Call("POST", "/updates", UpdatesBody("dev-1")).body["version"], "1.0.0");

  // Capgo channel_self: the device assigns itself to beta; no clock moves.
  Json self = Json::parse(UpdatesBody("dev-1"));
  self["channel"] = "beta";
  Reply assigned = Call("POST", "/channel_self", self.dump());
  ASSERT_EQ(assigned.status, 200) << assigned.raw;
  EXPECT_EQ(Call("POST", "/updates", UpdatesBody("dev-1")).body["error"], "no_bundle");
  EXPECT_EQ(Call("POST", "/updates", UpdatesBody("dev-2")).body["version"], "1.0.0");

  // The admin API clears it: back on the default channel at once.
  ASSERT_EQ(Admin("PUT", apps + "/devices/dev-1/channel", {{"channel", nullptr}}).status, 200);
  EXPECT_EQ(Call("POST", "/updates", UpdatesBody("dev-1")).body["version"], "1.0.0");
  // And sets it again.
  ASSERT_EQ(Admin("PUT", apps + "/devices/dev-1/channel", {{"channel", "beta"}}).status, 200);
  EXPECT_EQ(Call("POST", "/updates", UpdatesBody("dev-1")).body["error"], "no_bundle");
  // Capgo DELETE /channel_self removes the assignment.
  Reply removed = Call("DELETE", "/channel_self", UpdatesBody("dev-1"));
  ASSERT_EQ(removed.status, 200) << removed.raw;
  EXPECT_EQ(Call("POST", "/updates", UpdatesBody("dev-1")).body["version"], "1.0.0");
}

}  // namespace
}  // namespace airlock::server
