#include "server/blob_gc.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "common/file.h"

namespace airlock::server {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t kMaxTargetsFileBytes = uint64_t{64} << 20;

bool IsDigest(const std::string& name) {
  if (name.size() != 64) return false;
  for (char c : name) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool EndsWith(const std::string& text, std::string_view tail) {
  return text.size() >= tail.size() &&
         text.compare(text.size() - tail.size(), tail.size(), tail.data(), tail.size()) == 0;
}

// Adds the sha256 of every target the targets metadata file at `path` lists. A file that does not
// parse is an error: collecting on a partial view could remove what it lists.
Result<void> AddTargetsFile(const fs::path& path, std::set<std::string>* out) {
  AIRLOCK_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path, kMaxTargetsFileBytes));
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  const nlohmann::json* targets = nullptr;
  if (j.is_object() && j.contains("signed") && j["signed"].is_object()) {
    auto it = j["signed"].find("targets");
    if (it != j["signed"].end() && it->is_object()) targets = &*it;
  }
  if (targets == nullptr) {
    return MakeError(ErrorCode::kMalformed, path.string() + " is not targets metadata");
  }
  for (const auto& [name, target] : targets->items()) {
    if (!target.is_object() || !target.contains("hashes") || !target["hashes"].is_object())
      continue;
    auto sha = target["hashes"].find("sha256");
    if (sha != target["hashes"].end() && sha->is_string()) out->insert(sha->get<std::string>());
  }
  return {};
}

}  // namespace

Result<std::set<std::string>> ReferencedBlobs(storage::Store* store, const fs::path& data) {
  std::set<std::string> out;
  AIRLOCK_ASSIGN_OR_RETURN(auto apps, store->ListApps());
  for (const storage::App& app : apps) {
    AIRLOCK_ASSIGN_OR_RETURN(auto releases, store->ListReleases(app.app_id));
    for (const storage::Release& r : releases) {
      out.insert(r.sha256);
      if (r.capgo_sha256) out.insert(*r.capgo_sha256);
    }
  }
  std::error_code ec;
  const fs::path tuf = data / "tuf";
  if (!fs::exists(tuf, ec)) return out;
  for (const auto& app_dir : fs::directory_iterator(tuf, ec)) {
    std::error_code dir_ec;
    if (!app_dir.is_directory(dir_ec)) continue;
    for (const auto& file : fs::directory_iterator(app_dir.path(), dir_ec)) {
      const std::string name = file.path().filename().string();
      if (!EndsWith(name, "targets.json")) continue;
      AIRLOCK_TRY(AddTargetsFile(file.path(), &out));
    }
    if (dir_ec) {
      return MakeError(ErrorCode::kIo, "list " + app_dir.path().string() + ": " + dir_ec.message());
    }
  }
  if (ec) return MakeError(ErrorCode::kIo, "list " + tuf.string() + ": " + ec.message());
  return out;
}

Result<BlobGcStats> CollectBlobs(storage::Store* store, const fs::path& data,
                                 const BlobGcOptions& options) {
  // The references first: a blob uploaded after this point is younger than the grace period.
  AIRLOCK_ASSIGN_OR_RETURN(std::set<std::string> referenced, ReferencedBlobs(store, data));
  BlobGcStats stats;
  std::error_code ec;
  const fs::path blobs = data / "blobs";
  for (const auto& sub : fs::directory_iterator(blobs, ec)) {
    std::error_code sub_ec;
    if (!sub.is_directory(sub_ec)) continue;
    for (const auto& entry : fs::directory_iterator(sub.path(), sub_ec)) {
      const std::string name = entry.path().filename().string();
      if (!IsDigest(name) || sub.path().filename() != name.substr(0, 2)) continue;
      if (referenced.count(name) != 0) {
        ++stats.kept;
        continue;
      }
      // Read-write: an exclusive flock on NFS (emulated with fcntl locks) needs a writable file.
      UniqueFd fd(::open(entry.path().c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
      if (!fd.valid()) continue;  // gone meanwhile (another collector)
      // Busy (an upload is refreshing it): keep it this time.
      if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        ++stats.fresh;
        continue;
      }
      struct stat st {};
      if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink == 0) continue;
      if (options.now - st.st_mtime < options.grace) {
        ++stats.fresh;
        continue;
      }
      if (!options.dry_run && ::unlink(entry.path().c_str()) != 0) {
        if (errno == ENOENT) continue;
        return MakeError(ErrorCode::kIo,
                         "remove " + entry.path().string() + ": " + std::strerror(errno));
      }
      ++stats.removed;
      stats.removed_bytes += static_cast<uint64_t>(st.st_size);
    }
    if (sub_ec)
      return MakeError(ErrorCode::kIo, "list " + sub.path().string() + ": " + sub_ec.message());
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return MakeError(ErrorCode::kIo, "list " + blobs.string() + ": " + ec.message());
  }
  return stats;
}

Result<bool> TouchBlob(const fs::path& blob) {
  UniqueFd fd(::open(blob.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) {
    if (errno == ENOENT) return false;
    return MakeError(ErrorCode::kIo, "open " + blob.string() + ": " + std::strerror(errno));
  }
  AIRLOCK_TRY(LockFile(fd.get(), LOCK_SH, blob));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return MakeError(ErrorCode::kIo, "stat " + blob.string() + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode) || st.st_nlink == 0) return false;
  if (::futimens(fd.get(), nullptr) != 0) {
    return MakeError(ErrorCode::kIo, "touch " + blob.string() + ": " + std::strerror(errno));
  }
  return true;
}

}  // namespace airlock::server
