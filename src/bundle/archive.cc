#include "bundle/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <locale.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "bundle/background_hasher.h"
#include "bundle/bundle_internal.h"
#include "common/bytes.h"
#include "common/fd.h"
#include "common/file.h"
#include "crypto/hash.h"

namespace airlock::bundle {

namespace fs = std::filesystem;

namespace {

// Files are streamed through buffers of this size, so memory stays constant whatever the file size.
constexpr size_t kBlockSize = 64 * 1024;
constexpr size_t kExtractBlock = 128 * 1024;  // file data per read while extracting
// 2020-01-01T00:00:00Z: a fixed time that is also a valid zip (DOS, 1980+) timestamp.
constexpr time_t kFixedMtime = 1577836800;

struct ArchiveReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct ArchiveEntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};
using ArchiveReadPtr = std::unique_ptr<archive, ArchiveReadDeleter>;
using ArchiveWritePtr = std::unique_ptr<archive, ArchiveWriteDeleter>;
using ArchiveEntryPtr = std::unique_ptr<archive_entry, ArchiveEntryDeleter>;

// libarchive converts entry names between the archive's charset and the *current locale's* charset;
// in the "C" locale that most programs run in, any non-ASCII name fails to convert. Bundle paths
// are UTF-8 (ValidateBundlePath), so for the lifetime of each archive handle this thread runs with
// a UTF-8 LC_CTYPE (uselocale is per thread; the process locale is not touched). If C.UTF-8 is
// unavailable we carry on in the current locale, and non-ASCII names may then be refused.
class ScopedUtf8Locale {
 public:
  ScopedUtf8Locale() {
    locale_ = ::newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
    if (locale_ != static_cast<locale_t>(nullptr)) previous_ = ::uselocale(locale_);
  }
  ScopedUtf8Locale(const ScopedUtf8Locale&) = delete;
  ScopedUtf8Locale& operator=(const ScopedUtf8Locale&) = delete;
  ~ScopedUtf8Locale() {
    if (locale_ != static_cast<locale_t>(nullptr)) {
      ::uselocale(previous_);
      ::freelocale(locale_);
    }
  }

 private:
  locale_t locale_ = static_cast<locale_t>(nullptr);
  locale_t previous_ = static_cast<locale_t>(nullptr);
};

std::string ArchiveErrorString(archive* a) {
  const char* s = archive_error_string(a);
  return s != nullptr ? s : "unknown libarchive error";
}

Error ErrnoError(std::string what, int err) {
  return Error(err == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
               std::move(what) + ": " + std::strerror(err));
}

Result<void> WriteAllToFd(int fd, ByteSpan data, const std::string& name) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return tl::unexpected(ErrnoError("cannot write " + name, errno));
    }
    data = data.subspan(static_cast<size_t>(n));
  }
  return {};
}

// ------------------------------------------------------------------------------------------------
// Reading.

enum class EntryKind { kFile, kDirectory };

struct EntryInfo {
  std::string path;  // validated; a directory's trailing '/' removed
  EntryKind kind = EntryKind::kFile;
};

// The entry paths read so far. Refuses a second entry with the same path, and a path that is used
// both as a file and as a directory ("a" a file and "a/b", or "a" a file and "a/" a directory):
// either lets a later entry stand in for an earlier one, which a scan would not see.
class EntryPaths {
 public:
  Result<void> AddFile(const std::string& path) {
    if (files_.count(path) != 0) return Refuse(path, "duplicate entry");
    if (directories_.count(path) != 0) return Refuse(path, "file entry that is also a directory");
    AIRLOCK_TRY(AddAncestors(path));
    files_.insert(path);
    return {};
  }

  Result<void> AddDirectory(const std::string& path) {
    if (explicit_directories_.count(path) != 0) return Refuse(path, "duplicate entry");
    if (files_.count(path) != 0) return Refuse(path, "directory entry that is also a file");
    AIRLOCK_TRY(AddAncestors(path));
    explicit_directories_.insert(path);
    directories_.insert(path);
    return {};
  }

 private:
  static Result<void> Refuse(const std::string& path, std::string_view why) {
    return MakeError(ErrorCode::kUnsafePath, std::string(why) + " " + PrintablePath(path));
  }

