#include "server/app_repo.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit_log.h"
#include "bundle/bundle.h"
#include "client/fetcher.h"
#include "client/updater.h"
#include "common/file.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/wrap.h"
#include "keys/file_vault.h"
#include "metadata/metadata.h"
#include "server/release_policy.h"

namespace airlock::server {
namespace {

namespace fs = std::filesystem;
using metadata::Root;
using metadata::Targets;

constexpr std::string_view kPassphrase = "correct horse battery staple";
constexpr int64_t kNow = 1'800'000'000;  // 2027-01-15
constexpr int64_t kDay = 86400;
constexpr std::string_view kApp = "com.example.app";

crypto::PrivateKey NewKey(crypto::KeyType type = crypto::KeyType::kEd25519) {
  auto key = crypto::PrivateKey::Generate(type);
  EXPECT_TRUE(key.has_value());
  return std::move(*key);
}

template <typename T>
std::string SignToString(const T& data, const std::vector<const crypto::PrivateKey*>& keys) {
  auto md = metadata::SignMetadata(data, keys);
  EXPECT_TRUE(md.has_value()) << md.error().ToString();
  auto text = md->ToBytes();
  EXPECT_TRUE(text.has_value());
  return text ? *text : std::string();
}

// Every file under `dir` (relative path -> bytes), to assert that a refused upload changed nothing.
std::map<std::string, std::string> Snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  if (!fs::exists(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    auto text = ReadTextFile(e.path(), 1 << 24);
    out[fs::relative(e.path(), dir).string()] = text ? *text : "<unreadable>";
  }
  return out;
}

// Serves DATA/tuf/<app>/ under "tuf/" and blobs under "targets/" by the digest in their
// consistent-snapshot name ("targets/<dirs>/<sha256>.<basename>" -> DATA/blobs/<sha[0:2]>/<sha>),
// as the server does for devices.
class RepoFetcher final : public client::Fetcher {
 public:
  RepoFetcher(fs::path tuf_dir, fs::path blob_dir)
      : tuf_dir_(std::move(tuf_dir)), blob_dir_(std::move(blob_dir)) {}
  Result<Bytes> Fetch(const std::string& url, uint64_t max_length) override {
    fs::path path;
    if (url.starts_with("tuf/")) {
      path = tuf_dir_ / url.substr(4);
    } else if (url.starts_with("targets/")) {
      const std::string base = fs::path(url).filename().string();
      const std::string sha = base.substr(0, base.find('.'));
      if (sha.size() != 64) return MakeError(ErrorCode::kNotFound, url);
      path = blob_dir_ / sha.substr(0, 2) / sha;
    } else {
      return MakeError(ErrorCode::kNotFound, url);
    }
    return ReadFile(path, max_length);
  }

 private:
  fs::path tuf_dir_;
  fs::path blob_dir_;
};

class AppRepoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ScopedTempDir::Create({}, "app-repo-");
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
    data_ = dir_->path() / "data";
    fs::create_directories(data_ / "blobs");
    vault_ = dir_->path() / "server.vault";
    store_options_.kdf = keys::KdfParams::ForTests();
    store_options_.secret = [] { return Result<std::string>(std::string(kPassphrase)); };
    store_options_.now = [this] { return now_; };
    auto store = keys::OpenFileVault(vault_, store_options_, /*create=*/true);
    ASSERT_TRUE(store) << store.error().ToString();
    repo_ = MakeRepo(std::move(*store));
    root_key_ = NewKey();
    targets_key_ = NewKey();
  }

  std::unique_ptr<AppRepo> MakeRepo(std::unique_ptr<keys::KeyStore> store) {
    AppRepoOptions options;
    options.data_dir = data_;
    options.now = [this] { return now_; };
    return std::make_unique<AppRepo>(std::move(store), options);
  }
  // A second handle on the same vault (another airlockd process, or a test's look inside).
  std::unique_ptr<keys::KeyStore> OpenVault() {
    auto store = keys::OpenFileVault(vault_, store_options_, /*create=*/false);
    EXPECT_TRUE(store) << store.error().ToString();
    return store ? std::move(*store) : nullptr;
  }

  fs::path AppDir() const { return data_ / "tuf" / kApp; }

  void CreateApp() {
    auto keys = repo_->CreateApp(kApp);
    ASSERT_TRUE(keys) << keys.error().ToString();
    online_ = *keys;
  }

