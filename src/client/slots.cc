#include "client/slots.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <system_error>

#include "bundle/bundle.h"
#include "client/install_journal.h"
#include "common/bytes.h"
#include "common/file.h"
#include "crypto/hash.h"

namespace airlock::client {
namespace {

namespace fs = std::filesystem;

Error SysError(std::string_view what, const fs::path& path, int err) {
  return Error(ErrorCode::kIo, std::string(what) + " " + path.string() + ": " + std::strerror(err));
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Removes a tree; a missing one is fine.
Result<void> RemoveTree(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
  if (ec) return MakeError(ErrorCode::kIo, "cannot remove " + p.string() + ": " + ec.message());
  return {};
}

}  // namespace

Result<void> SlotLayout::Ensure() const {
  for (const fs::path& p : {root_, releases()}) {
    if (::mkdir(p.c_str(), 0755) != 0 && errno != EEXIST) {
      return tl::unexpected(SysError("cannot create", p, errno));
    }
    std::error_code ec;
    if (!fs::is_directory(fs::symlink_status(p, ec))) {
      return MakeError(ErrorCode::kIo, p.string() + " exists and is not a directory");
    }
  }
  return {};
}

Result<void> SlotLayout::PointCurrentAt(std::string_view id, const fs::path& builtin) const {
  fs::path tmp = root_ / kCurrentTempName;
  if (id.empty() && builtin.empty()) {
    if (::unlink(current().c_str()) != 0 && errno != ENOENT) {
      return tl::unexpected(SysError("cannot remove", current(), errno));
    }
    return FsyncPath(root_);
  }
  // Relative, so the install directory may be moved as a whole.
  fs::path target = id.empty() ? builtin : fs::path("releases") / std::string(id);
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) {
    return tl::unexpected(SysError("cannot remove", tmp, errno));
  }
  if (::symlink(target.c_str(), tmp.c_str()) != 0) {
    return tl::unexpected(SysError("cannot create symlink", tmp, errno));
  }
  // A symlink cannot be opened to fsync it; fsyncing the directory makes its entry (and, on the
  // usual filesystems, the link's inode) durable before it replaces `current`.
  AIRLOCK_TRY(FsyncPath(root_));
  if (::rename(tmp.c_str(), current().c_str()) != 0) {
    return tl::unexpected(SysError("cannot rename over", current(), errno));
  }
  return FsyncPath(root_);
}

Result<std::string> SlotLayout::CurrentRelease() const {
  std::error_code ec;
  auto st = fs::symlink_status(current(), ec);
  if (!fs::exists(st)) return std::string();
  if (!fs::is_symlink(st)) {
    return MakeError(ErrorCode::kMalformed, current().string() + " is not a symlink");
  }
  fs::path target = fs::read_symlink(current(), ec);
  if (ec)
    return MakeError(ErrorCode::kIo, "cannot read " + current().string() + ": " + ec.message());
  auto it = target.begin();
  if (target.is_relative() && it != target.end() && *it == "releases" && ++it != target.end()) {
    std::string id = it->string();
    if (++it == target.end() && ValidateReleaseId(id)) return id;
  }
  return std::string();
}

Result<void> SlotLayout::Promote(std::string_view id) const {
  AIRLOCK_TRY_CTX(RenameNoReplace(Staging(id), Slot(id)),
                  "cannot place release " + std::string(id));
  return FsyncPath(releases());
}

Result<void> SlotLayout::Remove(std::string_view name) const {
  fs::path from = releases() / std::string(name);
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(from, ec))) return {};
  std::string base(name);
  if (StartsWith(base, kTrashSlotPrefix)) {
    AIRLOCK_TRY(RemoveTree(from));
    return FsyncPath(releases());
  }
  if (StartsWith(base, kStagingSlotPrefix)) base = base.substr(std::strlen(kStagingSlotPrefix));
  fs::path trash = releases() / (kTrashSlotPrefix + base);
  AIRLOCK_TRY(RemoveTree(trash));
  if (::rename(from.c_str(), trash.c_str()) != 0) {
    return tl::unexpected(SysError("cannot move aside", from, errno));
  }
  AIRLOCK_TRY(FsyncPath(releases()));
  AIRLOCK_TRY(RemoveTree(trash));
  return FsyncPath(releases());
}