  Result<void> AddAncestors(const std::string& path) {
    for (size_t slash = path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      std::string ancestor = path.substr(0, slash);
      if (files_.count(ancestor) != 0) {
        return Refuse(path, "entry inside the file " + PrintablePath(ancestor) + ":");
      }
      directories_.insert(std::move(ancestor));
    }
    return {};
  }

  std::unordered_set<std::string> files_;
  std::unordered_set<std::string> directories_;           // named by an entry or implied by a path
  std::unordered_set<std::string> explicit_directories_;  // named by an entry
};

// Reads a zip or tar entry by entry, validating each header and counting every data byte against
// the limits. Not movable: it holds the thread's locale for its lifetime.
class ArchiveReader {
 public:
  explicit ArchiveReader(const Limits& limits) : limits_(limits), buffer_(kBlockSize) {}
  ArchiveReader(const ArchiveReader&) = delete;
  ArchiveReader& operator=(const ArchiveReader&) = delete;

  Result<void> Open(const fs::path& path) {
    // O_NONBLOCK so that a FIFO given as the archive is refused below instead of blocking the open.
    fd_ = UniqueFd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!fd_.valid()) return tl::unexpected(ErrnoError("cannot open " + path.string(), errno));
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) {
      return tl::unexpected(ErrnoError("cannot stat " + path.string(), errno));
    }
    if (!S_ISREG(st.st_mode)) {
      return MakeError(ErrorCode::kInvalidArgument, path.string() + " is not a regular file");
    }
    archive_.reset(archive_read_new());
    if (!archive_) return MakeError(ErrorCode::kInternal, "archive_read_new failed");
    // Only zip (through its central directory, since the input is a seekable file) and tar; no raw
    // or empty format, so anything else fails to open or at the first header. No decompression
    // filters: bundle payloads are plain zip or tar.
    if (archive_read_support_format_zip_seekable(archive_.get()) != ARCHIVE_OK ||
        archive_read_support_format_tar(archive_.get()) != ARCHIVE_OK) {
      return MakeError(ErrorCode::kInternal, "libarchive: " + ArchiveErrorString(archive_.get()));
    }
    if (archive_read_open_fd(archive_.get(), fd_.get(), kBlockSize) != ARCHIVE_OK) {
      return MakeError(ErrorCode::kMalformed, "not a zip or tar archive: " + path.string() + ": " +
                                                  ArchiveErrorString(archive_.get()));
    }
    return {};
  }

  // Reads the archive from `source`, once and in order: zip through its local headers
  // (libarchive's streaming zip reader), tar as it is. `source` must outlive the reader.
  Result<void> OpenStream(const ArchiveSource& source) {
    source_ = &source;
    archive_.reset(archive_read_new());
    if (!archive_) return MakeError(ErrorCode::kInternal, "archive_read_new failed");
    if (archive_read_support_format_zip_streamable(archive_.get()) != ARCHIVE_OK ||
        archive_read_support_format_tar(archive_.get()) != ARCHIVE_OK) {
      return MakeError(ErrorCode::kInternal, "libarchive: " + ArchiveErrorString(archive_.get()));
    }
    if (archive_read_open(archive_.get(), this, nullptr, &ArchiveReader::ReadSource, nullptr) !=
        ARCHIVE_OK) {
      return SourceErrorOr(
          MakeError(ErrorCode::kMalformed,
                    "not a zip or tar archive: " + ArchiveErrorString(archive_.get())));
    }
    return {};
  }

  // The next entry, validated; nullopt at the end of the archive.
  Result<std::optional<EntryInfo>> Next() {
    archive_entry* entry = nullptr;
    const int r = archive_read_next_header(archive_.get(), &entry);
    if (r == ARCHIVE_EOF) return std::optional<EntryInfo>();
    if (source_error_) return tl::unexpected(*source_error_);
    // Warnings too are refused: they mean libarchive repaired or guessed something (an
    // unconvertible name, a damaged header), and we accept only archives that read cleanly.
    if (r != ARCHIVE_OK) {
      return MakeError(ErrorCode::kMalformed,
                       "bad archive entry header: " + ArchiveErrorString(archive_.get()));
    }
    if (++entries_ > limits_.max_files) {
      return MakeError(ErrorCode::kLimitExceeded,
                       "archive has more than " + std::to_string(limits_.max_files) + " entries");
    }
    const char* name = archive_entry_pathname(entry);
    if (name == nullptr) {
      return MakeError(ErrorCode::kUnsafePath,
                       "archive entry " + std::to_string(entries_) + " has no usable name");
    }
    EntryInfo info;
    info.path = name;
    const std::string shown = PrintablePath(info.path);

    if (archive_entry_hardlink(entry) != nullptr) {
      return MakeError(ErrorCode::kUnsafePath, "hard link entry " + shown);
    }
    const mode_t type = archive_entry_filetype(entry);
    if (type == AE_IFLNK || archive_entry_symlink(entry) != nullptr) {
      return MakeError(ErrorCode::kUnsafePath, "symlink entry " + shown);
    }
    if (type == AE_IFDIR) {
      // Directory names conventionally end in '/' (zip, GNU tar); exactly one is dropped.
      if (!info.path.empty() && info.path.back() == '/') info.path.pop_back();
      info.kind = EntryKind::kDirectory;
    } else if (type == AE_IFREG) {
      info.kind = EntryKind::kFile;
    } else {
      return MakeError(ErrorCode::kUnsafePath, "special file entry " + shown);
    }
    AIRLOCK_TRY_CTX(ValidateBundlePath(info.path, limits_), "archive entry");
    if (archive_entry_is_encrypted(entry)) {
      return MakeError(ErrorCode::kUnsupported, "encrypted archive entry " + shown);
    }
    if (info.kind == EntryKind::kDirectory) {
      AIRLOCK_TRY(paths_.AddDirectory(info.path));
      return std::optional<EntryInfo>(std::move(info));
    }
    AIRLOCK_TRY(paths_.AddFile(info.path));
    // The declared size gives an early refusal; ReadBlock() counts the real bytes regardless, since
    // a declared size can lie.
    if (archive_entry_size_is_set(entry)) {
      const int64_t declared = archive_entry_size(entry);
      if (declared < 0) return MakeError(ErrorCode::kMalformed, "negative size for entry " + shown);
      if (static_cast<uint64_t>(declared) > limits_.max_total_size - total_) {
        return TotalSizeExceeded();
      }
    }
    current_ = shown;
    return std::optional<EntryInfo>(std::move(info));
  }

  // The next block of the current file's data; empty at its end. Every byte counts towards the
  // total.
  Result<ByteSpan> ReadBlock() { return ReadBlockInto(buffer_); }
  // The same into the caller's buffer.
  Result<ByteSpan> ReadBlockInto(std::span<uint8_t> out) {
    const la_ssize_t n = archive_read_data(archive_.get(), out.data(), out.size());
    if (n < 0) {
      return SourceErrorOr(
          MakeError(ErrorCode::kMalformed,
                    "cannot read entry " + current_ + ": " + ArchiveErrorString(archive_.get())));
    }
    const uint64_t count = static_cast<uint64_t>(n);
    if (count > limits_.max_total_size - total_) return TotalSizeExceeded();
    total_ += count;
    return ByteSpan(out.data(), static_cast<size_t>(n));
  }

  Result<ArchiveFormat> format() const {
    switch (archive_format(archive_.get()) & ARCHIVE_FORMAT_BASE_MASK) {
      case ARCHIVE_FORMAT_ZIP:
        return ArchiveFormat::kZip;
      case ARCHIVE_FORMAT_TAR:
        return ArchiveFormat::kTar;
      default:
        return MakeError(ErrorCode::kMalformed, "archive is neither zip nor tar");
    }
  }

 private:
  tl::unexpected<Error> TotalSizeExceeded() const {
    return MakeError(
        ErrorCode::kLimitExceeded,
        "archive unpacks to more than " + std::to_string(limits_.max_total_size) + " bytes");
  }

  // libarchive's read callback for OpenStream: the source's next block; an error is kept (and
  // wins over libarchive's own message) and ends the archive.
  static la_ssize_t ReadSource(archive* a, void* self, const void** buffer) {
    auto* reader = static_cast<ArchiveReader*>(self);
    auto block = (*reader->source_)();
    if (!block) {
      reader->source_error_ = block.error();
      archive_set_error(a, EIO, "%s", block.error().message().c_str());
      return -1;
    }
    *buffer = block->data();
    return static_cast<la_ssize_t>(block->size());
  }
  tl::unexpected<Error> SourceErrorOr(tl::unexpected<Error> error) const {
    return source_error_ ? tl::unexpected<Error>(*source_error_) : error;
  }

  // Declared first so it is restored last, after the archive handle is freed.
  ScopedUtf8Locale locale_;
  Limits limits_;
  UniqueFd fd_;
  ArchiveReadPtr archive_;
  EntryPaths paths_;
  uint64_t entries_ = 0;
  uint64_t total_ = 0;
  std::string current_;
  std::vector<uint8_t> buffer_;
  const ArchiveSource* source_ = nullptr;
  std::optional<Error> source_error_;
};