  // Root `version` listing root_key_ (root), targets_key_ (targets) and the online keys.
  Root MakeRoot(uint64_t version) {
    Root root;
    root.version = version;
    root.expires = now_ + 365 * kDay;
    root.consistent_snapshot = true;
    EXPECT_TRUE(root.AddKey("root", root_key_.Public()).has_value());
    EXPECT_TRUE(root.AddKey("targets", targets_key_.Public()).has_value());
    auto snap = metadata::Key::FromJson(online_.snapshot_key);
    auto ts = metadata::Key::FromJson(online_.timestamp_key);
    EXPECT_TRUE(snap && snap->usable() && ts && ts->usable());
    EXPECT_TRUE(root.AddKey("snapshot", *snap->public_key).has_value());
    EXPECT_TRUE(root.AddKey("timestamp", *ts->public_key).has_value());
    return root;
  }

  void AcceptRootV1() {
    root_v1_ = SignToString(MakeRoot(1), {&root_key_});
    auto v = repo_->AcceptRoot(kApp, root_v1_);
    ASSERT_TRUE(v) << v.error().ToString();
    ASSERT_EQ(*v, 1u);
  }

  // Stores `content` as a blob; returns its sha256.
  std::string PutBlob(std::string_view content) {
    const std::string sha = HexEncode(crypto::Sha256(AsBytes(content)));
    fs::create_directories(data_ / "blobs" / sha.substr(0, 2));
    EXPECT_TRUE(WriteFileAtomic(data_ / "blobs" / sha.substr(0, 2) / sha, AsBytes(content)));
    return sha;
  }

  BlobLookup Blobs() {
    return [this](std::string_view sha) -> std::optional<uint64_t> {
      std::error_code ec;
      const fs::path p = data_ / "blobs" / std::string(sha.substr(0, 2)) / std::string(sha);
      uint64_t size = fs::file_size(p, ec);
      if (ec) return std::nullopt;
      return size;
    };
  }

  Targets MakeTargets(uint64_t version) {
    Targets t;
    t.version = version;
    t.expires = now_ + 90 * kDay;
    return t;
  }
  void AddTarget(Targets* t, const std::string& name, std::string_view content,
                 nlohmann::json custom = nlohmann::json::object()) {
    metadata::TargetFile file = metadata::TargetFile::FromData(AsBytes(content));
    file.custom = std::move(custom);
    t->targets[name] = file;
  }

  Result<PublishedMetadata> Upload(const Targets& t) {
    return repo_->AcceptTargets(kApp, SignToString(t, {&targets_key_}), Blobs());
  }

  // Runs our client (the device's TUF workflow) over the served files from the trusted root v1.
  Result<Bytes> ClientFetch(const std::string& target) {
    auto md = ScopedTempDir::Create({}, "app-repo-client-");
    if (!md) return tl::unexpected(md.error());
    AIRLOCK_TRY(client::InitMetadataDir(md->path(), AsBytes(root_v1_)));
    RepoFetcher fetcher(AppDir(), data_ / "blobs");
    client::UpdaterOptions options;
    options.metadata_dir = md->path();
    options.metadata_base_url = "tuf/";
    options.target_base_url = "targets/";
    options.fetcher = &fetcher;
    options.clock = [this] { return static_cast<std::time_t>(now_); };
    AIRLOCK_ASSIGN_OR_RETURN(client::Updater updater, client::Updater::Create(options));
    AIRLOCK_TRY(updater.Refresh());
    if (target.empty()) return Bytes();
    AIRLOCK_ASSIGN_OR_RETURN(metadata::TargetFile info, updater.GetTargetInfo(target));
    return updater.FetchTarget(target, info);
  }

  uint64_t FileVersion(const std::string& name) {
    auto text = ReadTextFile(AppDir() / name, 1 << 24);
    EXPECT_TRUE(text) << name;
    if (!text) return 0;
    auto env = metadata::Envelope::Parse(*text, 1 << 24);
    EXPECT_TRUE(env);
    return env ? env->signed_json.at("version").get<uint64_t>() : 0;
  }

  std::optional<ScopedTempDir> dir_;
  fs::path data_;
  fs::path vault_;
  keys::KeyStoreOptions store_options_;
  int64_t now_ = kNow;
  std::unique_ptr<AppRepo> repo_;
  OnlineKeys online_;
  crypto::PrivateKey root_key_ = NewKey();
  crypto::PrivateKey targets_key_ = NewKey();
  std::string root_v1_;
};

// --- apps and online keys

