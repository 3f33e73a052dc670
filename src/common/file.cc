#include "common/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>
#include <vector>

namespace airlock {

namespace fs = std::filesystem;

namespace {
Error ErrnoError(const std::string& what, const fs::path& path, int err) {
  ErrorCode code = err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo;
  return Error(code, what + " " + path.string() + ": " + std::strerror(err));
}

volatile std::sig_atomic_t g_interrupted = 0;
volatile std::sig_atomic_t g_interrupt_signal = 0;

void OnInterruptSignal(int sig) {
  g_interrupt_signal = sig;
  g_interrupted = 1;
}
bool g_force_rename_fallback = false;

fs::path DirOf(const fs::path& path) {
  fs::path dir = path.parent_path();
  return dir.empty() ? fs::path(".") : dir;
}

// Takes the staging lock on an open staging file or directory.
bool LockStaging(int fd) { return ::flock(fd, LOCK_EX | LOCK_NB) == 0; }

bool IsMkstempSuffix(std::string_view s) {
  if (s.size() != 6) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}
}  // namespace

Result<Bytes> ReadFile(const fs::path& path, uint64_t max_size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return tl::unexpected(ErrnoError("cannot open", path, errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return tl::unexpected(ErrnoError("cannot stat", path, err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return MakeError(ErrorCode::kInvalidArgument, path.string() + " is a directory");
  }
  if (static_cast<uint64_t>(st.st_size) > max_size) {
    ::close(fd);
    return MakeError(ErrorCode::kLimitExceeded, path.string() + " is larger than " +
                                                    std::to_string(max_size) + " bytes");
  }
  Bytes out;
  out.reserve(static_cast<size_t>(st.st_size));
  uint8_t buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return tl::unexpected(ErrnoError("cannot read", path, err));
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_size) {
      ::close(fd);
      return MakeError(ErrorCode::kLimitExceeded,
                       path.string() + " is larger than " + std::to_string(max_size) + " bytes");
    }
    out.insert(out.end(), buf, buf + n);
  }
  ::close(fd);
  return out;
}

Result<std::string> ReadTextFile(const fs::path& path, uint64_t max_size) {
  AIRLOCK_ASSIGN_OR_RETURN(Bytes b, ReadFile(path, max_size));
  return std::string(b.begin(), b.end());
}

void RequestInterrupt() noexcept { g_interrupted = 1; }

bool InterruptRequested() noexcept { return g_interrupted != 0; }

Result<void> CheckInterrupt() {
  if (g_interrupted != 0) {
    return MakeError(ErrorCode::kIo, "interrupted by a signal; the partial output was removed");
  }
  return {};
}

void InstallInterruptHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnInterruptSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // reads and writes carry on; the loops check the flag
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    // A signal the caller chose to ignore (nohup, a shell's background job) stays ignored.
    struct sigaction current {};
    if (::sigaction(sig, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) continue;
    ::sigaction(sig, &sa, nullptr);
  }
}

void ReraiseInterruptSignal(std::string_view last_words) {
  int sig = g_interrupt_signal;
  if (sig == 0) return;
  if (!last_words.empty()) {
    std::fwrite(last_words.data(), 1, last_words.size(), stderr);
    std::fflush(stderr);
  }
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  ::sigaction(sig, &sa, nullptr);
  ::raise(sig);
}

void ForceRenameNoReplaceFallbackForTesting(bool on) { g_force_rename_fallback = on; }

Result<void> RenameNoReplace(const fs::path& from, const fs::path& to) {
  int r = g_force_rename_fallback
              ? -1
              : ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE);
  int err = g_force_rename_fallback ? EINVAL : errno;
  if (r == 0) return {};
  if (err == EINVAL || err == ENOSYS) {
    struct stat st {};
    if (::lstat(from.c_str(), &st) != 0)
      return tl::unexpected(ErrnoError("cannot stat", from, errno));
    if (S_ISDIR(st.st_mode)) {
      // rename(2) of a directory replaces at most an empty directory: nothing is lost.
      if (::rename(from.c_str(), to.c_str()) == 0) return {};
      err = errno;
      if (err == ENOTEMPTY || err == ENOTDIR || err == EISDIR) err = EEXIST;
    } else {
      if (::link(from.c_str(), to.c_str()) == 0) {
        ::unlink(from.c_str());
        return {};
      }
      err = errno;
    }
  }
  if (err == EEXIST) {
    return MakeError(ErrorCode::kAlreadyExists,
                     to.string() +
                         " already exists (it appeared while the output was being made; "
                         "it was left as it is)");
  }
  return tl::unexpected(ErrnoError("cannot move into place", to, err));
}

Result<void> FsyncPath(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return tl::unexpected(ErrnoError("cannot open", path, errno));
  if (::fsync(fd.get()) != 0) return tl::unexpected(ErrnoError("cannot fsync", path, errno));
  return {};
}

std::string AtomicFileStagingPrefix(const fs::path& path) {
  return "." + path.filename().string() + ".tmp-";
}