// ------------------------------------------------------------------------------------------------
// Creating.

struct SourceFile {
  std::string path;  // relative, validated
  fs::path absolute;
  uint64_t size = 0;
};

// Collects the regular files under `dir` (relative prefix `prefix`), refusing symlinks and special
// files. Recursion depth is bounded: every directory's relative path passes ValidateBundlePath
// first.
Result<void> CollectFiles(const fs::path& dir, const std::string& prefix, const Limits& limits,
                          std::vector<SourceFile>& files, uint64_t& total) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) return MakeError(ErrorCode::kIo, "cannot list " + dir.string() + ": " + ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::directory_entry& entry = *it;
    const std::string name = entry.path().filename().string();
    const std::string rel = prefix.empty() ? name : prefix + "/" + name;
    AIRLOCK_TRY(ValidateBundlePath(rel, limits));
    const fs::file_status status = entry.symlink_status(ec);
    if (ec)
      return MakeError(ErrorCode::kIo,
                       "cannot stat " + entry.path().string() + ": " + ec.message());
    switch (status.type()) {
      case fs::file_type::directory:
        AIRLOCK_TRY(CollectFiles(entry.path(), rel, limits, files, total));
        break;
      case fs::file_type::regular: {
        const uint64_t size = entry.file_size(ec);
        if (ec) {
          return MakeError(ErrorCode::kIo,
                           "cannot stat " + entry.path().string() + ": " + ec.message());
        }
        if (files.size() >= limits.max_files) {
          return MakeError(ErrorCode::kLimitExceeded,
                           "more than " + std::to_string(limits.max_files) + " files");
        }
        if (size > limits.max_total_size - total) {
          return MakeError(
              ErrorCode::kLimitExceeded,
              "files total more than " + std::to_string(limits.max_total_size) + " bytes");
        }
        total += size;
        files.push_back(SourceFile{rel, entry.path(), size});
        break;
      }
      case fs::file_type::symlink:
        return MakeError(ErrorCode::kUnsafePath,
                         "symlink " + PrintablePath(rel) + " (not followed)");
      default:
        return MakeError(ErrorCode::kUnsafePath, "special file " + PrintablePath(rel) +
                                                     " (not a regular file or directory)");
    }
  }
  if (ec) return MakeError(ErrorCode::kIo, "cannot list " + dir.string() + ": " + ec.message());
  return {};
}