TEST_F(AppRepoTest, CreateAppMakesOnlineKeysAndDirectoryAndRefusesASecondTime) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  EXPECT_TRUE(fs::is_directory(AppDir()));
  auto snap = metadata::Key::FromJson(online_.snapshot_key);
  ASSERT_TRUE(snap && snap->usable());
  EXPECT_EQ(snap->public_key->KeyId(), online_.snapshot_keyid);
  EXPECT_EQ(snap->keytype, "ed25519");
  auto ts = metadata::Key::FromJson(online_.timestamp_key);
  ASSERT_TRUE(ts && ts->usable());
  EXPECT_EQ(ts->public_key->KeyId(), online_.timestamp_keyid);
  EXPECT_NE(online_.snapshot_keyid, online_.timestamp_keyid);
  auto content = crypto::PublicKey::FromPem(online_.content_key_pem);
  ASSERT_TRUE(content);
  EXPECT_EQ(content->type(), crypto::KeyType::kX25519);

  auto again = repo_->CreateApp(kApp);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);

  auto got = repo_->GetOnlineKeys(kApp);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->snapshot_keyid, online_.snapshot_keyid);
  EXPECT_EQ(got->content_key_pem, online_.content_key_pem);

  auto vault = OpenVault();
  ASSERT_TRUE(vault);
  auto info = vault->Get(std::string(kApp) + ".timestamp");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->purpose, keys::KeyPurpose::kTimestamp);
  info = vault->Get(std::string(kApp) + ".content");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->purpose, keys::KeyPurpose::kContentWrap);
}

