// Filesystem helpers: bounded reads and crash-safe writes (temporary name, fsync, rename).
#ifndef AIRLOCK_COMMON_FILE_H_
#define AIRLOCK_COMMON_FILE_H_

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "common/bytes.h"
#include "common/result.h"

namespace airlock {

// Reads a whole file. kNotFound if it does not exist, kLimitExceeded if larger than `max_size`, kIo else.
Result<Bytes> ReadFile(const std::filesystem::path& path, uint64_t max_size);
Result<std::string> ReadTextFile(const std::filesystem::path& path, uint64_t max_size);

// A file written under a temporary name beside `path` and renamed onto it by Commit(). If the object is
// destroyed without Commit() (an error path), the temporary file is removed, so no half-written output is
// ever visible under `path`. Not thread-safe.
class AtomicFile {
 public:
  static Result<AtomicFile> Create(const std::filesystem::path& path, mode_t mode = 0644);
  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  ~AtomicFile();

  Result<void> Write(ByteSpan data);
  // fsyncs, renames onto the final path and fsyncs the directory.
  Result<void> Commit();
  int fd() const { return fd_; }
  const std::filesystem::path& temp_path() const { return temp_path_; }

 private:
  AtomicFile(std::filesystem::path path, std::filesystem::path temp_path, int fd)
      : path_(std::move(path)), temp_path_(std::move(temp_path)), fd_(fd) {}
  std::filesystem::path path_;
  std::filesystem::path temp_path_;
  int fd_ = -1;
};

// Writes `data` to `path` atomically with permissions `mode`.
Result<void> WriteFileAtomic(const std::filesystem::path& path, ByteSpan data, mode_t mode = 0644);

// A directory made with mkdtemp, removed with its contents on destruction unless Release()d.
class ScopedTempDir {
 public:
  // Creates the directory inside `parent` (the system temp dir if empty), named `prefix` + random.
  static Result<ScopedTempDir> Create(const std::filesystem::path& parent = {},
                                      const std::string& prefix = "airlock-");
  ScopedTempDir(ScopedTempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  ScopedTempDir& operator=(ScopedTempDir&&) = delete;
  ~ScopedTempDir();
  const std::filesystem::path& path() const { return path_; }
  // Keeps the directory; returns its path.
  std::filesystem::path Release();

 private:
  explicit ScopedTempDir(std::filesystem::path p) : path_(std::move(p)) {}
  std::filesystem::path path_;
};

}  // namespace airlock

#endif  // AIRLOCK_COMMON_FILE_H_
