// Zip and tar archives of an app folder, through libarchive: deterministic creation, validation without
// extraction, and safe extraction checked against a manifest.
#ifndef AIRLOCK_BUNDLE_ARCHIVE_H_
#define AIRLOCK_BUNDLE_ARCHIVE_H_

#include <filesystem>
#include <string_view>

#include "bundle/manifest.h"
#include "common/result.h"

namespace airlock::bundle {

enum class ArchiveFormat { kZip, kTar };
std::string_view ArchiveFormatName(ArchiveFormat format);  // "zip" / "tar"
Result<ArchiveFormat> ParseArchiveFormat(std::string_view name);

// Archives the regular files under `dir` into `out` (created atomically): entries sorted by path, fixed
// timestamps and owners, mode 0644, so the same folder gives the same bytes. Directories are implied by
// file paths. Symlinks, devices, FIFOs and sockets are refused with kUnsafePath; paths that fail
// ValidateBundlePath with kUnsafePath; Limits with kLimitExceeded. Returns the manifest.
[[nodiscard]] Result<Manifest> CreateArchive(const std::filesystem::path& dir, ArchiveFormat format,
                                             const std::filesystem::path& out,
                                             const Limits& limits = {});

// Reads an existing zip or tar (detected from its content) without writing anything, and returns its
// manifest. Every entry must be a regular file or a directory with a valid path; duplicates, symlinks,
// hard links and special files are refused (kUnsafePath); Limits are enforced while reading, so a zip
// bomb stops at the bound (kLimitExceeded). kMalformed if it is not a readable archive.
[[nodiscard]] Result<Manifest> ScanArchive(const std::filesystem::path& archive, const Limits& limits = {},
                                           ArchiveFormat* format_out = nullptr);

// Extracts `archive` into `out_dir` (an existing empty directory), accepting exactly the files in
// `manifest`: an entry not in the manifest, a duplicate, a size or digest that differs (kHashMismatch),
// or a manifest file missing at the end (kHashMismatch) is an error. Never writes outside `out_dir` and
// never follows a symlink. On error the caller removes `out_dir`.
[[nodiscard]] Result<void> ExtractArchive(const std::filesystem::path& archive, const Manifest& manifest,
                                          const std::filesystem::path& out_dir,
                                          const Limits& limits = {});

}  // namespace airlock::bundle

#endif  // AIRLOCK_BUNDLE_ARCHIVE_H_
