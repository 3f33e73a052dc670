// Zip and tar archives of an app folder, through libarchive: deterministic creation, validation without
// extraction, and safe extraction checked against a manifest.
#ifndef AIRLOCK_BUNDLE_ARCHIVE_H_
#define AIRLOCK_BUNDLE_ARCHIVE_H_

#include <filesystem>
#include <functional>
#include <optional>
#include <string_view>

#include "bundle/manifest.h"
#include "common/bytes.h"
#include "common/result.h"

namespace airlock::bundle {

// All functions here are safe to call from several threads at once (each works on its own libarchive
// handle; while one runs, its thread's LC_CTYPE is switched to C.UTF-8 with uselocale so that non-ASCII
// entry names convert, and restored afterwards).

enum class ArchiveFormat { kZip, kTar };
std::string_view ArchiveFormatName(ArchiveFormat format);  // "zip" / "tar"
Result<ArchiveFormat> ParseArchiveFormat(std::string_view name);

// Archives the regular files under `dir` into `out` (created atomically): entries sorted by path, fixed
// timestamps and owners, mode 0644, so the same folder gives the same bytes. Directories are implied by
// file paths: no directory entries are written, so empty directories are not archived. Symlinks,
// devices, FIFOs and sockets are refused with kUnsafePath; paths that fail ValidateBundlePath with
// kUnsafePath; Limits with kLimitExceeded; a folder with no regular file at all with kInvalidArgument.
// Returns the manifest.
// Zip entries are deflated; tar is pax-restricted (plain ustar unless a name is long or non-ASCII).
// `dir` itself may be reached through a symlink; nothing under it is followed. Note: libarchive writes
// the zip DOS time field in the process's local time zone, so zips are byte-identical across machines
// only under the same TZ (tar is TZ-independent).
[[nodiscard]] Result<Manifest> CreateArchive(const std::filesystem::path& dir, ArchiveFormat format,
                                             const std::filesystem::path& out,
                                             const Limits& limits = {});

// Reads an existing zip or tar (detected from its content) without writing anything, and returns its
// manifest. Every entry must be a regular file or a directory with a valid path; duplicates, symlinks,
// hard links and special files are refused (kUnsafePath); Limits are enforced while reading, so a zip
// bomb stops at the bound (kLimitExceeded). kMalformed if it is not a readable archive.
// Entry rules, shared with ExtractArchive:
// - Names are taken as they are: "./a" or "/a" fails ValidateBundlePath (kUnsafePath), nothing is
//   stripped; a directory entry may end in one '/'. (libarchive's zip reader itself turns '\\' into '/'
//   in zip names, so a zip "a\\b" is read as "a/b"; in tar a backslash is refused.)
// - A duplicate is any second entry with the same path, or a path used both as a file and as a
//   directory ("a" a file and "a/b" or "a/" also present): kUnsafePath.
// - max_files counts every entry, directories included; max_total_size counts the bytes actually
//   decompressed (a smaller declared size does not help), and a declared size over the bound fails early.
// - Encrypted zip entries: kUnsupported. libarchive warnings (damaged headers, names it cannot
//   convert): kMalformed. Only zip and uncompressed tar are read (no gzip/zstd filters).
// - A tar with no entries gives an empty manifest; a zip with no entries is kMalformed (libarchive's
//   seekable zip reader does not recognise it).
// kNotFound if `archive` does not exist, kInvalidArgument if it is not a regular file.
[[nodiscard]] Result<Manifest> ScanArchive(const std::filesystem::path& archive, const Limits& limits = {},
                                           ArchiveFormat* format_out = nullptr);

// Extracts `archive` into `out_dir` (an existing empty directory), accepting exactly the files in
// `manifest`: an entry not in the manifest, a size or digest that differs (kHashMismatch), or a
// manifest file missing at the end (kHashMismatch) is an error; every entry is first checked as by
// ScanArchive (so a duplicate, symlink, hard link, special file or unsafe path is kUnsafePath,
// limits kLimitExceeded). With `expected_format`, an archive of the other format is kMalformed (a
// bundle's signed header names its archive format). Never writes outside `out_dir` and never
// follows a symlink. While extracting, files are created 0600 and directories 0700; once every file
// has checked, each file is given mode 0644 and fsynced, then each directory (deepest first,
// `out_dir` last) mode 0755 and fsynced, so the caller can rename `out_dir` into place knowing its
// contents are on disk. Directory entries in the archive create nothing, so the output holds
// exactly the manifest's files and their parent directories. kAlreadyExists if `out_dir` is not
// empty, kNotFound if it does not exist, kInvalidArgument if `manifest` lists a path twice. On
// error the caller removes `out_dir` (files already extracted stay there, private).
[[nodiscard]] Result<void> ExtractArchive(
    const std::filesystem::path& archive, const Manifest& manifest,
    const std::filesystem::path& out_dir, const Limits& limits = {},
    std::optional<ArchiveFormat> expected_format = std::nullopt);

// A source of archive bytes for ExtractArchiveStream: the next block, empty at the end. A block
// stays valid until the next call. An error ends the extraction with that error.
using ArchiveSource = std::function<Result<ByteSpan>()>;

// ExtractArchive reading the archive once, in order, from `source` (nothing is stored, nothing is
// sought): a zip through its local headers (libarchive's streaming zip reader; the central
// directory at the end is not read), a tar as it is. The same checks, limits and guarantees.
// Reading stops at the archive's end: the caller reads whatever `source` still holds itself.
[[nodiscard]] Result<void> ExtractArchiveStream(
    const ArchiveSource& source, const Manifest& manifest, const std::filesystem::path& out_dir,
    const Limits& limits = {}, std::optional<ArchiveFormat> expected_format = std::nullopt);

}  // namespace airlock::bundle

#endif  // AIRLOCK_BUNDLE_ARCHIVE_H_