// Appends one file to the archive, streaming it through the hash; returns its manifest entry.
Result<ManifestEntry> WriteFileEntry(archive* a, const SourceFile& file,
                                     std::vector<uint8_t>& buffer) {
  const std::string shown = PrintablePath(file.path);
  // O_NOFOLLOW: the walk saw a regular file, but it may have been swapped for a symlink since (and
  // O_NONBLOCK in case it is now a FIFO, which fstat then refuses).
  UniqueFd in(::open(file.absolute.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (!in.valid()) {
    if (errno == ELOOP)
      return MakeError(ErrorCode::kUnsafePath, "symlink " + shown + " (not followed)");
    return tl::unexpected(ErrnoError("cannot open " + file.absolute.string(), errno));
  }
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) {
    return tl::unexpected(ErrnoError("cannot stat " + file.absolute.string(), errno));
  }
  if (!S_ISREG(st.st_mode)) return MakeError(ErrorCode::kUnsafePath, "special file " + shown);
  if (static_cast<uint64_t>(st.st_size) != file.size) {
    return MakeError(ErrorCode::kIo, shown + " changed while being archived");
  }

  ArchiveEntryPtr entry(archive_entry_new());
  if (!entry) return MakeError(ErrorCode::kInternal, "archive_entry_new failed");
  archive_entry_copy_pathname(entry.get(), file.path.c_str());
  archive_entry_set_filetype(entry.get(), AE_IFREG);
  archive_entry_set_perm(entry.get(), 0644);
  archive_entry_set_size(entry.get(), static_cast<la_int64_t>(file.size));
  archive_entry_set_mtime(entry.get(), kFixedMtime, 0);
  archive_entry_set_uid(entry.get(), 0);
  archive_entry_set_gid(entry.get(), 0);
  if (archive_write_header(a, entry.get()) != ARCHIVE_OK) {
    return MakeError(ErrorCode::kIo,
                     "cannot add " + shown + " to the archive: " + ArchiveErrorString(a));
  }

  crypto::Hasher hasher = crypto::Hasher::Sha256();
  uint64_t count = 0;
  while (true) {
    ssize_t n = ::read(in.get(), buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return tl::unexpected(ErrnoError("cannot read " + file.absolute.string(), errno));
    }
    if (n == 0) break;
    count += static_cast<uint64_t>(n);
    if (count > file.size) return MakeError(ErrorCode::kIo, shown + " grew while being archived");
    const ByteSpan block(buffer.data(), static_cast<size_t>(n));
    hasher.Update(block);
    if (archive_write_data(a, block.data(), block.size()) != n) {
      return MakeError(ErrorCode::kIo,
                       "cannot write " + shown + " to the archive: " + ArchiveErrorString(a));
    }
  }
  if (count != file.size) return MakeError(ErrorCode::kIo, shown + " shrank while being archived");
  if (archive_write_finish_entry(a) != ARCHIVE_OK) {
    return MakeError(ErrorCode::kIo,
                     "cannot finish " + shown + " in the archive: " + ArchiveErrorString(a));
  }
  return ManifestEntry{file.path, file.size, HexEncode(hasher.Finish())};
}

// ------------------------------------------------------------------------------------------------
// Extracting.

}  // namespace

