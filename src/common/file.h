// Filesystem helpers: bounded reads, crash-safe writes (temporary name, fsync, rename), and the
// staging that outputs are built in before they are placed.
//
// Staging (AtomicFile's temporary file, ScopedTempDir) is created private from the start (mkstemp
// 0600, mkdtemp 0700) and holds an exclusive flock(2) for its lifetime. A run killed by SIGKILL
// cannot clean up, so the next one does: RemoveStaleStaging deletes only entries with the exact
// staging name, owned by this user, with no group or other permission, that no live process holds
// locked (the kernel drops a killed process's locks).
#ifndef AIRLOCK_COMMON_FILE_H_
#define AIRLOCK_COMMON_FILE_H_

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/fd.h"
#include "common/result.h"

namespace airlock {

// Reads a whole file. kNotFound if it does not exist, kLimitExceeded if larger than `max_size`, kIo else.
Result<Bytes> ReadFile(const std::filesystem::path& path, uint64_t max_size);
Result<std::string> ReadTextFile(const std::filesystem::path& path, uint64_t max_size);

// What placing an output may do to something already at its path.
enum class Overwrite {
  kReplace,  // rename(2): atomically replaces an existing file
  kNever,  // RenameNoReplace: kAlreadyExists if anything is there, even if it appeared a moment ago
};

// Moves `from` to `to` unless something exists at `to`, with no window between the check and the
// move: renameat2(RENAME_NOREPLACE). kAlreadyExists if `to` exists (then nothing moved). Where the
// filesystem does not support the flag (EINVAL, or ENOSYS), a regular file is placed with link(2)
// then unlink(2) of `from` (link never replaces either); a directory falls back to rename(2), which
// can replace only an empty directory (it fails on a non-empty one or on a file), so no data is
// lost.
[[nodiscard]] Result<void> RenameNoReplace(const std::filesystem::path& from,
                                           const std::filesystem::path& to);

// fsyncs a file or directory by path (directories: the entries in it). kIo on failure.
[[nodiscard]] Result<void> FsyncPath(const std::filesystem::path& path);

// A file written under a temporary name beside `path` (".NAME.tmp-XXXXXX", mode 0600 until Commit),
// and renamed onto it by Commit(). If the object is destroyed without Commit() (an error path), the
// temporary file is removed, so no half-written output is ever visible under `path`. Create first
// removes temporary files of `path` left by killed runs (RemoveStaleStaging). Not thread-safe.
class AtomicFile {
 public:
  static Result<AtomicFile> Create(const std::filesystem::path& path, mode_t mode = 0644,
                                   Overwrite overwrite = Overwrite::kReplace);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  ~AtomicFile();

  // Fails with kIo "interrupted" once InterruptRequested() (the destructor then removes the file).
  Result<void> Write(ByteSpan data);
  // Sets the final mode, fsyncs, places the file at its path (rename, or RenameNoReplace: then
  // kAlreadyExists if something appeared there, which is left as it is) and fsyncs the directory.
  Result<void> Commit();
  int fd() const { return fd_; }
  const std::filesystem::path& temp_path() const { return temp_path_; }

 private:
  AtomicFile(std::filesystem::path path, std::filesystem::path temp_path, int fd, mode_t mode,
             Overwrite overwrite)
      : path_(std::move(path)),
        temp_path_(std::move(temp_path)),
        fd_(fd),
        mode_(mode),
        overwrite_(overwrite) {}
  std::filesystem::path path_;
  std::filesystem::path temp_path_;
  int fd_ = -1;  // also holds the staging lock
  mode_t mode_ = 0644;
  Overwrite overwrite_ = Overwrite::kReplace;
};

// Writes `data` to `path` atomically with permissions `mode`.
Result<void> WriteFileAtomic(const std::filesystem::path& path, ByteSpan data, mode_t mode = 0644,
                             Overwrite overwrite = Overwrite::kReplace);

// A directory made with mkdtemp (0700), locked (flock) while it exists, removed with its contents
// on destruction unless Release()d.
class ScopedTempDir {
 public:
  // Creates the directory inside `parent` (the system temp dir if empty), named `prefix` + random.
  static Result<ScopedTempDir> Create(const std::filesystem::path& parent = {},
                                      const std::string& prefix = "airlock-");
  ScopedTempDir(ScopedTempDir&& other) noexcept
      : path_(std::move(other.path_)), lock_(std::move(other.lock_)) {
    other.path_.clear();
  }
  ScopedTempDir& operator=(ScopedTempDir&&) = delete;
  ~ScopedTempDir();
  const std::filesystem::path& path() const { return path_; }
  // Keeps the directory; returns its path.
  std::filesystem::path Release();

 private:
  ScopedTempDir(std::filesystem::path p, UniqueFd lock)
      : path_(std::move(p)), lock_(std::move(lock)) {}
  std::filesystem::path path_;
  UniqueFd lock_;
};

enum class StagingKind { kFile, kDirectory };

// Removes the staging a killed run left in `dir`: entries named `prefix` followed by exactly six
// characters of mkstemp's alphabet [A-Za-z0-9], of `kind`, owned by this user, with no group or
// other permission bits, that no live process holds locked. Anything else (other names, other
// owners, a symlink, a user's file that happens to match) is left alone. Returns how many were
// removed; errors are not reported (a staging that cannot be removed stays, as before).
size_t RemoveStaleStaging(const std::filesystem::path& dir, std::string_view prefix,
                          StagingKind kind);

// The staging prefix AtomicFile uses for `path`: "." + filename + ".tmp-".
std::string AtomicFileStagingPrefix(const std::filesystem::path& path);

// Interruption (SIGTERM, SIGINT): a command that writes plaintext staging installs a signal handler
// that calls RequestInterrupt() (async-signal-safe: it only sets a flag). Staging writers check the
// flag between blocks (AtomicFile::Write, and the bundle open loops) and fail with kIo
// "interrupted", so the staging is removed by the same destructors as on any error, on the main
// thread, before the process exits.
void RequestInterrupt() noexcept;
bool InterruptRequested() noexcept;
[[nodiscard]] Result<void> CheckInterrupt();

// Installs handlers for SIGINT, SIGTERM and SIGHUP (those not already ignored, as under nohup) that
// remember the signal and call RequestInterrupt(). A flag rather than cleanup inside the handler:
// removing a staging tree needs opendir/readdir and the allocator, which are not async-signal-safe,
// and a handler that deleted files while the main thread was still creating them would race it; the
// main thread instead stops at its next block (at most about 1 MiB of work) and runs the ordinary
// error-path destructors.
void InstallInterruptHandlers();
// If one of those signals was caught: writes `last_words` to stderr, restores the signal's default
// action and raises it again, so the process ends as killed by it (status 128+N in a shell) once
// the caller has cleaned up. Returns if none was caught.
void ReraiseInterruptSignal(std::string_view last_words = {});

// Makes RenameNoReplace behave as on a filesystem without RENAME_NOREPLACE (EINVAL), to test the
// fallback. Not thread-safe; tests only.
void ForceRenameNoReplaceFallbackForTesting(bool on);

}  // namespace airlock

#endif  // AIRLOCK_COMMON_FILE_H_