TEST_F(AppRepoTest, UnknownAppAndBadAppIds) {
  auto keys = repo_->GetOnlineKeys("nope");
  ASSERT_FALSE(keys);
  EXPECT_EQ(keys.error().code(), ErrorCode::kNotFound);
  for (std::string_view bad : {"", ".hidden", "..", "a/b", "sp ace"}) {
    auto r = repo_->CreateApp(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  auto r = repo_->AcceptRoot("nope", SignToString(MakeRoot(1), {&root_key_}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
}

TEST_F(AppRepoTest, LongAppIdGetsDigestKeyNames) {
  const std::string app(120, 'a');
  auto keys = repo_->CreateApp(app);
  ASSERT_TRUE(keys) << keys.error().ToString();
  EXPECT_TRUE(fs::is_directory(data_ / "tuf" / app));
  auto again = repo_->CreateApp(app);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
  auto got = repo_->GetOnlineKeys(app);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->timestamp_keyid, keys->timestamp_keyid);
}

// --- root

TEST_F(AppRepoTest, AcceptsRootV1AndServesItByteExact) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  ASSERT_NO_FATAL_FAILURE(AcceptRootV1());
  EXPECT_EQ(*ReadTextFile(AppDir() / "1.root.json", 1 << 20), root_v1_);
  EXPECT_EQ(*ReadTextFile(AppDir() / "root.json", 1 << 20), root_v1_);
  EXPECT_FALSE(fs::exists(AppDir() / "timestamp.json"));
  auto status = repo_->Status(kApp);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->root_version, 1u);
  EXPECT_FALSE(status->targets_version.has_value());
  EXPECT_FALSE(status->timestamp_expires.has_value());
}

TEST_F(AppRepoTest, RootShortOfItsThresholdIsBadSignature) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  crypto::PrivateKey second = NewKey();
  Root root = MakeRoot(1);
  ASSERT_TRUE(root.AddKey("root", second.Public()));
  root.roles["root"].threshold = 2;
  const auto before = Snapshot(AppDir());
  auto r = repo_->AcceptRoot(kApp, SignToString(root, {&root_key_}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadSignature);
  EXPECT_EQ(Snapshot(AppDir()), before);
  // Signed by both it is accepted.
  r = repo_->AcceptRoot(kApp, SignToString(root, {&root_key_, &second}));
  ASSERT_TRUE(r) << r.error().ToString();
}

TEST_F(AppRepoTest, RootWhoseOnlineRolesAreNotTheServerKeysIsInvalidArgument) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  const auto before = Snapshot(AppDir());
  crypto::PrivateKey other = NewKey();
  {  // timestamp role is another key
    Root root = MakeRoot(1);
    ASSERT_TRUE(root.RevokeKey("timestamp", online_.timestamp_keyid));
    ASSERT_TRUE(root.AddKey("timestamp", other.Public()));
    auto r = repo_->AcceptRoot(kApp, SignToString(root, {&root_key_}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
  {  // the online key plus another
    Root root = MakeRoot(1);
    ASSERT_TRUE(root.AddKey("snapshot", other.Public()));
    auto r = repo_->AcceptRoot(kApp, SignToString(root, {&root_key_}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
  {  // the online key id, but another public key under it
    Root root = MakeRoot(1);
    root.keys[online_.timestamp_keyid] = metadata::Key::FromPublicKey(other.Public());
    auto r = repo_->AcceptRoot(kApp, SignToString(root, {&root_key_}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
  {  // consistent_snapshot false
    Root root = MakeRoot(1);
    root.consistent_snapshot = false;
    auto r = repo_->AcceptRoot(kApp, SignToString(root, {&root_key_}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(Snapshot(AppDir()), before);
}

TEST_F(AppRepoTest, RootOfTheWrongVersionIsRollback) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  auto r = repo_->AcceptRoot(kApp, SignToString(MakeRoot(2), {&root_key_}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kRollback);
  ASSERT_NO_FATAL_FAILURE(AcceptRootV1());
  const auto before = Snapshot(AppDir());
  for (uint64_t v : {1u, 3u}) {
    r = repo_->AcceptRoot(kApp, SignToString(MakeRoot(v), {&root_key_}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kRollback) << v;
  }
  EXPECT_EQ(Snapshot(AppDir()), before);
}

TEST_F(AppRepoTest, ExpiredRootIsExpiredAndMalformedIsMalformed) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  Root root = MakeRoot(1);
  root.expires = now_;
  auto r = repo_->AcceptRoot(kApp, SignToString(root, {&root_key_}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kExpired);
  r = repo_->AcceptRoot(kApp, "{\"signed\": 1.5}");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  EXPECT_FALSE(fs::exists(AppDir() / "1.root.json"));
}

TEST_F(AppRepoTest, RootRotationNeedsTheOldRootAndRepublishesSnapshotAndTimestamp) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  ASSERT_NO_FATAL_FAILURE(AcceptRootV1());
  const std::string sha = PutBlob("bundle v1");
  Targets t = MakeTargets(1);
  AddTarget(&t, "releases/1.0.0/bundle.alb", "bundle v1");
  ASSERT_TRUE(Upload(t));

  crypto::PrivateKey old_root = std::move(root_key_);
  root_key_ = NewKey();
  const std::string v2 = SignToString(MakeRoot(2), {&root_key_});
  auto r = repo_->AcceptRoot(kApp, v2);  // not signed by the trusted root
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadSignature);

  const std::string v2_both = SignToString(MakeRoot(2), {&root_key_, &old_root});
  r = repo_->AcceptRoot(kApp, v2_both);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(*r, 2u);
  EXPECT_EQ(*ReadTextFile(AppDir() / "2.root.json", 1 << 20), v2_both);
  EXPECT_EQ(*ReadTextFile(AppDir() / "root.json", 1 << 20), v2_both);
  EXPECT_EQ(FileVersion("timestamp.json"), 2u);
  EXPECT_TRUE(fs::exists(AppDir() / "2.snapshot.json"));
  auto status = repo_->Status(kApp);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->root_version, 2u);
  EXPECT_EQ(status->targets_version, 1u);
  EXPECT_EQ(status->snapshot_version, 2u);

  auto got = ClientFetch("releases/1.0.0/bundle.alb");
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(AsString(*got), "bundle v1");
}

// --- targets

TEST_F(AppRepoTest, AcceptedTargetsArePublishedAndVerifyWithOurClient) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  ASSERT_NO_FATAL_FAILURE(AcceptRootV1());
  // First (empty) targets, as `airlock app create` uploads them.
  auto p = Upload(MakeTargets(1));
  ASSERT_TRUE(p) << p.error().ToString();
  EXPECT_EQ(p->targets_version, 1u);
  EXPECT_EQ(p->snapshot_version, 1u);
  EXPECT_EQ(p->timestamp_version, 1u);
  ASSERT_TRUE(ClientFetch("")) << "empty repository must verify";

  PutBlob("the bundle bytes");
  Targets t = MakeTargets(2);
  AddTarget(&t, "releases/1.2.0/bundle.alb", "the bundle bytes",
            {{"app_id", kApp}, {"version", "1.2.0"}});
  const std::string bytes = SignToString(t, {&targets_key_});
  p = repo_->AcceptTargets(kApp, bytes, Blobs());
  ASSERT_TRUE(p) << p.error().ToString();
  EXPECT_EQ(p->targets_version, 2u);
  EXPECT_EQ(p->snapshot_version, 2u);
  EXPECT_EQ(p->timestamp_version, 2u);
  EXPECT_EQ(*ReadTextFile(AppDir() / "2.targets.json", 1 << 20), bytes);
  EXPECT_EQ(FileVersion("2.snapshot.json"), 2u);
  EXPECT_EQ(FileVersion("timestamp.json"), 2u);

  auto status = repo_->Status(kApp);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->targets_version, 2u);
  EXPECT_EQ(status->timestamp_version, 2u);
  EXPECT_EQ(status->timestamp_expires, metadata::FormatTufTime(now_ + kDay));

  auto got = ClientFetch("releases/1.2.0/bundle.alb");
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(AsString(*got), "the bundle bytes");

  auto current = repo_->CurrentTargets(kApp);
  ASSERT_TRUE(current);
  ASSERT_EQ(current->size(), 1u);
  EXPECT_EQ((*current)[0].name, "releases/1.2.0/bundle.alb");
  EXPECT_EQ((*current)[0].length, 16u);
  EXPECT_EQ((*current)[0].sha256, HexEncode(crypto::Sha256(AsBytes("the bundle bytes"))));
  EXPECT_EQ((*current)[0].custom.at("version"), "1.2.0");
}

TEST_F(AppRepoTest, TargetsBeforeRootIsInvalidArgumentAndNoneYetIsNotFound) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  auto p = Upload(MakeTargets(1));
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code(), ErrorCode::kInvalidArgument);
  ASSERT_NO_FATAL_FAILURE(AcceptRootV1());
  auto current = repo_->CurrentTargets(kApp);
  ASSERT_FALSE(current);
  EXPECT_EQ(current.error().code(), ErrorCode::kNotFound);
}

TEST_F(AppRepoTest, RefusedTargetsChangeNothing) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  ASSERT_NO_FATAL_FAILURE(AcceptRootV1());
  ASSERT_TRUE(Upload(MakeTargets(1)));
  PutBlob("held");
  const auto before = Snapshot(AppDir());
  auto expect_code = [&](const Result<PublishedMetadata>& r, ErrorCode code, const char* what) {
    ASSERT_FALSE(r) << what;
    EXPECT_EQ(r.error().code(), code) << what << ": " << r.error().ToString();
    EXPECT_EQ(Snapshot(AppDir()), before) << what;
  };
  {
    crypto::PrivateKey wrong = NewKey();
    Targets t = MakeTargets(2);
    expect_code(repo_->AcceptTargets(kApp, SignToString(t, {&wrong}), Blobs()),
                ErrorCode::kBadSignature, "wrong key");
  }
  {
    Targets t = MakeTargets(2);
    AddTarget(&t, "missing.alb", "never uploaded");
    expect_code(Upload(t), ErrorCode::kNotFound, "missing blob");
  }
  {
    Targets t = MakeTargets(2);
    AddTarget(&t, "held.alb", "held");
    t.targets["held.alb"].length = 5;
    expect_code(Upload(t), ErrorCode::kHashMismatch, "length differs");
  }
  {
    Targets t = MakeTargets(2);
    AddTarget(&t, "held.alb", "held");
    t.targets["held.alb"].hashes = {{"sha512", HexEncode(crypto::Sha512(AsBytes("held")))}};
    expect_code(Upload(t), ErrorCode::kHashMismatch, "no sha256");
  }
  expect_code(Upload(MakeTargets(1)), ErrorCode::kRollback, "same version");
  expect_code(Upload(MakeTargets(3)), ErrorCode::kRollback, "skipped version");
  {
    Targets t = MakeTargets(2);
    t.expires = now_ - 1;
    expect_code(Upload(t), ErrorCode::kExpired, "expired");
  }
  {
    Targets t = MakeTargets(2);
    t.delegations.emplace();
    metadata::DelegatedRole role;
    role.name = "releases";
    role.keyids = {targets_key_.KeyId()};
    role.paths = std::vector<std::string>{"releases/*"};
    t.delegations->keys[targets_key_.KeyId()] = metadata::Key::FromPublicKey(targets_key_.Public());
    t.delegations->roles.push_back(role);
    expect_code(Upload(t), ErrorCode::kUnsupported, "delegations");
  }
  expect_code(repo_->AcceptTargets(kApp, "not json", Blobs()), ErrorCode::kMalformed, "garbage");
  expect_code(repo_->AcceptTargets(kApp, std::string(metadata::kMaxTargetsSize + 1, ' '), Blobs()),
              ErrorCode::kLimitExceeded, "oversize");
}

TEST_F(AppRepoTest, VerifyTargetsChecksLikeAcceptButWritesNothing) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  ASSERT_NO_FATAL_FAILURE(AcceptRootV1());
  PutBlob("a");
  Targets t = MakeTargets(1);
  AddTarget(&t, "a.alb", "a", {{"version", "1.0.0"}});
  const auto before = Snapshot(AppDir());
  auto listed = repo_->VerifyTargets(kApp, SignToString(t, {&targets_key_}), Blobs());
  ASSERT_TRUE(listed) << listed.error().ToString();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].name, "a.alb");
  EXPECT_EQ((*listed)[0].custom, nlohmann::json({{"version", "1.0.0"}}));
  EXPECT_EQ(Snapshot(AppDir()), before);
  t.version = 2;
  auto bad = repo_->VerifyTargets(kApp, SignToString(t, {&targets_key_}), Blobs());
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kRollback);
}

TEST_F(AppRepoTest, TwoServersSharingDataAgreeOnVersions) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  ASSERT_NO_FATAL_FAILURE(AcceptRootV1());
  std::unique_ptr<AppRepo> other = MakeRepo(OpenVault());
  ASSERT_TRUE(Upload(MakeTargets(1)));
  auto p = other->AcceptTargets(kApp, SignToString(MakeTargets(2), {&targets_key_}), Blobs());
  ASSERT_TRUE(p) << p.error().ToString();
  EXPECT_EQ(p->snapshot_version, 2u);
  EXPECT_EQ(p->timestamp_version, 2u);
  auto again = Upload(MakeTargets(2));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kRollback);
  ASSERT_TRUE(ClientFetch(""));
}

