#include "server/data_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace airlock::server {

namespace fs = std::filesystem;

Result<UniqueFd> LockDataDir(const fs::path& data, bool exclusive) {
  const fs::path path = data / kDataLockName;
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    return MakeError(ErrorCode::kIo, "cannot open " + path.string() + ": " + std::strerror(errno));
  }
  int rc;
  do {
    rc = ::flock(fd.get(), (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) return fd;
  if (errno != EWOULDBLOCK) {
    return MakeError(ErrorCode::kIo, "cannot lock " + path.string() + ": " + std::strerror(errno));
  }
  return MakeError(
      ErrorCode::kAlreadyExists,
      "the data directory " + data.string() + " is in use by another airlockd (it holds " +
          path.string() + "); " +
          (exclusive ? "the SQLite store is for one process: stop the other airlockd, or give "
                       "this one another --data"
                     : "it uses the SQLite store, which is for one process: stop it, or run "
                       "every airlockd sharing this directory on one PostgreSQL --database"));
}

namespace {

bool IsSecretFile(const std::string& name) {
  auto ends_with = [&](std::string_view tail) {
    return name.size() >= tail.size() &&
           name.compare(name.size() - tail.size(), tail.size(), tail.data(), tail.size()) == 0;
  };
  return ends_with(".db") || ends_with(".db-wal") || ends_with(".db-shm") ||
         ends_with(".db-journal") || ends_with(".audit") || name == "vault.pass" ||
         name == kDataLockName;
}

// chmod PATH to MODE if its permission bits differ; records it in *changed.
Result<void> SetMode(const fs::path& path, mode_t mode, std::vector<std::string>* changed) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    return MakeError(ErrorCode::kIo, "stat " + path.string() + ": " + std::strerror(errno));
  }
  if (S_ISLNK(st.st_mode) || (st.st_mode & 07777) == mode) return {};
  if (::chmod(path.c_str(), mode) != 0) {
    return MakeError(ErrorCode::kIo, "chmod " + path.string() + ": " + std::strerror(errno));
  }
  changed->push_back(path.string());
  return {};
}

}  // namespace

Result<std::vector<std::string>> TightenDataDir(const fs::path& data) {
  std::vector<std::string> changed;
  AIRLOCK_TRY(SetMode(data, 0700, &changed));
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(data, ec)) {
    std::error_code type_ec;
    if (!entry.is_regular_file(type_ec)) continue;
    if (!IsSecretFile(entry.path().filename().string())) continue;
    AIRLOCK_TRY(SetMode(entry.path(), 0600, &changed));
  }
  if (ec) return MakeError(ErrorCode::kIo, "list " + data.string() + ": " + ec.message());
  return changed;
}

}  // namespace airlock::server
