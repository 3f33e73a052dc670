#include "common/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

// A file `name` in `dir` holding `text`, made with `mode` (not filtered by the umask).
fs::path MakeFile(const fs::path& dir, const std::string& name, std::string_view text,
                  mode_t mode) {
  fs::path p = dir / name;
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  EXPECT_GE(fd, 0) << p;
  EXPECT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::fchmod(fd, mode);
  ::close(fd);
  return p;
}

TEST(AtomicFile, TemporaryFileIsPrivateUntilCommit) {
  auto dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir);
  auto f = AtomicFile::Create(dir->path() / "out", 0644);
  ASSERT_TRUE(f);
  ASSERT_TRUE(f->Write(AsBytes("secret")));
  EXPECT_EQ(ModeOf(f->temp_path()), 0600u);
  EXPECT_EQ(f->temp_path().filename().string().rfind(".out.tmp-", 0), 0u);
  ASSERT_TRUE(f->Commit());
  EXPECT_EQ(ModeOf(dir->path() / "out"), 0644u);
}

TEST(AtomicFile, NeverOverwriteLeavesAnOutputThatAppearedMeanwhile) {
  for (bool fallback : {false, true}) {
    ForceRenameNoReplaceFallbackForTesting(fallback);
    auto dir = ScopedTempDir::Create();
    ASSERT_TRUE(dir);
    fs::path p = dir->path() / "out";
    auto f = AtomicFile::Create(p, 0644, Overwrite::kNever);
    ASSERT_TRUE(f);
    ASSERT_TRUE(f->Write(AsBytes("ours")));
    // The race a check-then-rename loses: the output appears after any check, before the rename.
    MakeFile(dir->path(), "out", "theirs", 0644);
    auto c = f->Commit();
    ASSERT_FALSE(c) << "fallback " << fallback;
    EXPECT_EQ(c.error().code(), ErrorCode::kAlreadyExists);
    EXPECT_NE(c.error().message().find("already exists"), std::string::npos);
    EXPECT_EQ(*ReadTextFile(p, 100), "theirs");
    f = tl::unexpected(Error(ErrorCode::kInternal, "dropped"));  // destroys the AtomicFile
    EXPECT_EQ(CountEntries(dir->path()), 1u) << "the temporary file was left";
    // With nothing in the way it is placed.
    ASSERT_TRUE(WriteFileAtomic(dir->path() / "new", AsBytes("ours"), 0600, Overwrite::kNever));
    EXPECT_EQ(*ReadTextFile(dir->path() / "new", 100), "ours");
    EXPECT_EQ(ModeOf(dir->path() / "new"), 0600u);
    EXPECT_EQ(CountEntries(dir->path()), 2u);
  }
  ForceRenameNoReplaceFallbackForTesting(false);
}

TEST(RenameNoReplace, NeverReplacesAFileOrADirectory) {
  for (bool fallback : {false, true}) {
    ForceRenameNoReplaceFallbackForTesting(fallback);
    auto dir = ScopedTempDir::Create();
    ASSERT_TRUE(dir);
    const fs::path& d = dir->path();
    MakeFile(d, "a", "a", 0644);
    MakeFile(d, "b", "b", 0644);
    auto r = RenameNoReplace(d / "a", d / "b");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kAlreadyExists);
    EXPECT_EQ(*ReadTextFile(d / "a", 10), "a");
    EXPECT_EQ(*ReadTextFile(d / "b", 10), "b");

    // A staged directory onto a directory with files, or onto a file: refused, both untouched.
    fs::create_directories(d / "staged/sub");
    MakeFile(d / "staged/sub", "f", "new", 0644);
    fs::create_directories(d / "target");
    MakeFile(d / "target", "mine", "keep", 0644);
    r = RenameNoReplace(d / "staged", d / "target");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kAlreadyExists);
    EXPECT_EQ(*ReadTextFile(d / "target/mine", 10), "keep");
    EXPECT_EQ(*ReadTextFile(d / "staged/sub/f", 10), "new");
    r = RenameNoReplace(d / "staged", d / "b");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kAlreadyExists);
    EXPECT_EQ(*ReadTextFile(d / "b", 10), "b");
    if (!fallback) {
      // An empty directory that appeared is not replaced either (the fallback, rename(2), may
      // replace an empty directory: nothing is lost, and file.h says so).
      fs::create_directories(d / "empty");
      r = RenameNoReplace(d / "staged", d / "empty");
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code(), ErrorCode::kAlreadyExists);
    }

    ASSERT_TRUE(RenameNoReplace(d / "staged", d / "placed"));
    EXPECT_EQ(*ReadTextFile(d / "placed/sub/f", 10), "new");
    ASSERT_TRUE(RenameNoReplace(d / "a", d / "c"));
    EXPECT_FALSE(fs::exists(d / "a"));
    EXPECT_EQ(*ReadTextFile(d / "c", 10), "a");
  }
  ForceRenameNoReplaceFallbackForTesting(false);
}

TEST(RemoveStaleStaging, RemovesOnlyUnlockedPrivateOwnStagingWithTheExactName) {
  auto dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir);
  const fs::path& d = dir->path();
  // Left by a killed AtomicFile writer of "out": private, unlocked.
  fs::path stale = MakeFile(d, ".out.tmp-aB3xY9", "plaintext", 0600);
  // Not ours to remove: readable by others, a longer name, another output's, a symlink.
  fs::path readable = MakeFile(d, ".out.tmp-Zz0000", "user", 0644);
  fs::path longer = MakeFile(d, ".out.tmp-aB3xY9x", "user", 0600);
  fs::path other = MakeFile(d, ".other.tmp-aB3xY9", "user", 0600);
  ASSERT_EQ(::symlink("/etc/passwd", (d / ".out.tmp-LinkLn").c_str()), 0);
  // A live writer of "out" holds its temporary file locked.
  auto live = AtomicFile::Create(d / "out");
  ASSERT_TRUE(live);
  ASSERT_TRUE(live->Write(AsBytes("in progress")));
  EXPECT_FALSE(fs::exists(stale)) << "AtomicFile::Create removes what a killed run left";
  EXPECT_EQ(RemoveStaleStaging(d, ".out.tmp-", StagingKind::kFile), 0u);
  EXPECT_TRUE(fs::exists(live->temp_path()));
  EXPECT_TRUE(fs::exists(readable));
  EXPECT_TRUE(fs::exists(longer));
  EXPECT_TRUE(fs::exists(other));
  EXPECT_TRUE(fs::is_symlink(d / ".out.tmp-LinkLn"));
  ASSERT_TRUE(live->Commit());
  EXPECT_EQ(*ReadTextFile(d / "out", 100), "in progress");

  // Directories: the same rules, and a live ScopedTempDir is locked.
  fs::path stale_dir = d / ".airlock-open-Qw12Er";
  fs::create_directories(stale_dir / "files/deep");
  MakeFile(stale_dir / "files/deep", "f", "plaintext", 0600);
  fs::permissions(stale_dir, fs::perms(0700));
  auto live_dir = ScopedTempDir::Create(d, ".airlock-open-");
  ASSERT_TRUE(live_dir);
  EXPECT_EQ(ModeOf(live_dir->path()), 0700u);
  EXPECT_EQ(RemoveStaleStaging(d, ".airlock-open-", StagingKind::kFile), 0u);  // wrong kind
  EXPECT_EQ(RemoveStaleStaging(d, ".airlock-open-", StagingKind::kDirectory), 1u);
  EXPECT_FALSE(fs::exists(stale_dir));
  EXPECT_TRUE(fs::exists(live_dir->path()));
}

}  // namespace
}  // namespace airlock