TEST_F(AppRepoTest, ConcurrentUploadsOfOneVersionPublishOnce) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  ASSERT_NO_FATAL_FAILURE(AcceptRootV1());
  std::unique_ptr<AppRepo> other = MakeRepo(OpenVault());
  const std::string bytes = SignToString(MakeTargets(1), {&targets_key_});
  const BlobLookup blobs = Blobs();
  std::vector<Result<PublishedMetadata>> results(4, MakeError(ErrorCode::kInternal, "not run"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    AppRepo* repo = i % 2 == 0 ? repo_.get() : other.get();
    threads.emplace_back([&, i, repo] { results[i] = repo->AcceptTargets(kApp, bytes, blobs); });
  }
  for (std::thread& t : threads) t.join();
  size_t ok = 0;
  for (const auto& r : results) {
    if (r) {
      ++ok;
      EXPECT_EQ(r->timestamp_version, 1u);
    } else {
      EXPECT_EQ(r.error().code(), ErrorCode::kRollback) << r.error().ToString();
    }
  }
  EXPECT_EQ(ok, 1u);
  EXPECT_EQ(FileVersion("timestamp.json"), 1u);
  EXPECT_FALSE(fs::exists(AppDir() / "2.snapshot.json"));
}

// --- timestamp refresh

TEST_F(AppRepoTest, RefreshTimestampsResignsOnlyWhenDue) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  ASSERT_NO_FATAL_FAILURE(AcceptRootV1());
  PutBlob("x");
  Targets t = MakeTargets(1);
  AddTarget(&t, "x.alb", "x");
  ASSERT_TRUE(Upload(t));
  // An app with keys but no published timestamp is skipped.
  ASSERT_TRUE(repo_->CreateApp("other.app"));

  auto r = repo_->RefreshTimestamps();
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r->empty());
  now_ += kDay / 2 - 10;  // still more than half of a day left
  r = repo_->RefreshTimestamps();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(FileVersion("timestamp.json"), 1u);

  now_ += 20;  // less than half left
  r = repo_->RefreshTimestamps();
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(*r, std::vector<std::string>{std::string(kApp)});
  EXPECT_EQ(FileVersion("timestamp.json"), 2u);
  EXPECT_FALSE(fs::exists(AppDir() / "2.snapshot.json"));  // same snapshot
  auto status = repo_->Status(kApp);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->snapshot_version, 1u);
  EXPECT_EQ(status->timestamp_expires, metadata::FormatTufTime(now_ + kDay));
  r = repo_->RefreshTimestamps();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->empty());

  // Long after the timestamp expired, the client fails until the refresh runs.
  now_ += 2 * kDay;
  auto stale = ClientFetch("x.alb");
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code(), ErrorCode::kExpired);
  r = repo_->RefreshTimestamps();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->size(), 1u);
  auto got = ClientFetch("x.alb");
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ(AsString(*got), "x");
  status = repo_->Status(kApp);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->snapshot_version, 1u);

  // After most of the snapshot's week the snapshot is re-signed too.
  now_ += 2 * kDay;
  r = repo_->RefreshTimestamps();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->size(), 1u);
  status = repo_->Status(kApp);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->snapshot_version, 2u);
  EXPECT_EQ(status->targets_version, 1u);
  got = ClientFetch("x.alb");
  ASSERT_TRUE(got) << got.error().ToString();
}

