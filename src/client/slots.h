// The install directory's layout and its crash-safe filesystem steps.
//
//   INSTALL_DIR/agent.db                 the journal (client/install_journal.h)
//   INSTALL_DIR/current                  symlink: "releases/<id>", or the built-in folder; absent
//                                        when nothing was ever installed and there is no built-in
//   INSTALL_DIR/releases/<id>/           a complete, verified release (a slot)
//   INSTALL_DIR/releases/.staging-<id>/  a release being opened (never pointed at)
//   INSTALL_DIR/releases/.trash-<name>/  a slot being removed (renamed first, so a half-removed
//                                        slot never carries a release's name)
//   INSTALL_DIR/releases/.airlock-open-XXXXXX/  bundle::OpenBundle's own staging
//   INSTALL_DIR/.current.tmp             the next `current`, before it is renamed over it
//
// `current` is switched atomically: a new symlink under .current.tmp, fsync of the directory,
// rename(2) over `current`, fsync of the directory. A crash leaves the old or the new link, never
// none. All functions return kIo with the path and errno text on a system error.
#ifndef AIRLOCK_CLIENT_SLOTS_H_
#define AIRLOCK_CLIENT_SLOTS_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bundle/manifest.h"
#include "common/result.h"

namespace airlock::client {

inline constexpr char kStagingSlotPrefix[] = ".staging-";
inline constexpr char kTrashSlotPrefix[] = ".trash-";
inline constexpr char kCurrentTempName[] = ".current.tmp";

class SlotLayout {
 public:
  explicit SlotLayout(std::filesystem::path root) : root_(std::move(root)) {}
  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path releases() const { return root_ / "releases"; }
  std::filesystem::path current() const { return root_ / "current"; }
  std::filesystem::path journal() const { return root_ / "agent.db"; }
  std::filesystem::path lock_file() const { return root_ / ".lock"; }
  // The caller validates `id` (ValidateReleaseId) first.
  std::filesystem::path Slot(std::string_view id) const { return releases() / std::string(id); }
  std::filesystem::path Staging(std::string_view id) const {
    return releases() / (kStagingSlotPrefix + std::string(id));
  }

  // Creates INSTALL_DIR (0755) and releases/ if missing.
  [[nodiscard]] Result<void> Ensure() const;

  // Points `current` at releases/<id>, or (empty id) at `builtin` when it is not empty, else
  // removes `current`. Atomic as above; doing it again is harmless.
  [[nodiscard]] Result<void> PointCurrentAt(std::string_view id,
                                            const std::filesystem::path& builtin) const;
  // What `current` points at: the release id for "releases/<id>", "" when absent or pointing
  // elsewhere (the built-in). kMalformed when `current` exists and is not a symlink.
  [[nodiscard]] Result<std::string> CurrentRelease() const;

  // Renames releases/.staging-<id> to releases/<id> (never replacing: kAlreadyExists) and fsyncs
  // releases/.
  [[nodiscard]] Result<void> Promote(std::string_view id) const;
  // Removes releases/<name> (a slot or a staging), renaming it to .trash-<name> first.
  [[nodiscard]] Result<void> Remove(std::string_view name) const;
  // Removes from releases/ every staging, trash and bundle-open staging, every slot whose name is
  // not in `keep`, and a stale .current.tmp. Entries that are not directories, or whose names are
  // neither release ids nor those prefixes, are left alone. Returns how many were removed.
  [[nodiscard]] Result<size_t> Clean(const std::vector<std::string>& keep) const;

 private:
  std::filesystem::path root_;
};

// Checks the regular files under `dir` against `manifest`, byte for byte (size and SHA-256):
// kHashMismatch naming the first file that is missing, differs, is not a regular file, or is not in
// the manifest; kNotFound when `dir` does not exist.
[[nodiscard]] Result<void> VerifyTree(const std::filesystem::path& dir,
                                      const bundle::Manifest& manifest);

// What the kernel says about every entry under a directory (and the directory itself), without
// reading any file: path, type and mode, inode, size, and modification and change times (ns).
// Writing, truncating, renaming, replacing, chmod-ing, adding or removing anything under it changes
// the stamp (the change time cannot be set by a process); reading does not. Two stamps compare
// equal only when none of that happened in between (see Installer::Activate).
struct TreeEntryStamp {
  std::string path;  // relative, "" for the directory itself
  uint32_t mode = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  bool operator==(const TreeEntryStamp&) const = default;
};
using TreeStamp = std::vector<TreeEntryStamp>;
// kNotFound when `dir` does not exist, kIo when it cannot be listed. Symlinks are not followed.
[[nodiscard]] Result<TreeStamp> StampTree(const std::filesystem::path& dir);

}  // namespace airlock::client

#endif  // AIRLOCK_CLIENT_SLOTS_H_