size_t RemoveStaleStaging(const fs::path& dir, std::string_view prefix, StagingKind kind) {
  UniqueFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd.valid()) return 0;
  std::vector<std::string> candidates;
  {
    int list_fd = ::fcntl(dfd.get(), F_DUPFD_CLOEXEC, 0);
    if (list_fd < 0) return 0;
    DIR* d = ::fdopendir(list_fd);
    if (d == nullptr) {
      ::close(list_fd);
      return 0;
    }
    while (dirent* e = ::readdir(d)) {
      std::string_view name(e->d_name);
      if (name.size() == prefix.size() + 6 && name.substr(0, prefix.size()) == prefix &&
          IsMkstempSuffix(name.substr(prefix.size()))) {
        candidates.emplace_back(name);
      }
    }
    ::closedir(d);
  }
  size_t removed = 0;
  const bool want_dir = kind == StagingKind::kDirectory;
  for (const std::string& name : candidates) {
    int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (want_dir ? O_DIRECTORY : 0);
    UniqueFd fd(::openat(dfd.get(), name.c_str(), flags));
    if (!fd.valid()) continue;  // a symlink, gone, or not ours to read
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) continue;
    if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) continue;
    if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) continue;
    if (!LockStaging(fd.get())) continue;  // a live run holds it
    if (want_dir) {
      std::error_code ec;
      fs::remove_all(dir / name, ec);
      if (ec) continue;
    } else if (::unlinkat(dfd.get(), name.c_str(), 0) != 0) {
      continue;
    }
    ++removed;
  }
  return removed;
}

Result<AtomicFile> AtomicFile::Create(const fs::path& path, mode_t mode, Overwrite overwrite) {
  fs::path dir = DirOf(path);
  const std::string prefix = AtomicFileStagingPrefix(path);
  RemoveStaleStaging(dir, prefix, StagingKind::kFile);
  std::string tmpl = (dir / (prefix + "XXXXXX")).string();
  // mkstemp creates the file 0600: it stays private until Commit gives it its final mode.
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return tl::unexpected(ErrnoError("cannot create temporary file in", dir, errno));
  if (!LockStaging(fd)) {
    int err = errno;
    ::close(fd);
    ::unlink(tmpl.c_str());
    return tl::unexpected(ErrnoError("cannot lock", tmpl, err));
  }
  return AtomicFile(path, tmpl, fd, mode, overwrite);
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)),
      temp_path_(std::move(other.temp_path_)),
      fd_(other.fd_),
      mode_(other.mode_),
      overwrite_(other.overwrite_) {
  other.fd_ = -1;
  other.temp_path_.clear();
}

AtomicFile::~AtomicFile() {
  // Unlink before close: the lock is held until the name is gone.
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  if (fd_ >= 0) ::close(fd_);
}

Result<void> AtomicFile::Write(ByteSpan data) {
  if (fd_ < 0) return MakeError(ErrorCode::kInternal, "write after commit");
  AIRLOCK_TRY(CheckInterrupt());
  const uint8_t* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd_, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return tl::unexpected(ErrnoError("cannot write", temp_path_, errno));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return {};
}

Result<void> AtomicFile::Commit() {
  if (fd_ < 0) return MakeError(ErrorCode::kInternal, "commit twice");
  AIRLOCK_TRY(CheckInterrupt());
  if (::fchmod(fd_, mode_) != 0)
    return tl::unexpected(ErrnoError("cannot chmod", temp_path_, errno));
  if (::fsync(fd_) != 0) return tl::unexpected(ErrnoError("cannot fsync", temp_path_, errno));
  if (overwrite_ == Overwrite::kNever) {
    AIRLOCK_TRY(RenameNoReplace(temp_path_, path_));
  } else if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    return tl::unexpected(ErrnoError("cannot rename onto", path_, errno));
  }
  temp_path_.clear();
  ::close(fd_);
  fd_ = -1;
  UniqueFd dfd(::open(DirOf(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.valid()) ::fsync(dfd.get());
  return {};
}

Result<void> WriteFileAtomic(const fs::path& path, ByteSpan data, mode_t mode,
                             Overwrite overwrite) {
  AIRLOCK_ASSIGN_OR_RETURN(AtomicFile f, AtomicFile::Create(path, mode, overwrite));
  AIRLOCK_TRY(f.Write(data));
  return f.Commit();
}

Result<ScopedTempDir> ScopedTempDir::Create(const fs::path& parent, const std::string& prefix) {
  fs::path base = parent;
  if (base.empty()) {
    std::error_code ec;
    base = fs::temp_directory_path(ec);
    if (ec) base = "/tmp";
  }
  std::string tmpl = (base / (prefix + "XXXXXX")).string();
  // mkdtemp creates the directory 0700 whatever the umask.
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return tl::unexpected(ErrnoError("cannot create temporary directory in", base, errno));
  }
  UniqueFd lock(::open(tmpl.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!lock.valid() || !LockStaging(lock.get())) {
    int err = errno;
    ::rmdir(tmpl.c_str());
    return tl::unexpected(ErrnoError("cannot lock", tmpl, err));
  }
  return ScopedTempDir(fs::path(tmpl), std::move(lock));
}

ScopedTempDir::~ScopedTempDir() {
  // Removed while still locked, so a concurrent RemoveStaleStaging never sees it unlocked.
  if (!path_.empty()) {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
}

fs::path ScopedTempDir::Release() {
  fs::path p = std::move(path_);
  path_.clear();
  lock_ = UniqueFd();
  return p;
}

}  // namespace airlock