TEST_F(AppRepoTest, RefreshGoesOnPastAnAppWhoseKeyIsUnusable) {
  // Two apps with published timestamps; "a.app"'s timestamp key gets suspended.
  std::string roots[2];
  const std::string apps[2] = {"a.app", "b.app"};
  for (int i = 0; i < 2; ++i) {
    auto keys = repo_->CreateApp(apps[i]);
    ASSERT_TRUE(keys) << keys.error().ToString();
    online_ = *keys;
    roots[i] = SignToString(MakeRoot(1), {&root_key_});
    ASSERT_TRUE(repo_->AcceptRoot(apps[i], roots[i]));
    ASSERT_TRUE(
        repo_->AcceptTargets(apps[i], SignToString(MakeTargets(1), {&targets_key_}), Blobs()));
  }
  auto vault = OpenVault();
  ASSERT_TRUE(vault);
  ASSERT_TRUE(vault->SetState("a.app.timestamp", keys::KeyState::kSuspended));
  const auto before_a = Snapshot(data_ / "tuf" / "a.app");
  now_ += kDay;
  auto r = repo_->RefreshTimestamps();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kKeyUnusable) << r.error().ToString();
  EXPECT_EQ(Snapshot(data_ / "tuf" / "a.app"), before_a);
  auto status = repo_->Status("b.app");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->timestamp_version, 2u);
  // Uploads for the app with the suspended key fail the same way and write nothing.
  auto p = repo_->AcceptTargets("a.app", SignToString(MakeTargets(2), {&targets_key_}), Blobs());
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code(), ErrorCode::kKeyUnusable);
  EXPECT_EQ(Snapshot(data_ / "tuf" / "a.app"), before_a);
}

