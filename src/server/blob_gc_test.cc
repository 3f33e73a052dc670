// Blob collection (server/blob_gc.h) and the data folder's guards (server/data_dir.h): what is
// removed and kept, the lock protocol with uploads, one airlockd per SQLite DATA, owner-only modes.
#include "server/blob_gc.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/fd.h"
#include "common/file.h"
#include "server/data_dir.h"
#include "server/http_server.h"
#include "storage/store.h"

namespace airlock::server {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr int64_t kDay = 86400;

std::string Digest(char c) { return std::string(64, c); }

class BlobGcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ScopedTempDir::Create({}, "blob-gc-");
    ASSERT_TRUE(dir) << dir.error().ToString();
    dir_.emplace(std::move(*dir));
    data_ = dir_->path();
    fs::create_directories(data_ / "blobs");
    auto store = storage::OpenStore("sqlite:" + (data_ / "airlock.db").string(), Now());
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    storage::App app;
    app.app_id = "com.example.gc";
    app.created_at = Now();
    ASSERT_TRUE(store_->CreateApp(app));
  }

  static int64_t Now() { return static_cast<int64_t>(std::time(nullptr)); }

  // A blob file named `sha` with mtime `age` seconds ago.
  fs::path Blob(const std::string& sha, int64_t age) {
    fs::path dir = data_ / "blobs" / sha.substr(0, 2);
    fs::create_directories(dir);
    fs::path path = dir / sha;
    std::ofstream(path) << "blob " << sha;
    SetAge(path, age);
    return path;
  }

  static void SetAge(const fs::path& path, int64_t age) {
    struct timespec times[2];
    times[0].tv_sec = times[1].tv_sec = Now() - age;
    times[0].tv_nsec = times[1].tv_nsec = 0;
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  }

  void AddRelease(const std::string& version, const std::string& sha,
                  std::optional<std::string> capgo_sha = std::nullopt) {
    storage::Release r;
    r.app_id = "com.example.gc";
    r.version = version;
    r.target_name = "releases/" + version + "/bundle.zip";
    r.sha256 = sha;
    r.length = 10;
    r.created_at = Now();
    if (capgo_sha) {
      r.capgo_target = "releases/" + version + "/capgo.zip";
      r.capgo_sha256 = capgo_sha;
      r.capgo_length = 10;
      r.capgo_session_key = "k";
      r.capgo_checksum = "c";
    }
    ASSERT_TRUE(store_->CreateRelease(r));
  }

  Result<BlobGcStats> Collect(bool dry_run = false) {
    return CollectBlobs(store_.get(), data_, {Now(), kDay, dry_run});
  }

  std::optional<ScopedTempDir> dir_;
  fs::path data_;
  std::unique_ptr<storage::Store> store_;
};

TEST_F(BlobGcTest, RemovesOldOrphansAndKeepsReferencedAndFreshBlobs) {
  fs::path old_orphan = Blob(Digest('a'), 2 * kDay);
  fs::path fresh_orphan = Blob(Digest('b'), 60);
  fs::path released = Blob(Digest('c'), 2 * kDay);
  fs::path capgo = Blob(Digest('d'), 2 * kDay);
  AddRelease("1.0.0", Digest('c'), Digest('d'));

  auto stats = Collect();
  ASSERT_TRUE(stats) << stats.error().ToString();
  EXPECT_EQ(stats->removed, 1u);
  EXPECT_EQ(stats->kept, 2u);
  EXPECT_EQ(stats->fresh, 1u);
  EXPECT_FALSE(fs::exists(old_orphan));
  EXPECT_TRUE(fs::exists(fresh_orphan));
  EXPECT_TRUE(fs::exists(released));
  EXPECT_TRUE(fs::exists(capgo));
}

TEST_F(BlobGcTest, DryRunRemovesNothing) {
  fs::path old_orphan = Blob(Digest('a'), 2 * kDay);
  auto stats = Collect(/*dry_run=*/true);
  ASSERT_TRUE(stats) << stats.error().ToString();
  EXPECT_EQ(stats->removed, 1u);
  EXPECT_TRUE(fs::exists(old_orphan));
}

TEST_F(BlobGcTest, KeepsWhatTargetsMetadataListsWithoutARelease) {
  fs::path listed = Blob(Digest('e'), 2 * kDay);
  fs::create_directories(data_ / "tuf" / "com.example.gc");
  std::ofstream(data_ / "tuf" / "com.example.gc" / "3.targets.json")
      << R"({"signed":{"_type":"targets","targets":{"releases/9.0.0/bundle.zip":)"
      << R"({"length":10,"hashes":{"sha256":")" << Digest('e') << R"("}}}},"signatures":[]})";
  auto stats = Collect();
  ASSERT_TRUE(stats) << stats.error().ToString();
  EXPECT_EQ(stats->removed, 0u);
  EXPECT_TRUE(fs::exists(listed));
}

TEST_F(BlobGcTest, UnreadableTargetsMetadataStopsTheCollection) {
  fs::path old_orphan = Blob(Digest('a'), 2 * kDay);
  fs::create_directories(data_ / "tuf" / "com.example.gc");
  std::ofstream(data_ / "tuf" / "com.example.gc" / "2.targets.json") << "{not json";
  auto stats = Collect();
  ASSERT_FALSE(stats);
  EXPECT_EQ(stats.error().code(), ErrorCode::kMalformed);
  EXPECT_TRUE(fs::exists(old_orphan));
}

