// Static file routes of airlockd: the per-app TUF repositories and the content-addressed blob
// store.
//
// DATA layout (EnsureDataLayout creates it):
//   DATA/tuf/<app>/...                     TUF metadata and targets, served as GET
//   /tuf/<app>/<path> DATA/blobs/<sha256[0:2]>/<sha256>      bundle blobs, served as GET
//   /v1/blobs/<sha256>
//
// Safety: every path component is checked with bundle::ValidateBundlePath (no "..", no empty or
// absolute paths, no control characters) and must not start with '.' (hidden files); the file is
// opened with openat2(RESOLVE_BENEATH) relative to the repository folder, so a symlink cannot lead
// outside it; only regular files are served. A refused path answers 404 (never a hint about what
// exists).
#ifndef AIRLOCK_SERVER_STATIC_FILES_H_
#define AIRLOCK_SERVER_STATIC_FILES_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>

#include "common/fd.h"
#include "common/result.h"
#include "server/router.h"

namespace airlock::server {

// Creates DATA, DATA/tuf and DATA/blobs if missing (kIo).
[[nodiscard]] Result<void> EnsureDataLayout(const std::filesystem::path& data_dir);

// Opens `relative` (already validated) beneath the directory `root` without leaving it, following
// no symlink that points outside. kNotFound, kUnsafePath (escape attempt), kIo.
[[nodiscard]] Result<UniqueFd> OpenBeneath(const std::filesystem::path& root,
                                           std::string_view relative);

// Cache-Control for a TUF file name: "no-cache" for unversioned metadata (timestamp.json,
// root.json, snapshot.json, targets.json); "public, max-age=31536000, immutable" for
// consistent-snapshot names
// ("<version>.<role>.json", "<hex digest>.<name>").
std::string_view TufCacheControl(std::string_view file_name);

struct ByteRange {
  uint64_t first = 0;
  uint64_t length = 0;
};
// Parses a Range header against a file of `size` bytes. nullopt: no usable range (absent,
// malformed, several ranges, or another unit) so the whole file is sent. A ByteRange with length 0
// means unsatisfiable (416).
std::optional<ByteRange> ParseRange(std::string_view header, uint64_t size);

// Adds GET /tuf/{app}/* and GET /v1/blobs/{sha256} serving from `data_dir`.
void AddStaticRoutes(Router* router, const std::filesystem::path& data_dir);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_STATIC_FILES_H_
