#include "common/file.h"

#include <sys/stat.h>

#include <gtest/gtest.h>

namespace airlock {
namespace {

namespace fs = std::filesystem;

size_t CountEntries(const fs::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

mode_t ModeOf(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

TEST(ReadFile, ReadsWholeFile) {
  auto dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir);
  Bytes data(200000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
  ASSERT_TRUE(WriteFileAtomic(dir->path() / "f", data));
  auto read = ReadFile(dir->path() / "f", data.size());
  ASSERT_TRUE(read) << read.error().ToString();
  EXPECT_EQ(*read, data);
  auto text = ReadTextFile(dir->path() / "f", data.size());
  ASSERT_TRUE(text);
  EXPECT_EQ(text->size(), data.size());
}

TEST(ReadFile, ReportsMissingOversizedAndDirectory) {
  auto dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir);
  auto missing = ReadFile(dir->path() / "nope", 100);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);

  ASSERT_TRUE(WriteFileAtomic(dir->path() / "f", Bytes(101, 1)));
  auto big = ReadFile(dir->path() / "f", 100);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code(), ErrorCode::kLimitExceeded);
  EXPECT_TRUE(ReadFile(dir->path() / "f", 101));

  auto is_dir = ReadFile(dir->path(), 100);
  ASSERT_FALSE(is_dir);
  EXPECT_EQ(is_dir.error().code(), ErrorCode::kInvalidArgument);
}

TEST(WriteFileAtomic, WritesWithModeAndReplaces) {
  auto dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir);
  fs::path p = dir->path() / "secret";
  ASSERT_TRUE(WriteFileAtomic(p, AsBytes("one"), 0600));
  EXPECT_EQ(ModeOf(p), 0600u);
  EXPECT_EQ(*ReadTextFile(p, 100), "one");
  ASSERT_TRUE(WriteFileAtomic(p, AsBytes("two"), 0644));
  EXPECT_EQ(ModeOf(p), 0644u);
  EXPECT_EQ(*ReadTextFile(p, 100), "two");
  EXPECT_EQ(CountEntries(dir->path()), 1u);  // no temporary files left

  auto no_dir = WriteFileAtomic(dir->path() / "missing" / "f", AsBytes("x"));
  ASSERT_FALSE(no_dir);
  EXPECT_EQ(no_dir.error().code(), ErrorCode::kNotFound);
}

TEST(AtomicFile, LeavesNoTempFileWithoutCommit) {
  auto dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir);
  fs::path p = dir->path() / "out";
  fs::path temp;
  {
    auto f = AtomicFile::Create(p);
    ASSERT_TRUE(f);
    temp = f->temp_path();
    EXPECT_EQ(temp.parent_path(), dir->path());
    ASSERT_TRUE(f->Write(AsBytes("partial")));
    EXPECT_TRUE(fs::exists(temp));
    EXPECT_FALSE(fs::exists(p));
  }
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_FALSE(fs::exists(p));
  EXPECT_EQ(CountEntries(dir->path()), 0u);
}

TEST(AtomicFile, CommitPublishesAndRefusesReuse) {
  auto dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir);
  fs::path p = dir->path() / "out";
  auto f = AtomicFile::Create(p, 0640);
  ASSERT_TRUE(f);
  fs::path temp = f->temp_path();
  ASSERT_TRUE(f->Write(AsBytes("hello ")));
  ASSERT_TRUE(f->Write(AsBytes("world")));
  ASSERT_TRUE(f->Commit());
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_EQ(*ReadTextFile(p, 100), "hello world");
  EXPECT_EQ(ModeOf(p), 0640u);

  auto w = f->Write(AsBytes("more"));
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code(), ErrorCode::kInternal);
  auto c = f->Commit();
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code(), ErrorCode::kInternal);
  EXPECT_EQ(*ReadTextFile(p, 100), "hello world");
}

TEST(AtomicFile, MovedFromObjectDoesNotRemoveTheTempFile) {
  auto dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir);
  fs::path p = dir->path() / "out";
  auto f = AtomicFile::Create(p);
  ASSERT_TRUE(f);
  {
    AtomicFile moved(std::move(*f));
    ASSERT_TRUE(moved.Write(AsBytes("x")));
    ASSERT_TRUE(moved.Commit());
  }
  EXPECT_EQ(*ReadTextFile(p, 100), "x");
  EXPECT_EQ(CountEntries(dir->path()), 1u);
}

TEST(ScopedTempDir, RemovesItselfUnlessReleased) {
  fs::path kept, removed;
  {
    auto a = ScopedTempDir::Create({}, "airlock-test-");
    auto b = ScopedTempDir::Create();
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->path().filename().string().rfind("airlock-test-", 0), 0u);
    ASSERT_TRUE(WriteFileAtomic(a->path() / "f", AsBytes("x")));
    fs::create_directories(b->path() / "sub" / "dir");
    ASSERT_TRUE(WriteFileAtomic(b->path() / "sub" / "dir" / "f", AsBytes("x")));
    removed = b->path();
    kept = a->Release();
    EXPECT_TRUE(a->path().empty());
  }
  EXPECT_FALSE(fs::exists(removed));
  EXPECT_TRUE(fs::exists(kept / "f"));
  fs::remove_all(kept);
}

}  // namespace
}  // namespace airlock
