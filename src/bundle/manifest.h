// The per-file manifest of a bundle and the path rules every bundle entry obeys.
#ifndef AIRLOCK_BUNDLE_MANIFEST_H_
#define AIRLOCK_BUNDLE_MANIFEST_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace airlock::bundle {

// Bounds applied to every untrusted bundle, archive and manifest.
struct Limits {
  uint64_t max_files = 100000;                       // entries in the manifest / archive
  uint64_t max_total_size = 4ull * 1024 * 1024 * 1024;  // sum of unpacked file sizes (zip bombs)
  size_t max_path_length = 1024;                     // bytes, per path
  size_t max_path_depth = 64;                        // components, per path
};

struct ManifestEntry {
  std::string path;    // relative, '/'-separated, validated by ValidateBundlePath
  uint64_t size = 0;
  std::string sha256;  // lower-case hex of the file's contents
  bool operator==(const ManifestEntry&) const = default;
};

using Manifest = std::vector<ManifestEntry>;  // sorted by path (byte order), no duplicates

// kUnsafePath unless `path` is a non-empty relative path of '/'-separated components, none of them empty,
// "." or "..", with no backslash, NUL or other control character, within the Limits' length and depth.
// Paths are byte strings compared byte-wise; they must also be valid UTF-8 (they are JSON strings in the
// manifest), and C1 control characters (U+0080..U+009F) count as control characters. No other
// normalisation: "./a", "a/" and "a//b" are refused, not rewritten.
[[nodiscard]] Result<void> ValidateBundlePath(std::string_view path, const Limits& limits = {});

// `path` quoted for an error message: '"' and '\' escaped, control bytes as \xNN, cut after 256 bytes.
std::string PrintablePath(std::string_view path);

// JSON form: [{"path":..., "size":..., "sha256":...}, ...].
nlohmann::json ManifestToJson(const Manifest& manifest);
// Validates everything: shape (kMalformed; each entry has exactly the three fields, size a non-negative
// integer, never a float), paths (kUnsafePath), order and duplicates (kMalformed; a path that is also a
// directory prefix of another counts as a duplicate), count and total size (kLimitExceeded), digest form
// (kMalformed: 64 lower-case hex characters).
[[nodiscard]] Result<Manifest> ManifestFromJson(const nlohmann::json& json, const Limits& limits = {});

uint64_t ManifestTotalSize(const Manifest& manifest);

}  // namespace airlock::bundle

#endif  // AIRLOCK_BUNDLE_MANIFEST_H_