// --- rollback

TEST_F(AppRepoTest, RollbackTargetsFollowTheCurrentSignedRules) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  ASSERT_NO_FATAL_FAILURE(AcceptRootV1());
  for (const char* c : {"1", "2", "3", "4", "5"}) PutBlob(c);
  const nlohmann::json prod = {"production"};
  auto custom = [&](const char* version, nlohmann::json more) {
    nlohmann::json c = {{"app_id", kApp}, {"version", version}, {"channels", prod}};
    c.update(more);
    return c;
  };
  Targets t = MakeTargets(1);
  AddTarget(&t, "r/1.0.0.alb", "1", custom("1.0.0", {{"rollback_allowed", true}}));
  AddTarget(&t, "r/1.1.0.alb", "2", custom("1.1.0", nlohmann::json::object()));
  AddTarget(&t, "r/1.2.0.alb", "3",
            custom("1.2.0", {{"rollback_allowed", true}, {"security_floor", 2}}));
  AddTarget(&t, "r/1.3.0.alb", "4",
            custom("1.3.0", {{"rollback_allowed", false}, {"security_floor", 2}}));
  AddTarget(&t, "r/1.4.0.alb", "5",
            custom("1.4.0", {{"rollback_allowed", true}, {"security_floor", 2},
                             {"channels", {"beta"}}}));
  ASSERT_TRUE(Upload(t));

  auto ok = FindRollbackTarget(*repo_->CurrentTargets(kApp), kApp, "1.2.0", "production");
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(ok->name, "r/1.2.0.alb");

  auto r = FindRollbackTarget(*repo_->CurrentTargets(kApp), kApp, "9.9.9", "production");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  r = FindRollbackTarget(*repo_->CurrentTargets(kApp), kApp, "1.1.0", "production");  // rollback_allowed missing
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  r = FindRollbackTarget(*repo_->CurrentTargets(kApp), kApp, "1.3.0", "production");  // rollback_allowed false
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  r = FindRollbackTarget(*repo_->CurrentTargets(kApp), kApp, "1.0.0", "production");  // floor 0 < 2
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("security_floor"), std::string::npos);
  r = FindRollbackTarget(*repo_->CurrentTargets(kApp), kApp, "1.4.0", "production");  // signed for beta only
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("not signed for channel production"), std::string::npos);
  EXPECT_TRUE(FindRollbackTarget(*repo_->CurrentTargets(kApp), kApp, "1.4.0", "beta"));

  // Without any floor, an allowed target is allowed.
  Targets t2 = MakeTargets(2);
  AddTarget(&t2, "r/1.0.0.alb", "1", custom("1.0.0", {{"rollback_allowed", true}}));
  ASSERT_TRUE(Upload(t2));
  ok = FindRollbackTarget(*repo_->CurrentTargets(kApp), kApp, "1.0.0", "production");
  ASSERT_TRUE(ok) << ok.error().ToString();
  // A malformed rule anywhere refuses (fail closed).
  Targets t3 = MakeTargets(3);
  AddTarget(&t3, "r/1.0.0.alb", "1", custom("1.0.0", {{"rollback_allowed", "yes"}}));
  ASSERT_TRUE(Upload(t3));
  r = FindRollbackTarget(*repo_->CurrentTargets(kApp), kApp, "1.0.0", "production");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
}

// --- device mode