Result<size_t> SlotLayout::Clean(const std::vector<std::string>& keep) const {
  size_t removed =
      RemoveStaleStaging(releases(), bundle::kOpenStagingPrefix, StagingKind::kDirectory);
  if (::unlink((root_ / kCurrentTempName).c_str()) == 0) ++removed;
  std::error_code ec;
  std::vector<std::string> doomed;
  for (const auto& e : fs::directory_iterator(releases(), ec)) {
    std::string name = e.path().filename().string();
    std::error_code sec;
    if (!fs::is_directory(e.symlink_status(sec))) continue;
    bool ours = StartsWith(name, kStagingSlotPrefix) || StartsWith(name, kTrashSlotPrefix);
    if (!ours && ValidateReleaseId(name)) {
      ours = std::find(keep.begin(), keep.end(), name) == keep.end();
    }
    if (ours) doomed.push_back(name);
  }
  if (ec)
    return MakeError(ErrorCode::kIo, "cannot list " + releases().string() + ": " + ec.message());
  for (const std::string& name : doomed) {
    AIRLOCK_TRY(Remove(name));
    ++removed;
  }
  return removed;
}

Result<void> VerifyTree(const fs::path& dir, const bundle::Manifest& manifest) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return MakeError(ErrorCode::kNotFound, dir.string() + " does not exist");
  }
  std::map<std::string, const bundle::ManifestEntry*> expected;
  for (const auto& e : manifest) expected[e.path] = &e;
  size_t seen = 0;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    auto st = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_directory(st)) continue;
    std::string rel = fs::relative(it->path(), dir, ec).generic_string();
    auto found = expected.find(rel);
    if (found == expected.end()) {
      return MakeError(ErrorCode::kHashMismatch,
                       bundle::PrintablePath(rel) + " is not in the release's signed manifest");
    }
    if (!fs::is_regular_file(st)) {
      return MakeError(ErrorCode::kHashMismatch,
                       bundle::PrintablePath(rel) + " is not a regular file");
    }
    uint64_t size = 0;
    AIRLOCK_ASSIGN_OR_RETURN(Bytes digest, crypto::Sha256File(it->path(), &size));
    if (size != found->second->size || HexEncode(digest) != found->second->sha256) {
      return MakeError(ErrorCode::kHashMismatch,
                       bundle::PrintablePath(rel) + " does not match its signed hash");
    }
    ++seen;
  }
  if (ec) return MakeError(ErrorCode::kIo, "cannot list " + dir.string() + ": " + ec.message());
  if (seen != expected.size()) {
    for (const auto& e : manifest) {
      if (!fs::exists(fs::symlink_status(dir / e.path, ec))) {
        return MakeError(ErrorCode::kHashMismatch, bundle::PrintablePath(e.path) + " is missing");
      }
    }
    return MakeError(ErrorCode::kHashMismatch, "files are missing from " + dir.string());
  }
  return {};
}

namespace {

Result<TreeEntryStamp> StampOf(const fs::path& path, std::string rel) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    return MakeError(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                     "cannot stat " + path.string() + ": " + std::strerror(errno));
  }
  TreeEntryStamp e;
  e.path = std::move(rel);
  e.mode = st.st_mode;
  e.inode = st.st_ino;
  e.size = static_cast<uint64_t>(st.st_size);
  e.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  e.ctime_ns = int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec;
  return e;
}

}  // namespace

Result<TreeStamp> StampTree(const fs::path& dir) {
  TreeStamp stamp;
  AIRLOCK_ASSIGN_OR_RETURN(TreeEntryStamp top, StampOf(dir, ""));
  stamp.push_back(std::move(top));
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    AIRLOCK_ASSIGN_OR_RETURN(
        TreeEntryStamp e, StampOf(it->path(), fs::relative(it->path(), dir, ec).generic_string()));
    stamp.push_back(std::move(e));
  }
  if (ec) return MakeError(ErrorCode::kIo, "cannot list " + dir.string() + ": " + ec.message());
  std::sort(stamp.begin(), stamp.end(),
            [](const TreeEntryStamp& a, const TreeEntryStamp& b) { return a.path < b.path; });
  return stamp;
}

}  // namespace airlock::client