TEST_F(BlobGcTest, KeepsABlobAnUploadHoldsLocked) {
  fs::path blob = Blob(Digest('a'), 2 * kDay);
  // An upload of the same bytes between its open and its mtime refresh (TouchBlob's LOCK_SH).
  UniqueFd held(::open(blob.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_EQ(::flock(held.get(), LOCK_SH), 0);
  auto stats = Collect();
  ASSERT_TRUE(stats) << stats.error().ToString();
  EXPECT_EQ(stats->removed, 0u);
  EXPECT_TRUE(fs::exists(blob));
}

TEST_F(BlobGcTest, AReuploadRefreshesTheBlobSoTheCollectorKeepsIt) {
  fs::path blob = Blob(Digest('a'), 2 * kDay);
  auto touched = TouchBlob(blob);
  ASSERT_TRUE(touched) << touched.error().ToString();
  EXPECT_TRUE(*touched);
  auto stats = Collect();
  ASSERT_TRUE(stats) << stats.error().ToString();
  EXPECT_EQ(stats->removed, 0u);
  EXPECT_EQ(stats->fresh, 1u);
  EXPECT_TRUE(fs::exists(blob));
}

TEST_F(BlobGcTest, TouchOfACollectedBlobSaysItIsGone) {
  fs::path blob = Blob(Digest('a'), 2 * kDay);
  ASSERT_TRUE(Collect());
  auto touched = TouchBlob(blob);
  ASSERT_TRUE(touched) << touched.error().ToString();
  EXPECT_FALSE(*touched);
}

TEST_F(BlobGcTest, IgnoresFilesThatAreNotBlobs) {
  fs::path stray = data_ / "blobs" / "aa" / ".aaaa.tmp-1";
  Blob(Digest('a'), 0);
  std::ofstream(stray) << "x";
  SetAge(stray, 2 * kDay);
  ASSERT_TRUE(Collect());
  EXPECT_TRUE(fs::exists(stray));
}

// ---- data_dir.h ----

class DataDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ScopedTempDir::Create({}, "data-dir-");
    ASSERT_TRUE(dir) << dir.error().ToString();
    dir_.emplace(std::move(*dir));
  }
  std::optional<ScopedTempDir> dir_;
};

TEST_F(DataDirTest, ASecondExclusiveLockIsRefusedNamingTheDirectory) {
  auto first = LockDataDir(dir_->path(), /*exclusive=*/true);
  ASSERT_TRUE(first) << first.error().ToString();
  auto second = LockDataDir(dir_->path(), /*exclusive=*/true);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_THAT(second.error().message(), HasSubstr("the data directory " + dir_->path().string() +
                                                  " is in use by another airlockd"));
  first->Close();
  EXPECT_TRUE(LockDataDir(dir_->path(), true));
}

TEST_F(DataDirTest, SharedLocksCoexistButRefuseAnExclusiveOne) {
  auto a = LockDataDir(dir_->path(), /*exclusive=*/false);
  auto b = LockDataDir(dir_->path(), /*exclusive=*/false);
  ASSERT_TRUE(a && b);
  auto sqlite = LockDataDir(dir_->path(), /*exclusive=*/true);
  ASSERT_FALSE(sqlite);
  EXPECT_EQ(sqlite.error().code(), ErrorCode::kAlreadyExists);
  a->Close();
  b->Close();
  auto only = LockDataDir(dir_->path(), true);
  ASSERT_TRUE(only);
  auto postgres = LockDataDir(dir_->path(), false);
  ASSERT_FALSE(postgres);
  EXPECT_THAT(postgres.error().message(), HasSubstr("uses the SQLite store"));
}

TEST_F(DataDirTest, TightensTheFolderAndItsDatabasesOnly) {
  const fs::path data = dir_->path();
  ASSERT_EQ(::chmod(data.c_str(), 0755), 0);
  for (const char* name :
       {"airlock.db", "airlock.db-wal", "access.db", "vault.pass", "other.txt"}) {
    std::ofstream(data / name) << "x";
    ASSERT_EQ(::chmod((data / name).c_str(), 0644), 0);
  }
  fs::create_directories(data / "blobs");
  ASSERT_EQ(::chmod((data / "blobs").c_str(), 0755), 0);
  auto changed = TightenDataDir(data);
  ASSERT_TRUE(changed) << changed.error().ToString();
  EXPECT_EQ(changed->size(), 5u);
  auto mode = [](const fs::path& p) {
    struct stat st {};
    ::stat(p.c_str(), &st);
    return st.st_mode & 07777;
  };
  EXPECT_EQ(mode(data), 0700u);
  EXPECT_EQ(mode(data / "airlock.db"), 0600u);
  EXPECT_EQ(mode(data / "airlock.db-wal"), 0600u);
  EXPECT_EQ(mode(data / "access.db"), 0600u);
  EXPECT_EQ(mode(data / "vault.pass"), 0600u);
  EXPECT_EQ(mode(data / "other.txt"), 0644u);
  EXPECT_EQ(mode(data / "blobs"), 0755u);
  auto again = TightenDataDir(data);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->empty());
}

// ---- ResolveListenHost ----

TEST(ResolveListenHostTest, KeepsAddressesAndResolvesLocalhost) {
  EXPECT_EQ(ResolveListenHost("127.0.0.1").value_or(""), "127.0.0.1");
  EXPECT_EQ(ResolveListenHost("::1").value_or(""), "::1");
  auto local = ResolveListenHost("localhost");
  ASSERT_TRUE(local) << local.error().ToString();
  EXPECT_TRUE(*local == "127.0.0.1" || *local == "::1") << *local;
}

TEST(ResolveListenHostTest, ANameThatDoesNotResolveIsRefused) {
  // An empty label: refused by the resolver without asking any DNS server.
  auto bad = ResolveListenHost("no..such.host");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(bad.error().message(), HasSubstr("cannot resolve the listen host no..such.host: "));
}

}  // namespace
}  // namespace airlock::server