namespace internal {

// Opens (creating as needed, mode 0700) the directory `rel_dir` under `root`, one component at a
// time with O_NOFOLLOW, so a symlink anywhere on the way is an error and never followed.
Result<UniqueFd> OpenDirectoryUnder(int root, std::string_view rel_dir) {
  UniqueFd current(::fcntl(root, F_DUPFD_CLOEXEC, 0));
  if (!current.valid()) return tl::unexpected(ErrnoError("cannot duplicate a descriptor", errno));
  size_t start = 0;
  while (start < rel_dir.size()) {
    size_t slash = rel_dir.find('/', start);
    if (slash == std::string_view::npos) slash = rel_dir.size();
    const std::string component(rel_dir.substr(start, slash - start));
    const std::string so_far(rel_dir.substr(0, slash));
    constexpr int kFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    UniqueFd next(::openat(current.get(), component.c_str(), kFlags));
    if (!next.valid() && errno == ENOENT) {
      // Private while extracting; FinishTree gives the final 0755.
      if (::mkdirat(current.get(), component.c_str(), 0700) != 0 && errno != EEXIST) {
        return tl::unexpected(
            ErrnoError("cannot create directory " + PrintablePath(so_far), errno));
      }
      next = UniqueFd(::openat(current.get(), component.c_str(), kFlags));
    }
    if (!next.valid()) {
      if (errno == ELOOP || errno == ENOTDIR) {
        return MakeError(
            ErrorCode::kUnsafePath,
            PrintablePath(so_far) + " exists and is not a directory (symlinks are not followed)");
      }
      return tl::unexpected(ErrnoError("cannot open directory " + PrintablePath(so_far), errno));
    }
    current = std::move(next);
    start = slash + 1;
  }
  return current;
}

// The last step of a successful extraction: every file gets its final mode 0644 and is fsynced,
// then every directory (deepest first, the root last) 0755 and fsynced, so that a rename of the
// root that follows publishes contents already on disk.
Result<void> FinishTree(int root, const Manifest& manifest) {
  std::unordered_set<std::string> dirs;
  std::string parent_path;
  UniqueFd parent;
  for (const ManifestEntry& f : manifest) {
    const size_t slash = f.path.rfind('/');
    const std::string dir = slash == std::string::npos ? std::string() : f.path.substr(0, slash);
    const std::string name = slash == std::string::npos ? f.path : f.path.substr(slash + 1);
    for (size_t s = dir.find('/'); s != std::string::npos; s = dir.find('/', s + 1)) {
      dirs.insert(dir.substr(0, s));
    }
    if (!dir.empty()) dirs.insert(dir);
    if (!parent.valid() || dir != parent_path) {
      parent = UniqueFd();
      AIRLOCK_ASSIGN_OR_RETURN(parent, OpenDirectoryUnder(root, dir));
      parent_path = dir;
    }
    const std::string shown = PrintablePath(f.path);
    UniqueFd file(::openat(parent.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!file.valid()) return tl::unexpected(ErrnoError("cannot reopen " + shown, errno));
    if (::fchmod(file.get(), 0644) != 0)
      return tl::unexpected(ErrnoError("cannot chmod " + shown, errno));
    if (::fsync(file.get()) != 0) return tl::unexpected(ErrnoError("cannot fsync " + shown, errno));
  }
  parent = UniqueFd();
  std::vector<std::string> ordered(dirs.begin(), dirs.end());
  auto depth = [](const std::string& p) { return std::count(p.begin(), p.end(), '/'); };
  std::sort(ordered.begin(), ordered.end(), [&](const std::string& a, const std::string& b) {
    return depth(a) != depth(b) ? depth(a) > depth(b) : a < b;
  });
  ordered.emplace_back();  // the root itself, last
  for (const std::string& dir : ordered) {
    AIRLOCK_ASSIGN_OR_RETURN(UniqueFd d, OpenDirectoryUnder(root, dir));
    const std::string shown = dir.empty() ? std::string("the output folder") : PrintablePath(dir);
    if (::fchmod(d.get(), 0755) != 0)
      return tl::unexpected(ErrnoError("cannot chmod " + shown, errno));
    if (::fsync(d.get()) != 0) return tl::unexpected(ErrnoError("cannot fsync " + shown, errno));
  }
  return {};
}

}  // namespace internal

using internal::FinishTree;
using internal::OpenDirectoryUnder;

std::string_view ArchiveFormatName(ArchiveFormat format) {
  switch (format) {
    case ArchiveFormat::kZip:
      return "zip";
    case ArchiveFormat::kTar:
      return "tar";
  }
  return "unknown";
}

Result<ArchiveFormat> ParseArchiveFormat(std::string_view name) {
  if (name == "zip") return ArchiveFormat::kZip;
  if (name == "tar") return ArchiveFormat::kTar;
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown archive format '" + std::string(name) + "' (expected zip or tar)");
}

Result<Manifest> CreateArchive(const fs::path& dir, ArchiveFormat format, const fs::path& out,
                               const Limits& limits) {
  // `dir` itself is the caller's choice and may be reached through a symlink; nothing under it is.
  std::error_code ec;
  const fs::file_status root_status = fs::status(dir, ec);
  if (ec || !fs::exists(root_status)) {
    return MakeError(ErrorCode::kNotFound, "no such directory " + dir.string());
  }
  if (!fs::is_directory(root_status)) {
    return MakeError(ErrorCode::kInvalidArgument, dir.string() + " is not a directory");
  }
  std::vector<SourceFile> files;
  uint64_t total = 0;
  AIRLOCK_TRY_CTX(CollectFiles(dir, "", limits, files, total), "archiving " + dir.string());
  // std::string's operator< compares as unsigned bytes: the manifest's byte order.
  // libarchive's seekable zip reader cannot find the end record of a zip with no entries (it never
  // looks at offset 0), so ScanArchive could not read an empty zip back; empty folders are refused
  // for both formats alike.
  if (files.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, dir.string() + " holds no files to archive");
  }
  std::sort(files.begin(), files.end(),
            [](const SourceFile& a, const SourceFile& b) { return a.path < b.path; });

