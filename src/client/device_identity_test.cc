#include "client/device_identity.h"

#include <sys/stat.h>

#include <filesystem>
#include <regex>
#include <set>

#include <gtest/gtest.h>

#include "common/file.h"

namespace airlock::client {
namespace {

namespace fs = std::filesystem;

mode_t ModeOf(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

class DeviceIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = ScopedTempDir::Create({}, "airlock-identity-");
    ASSERT_TRUE(tmp);
    tmp_.emplace(std::move(*tmp));
    dir_ = tmp_->path() / "install" / "identity";
  }
  std::optional<ScopedTempDir> tmp_;
  fs::path dir_;
};

TEST_F(DeviceIdentityTest, CreatesPrivateKeysMode0600InADirectoryMode0700) {
  auto id = LoadOrCreateDeviceIdentity(dir_);
  ASSERT_TRUE(id) << id.error().ToString();
  EXPECT_EQ(ModeOf(dir_), 0700u);
  EXPECT_EQ(ModeOf(dir_ / "x25519.key"), 0600u);
  EXPECT_EQ(ModeOf(dir_ / "ed25519.key"), 0600u);
  EXPECT_EQ(id->wrap_key.type(), crypto::KeyType::kX25519);
  EXPECT_EQ(id->signing_key.type(), crypto::KeyType::kEd25519);
  EXPECT_EQ(id->WrapPublicKeyHex().size(), 64u);
  EXPECT_EQ(id->SigningPublicKeyHex().size(), 64u);
  // Nothing but the identity is left in the parent (the staging directory was renamed).
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir_.parent_path())) {
    names.insert(e.path().filename().string());
  }
  EXPECT_EQ(names, std::set<std::string>{"identity"});
}

TEST_F(DeviceIdentityTest, RemovesTheStagingOfAKilledRun) {
  // What a run killed between writing the keys and the rename leaves: a private staging directory.
  const fs::path stale = dir_.parent_path() / ".identity.new-Ab12Cd";
  fs::create_directories(stale);
  fs::permissions(stale, fs::perms::owner_all, fs::perm_options::replace);
  ASSERT_TRUE(WriteFileAtomic(stale / "ed25519.key", AsBytes("old key"), 0600));
  ASSERT_TRUE(LoadOrCreateDeviceIdentity(dir_));
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(dir_ / "ed25519.key"));
}

TEST_F(DeviceIdentityTest, LoadsTheSameIdentityItCreated) {
  auto first = LoadOrCreateDeviceIdentity(dir_);
  ASSERT_TRUE(first);
  auto again = LoadOrCreateDeviceIdentity(dir_);
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->device_id, first->device_id);
  EXPECT_TRUE(again->wrap_key.Public().Equals(first->wrap_key.Public()));
  EXPECT_TRUE(again->signing_key.Public().Equals(first->signing_key.Public()));
  auto loaded = LoadDeviceIdentity(dir_);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->device_id, first->device_id);
}

TEST_F(DeviceIdentityTest, DeviceIdsAreRandomUuidV4) {
  const std::regex v4("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  for (int i = 0; i < 64; ++i) {
    auto id = NewDeviceId();
    ASSERT_TRUE(id);
    EXPECT_TRUE(std::regex_match(*id, v4)) << *id;
    seen.insert(*id);
  }
  EXPECT_EQ(seen.size(), 64u);
}

TEST_F(DeviceIdentityTest, RefusesAPrivateKeyReadableByOthers) {
  ASSERT_TRUE(LoadOrCreateDeviceIdentity(dir_));
  const fs::path key = dir_ / "ed25519.key";
  const std::string before = ReadTextFile(key, 1 << 16).value();
  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  auto loaded = LoadOrCreateDeviceIdentity(dir_);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(loaded.error().message().find("mode 0644"), std::string::npos)
      << loaded.error().message();
  EXPECT_NE(loaded.error().message().find("ed25519.key"), std::string::npos);
  // Refused, not repaired or replaced.
  EXPECT_EQ(ModeOf(key), 0644u);
  EXPECT_EQ(ReadTextFile(key, 1 << 16).value(), before);

  ASSERT_EQ(::chmod(key.c_str(), 0640), 0);  // group-readable is refused too
  auto group = LoadDeviceIdentity(dir_);
  ASSERT_FALSE(group);
  EXPECT_EQ(group.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(DeviceIdentityTest, RefusesASymlinkedPrivateKey) {
  ASSERT_TRUE(LoadOrCreateDeviceIdentity(dir_));
  const fs::path key = dir_ / "x25519.key";
  fs::rename(key, tmp_->path() / "elsewhere.key");
  fs::create_symlink(tmp_->path() / "elsewhere.key", key);
  auto loaded = LoadDeviceIdentity(dir_);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(loaded.error().message().find("symlink"), std::string::npos);
}

TEST_F(DeviceIdentityTest, RefusesKeysOfTheWrongType) {
  ASSERT_TRUE(LoadOrCreateDeviceIdentity(dir_));
  fs::rename(dir_ / "x25519.key", dir_ / "swap");
  fs::rename(dir_ / "ed25519.key", dir_ / "x25519.key");
  fs::rename(dir_ / "swap", dir_ / "ed25519.key");
  auto loaded = LoadDeviceIdentity(dir_);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code(), ErrorCode::kUnsupported);
}

TEST_F(DeviceIdentityTest, AnIncompleteIdentityIsReportedNotReplaced) {
  auto first = LoadOrCreateDeviceIdentity(dir_);
  ASSERT_TRUE(first);
  fs::remove(dir_ / "ed25519.key");
  auto again = LoadOrCreateDeviceIdentity(dir_);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kNotFound);
  EXPECT_FALSE(fs::exists(dir_ / "ed25519.key"));
  EXPECT_EQ(ReadTextFile(dir_ / "device_id", 256).value(), first->device_id + "\n");
}

TEST_F(DeviceIdentityTest, RefusesADeviceIdThatIsNotAUuid) {
  ASSERT_TRUE(LoadOrCreateDeviceIdentity(dir_));
  ASSERT_TRUE(WriteFileAtomic(dir_ / "device_id", AsBytes("../../etc\n")));
  auto loaded = LoadDeviceIdentity(dir_);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.error().code(), ErrorCode::kMalformed);
}

}  // namespace
}  // namespace airlock::client
