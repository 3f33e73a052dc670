#include "server/upload_file.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <system_error>

namespace airlock::server {

bool TempUpload::Create(const std::filesystem::path& dir) {
  std::string name = (dir / (std::string(kUploadPrefix) + "XXXXXX")).string();
  int fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) return false;
  fd_ = UniqueFd(fd);
  path_ = name;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    Remove();
    return false;
  }
  return true;
}

bool TempUpload::Finish() { return ::fsync(fd_.get()) == 0; }

void TempUpload::Remove() {
  if (!path_.empty()) {
    struct stat ours {
    }, named{};
    if (fd_.valid() && ::fstat(fd_.get(), &ours) == 0 && ::lstat(path_.c_str(), &named) == 0 &&
        ours.st_dev == named.st_dev && ours.st_ino == named.st_ino) {
      ::unlink(path_.c_str());
    }
    path_.clear();
  }
  fd_ = UniqueFd();
}

bool UploadSlot::Acquire(std::atomic<uint32_t>* in_use, uint32_t max) {
  uint32_t before = in_use->fetch_add(1);
  if (max != 0 && before >= max) {
    in_use->fetch_sub(1);
    return false;
  }
  in_use_ = in_use;
  return true;
}

void UploadSlot::Release() {
  if (in_use_ != nullptr) in_use_->fetch_sub(1);
  in_use_ = nullptr;
}

size_t RemoveStaleUploads(const std::filesystem::path& dir) {
  size_t removed = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.compare(0, kUploadPrefix.size(), kUploadPrefix) != 0) continue;
    UniqueFd fd(::open(it->path().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!fd.valid()) continue;
    struct stat ours {
    }, named{};
    if (::fstat(fd.get(), &ours) != 0 || !S_ISREG(ours.st_mode)) continue;
    // Locked: an upload in progress in another airlockd sharing DATA.
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) continue;
    if (::lstat(it->path().c_str(), &named) != 0 || named.st_dev != ours.st_dev ||
        named.st_ino != ours.st_ino) {
      continue;
    }
    if (::unlink(it->path().c_str()) == 0) ++removed;
  }
  return removed;
}

}  // namespace airlock::server
