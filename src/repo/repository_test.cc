#include "repo/repository.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

#include "bundle/bundle.h"
#include "common/file.h"
#include "crypto/keys.h"
#include "metadata/metadata.h"

namespace airlock::repo {
namespace {

namespace fs = std::filesystem;
using metadata::Metadata;
using metadata::Root;
using metadata::Snapshot;
using metadata::Targets;
using metadata::Timestamp;

constexpr std::time_t kNow = 1'800'000'000;  // 2027-01-15

std::string ReadAll(const fs::path& p) {
  auto r = ReadTextFile(p, 64 << 20);
  return r ? *r : std::string("<missing " + p.string() + ">");
}

void WriteText(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// Every file under `dir` with its contents, to assert that a failed operation changed nothing.
std::map<std::string, std::string> Snapshot_(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().filename() != "lock") {
      out[fs::relative(e.path(), dir).string()] = ReadAll(e.path());
    }
  }
  return out;
}

template <typename T>
Metadata<T> Load(const fs::path& path) {
  auto md = metadata::ParseMetadata<T>(ReadAll(path));
  EXPECT_TRUE(md) << path << ": " << (md ? "" : md.error().message());
  return md ? std::move(*md) : Metadata<T>();
}

class RepoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = ScopedTempDir::Create({}, "repo-test-");
    ASSERT_TRUE(t);
    tmp_.emplace(std::move(*t));
    dir_ = tmp_->path() / "repo";
    // Generated keys go to the per-user key directory: never the real user's.
    key_dir_ = tmp_->path() / "user-keys";
    if (const char* old = std::getenv("AIRLOCK_KEY_DIR")) saved_key_dir_ = old;
    ::setenv("AIRLOCK_KEY_DIR", key_dir_.c_str(), 1);
  }

  void TearDown() override {
    if (saved_key_dir_) {
      ::setenv("AIRLOCK_KEY_DIR", saved_key_dir_->c_str(), 1);
    } else {
      ::unsetenv("AIRLOCK_KEY_DIR");
    }
  }

  fs::path Key(const std::string& name, crypto::KeyType type = crypto::KeyType::kEd25519) {
    fs::path base = tmp_->path() / "keys" / name;
    fs::create_directories(base.parent_path());
    auto key = crypto::PrivateKey::Generate(type);
    EXPECT_TRUE(key);
    EXPECT_TRUE(crypto::WriteKeyPair(*key, base));
    return base.string() + ".key";
  }

  fs::path File(const std::string& name, const std::string& text) {
    fs::path p = tmp_->path() / "files" / name;
    WriteText(p, text);
    return p;
  }

  void InitDefault() {
    InitOptions o;
    o.app_id = "com.example.app";
    o.now = kNow;
    auto r = Repository::Init(dir_, o);
    ASSERT_TRUE(r) << r.error().message();
  }

  Repository Open() {
    auto r = Repository::Open(dir_);
    EXPECT_TRUE(r) << r.error().message();
    return std::move(*r);
  }

  fs::path Md(const std::string& name) const { return dir_ / "metadata" / name; }

  // The published top-level roles verify under the published root, as a client would check them.
  void ExpectPublishedVerifies() {
    Metadata<Root> root = Load<Root>(Md("root.json"));
    EXPECT_TRUE(root.signed_data.VerifyDelegate("root", root));
    Metadata<Timestamp> ts = Load<Timestamp>(Md("timestamp.json"));
    EXPECT_TRUE(root.signed_data.VerifyDelegate("timestamp", ts));
    std::string snap_name = std::to_string(ts.signed_data.snapshot_meta.version) + ".snapshot.json";
    std::string snap_bytes = ReadAll(Md(snap_name));
    EXPECT_TRUE(ts.signed_data.snapshot_meta.Verify(AsBytes(snap_bytes)));
    Metadata<Snapshot> snap = Load<Snapshot>(Md(snap_name));
    EXPECT_TRUE(root.signed_data.VerifyDelegate("snapshot", snap));
    uint64_t tv = snap.signed_data.meta.at("targets.json").version;
    Metadata<Targets> targets = Load<Targets>(Md(std::to_string(tv) + ".targets.json"));
    EXPECT_TRUE(root.signed_data.VerifyDelegate("targets", targets));
    for (const auto& [name, file] : targets.signed_data.targets) {
      fs::path p =
          dir_ / "targets" / metadata::ConsistentTargetPath(name, file.hashes.at("sha256"));
      EXPECT_TRUE(file.VerifyFile(p)) << name;
    }
    if (targets.signed_data.delegations) {
      for (const auto& role : targets.signed_data.delegations->roles) {
        uint64_t v = snap.signed_data.meta.at(role.name + ".json").version;
        auto delegated = Load<Targets>(Md(std::to_string(v) + "." + role.name + ".json"));
        EXPECT_TRUE(targets.signed_data.VerifyDelegate(role.name, delegated)) << role.name;
      }
    }
  }

  std::optional<ScopedTempDir> tmp_;
  fs::path dir_;
  fs::path key_dir_;
  std::optional<std::string> saved_key_dir_;
};

// --- durations and names
// ---------------------------------------------------------------------------

