#include "common/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <system_error>

namespace airlock {

namespace fs = std::filesystem;

namespace {
Error ErrnoError(const std::string& what, const fs::path& path, int err) {
  ErrorCode code = err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo;
  return Error(code, what + " " + path.string() + ": " + std::strerror(err));
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

Result<AtomicFile> AtomicFile::Create(const fs::path& path, mode_t mode) {
  fs::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  std::string tmpl = (dir / ("." + path.filename().string() + ".tmp-XXXXXX")).string();
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return tl::unexpected(ErrnoError("cannot create temporary file in", dir, errno));
  if (::fchmod(fd, mode) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(tmpl.c_str());
    return tl::unexpected(ErrnoError("cannot chmod", tmpl, err));
  }
  return AtomicFile(path, tmpl, fd);
}

AtomicFile::AtomicFile(AtomicFile&& other) noexcept
    : path_(std::move(other.path_)), temp_path_(std::move(other.temp_path_)), fd_(other.fd_) {
  other.fd_ = -1;
  other.temp_path_.clear();
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

Result<void> AtomicFile::Write(ByteSpan data) {
  if (fd_ < 0) return MakeError(ErrorCode::kInternal, "write after commit");
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
  if (::fsync(fd_) != 0) return tl::unexpected(ErrnoError("cannot fsync", temp_path_, errno));
  ::close(fd_);
  fd_ = -1;
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    return tl::unexpected(ErrnoError("cannot rename onto", path_, errno));
  }
  temp_path_.clear();
  fs::path dir = path_.parent_path();
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

Result<void> WriteFileAtomic(const fs::path& path, ByteSpan data, mode_t mode) {
  AIRLOCK_ASSIGN_OR_RETURN(AtomicFile f, AtomicFile::Create(path, mode));
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
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return tl::unexpected(ErrnoError("cannot create temporary directory in", base, errno));
  }
  return ScopedTempDir(fs::path(tmpl));
}

ScopedTempDir::~ScopedTempDir() {
  if (!path_.empty()) {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
}

fs::path ScopedTempDir::Release() {
  fs::path p = std::move(path_);
  path_.clear();
  return p;
}

}  // namespace airlock
