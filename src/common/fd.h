// An owned file descriptor and exact positional reads.
#ifndef AIRLOCK_COMMON_FD_H_
#define AIRLOCK_COMMON_FD_H_

#include <cstdint>
#include <filesystem>
#include <span>

#include "common/result.h"

namespace airlock {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Closes now and returns what close(2) returns (0, or -1 with errno set: a delayed write error on
  // some filesystems, which the destructor would lose). The descriptor is released either way.
  int Close();

 private:
  int fd_ = -1;
};

// Opens a regular file read-only (kNotFound, kInvalidArgument for a directory, kIo).
[[nodiscard]] Result<UniqueFd> OpenForRead(const std::filesystem::path& path, uint64_t* size_out = nullptr);

// Reads exactly out.size() bytes at `offset`; kTruncated if the file ends first, kIo on error.
[[nodiscard]] Result<void> PreadExact(int fd, uint64_t offset, std::span<uint8_t> out);

// Reads up to out.size() bytes at `offset`; returns how many (0 at end of file).
[[nodiscard]] Result<size_t> PreadSome(int fd, uint64_t offset, std::span<uint8_t> out);

// Writes all of `data` to `fd`.
[[nodiscard]] Result<void> WriteAll(int fd, std::span<const uint8_t> data);

// Waits for flock(2) `operation` (LOCK_EX or LOCK_SH) on `fd`, retrying on EINTR; kIo naming
// `path` otherwise. Released when the descriptor closes.
[[nodiscard]] Result<void> LockFile(int fd, int operation, const std::filesystem::path& path);

// Opens `path` with open(2) `flags` (O_CLOEXEC added; mode 0600 when O_CREAT makes it) and waits
// for LockFile(`operation`) on it: a lock file held for as long as the returned descriptor lives.
// kIo when it cannot be opened or locked.
[[nodiscard]] Result<UniqueFd> OpenLocked(const std::filesystem::path& path, int flags,
                                          int operation);

}  // namespace airlock

#endif  // AIRLOCK_COMMON_FD_H_