  AIRLOCK_ASSIGN_OR_RETURN(AtomicFile file, AtomicFile::Create(out, 0644));
  ScopedUtf8Locale locale;
  ArchiveWritePtr a(archive_write_new());
  if (!a) return MakeError(ErrorCode::kInternal, "archive_write_new failed");
  int r = ARCHIVE_OK;
  if (format == ArchiveFormat::kZip) {
    r = archive_write_set_format_zip(a.get());
    if (r == ARCHIVE_OK) r = archive_write_set_options(a.get(), "zip:compression=deflate");
  } else {
    // pax restricted is ustar unless a name needs more (long or non-ASCII), then a pax header.
    r = archive_write_set_format_pax_restricted(a.get());
  }
  // No padding of the last block: the file ends where the archive does.
  if (r == ARCHIVE_OK) r = archive_write_set_bytes_in_last_block(a.get(), 1);
  if (r == ARCHIVE_OK) r = archive_write_open_fd(a.get(), file.fd());
  if (r != ARCHIVE_OK) {
    return MakeError(ErrorCode::kInternal, "cannot start archive: " + ArchiveErrorString(a.get()));
  }

  std::vector<uint8_t> buffer(kBlockSize);
  Manifest manifest;
  manifest.reserve(files.size());
  for (const SourceFile& f : files) {
    AIRLOCK_ASSIGN_OR_RETURN(ManifestEntry entry, WriteFileEntry(a.get(), f, buffer));
    manifest.push_back(std::move(entry));
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) {
    return MakeError(ErrorCode::kIo,
                     "cannot finish archive " + out.string() + ": " + ArchiveErrorString(a.get()));
  }
  a.reset();
  AIRLOCK_TRY(file.Commit());
  return manifest;
}