TEST(ValidateTargetName, AcceptsPlainAndNestedNames) {
  EXPECT_TRUE(ValidateTargetName("app.alb"));
  EXPECT_TRUE(ValidateTargetName("releases/1.2.3/app bundle.alb"));
}

TEST(ValidateTargetName, RejectsUnsafeNames) {
  for (const char* bad :
       {"", "/abs", "a//b", "a/", "../x", "a/../b", "./a", ".hidden", "a\\b", "a\nb"}) {
    auto r = ValidateTargetName(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(ValidateTargetName(std::string(kMaxBasenameLength + 1, 'a')));
  EXPECT_FALSE(ValidateTargetName(std::string(kMaxTargetNameLength + 1, 'a')));
}

TEST(ValidateRoleName, RejectsTopLevelAndOddNames) {
  EXPECT_TRUE(ValidateRoleName("releases-2"));
  for (const char* bad : {"", "root", "targets", "snapshot", "timestamp", ".x", "a/b", "a b"}) {
    auto r = ValidateRoleName(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
}

// --- init
// ------------------------------------------------------------------------------------------

TEST_F(RepoTest, InitWritesVersionOneOfEveryRoleAndGeneratesKeys) {
  InitOptions o;
  o.app_id = "com.example.app";
  o.now = kNow;
  auto r = Repository::Init(dir_, o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->generated_keys.size(), 4u);
  for (const fs::path& k : r->generated_keys) {
    struct stat st {};
    ASSERT_EQ(::stat(k.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << k;
    EXPECT_EQ(k.parent_path(), fs::absolute(key_dir_));
  }
  for (const char* f :
       {"1.root.json", "root.json", "timestamp.json", "1.snapshot.json", "1.targets.json"}) {
    EXPECT_TRUE(fs::exists(Md(f))) << f;
  }
  EXPECT_EQ(ReadAll(Md("1.root.json")), ReadAll(Md("root.json")));
  Metadata<Root> root = Load<Root>(Md("root.json"));
  EXPECT_TRUE(root.signed_data.consistent_snapshot);
  EXPECT_EQ(root.signed_data.expires, kNow + kDefaultRootExpiry);
  EXPECT_EQ(Load<Timestamp>(Md("timestamp.json")).signed_data.expires,
            kNow + kDefaultTimestampExpiry);
  EXPECT_EQ(Load<Snapshot>(Md("1.snapshot.json")).signed_data.expires,
            kNow + kDefaultSnapshotExpiry);
  EXPECT_EQ(Load<Targets>(Md("1.targets.json")).signed_data.expires, kNow + kDefaultTargetsExpiry);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / ".airlock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ExpectPublishedVerifies();
}

TEST_F(RepoTest, InitUsesGivenKeysAndRootThreshold) {
  InitOptions o;
  o.app_id = "com.example.app";
  o.key_files["root"] = {Key("r1"), Key("r2", crypto::KeyType::kEcdsaP256)};
  o.key_files["targets"] = {Key("t")};
  o.root_threshold = 2;
  auto r = Repository::Init(dir_, o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->generated_keys.size(), 2u);  // snapshot and timestamp
  Metadata<Root> root = Load<Root>(Md("root.json"));
  EXPECT_EQ(root.signed_data.roles["root"].threshold, 2u);
  EXPECT_EQ(root.signed_data.roles["root"].keyids.size(), 2u);
  EXPECT_EQ(root.signatures.size(), 2u);
  ExpectPublishedVerifies();
}

TEST_F(RepoTest, InitGeneratesAThresholdOfRootKeys) {
  InitOptions o;
  o.app_id = "com.example.app";
  o.root_threshold = 3;
  ASSERT_TRUE(Repository::Init(dir_, o));
  EXPECT_TRUE(fs::exists(key_dir_ / "root-3.key"));
  EXPECT_EQ(Load<Root>(Md("root.json")).signatures.size(), 3u);
}

TEST_F(RepoTest, InitWritesNoPrivateKeyInsideTheRepository) {
  InitOptions o;
  o.app_id = "com.example.app";
  o.root_threshold = 2;
  o.now = kNow;
  auto r = Repository::Init(dir_, o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->key_dir, fs::absolute(key_dir_));
  // Nothing under DIR is or holds a private key.
  for (const auto& e : fs::recursive_directory_iterator(dir_)) {
    if (!e.is_regular_file()) continue;
    EXPECT_NE(e.path().extension(), ".key") << e.path();
    EXPECT_EQ(ReadAll(e.path()).find("PRIVATE KEY"), std::string::npos) << e.path();
  }
  EXPECT_TRUE(FindPrivateKeyFiles(dir_).empty());
  // The keys are in the key directory (0700), each 0600, and the state points at them.
  struct stat st {};
  ASSERT_EQ(::stat(key_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(r->generated_keys.size(), 5u);
  const std::string state = ReadAll(dir_ / ".airlock/repo.json");
  for (const char* name : {"root-1", "root-2", "targets", "snapshot", "timestamp"}) {
    fs::path key = key_dir_ / (std::string(name) + ".key");
    ASSERT_EQ(::stat(key.c_str(), &st), 0) << key;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << key;
    EXPECT_NE(ReadAll(key).find("PRIVATE KEY"), std::string::npos) << key;
    EXPECT_NE(state.find(fs::absolute(key).string()), std::string::npos) << key;
  }
  EXPECT_EQ(state.find("PRIVATE KEY"), std::string::npos);
  // The repository works with its keys outside: publish signs with them.
  Repository repo = Open();
  ASSERT_TRUE(repo.AddTarget(File("a.txt", "a"), {}));
  PublishOptions p;
  p.now = kNow;
  ASSERT_TRUE(repo.Publish(p));
  ExpectPublishedVerifies();
  auto v = VerifyRepository(dir_, kNow);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_TRUE(v->private_key_files.empty());
}

TEST_F(RepoTest, InitNeverOverwritesKeysInTheKeyDirectory) {
  InitDefault();
  const std::string first_root = ReadAll(key_dir_ / "root.key");
  InitOptions o;
  o.app_id = "com.example.app";
  o.now = kNow;
  auto second = Repository::Init(tmp_->path() / "repo2", o);
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(ReadAll(key_dir_ / "root.key"), first_root);
  for (const char* name : {"root.2.key", "targets.2.key", "snapshot.2.key", "timestamp.2.key"}) {
    EXPECT_TRUE(std::find(second->generated_keys.begin(), second->generated_keys.end(),
                          fs::absolute(key_dir_ / name)) != second->generated_keys.end())
        << name;
  }
  // Both repositories still publish with their own keys.
  PublishOptions p;
  p.now = kNow;
  ASSERT_TRUE(Open().Publish(p));
  auto repo2 = Repository::Open(tmp_->path() / "repo2");
  ASSERT_TRUE(repo2);
  ASSERT_TRUE(repo2->Publish(p));
}

TEST_F(RepoTest, InitRefusesAnUnsafeKeyDirectory) {
  InitOptions inside;
  inside.app_id = "com.example.app";
  inside.key_dir = dir_ / "keys";
  auto r = Repository::Init(dir_, inside);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << r.error().message();
  EXPECT_FALSE(fs::exists(dir_));

  // Through a symlink: the directory is still inside the repository.
  fs::create_directories(tmp_->path() / "link-target");
  fs::create_directory_symlink(tmp_->path(), tmp_->path() / "link-target" / "up");
  inside.key_dir = tmp_->path() / "link-target" / "up" / "repo" / ".airlock";
  r = Repository::Init(dir_, inside);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << r.error().message();
  EXPECT_FALSE(fs::exists(dir_));

  // A key directory other users can read.
  fs::create_directories(key_dir_);
  fs::permissions(key_dir_, fs::perms(0755));
  InitOptions o;
  o.app_id = "com.example.app";
  r = Repository::Init(dir_, o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << r.error().message();
  EXPECT_FALSE(fs::exists(dir_));
  EXPECT_TRUE(fs::is_empty(key_dir_));

  // With every key given, no key directory is needed at all.
  InitOptions given;
  given.app_id = "com.example.app";
  for (const char* role : {"root", "targets", "snapshot", "timestamp"}) {
    given.key_files[role] = {Key(role)};
  }
  given.key_dir = dir_ / "keys";  // ignored: nothing is generated
  r = Repository::Init(dir_, given);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_TRUE(r->generated_keys.empty());
  EXPECT_TRUE(r->key_dir.empty());
  EXPECT_FALSE(fs::exists(dir_ / "keys"));
}

TEST(DefaultKeyDir, PrefersAirlockKeyDirThenXdgConfigHomeThenHome) {
  std::map<std::string, std::optional<std::string>> saved;
  for (const char* name : {"AIRLOCK_KEY_DIR", "XDG_CONFIG_HOME", "HOME"}) {
    const char* v = std::getenv(name);
    saved[name] = v ? std::optional<std::string>(v) : std::nullopt;
  }
  ::setenv("AIRLOCK_KEY_DIR", "/k", 1);
  ::setenv("XDG_CONFIG_HOME", "/xdg", 1);
  ::setenv("HOME", "/home/u", 1);
  EXPECT_EQ(*DefaultKeyDir("com.example.app"), fs::path("/k"));
  ::unsetenv("AIRLOCK_KEY_DIR");
  EXPECT_EQ(*DefaultKeyDir("com.example.app"), fs::path("/xdg/airlock/keys/com.example.app"));
  ::setenv("XDG_CONFIG_HOME", "relative", 1);  // the XDG spec says to ignore it
  EXPECT_EQ(*DefaultKeyDir("com.example.app"),
            fs::path("/home/u/.config/airlock/keys/com.example.app"));
  ::unsetenv("XDG_CONFIG_HOME");
  EXPECT_EQ(*DefaultKeyDir("com.example.app"),
            fs::path("/home/u/.config/airlock/keys/com.example.app"));
  ::unsetenv("HOME");
  auto none = DefaultKeyDir("com.example.app");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), ErrorCode::kNotFound);
  for (const auto& [name, value] : saved) {
    if (value) {
      ::setenv(name.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
}

TEST_F(RepoTest, VerifyListsPrivateKeysFoundInsideTheRepository) {
  InitDefault();
  // An old-layout key in .airlock/keys, and a PEM private key under another name among the targets.
  fs::create_directories(dir_ / ".airlock/keys");
  fs::copy_file(key_dir_ / "root.key", dir_ / ".airlock/keys/root.key");
  fs::copy_file(key_dir_ / "timestamp.key", dir_ / "targets/stray.pem");
  fs::copy_file(key_dir_ / "timestamp.pub", dir_ / "targets/public.pem");  // public: fine
  auto v = VerifyRepository(dir_, kNow);
  ASSERT_TRUE(v) << v.error().message();
  std::vector<fs::path> expected = {dir_ / ".airlock/keys/root.key", dir_ / "targets/stray.pem"};
  EXPECT_EQ(v->private_key_files, expected);
  EXPECT_EQ(FindPrivateKeyFiles(dir_), expected);
}

TEST_F(RepoTest, InitRefusesAnExistingRepositoryOrNonEmptyDirectory) {
  InitDefault();
  auto before = Snapshot_(dir_);
  InitOptions o;
  o.app_id = "com.example.app";
  auto again = Repository::Init(dir_, o);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(Snapshot_(dir_), before);

  fs::path other = tmp_->path() / "other";
  WriteText(other / "file", "x");
  auto non_empty = Repository::Init(other, o);
  ASSERT_FALSE(non_empty);
  EXPECT_EQ(non_empty.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_TRUE(fs::exists(other / "file"));
}

TEST_F(RepoTest, InitBadInputFailsWithoutCreatingAnything) {
  struct Case {
    InitOptions options;
    ErrorCode code;
  };
  InitOptions bad_app;
  bad_app.app_id = "bad app/id";
  InitOptions high_threshold;
  high_threshold.app_id = "com.example.app";
  high_threshold.key_files["root"] = {Key("only")};
  high_threshold.root_threshold = 2;
  InitOptions x25519;
  x25519.app_id = "com.example.app";
  x25519.key_files["targets"] = {Key("x", crypto::KeyType::kX25519)};
  InitOptions missing;
  missing.app_id = "com.example.app";
  missing.key_files["snapshot"] = {tmp_->path() / "nope.key"};
  InitOptions duplicate;
  duplicate.app_id = "com.example.app";
  fs::path k = Key("dup");
  duplicate.key_files["root"] = {k, k};
  InitOptions zero;
  zero.app_id = "com.example.app";
  zero.root_threshold = 0;
  for (const Case& c :
       {Case{bad_app, ErrorCode::kInvalidArgument},
        Case{high_threshold, ErrorCode::kInvalidArgument},
        Case{x25519, ErrorCode::kInvalidArgument}, Case{missing, ErrorCode::kNotFound},
        Case{duplicate, ErrorCode::kInvalidArgument}, Case{zero, ErrorCode::kInvalidArgument}}) {
    auto r = Repository::Init(dir_, c.options);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), c.code) << r.error().message();
    EXPECT_FALSE(fs::exists(dir_));
  }
}

TEST_F(RepoTest, OpenWithoutRepositoryIsNotFound) {
  auto r = Repository::Open(tmp_->path());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
}

TEST_F(RepoTest, SecondOpenWhileLockedIsBusy) {
  InitDefault();
  Repository first = Open();
  auto second = Repository::Open(dir_);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), ErrorCode::kAlreadyExists);
}

TEST_F(RepoTest, MalformedStateIsMalformed) {
  InitDefault();
  WriteText(dir_ / ".airlock/repo.json", "{\"format\": ");
  auto r = Repository::Open(dir_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
}

// --- targets and publish
// ---------------------------------------------------------------------------

TEST_F(RepoTest, AddTargetAndPublishBumpVersionsAndListTheTarget) {
  InitDefault();
  Repository repo = Open();
  AddTargetOptions add;
  add.name = "dir/notes.txt";
  add.custom_json = R"({"channels":["beta"],"security_floor":3})";
  auto t = repo.AddTarget(File("notes.txt", "hello"), add);
  ASSERT_TRUE(t) << t.error().message();
  EXPECT_FALSE(t->replaced);
  EXPECT_EQ(t->file.length, 5u);
  EXPECT_TRUE(fs::exists(dir_ / "targets/dir" / (t->file.hashes["sha256"] + ".notes.txt")));
  // Staged, not yet published.
  EXPECT_FALSE(fs::exists(Md("2.targets.json")));

  PublishOptions p;
  p.now = kNow + 100;
  auto published = repo.Publish(p);
  ASSERT_TRUE(published) << published.error().message();
  EXPECT_EQ(published->versions["root"], 1u);
  EXPECT_EQ(published->versions["targets"], 2u);
  EXPECT_EQ(published->versions["snapshot"], 2u);
  EXPECT_EQ(published->versions["timestamp"], 2u);
  Metadata<Targets> targets = Load<Targets>(Md("2.targets.json"));
  ASSERT_EQ(targets.signed_data.targets.count("dir/notes.txt"), 1u);
  const auto& custom = *targets.signed_data.targets["dir/notes.txt"].custom;
  EXPECT_EQ(custom["channels"][0], "beta");
  EXPECT_EQ(custom["security_floor"], 3);
  EXPECT_EQ(targets.signed_data.expires, kNow + 100 + kDefaultTargetsExpiry);
  ExpectPublishedVerifies();

  ASSERT_TRUE(repo.Publish(p));
  EXPECT_EQ(Load<Timestamp>(Md("timestamp.json")).signed_data.version, 3u);
  EXPECT_TRUE(fs::exists(Md("3.targets.json")));
  EXPECT_TRUE(fs::exists(Md("2.targets.json")));  // older versions stay for clients mid-update
}

TEST_F(RepoTest, PublishExpiresInOverridesDurationsAndResignsRoot) {
  InitDefault();
  Repository repo = Open();
  PublishOptions p;
  p.now = kNow;
  p.expires_in = {{"timestamp", 2 * 3600}, {"targets", 30 * kDay}, {"root", 2 * 365 * kDay}};
  auto r = repo.Publish(p);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(Load<Timestamp>(Md("timestamp.json")).signed_data.expires, kNow + 2 * 3600);
  EXPECT_EQ(Load<Targets>(Md("2.targets.json")).signed_data.expires, kNow + 30 * kDay);
  EXPECT_EQ(Load<Snapshot>(Md("2.snapshot.json")).signed_data.expires,
            kNow + kDefaultSnapshotExpiry);
  Metadata<Root> root2 = Load<Root>(Md("2.root.json"));
  EXPECT_EQ(root2.signed_data.expires, kNow + 2 * 365 * kDay);
  EXPECT_TRUE(metadata::VerifyRootRotation(Load<Root>(Md("1.root.json")), root2));
  EXPECT_EQ(ReadAll(Md("root.json")), ReadAll(Md("2.root.json")));
  ExpectPublishedVerifies();
}

TEST_F(RepoTest, PublishUnknownExpiryRoleIsInvalidAndChangesNothing) {
  InitDefault();
  Repository repo = Open();
  auto before = Snapshot_(dir_);
  PublishOptions p;
  p.expires_in = {{"nosuchrole", 3600}};
  auto r = repo.Publish(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Snapshot_(dir_), before);
}

TEST_F(RepoTest, PublishWithoutASigningKeyChangesNothing) {
  InitDefault();
  Repository repo = Open();
  ASSERT_TRUE(repo.AddTarget(File("a.txt", "a"), {}));
  fs::remove(key_dir_ / "snapshot.key");
  auto before = Snapshot_(dir_);
  auto r = repo.Publish({});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(Snapshot_(dir_), before);
}

TEST_F(RepoTest, PublishWithAWrongKeyIsWrongKeyAndChangesNothing) {
  InitDefault();
  {
    // Point the targets role at a key root does not list.
    std::string state = ReadAll(dir_ / ".airlock/repo.json");
    fs::path stranger = Key("stranger");
    auto pos = state.find(fs::absolute(key_dir_ / "targets.key").string());
    ASSERT_NE(pos, std::string::npos);
    state.replace(pos, fs::absolute(key_dir_ / "targets.key").string().size(), stranger.string());
    WriteText(dir_ / ".airlock/repo.json", state);
  }
  Repository repo = Open();
  auto before = Snapshot_(dir_);
  auto r = repo.Publish({});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kWrongKey);
  EXPECT_EQ(Snapshot_(dir_), before);
}

TEST_F(RepoTest, AddTargetReplacesAndRemoveTargetUnlists) {
  InitDefault();
  Repository repo = Open();
  AddTargetOptions add;
  add.name = "app.bin";
  ASSERT_TRUE(repo.AddTarget(File("v1", "one"), add));
  auto again = repo.AddTarget(File("v2", "two!"), add);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->replaced);
  ASSERT_TRUE(repo.AddTarget(File("other", "x"), {}));
  ASSERT_TRUE(repo.Publish({}));
  Metadata<Targets> t2 = Load<Targets>(Md("2.targets.json"));
  EXPECT_EQ(t2.signed_data.targets["app.bin"].length, 4u);
  EXPECT_EQ(t2.signed_data.targets.size(), 2u);

  auto removed = repo.RemoveTarget("app.bin");
  ASSERT_TRUE(removed);
  EXPECT_EQ(*removed, "targets");
  ASSERT_TRUE(repo.Publish({}));
  Metadata<Targets> t3 = Load<Targets>(Md("3.targets.json"));
  EXPECT_EQ(t3.signed_data.targets.count("app.bin"), 0u);
  EXPECT_EQ(t3.signed_data.targets.count("other"), 1u);

  auto missing = repo.RemoveTarget("app.bin");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

TEST_F(RepoTest, StateSurvivesReopening) {
  InitDefault();
  {
    Repository repo = Open();
    AddTargetOptions add;
    add.custom_json = R"({"channels":["stable"]})";
    ASSERT_TRUE(repo.AddTarget(File("a.txt", "a"), add));
  }
  Repository repo = Open();
  auto staged = repo.StagedTargets();
  ASSERT_EQ(staged.size(), 1u);
  EXPECT_EQ(staged[0].name, "a.txt");
  EXPECT_EQ((*staged[0].file.custom)["channels"][0], "stable");
}

TEST_F(RepoTest, AddTargetBadInputIsInvalidAndChangesNothing) {
  InitDefault();
  Repository repo = Open();
  fs::path f = File("a.txt", "a");
  auto before = Snapshot_(dir_);
  struct Case {
    std::string name, custom;
  };
  for (const Case& c : {Case{"../escape", ""}, Case{"/abs", ""}, Case{"ok.txt", "[1,2]"},
                        Case{"ok.txt", "{not json"}, Case{"ok.txt", R"({"version":"not-semver"})"},
                        Case{"ok.txt", R"({"security_floor":-1})"},
                        Case{"ok.txt", R"({"channels":"beta"})"}, Case{"ok.txt", R"({"x":1.5})"},
                        Case{"ok.txt", "{\"x\":\"" + std::string(kMaxCustomSize, 'a') + "\"}"}}) {
    AddTargetOptions add;
    add.name = c.name;
    add.custom_json = c.custom;
    auto r = repo.AddTarget(f, add);
    ASSERT_FALSE(r) << c.name << " " << c.custom.substr(0, 40);
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << r.error().message();
  }
  auto missing = repo.AddTarget(tmp_->path() / "nope", {});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(Snapshot_(dir_), before);
}

class RepoBundleTest : public RepoTest {
 protected:
  fs::path Seal(const std::string& app, const std::string& version) {
    fs::path src = tmp_->path() / ("src-" + version);
    WriteText(src / "index.html", "<p>" + version + "</p>");
    auto signer = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
    auto device = crypto::PrivateKey::Generate(crypto::KeyType::kX25519);
    bundle::SealOptions o;
    o.app_id = app;
    o.version = version;
    fs::path out = tmp_->path() / (app + "-" + version + ".alb");
    auto r = bundle::SealBundle(src, o, *signer, {device->Public()}, out);
    EXPECT_TRUE(r) << (r ? "" : r.error().message());
    return out;
  }
};

TEST_F(RepoBundleTest, BundleFillsCustomFromItsHeader) {
  InitDefault();
  Repository repo = Open();
  AddTargetOptions add;
  add.custom_json = R"({"channels":["stable"],"security_floor":2,"version":"1.2.3"})";
  auto r = repo.AddTarget(Seal("com.example.app", "1.2.3"), add);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->name, "com.example.app-1.2.3.alb");
  const nlohmann::json& c = *r->file.custom;
  EXPECT_EQ(c["app_id"], "com.example.app");
  EXPECT_EQ(c["version"], "1.2.3");
  EXPECT_EQ(c["format"], "airlock-bundle");
  EXPECT_EQ(c["channels"][0], "stable");
  EXPECT_EQ(c["security_floor"], 2);
}

TEST_F(RepoBundleTest, BundleOfAnotherAppOrConflictingVersionIsInvalid) {
  InitDefault();
  Repository repo = Open();
  auto other = repo.AddTarget(Seal("com.example.other", "1.0.0"), {});
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code(), ErrorCode::kInvalidArgument);
  AddTargetOptions add;
  add.custom_json = R"({"version":"9.9.9"})";
  auto conflict = repo.AddTarget(Seal("com.example.app", "1.0.0"), add);
  ASSERT_FALSE(conflict);
  EXPECT_EQ(conflict.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(repo.StagedTargets().empty());
}

TEST_F(RepoBundleTest, CorruptBundleIsRefused) {
  InitDefault();
  Repository repo = Open();
  auto r = repo.AddTarget(File("fake.alb", "not a bundle"), {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().code(), ErrorCode::kInternal);
  EXPECT_TRUE(repo.StagedTargets().empty());
}

// --- rotation
// --------------------------------------------------------------------------------------

TEST_F(RepoTest, RotateRootIsSignedByOldAndNewThresholds) {
  InitDefault();
  Repository repo = Open();
  std::string old_id = Load<Root>(Md("root.json")).signed_data.roles["root"].keyids[0];
  RotateOptions o;
  o.role = "root";
  o.new_keys = {Key("newroot", crypto::KeyType::kEcdsaP256)};
  o.now = kNow;
  auto r = repo.Rotate(o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->root_version, 2u);
  EXPECT_EQ(r->removed_key_ids, std::vector<std::string>{old_id});
  ASSERT_EQ(r->added_key_ids.size(), 1u);
  Metadata<Root> root1 = Load<Root>(Md("1.root.json"));
  Metadata<Root> root2 = Load<Root>(Md("2.root.json"));
  EXPECT_TRUE(metadata::VerifyRootRotation(root1, root2));
  EXPECT_EQ(root2.signed_data.roles["root"].keyids, std::vector<std::string>{r->added_key_ids[0]});
  EXPECT_EQ(root2.signed_data.keys.count(old_id), 0u);
  EXPECT_EQ(r->published.versions["timestamp"], 2u);
  ExpectPublishedVerifies();

  // The new root key is now the configured one: a later root re-sign uses it.
  PublishOptions p;
  p.expires_in = {{"root", 30 * kDay}};
  ASSERT_TRUE(repo.Publish(p));
  EXPECT_TRUE(metadata::VerifyRootRotation(root2, Load<Root>(Md("3.root.json"))));
}

TEST_F(RepoTest, RotateTimestampReplacesItsKeyAndRepublishes) {
  InitDefault();
  Repository repo = Open();
  RotateOptions o;
  o.role = "timestamp";
  o.new_keys = {Key("ts2")};
  auto r = repo.Rotate(o);
  ASSERT_TRUE(r) << r.error().message();
  Metadata<Root> root2 = Load<Root>(Md("2.root.json"));
  EXPECT_TRUE(metadata::VerifyRootRotation(Load<Root>(Md("1.root.json")), root2));
  Metadata<Timestamp> ts = Load<Timestamp>(Md("timestamp.json"));
  EXPECT_EQ(ts.signed_data.version, 2u);
  EXPECT_TRUE(root2.signed_data.VerifyDelegate("timestamp", ts));
  EXPECT_FALSE(Load<Root>(Md("1.root.json")).signed_data.VerifyDelegate("timestamp", ts));
  ExpectPublishedVerifies();
}

TEST_F(RepoTest, RotateWithThresholdTwoRootNeedsBothOldKeys) {
  InitOptions init;
  init.app_id = "com.example.app";
  fs::path a = Key("a"), b = Key("b");
  init.key_files["root"] = {a, b};
  init.root_threshold = 2;
  ASSERT_TRUE(Repository::Init(dir_, init));
  Repository repo = Open();
  auto before = Snapshot_(dir_);
  RotateOptions o;
  o.role = "root";
  o.new_keys = {Key("c")};
  o.threshold = 1;
  o.old_keys = {a};  // only one of the two old keys
  auto r = repo.Rotate(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound) << r.error().message();
  EXPECT_EQ(Snapshot_(dir_), before);

  o.old_keys = {a, b};
  auto ok = repo.Rotate(o);
  ASSERT_TRUE(ok) << ok.error().message();
  EXPECT_EQ(Load<Root>(Md("2.root.json")).signatures.size(), 3u);
  ExpectPublishedVerifies();
}

TEST_F(RepoTest, RotateBadInputIsInvalidAndChangesNothing) {
  InitDefault();
  Repository repo = Open();
  auto before = Snapshot_(dir_);
  RotateOptions delegated;
  delegated.role = "releases";
  delegated.new_keys = {Key("k")};
  RotateOptions no_keys;
  no_keys.role = "root";
  RotateOptions threshold;
  threshold.role = "targets";
  threshold.new_keys = {Key("k2")};
  threshold.threshold = 2;
  for (const RotateOptions& o : {delegated, no_keys, threshold}) {
    auto r = repo.Rotate(o);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << r.error().message();
  }
  RotateOptions stranger;
  stranger.role = "root";
  stranger.new_keys = {Key("k3")};
  stranger.old_keys = {Key("not-a-root-key")};
  auto r = repo.Rotate(stranger);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kWrongKey);
  EXPECT_EQ(Snapshot_(dir_), before);
}

// --- delegation
// ------------------------------------------------------------------------------------

TEST_F(RepoTest, DelegatedRoleIsPublishedAndSignedByItsKey) {
  InitDefault();
  Repository repo = Open();
  fs::path key = Key("releases", crypto::KeyType::kEcdsaP256);
  fs::path pub = fs::path(key).replace_extension(".pub");
  DelegateOptions d;
  d.role = "releases";
  d.paths = {"releases/*"};
  d.public_keys = {pub};
  d.terminating = true;
  auto r = repo.Delegate(d);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_FALSE(r->replaced);
  AddTargetOptions add;
  add.name = "releases/app.bin";
  add.role = "releases";
  ASSERT_TRUE(repo.AddTarget(File("app.bin", "payload"), add));
  auto p = repo.Publish({});
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(p->versions["releases"], 1u);
  Metadata<Targets> targets = Load<Targets>(Md("2.targets.json"));
  ASSERT_TRUE(targets.signed_data.delegations);
  const auto* role = targets.signed_data.delegations->FindRole("releases");
  ASSERT_NE(role, nullptr);
  EXPECT_TRUE(role->terminating);
  Metadata<Targets> releases = Load<Targets>(Md("1.releases.json"));
  EXPECT_EQ(releases.signed_data.targets.count("releases/app.bin"), 1u);
  ExpectPublishedVerifies();

  ASSERT_TRUE(repo.Publish({}));
  EXPECT_TRUE(fs::exists(Md("2.releases.json")));

  d.paths = {"releases/*", "beta/*"};
  auto replaced = repo.Delegate(d);
  ASSERT_TRUE(replaced);
  EXPECT_TRUE(replaced->replaced);
}

TEST_F(RepoTest, DelegationErrors) {
  InitDefault();
  Repository repo = Open();
  fs::path key = Key("rel");
  fs::path pub = fs::path(key).replace_extension(".pub");
  auto before = Snapshot_(dir_);

  DelegateOptions top;
  top.role = "targets";
  top.paths = {"*"};
  top.public_keys = {pub};
  auto r1 = repo.Delegate(top);
  ASSERT_FALSE(r1);
  EXPECT_EQ(r1.error().code(), ErrorCode::kInvalidArgument);

  DelegateOptions no_paths = top;
  no_paths.role = "rel";
  no_paths.paths = {};
  EXPECT_EQ(repo.Delegate(no_paths).error().code(), ErrorCode::kInvalidArgument);

  DelegateOptions threshold = top;
  threshold.role = "rel";
  threshold.threshold = 2;
  EXPECT_EQ(repo.Delegate(threshold).error().code(), ErrorCode::kInvalidArgument);

  // A public key without its private key beside it.
  fs::path lone = tmp_->path() / "lone.pub";
  fs::copy_file(pub, lone);
  DelegateOptions no_private = top;
  no_private.role = "rel";
  no_private.public_keys = {lone};
  EXPECT_EQ(repo.Delegate(no_private).error().code(), ErrorCode::kNotFound);

  // A K.key beside K.pub that is another key.
  fs::path other = Key("other");
  fs::path mismatched_pub = tmp_->path() / "keys" / "mismatch.pub";
  fs::copy_file(pub, mismatched_pub);
  fs::copy_file(other, tmp_->path() / "keys" / "mismatch.key");
  DelegateOptions mismatch = top;
  mismatch.role = "rel";
  mismatch.public_keys = {mismatched_pub};
  EXPECT_EQ(repo.Delegate(mismatch).error().code(), ErrorCode::kWrongKey);
  EXPECT_EQ(Snapshot_(dir_), before);

  // Targets for a delegated role must exist and be inside its paths.
  AddTargetOptions add;
  add.role = "nosuch";
  EXPECT_EQ(repo.AddTarget(File("a", "a"), add).error().code(), ErrorCode::kNotFound);
  DelegateOptions good = top;
  good.role = "rel";
  good.paths = {"rel/*"};
  ASSERT_TRUE(repo.Delegate(good));
  add.role = "rel";
  add.name = "elsewhere/a";
  EXPECT_EQ(repo.AddTarget(File("a", "a"), add).error().code(), ErrorCode::kInvalidArgument);
}

// --- verify
// ----------------------------------------------------------------------------------------

TEST_F(RepoTest, VerifyChecksEverythingAClientWould) {
  InitDefault();
  Repository repo = Open();
  fs::path key = Key("rel");
  DelegateOptions d;
  d.role = "rel";
  d.paths = {"rel/*"};
  d.public_keys = {fs::path(key).replace_extension(".pub")};
  ASSERT_TRUE(repo.Delegate(d));
  AddTargetOptions add;
  add.name = "rel/x";
  add.role = "rel";
  ASSERT_TRUE(repo.AddTarget(File("x", "xx"), add));
  ASSERT_TRUE(repo.AddTarget(File("y", "yyy"), {}));
  RotateOptions rot;
  rot.role = "root";
  rot.new_keys = {Key("root2")};
  ASSERT_TRUE(repo.Rotate(rot));
  ASSERT_TRUE(repo.Publish({}));

  auto v = VerifyRepository(dir_);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->root_version, 2u);
  EXPECT_EQ(v->targets.size(), 2u);
  EXPECT_EQ(v->roles_visited, (std::vector<std::string>{"targets", "rel"}));
}

TEST_F(RepoTest, VerifyFailsOnATamperedTarget) {
  InitDefault();
  Repository repo = Open();
  auto t = repo.AddTarget(File("y", "yyy"), {});
  ASSERT_TRUE(t);
  ASSERT_TRUE(repo.Publish({}));
  WriteText(dir_ / "targets" / (t->file.hashes["sha256"] + ".y"), "zzz");
  auto v = VerifyRepository(dir_);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code(), ErrorCode::kHashMismatch) << v.error().message();
}

TEST_F(RepoTest, VerifyFailsOnTamperedMetadata) {
  InitDefault();
  std::string targets = ReadAll(Md("1.targets.json"));
  auto pos = targets.find("\"targets\": {}");
  ASSERT_NE(pos, std::string::npos) << targets;
  // Re-list without re-signing: the snapshot's hash (if any) or the signature must catch it.
  Metadata<Targets> md = Load<Targets>(Md("1.targets.json"));
  md.signed_json["version"] = 1;
  md.signed_json["targets"]["evil"] = {{"length", 1},
                                       {"hashes", {{"sha256", std::string(64, 'a')}}}};
  WriteText(Md("1.targets.json"), md.ToJson().dump());
  auto v = VerifyRepository(dir_);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code(), ErrorCode::kBadSignature) << v.error().message();
}

TEST_F(RepoTest, VerifyFailsOnceExpired) {
  InitDefault();
  auto v = VerifyRepository(dir_, kNow + 2 * kDay);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code(), ErrorCode::kExpired) << v.error().message();
  EXPECT_TRUE(VerifyRepository(dir_, kNow + 3600));
}

TEST_F(RepoTest, VerifyWithoutRepositoryIsNotFound) {
  auto v = VerifyRepository(tmp_->path());
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace airlock::repo