TEST_F(AppRepoTest, WrapForDeviceRewrapsTheBundleContentKey) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  auto content = crypto::PublicKey::FromPem(online_.content_key_pem);
  ASSERT_TRUE(content);
  const fs::path input = dir_->path() / "app";
  fs::create_directories(input);
  ASSERT_TRUE(WriteFileAtomic(input / "index.html", AsBytes("<h1>hello</h1>")));
  crypto::PrivateKey release_key = NewKey();
  crypto::PrivateKey app_key = NewKey(crypto::KeyType::kX25519);
  bundle::SealOptions seal;
  seal.app_id = std::string(kApp);
  seal.version = "1.2.0";
  const fs::path alb = dir_->path() / "bundle.alb";
  auto header = bundle::SealBundle(input, seal, release_key, {*content, app_key.Public()}, alb);
  ASSERT_TRUE(header) << header.error().ToString();

  crypto::PrivateKey device = NewKey(crypto::KeyType::kX25519);
  auto wrapped = repo_->WrapForDevice(kApp, alb, device.Public());
  ASSERT_TRUE(wrapped) << wrapped.error().ToString();
  const Bytes aad = bundle::ContentKeyAad(kApp, "1.2.0");
  auto key = crypto::UnwrapKey(device, *wrapped, aad);
  ASSERT_TRUE(key) << key.error().ToString();
  // The same content key the app key (another recipient) unwraps.
  auto rec = std::find_if(header->recipients.begin(), header->recipients.end(),
                          [&](const bundle::Recipient& r) { return r.key_id == app_key.KeyId(); });
  ASSERT_NE(rec, header->recipients.end());
  auto expected = crypto::UnwrapKey(app_key, rec->wrapped_key, aad);
  ASSERT_TRUE(expected);
  EXPECT_EQ(*key, *expected);
  // And it opens the bundle as a device would.
  const fs::path out = dir_->path() / "opened";
  auto opened = bundle::OpenBundleWithContentKey(alb, release_key.Public(), *key, out);
  ASSERT_TRUE(opened) << opened.error().ToString();
  EXPECT_EQ(*ReadTextFile(out / "index.html", 1024), "<h1>hello</h1>");
  // Another device cannot unwrap it.
  crypto::PrivateKey other = NewKey(crypto::KeyType::kX25519);
  auto refused = crypto::UnwrapKey(other, *wrapped, aad);
  ASSERT_FALSE(refused);

  EXPECT_EQ(repo_->BundleHasRecipient(alb, *content), true);
  EXPECT_EQ(repo_->BundleHasRecipient(alb, app_key.Public()), true);
  EXPECT_EQ(repo_->BundleHasRecipient(alb, device.Public()), false);

  // Every unwrap is in the vault's usage log, by airlockd.
  auto log = audit::AuditLog::OpenExisting(audit::AuditPathForVault(vault_));
  ASSERT_TRUE(log) << log.error().ToString();
  audit::AuditFilter filter;
  filter.operation = "unwrap";
  auto records = log->Query(filter);
  ASSERT_TRUE(records);
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].actor, "airlockd");
  EXPECT_EQ((*records)[0].key_name, std::string(kApp) + ".content");
  EXPECT_EQ((*records)[0].result, audit::UsageResult::kOk);
}

TEST_F(AppRepoTest, WrapForDeviceRefusals) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  const fs::path input = dir_->path() / "app";
  fs::create_directories(input);
  ASSERT_TRUE(WriteFileAtomic(input / "a.txt", AsBytes("a")));
  crypto::PrivateKey release_key = NewKey();
  crypto::PrivateKey app_key = NewKey(crypto::KeyType::kX25519);
  bundle::SealOptions seal;
  seal.app_id = std::string(kApp);
  seal.version = "1.0.0";
  const fs::path alb = dir_->path() / "no-content.alb";
  ASSERT_TRUE(bundle::SealBundle(input, seal, release_key, {app_key.Public()}, alb));
  crypto::PrivateKey device = NewKey(crypto::KeyType::kX25519);

  auto r = repo_->WrapForDevice(kApp, alb, device.Public());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  r = repo_->WrapForDevice("other.app", alb, device.Public());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  r = repo_->WrapForDevice(kApp, alb, release_key.Public());  // not an X25519 device key
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);

  const fs::path junk = dir_->path() / "junk.alb";
  ASSERT_TRUE(WriteFileAtomic(junk, AsBytes("this is not a sealed bundle at all")));
  auto has = repo_->BundleHasRecipient(junk, app_key.Public());
  ASSERT_FALSE(has);
  EXPECT_EQ(has.error().code(), ErrorCode::kMalformed);
  has = repo_->BundleHasRecipient(dir_->path() / "absent.alb", app_key.Public());
  ASSERT_FALSE(has);
  EXPECT_EQ(has.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace airlock::server