Result<Manifest> ScanArchive(const fs::path& archive_path, const Limits& limits,
                             ArchiveFormat* format_out) {
  ArchiveReader reader(limits);
  AIRLOCK_TRY(reader.Open(archive_path));
  Manifest manifest;
  while (true) {
    AIRLOCK_ASSIGN_OR_RETURN(std::optional<EntryInfo> entry, reader.Next());
    if (!entry) break;
    if (entry->kind != EntryKind::kFile) continue;
    crypto::Hasher hasher = crypto::Hasher::Sha256();
    uint64_t size = 0;
    while (true) {
      AIRLOCK_ASSIGN_OR_RETURN(ByteSpan block, reader.ReadBlock());
      if (block.empty()) break;
      hasher.Update(block);
      size += block.size();
    }
    manifest.push_back(ManifestEntry{std::move(entry->path), size, HexEncode(hasher.Finish())});
  }
  AIRLOCK_ASSIGN_OR_RETURN(ArchiveFormat format, reader.format());
  if (format_out != nullptr) *format_out = format;
  std::sort(manifest.begin(), manifest.end(),
            [](const ManifestEntry& a, const ManifestEntry& b) { return a.path < b.path; });
  return manifest;
}

namespace {

// The output directory (open, and checked empty) and the manifest indexed by path.
using PreparedOutput = std::pair<UniqueFd, std::unordered_map<std::string_view, size_t>>;

Result<PreparedOutput> PrepareExtraction(const Manifest& manifest, const fs::path& out_dir) {
  UniqueFd root(::open(out_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) {
    if (errno == ENOTDIR)
      return MakeError(ErrorCode::kInvalidArgument, out_dir.string() + " is not a directory");
    return tl::unexpected(ErrnoError("cannot open " + out_dir.string(), errno));
  }
  std::error_code ec;
  if (!fs::is_empty(out_dir, ec) || ec) {
    return MakeError(ec ? ErrorCode::kIo : ErrorCode::kAlreadyExists,
                     out_dir.string() + " is not an empty directory");
  }
  std::unordered_map<std::string_view, size_t> index;
  index.reserve(manifest.size());
  for (size_t i = 0; i < manifest.size(); ++i) {
    if (!index.emplace(manifest[i].path, i).second) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "manifest lists " + PrintablePath(manifest[i].path) + " twice");
    }
  }
  return PreparedOutput(std::move(root), std::move(index));
}

// The body shared by ExtractArchive and ExtractArchiveStream, on an opened reader.
Result<void> ExtractEntries(ArchiveReader& reader, int root, const Manifest& manifest,
                            const std::unordered_map<std::string_view, size_t>& index,
                            std::optional<ArchiveFormat> expected_format) {
  std::vector<bool> seen(manifest.size(), false);
  // The format is known once the first header has been read (or the end found).
  bool format_checked = !expected_format.has_value();
  auto check_format = [&]() -> Result<void> {
    if (format_checked) return {};
    format_checked = true;
    auto found = reader.format();
    if (!found || *found != *expected_format) {
      return MakeError(ErrorCode::kMalformed,
                       "archive is " + std::string(found ? ArchiveFormatName(*found) : "unknown") +
                           " but the signed header says " +
                           std::string(ArchiveFormatName(*expected_format)));
    }
    return {};
  };
  // File data is read in two buffers that take turns: while one block is written, a second thread
  // hashes it, and the next read into that buffer waits for its hash.
  Bytes buffers[2] = {Bytes(kExtractBlock), Bytes(kExtractBlock)};
  uint64_t hashing[2] = {0, 0};  // the hasher's number for the block each buffer holds, 0: none
  int current = 0;
  BackgroundHasher hasher;  // after the buffers: stopped before they go
  // Entries usually come grouped by directory, so the last parent directory stays open.
  std::string parent_path;
  UniqueFd parent;
  while (true) {
    AIRLOCK_ASSIGN_OR_RETURN(std::optional<EntryInfo> entry, reader.Next());
    AIRLOCK_TRY(check_format());
    if (!entry) break;
    // Directory entries are checked (path, clashes) but create nothing: the output holds exactly
    // the manifest's files and the directories that contain them.
    if (entry->kind != EntryKind::kFile) continue;
    const std::string shown = PrintablePath(entry->path);
    auto it = index.find(entry->path);
    if (it == index.end()) return MakeError(ErrorCode::kHashMismatch, "unexpected file " + shown);
    const ManifestEntry& expected = manifest[it->second];

    const size_t slash = entry->path.rfind('/');
    const std::string dir =
        slash == std::string::npos ? std::string() : entry->path.substr(0, slash);
    const std::string name =
        slash == std::string::npos ? entry->path : entry->path.substr(slash + 1);
    if (!parent.valid() || dir != parent_path) {
      parent = UniqueFd();
      AIRLOCK_ASSIGN_OR_RETURN(parent, OpenDirectoryUnder(root, dir));
      parent_path = dir;
    }
    // Private while extracting; FinishTree gives the final 0644.
    UniqueFd out(::openat(parent.get(), name.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out.valid()) {
      if (errno == EEXIST) return MakeError(ErrorCode::kUnsafePath, shown + " already exists");
      return tl::unexpected(ErrnoError("cannot create " + shown, errno));
    }

    uint64_t size = 0;
    while (true) {
      AIRLOCK_TRY(CheckInterrupt());
      if (hashing[current] != 0) hasher.WaitHashed(hashing[current]);
      hashing[current] = 0;
      AIRLOCK_ASSIGN_OR_RETURN(ByteSpan block, reader.ReadBlockInto(buffers[current]));
      if (block.empty()) break;
      if (block.size() > expected.size - size) {
        return MakeError(ErrorCode::kHashMismatch, shown + " larger than manifest (" +
                                                       std::to_string(expected.size) + " bytes)");
      }
      size += block.size();
      hashing[current] = hasher.Submit(block);
      AIRLOCK_TRY(WriteAllToFd(out.get(), block, shown));
      current ^= 1;
    }
    if (size != expected.size) {
      return MakeError(ErrorCode::kHashMismatch, shown + " is " + std::to_string(size) +
                                                     " bytes, manifest says " +
                                                     std::to_string(expected.size));
    }
    if (HexEncode(hasher.TakeDigest()) != expected.sha256) {
      return MakeError(ErrorCode::kHashMismatch, shown + " does not match its manifest sha256");
    }
    if (out.Close() != 0) return tl::unexpected(ErrnoError("cannot write " + shown, errno));
    seen[it->second] = true;
  }
  for (size_t i = 0; i < manifest.size(); ++i) {
    if (!seen[i]) {
      return MakeError(ErrorCode::kHashMismatch, "missing file " + PrintablePath(manifest[i].path));
    }
  }
  parent = UniqueFd();
  return FinishTree(root, manifest);
}

}  // namespace

Result<void> ExtractArchive(const fs::path& archive_path, const Manifest& manifest,
                            const fs::path& out_dir, const Limits& limits,
                            std::optional<ArchiveFormat> expected_format) {
  AIRLOCK_ASSIGN_OR_RETURN(PreparedOutput out, PrepareExtraction(manifest, out_dir));
  ArchiveReader reader(limits);
  AIRLOCK_TRY(reader.Open(archive_path));
  return ExtractEntries(reader, out.first.get(), manifest, out.second, expected_format);
}

Result<void> ExtractArchiveStream(const ArchiveSource& source, const Manifest& manifest,
                                  const fs::path& out_dir, const Limits& limits,
                                  std::optional<ArchiveFormat> expected_format) {
  AIRLOCK_ASSIGN_OR_RETURN(PreparedOutput out, PrepareExtraction(manifest, out_dir));
  ArchiveReader reader(limits);
  AIRLOCK_TRY(reader.OpenStream(source));
  return ExtractEntries(reader, out.first.get(), manifest, out.second, expected_format);
}

}  // namespace airlock::bundle
