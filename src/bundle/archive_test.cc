#include "bundle/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "common/bytes.h"
#include "common/file.h"
#include "crypto/hash.h"

namespace airlock::bundle {
namespace {

namespace fs = std::filesystem;

// ------------------------------------------------------------------------------------------------
// Helpers.

ScopedTempDir MakeTempDir() {
  Result<ScopedTempDir> dir = ScopedTempDir::Create({}, "airlock-archive-test-");
  if (!dir) {
    ADD_FAILURE() << dir.error().ToString();
    std::abort();
  }
  return std::move(*dir);
}

void WriteBytes(const fs::path& path, std::string_view data) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string ReadBytes(const fs::path& path) {
  Result<std::string> s = ReadTextFile(path, 1ull << 30);
  EXPECT_TRUE(s) << path << ": " << (s ? "" : s.error().ToString());
  return s ? *s : std::string();
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    std::memcpy(out.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return out;
}

std::string Sha256Hex(std::string_view data) { return HexEncode(crypto::Sha256(AsBytes(data))); }

// Every regular file under `root` (relative path -> contents); fails the test on anything else.
std::map<std::string, std::string> ReadTree(const fs::path& root) {
  std::map<std::string, std::string> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, ec), end; it != end; it.increment(ec)) {
    const fs::file_status st = it->symlink_status();
    if (fs::is_directory(st)) continue;
    EXPECT_TRUE(fs::is_regular_file(st)) << it->path();
    out[fs::relative(it->path(), root).generic_string()] = ReadBytes(it->path());
  }
  EXPECT_FALSE(ec) << ec.message();
  return out;
}

size_t CountEntries(const fs::path& dir) {
  size_t n = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; it != end; it.increment(ec)) ++n;
  return n;
}

// The source tree used by the round-trip tests.
std::map<std::string, std::string> SampleTree() {
  return {
      {"index.html", "<!doctype html><title>app</title>\n"},
      {"assets/app.js", "console.log('hello');\n"},
      {"assets/img/big.bin", RandomBytes(1 << 20, 42)},
      {"empty.txt", ""},
      {"deep/a/b/c/d/e.txt", "deep\n"},
      {"ünïcødé/日本語.txt", "unicode name\n"},
      {"Z-upper", "sorts before lower case\n"},
  };
}

Manifest ExpectedManifest(const std::map<std::string, std::string>& tree) {
  Manifest m;
  for (const auto& [path, data] : tree) m.push_back({path, data.size(), Sha256Hex(data)});
  std::sort(m.begin(), m.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  return m;
}

void WriteTree(const fs::path& root, const std::map<std::string, std::string>& tree) {
  for (const auto& [path, data] : tree) WriteBytes(root / path, data);
}

// One entry of a hand-built (possibly hostile) archive.
struct RawEntry {
  RawEntry(std::string p, mode_t t = AE_IFREG, std::string d = {}, std::string s = {},
           std::string h = {})
      : path(std::move(p)),
        type(t),
        data(std::move(d)),
        symlink(std::move(s)),
        hardlink(std::move(h)) {}
  std::string path;
  mode_t type;
  std::string data;
  std::string symlink;   // for AE_IFLNK
  std::string hardlink;  // makes it a hard link to this path
};

struct WriteDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

// Writes `entries` verbatim with libarchive's writer: no validation, so tests can build bad
// archives. `zip_options` e.g. "zip:compression=deflate"; a passphrase enables traditional zip
// encryption.
void WriteRawArchive(const fs::path& out, ArchiveFormat format,
                     const std::vector<RawEntry>& entries, const char* passphrase = nullptr) {
  std::unique_ptr<archive, WriteDeleter> a(archive_write_new());
  ASSERT_TRUE(a);
  if (format == ArchiveFormat::kZip) {
    ASSERT_EQ(archive_write_set_format_zip(a.get()), ARCHIVE_OK);
    ASSERT_EQ(archive_write_set_options(a.get(), "zip:compression=deflate"), ARCHIVE_OK);
    if (passphrase != nullptr) {
      ASSERT_EQ(archive_write_set_options(a.get(), "zip:encryption=traditional"), ARCHIVE_OK)
          << archive_error_string(a.get());
      ASSERT_EQ(archive_write_set_passphrase(a.get(), passphrase), ARCHIVE_OK);
    }
  } else {
    ASSERT_EQ(archive_write_set_format_pax_restricted(a.get()), ARCHIVE_OK);
  }
  ASSERT_EQ(archive_write_set_bytes_in_last_block(a.get(), 1), ARCHIVE_OK);
  ASSERT_EQ(archive_write_open_filename(a.get(), out.c_str()), ARCHIVE_OK)
      << archive_error_string(a.get());
  for (const RawEntry& r : entries) {
    std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
    archive_entry_copy_pathname(e.get(), r.path.c_str());
    archive_entry_set_filetype(e.get(), r.type);
    archive_entry_set_perm(e.get(), r.type == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_mtime(e.get(), 1577836800, 0);
    if (r.type == AE_IFLNK) archive_entry_copy_symlink(e.get(), r.symlink.c_str());
    if (!r.hardlink.empty()) archive_entry_copy_hardlink(e.get(), r.hardlink.c_str());
    if (r.type == AE_IFCHR) archive_entry_set_rdev(e.get(), makedev(1, 3));
    archive_entry_set_size(e.get(), r.type == AE_IFREG && r.hardlink.empty()
                                        ? static_cast<la_int64_t>(r.data.size())
                                        : 0);
    ASSERT_GE(archive_write_header(a.get(), e.get()), ARCHIVE_WARN)
        << archive_error_string(a.get());
    if (!r.data.empty()) {
      ASSERT_EQ(archive_write_data(a.get(), r.data.data(), r.data.size()),
                static_cast<la_ssize_t>(r.data.size()));
    }
  }
  ASSERT_EQ(archive_write_close(a.get()), ARCHIVE_OK) << archive_error_string(a.get());
}

// A zip holding one entry of `size` zero bytes (deflates to about size/1000).
void WriteZeroBomb(const fs::path& out, uint64_t size) {
  std::unique_ptr<archive, WriteDeleter> a(archive_write_new());
  ASSERT_EQ(archive_write_set_format_zip(a.get()), ARCHIVE_OK);
  ASSERT_EQ(archive_write_set_options(a.get(), "zip:compression=deflate"), ARCHIVE_OK);
  ASSERT_EQ(archive_write_open_filename(a.get(), out.c_str()), ARCHIVE_OK);
  std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
  archive_entry_copy_pathname(e.get(), "zeros.bin");
  archive_entry_set_filetype(e.get(), AE_IFREG);
  archive_entry_set_perm(e.get(), 0644);
  archive_entry_set_size(e.get(), static_cast<la_int64_t>(size));
  ASSERT_EQ(archive_write_header(a.get(), e.get()), ARCHIVE_OK);
  const std::string zeros(1 << 20, '\0');
  for (uint64_t left = size; left > 0;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(left, zeros.size()));
    ASSERT_EQ(archive_write_data(a.get(), zeros.data(), n), static_cast<la_ssize_t>(n));
    left -= n;
  }
  ASSERT_EQ(archive_write_close(a.get()), ARCHIVE_OK);
}

// Overwrites every 32-bit little-endian occurrence of `from` in the zip's size fields with `to`:
// the zip then declares a small size for data that inflates much larger.
size_t PatchZipSizes(const fs::path& zip, uint32_t from, uint32_t to) {
  std::string bytes = ReadBytes(zip);
  size_t patched = 0;
  auto patch_at = [&](size_t pos) {
    uint32_t v;
    std::memcpy(&v, bytes.data() + pos, 4);
    if (v == from) {
      std::memcpy(bytes.data() + pos, &to, 4);
      ++patched;
    }
  };
  for (size_t i = 0; i + 46 <= bytes.size(); ++i) {
    if (bytes.compare(i, 4, "PK\x03\x04") == 0) patch_at(i + 22);  // local header
    if (bytes.compare(i, 4, "PK\x01\x02") == 0) patch_at(i + 24);  // central directory
    if (bytes.compare(i, 4, "PK\x07\x08") == 0) patch_at(i + 12);  // data descriptor
  }
  WriteBytes(zip, bytes);
  return patched;
}

std::string Message(const Result<void>& r) { return r ? std::string() : r.error().ToString(); }
template <typename T>
std::string Message(const Result<T>& r) {
  return r ? std::string() : r.error().ToString();
}

// ------------------------------------------------------------------------------------------------
// Format names.

TEST(ArchiveFormat, NamesRoundTrip) {
  EXPECT_EQ(ArchiveFormatName(ArchiveFormat::kZip), "zip");
  EXPECT_EQ(ArchiveFormatName(ArchiveFormat::kTar), "tar");
  EXPECT_EQ(ParseArchiveFormat("zip").value(), ArchiveFormat::kZip);
  EXPECT_EQ(ParseArchiveFormat("tar").value(), ArchiveFormat::kTar);
  Result<ArchiveFormat> r = ParseArchiveFormat("tar.gz");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
}

// ------------------------------------------------------------------------------------------------
// Create -> scan -> extract.

class ArchiveRoundTrip : public ::testing::TestWithParam<ArchiveFormat> {};

TEST_P(ArchiveRoundTrip, CreateScanExtractGiveBackTheSameBytes) {
  ScopedTempDir tmp = MakeTempDir();
  const fs::path src = tmp.path() / "src";
  const auto tree = SampleTree();
  WriteTree(src, tree);
  ASSERT_TRUE(fs::create_directories(src / "empty-dir"));  // not archived: directories are implied
  const Manifest expected = ExpectedManifest(tree);

  const fs::path archive_path = tmp.path() / "app.archive";
  Result<Manifest> created = CreateArchive(src, GetParam(), archive_path);
  ASSERT_TRUE(created) << Message(created);
  EXPECT_EQ(*created, expected);

  ArchiveFormat format =
      GetParam() == ArchiveFormat::kZip ? ArchiveFormat::kTar : ArchiveFormat::kZip;
  Result<Manifest> scanned = ScanArchive(archive_path, {}, &format);
  ASSERT_TRUE(scanned) << Message(scanned);
  EXPECT_EQ(*scanned, expected);
  EXPECT_EQ(format, GetParam());

  const fs::path out = tmp.path() / "out";
  ASSERT_TRUE(fs::create_directory(out));
  Result<void> extracted = ExtractArchive(archive_path, *scanned, out);
  ASSERT_TRUE(extracted) << Message(extracted);
  EXPECT_EQ(ReadTree(out), tree);
  EXPECT_FALSE(fs::exists(out / "empty-dir"));

  struct stat st {};
  ASSERT_EQ(::stat((out / "assets/img/big.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  ASSERT_EQ(::stat((out / "assets/img").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
}

TEST_P(ArchiveRoundTrip, SameFolderGivesIdenticalBytes) {
  ScopedTempDir tmp = MakeTempDir();
  const auto tree = SampleTree();
  WriteTree(tmp.path() / "one", tree);
  // The same files written in the opposite order, a day later and with other permissions.
  for (auto it = tree.rbegin(); it != tree.rend(); ++it)
    WriteBytes(tmp.path() / "two" / it->first, it->second);
  std::error_code ec;
  fs::last_write_time(tmp.path() / "two/index.html",
                      fs::last_write_time(tmp.path() / "one/index.html") + std::chrono::hours(24),
                      ec);
  fs::permissions(tmp.path() / "two/index.html", fs::perms::owner_read | fs::perms::owner_write,
                  ec);

  ASSERT_TRUE(CreateArchive(tmp.path() / "one", GetParam(), tmp.path() / "a1"));
  ASSERT_TRUE(CreateArchive(tmp.path() / "one", GetParam(), tmp.path() / "a2"));
  ASSERT_TRUE(CreateArchive(tmp.path() / "two", GetParam(), tmp.path() / "a3"));
  const std::string a1 = ReadBytes(tmp.path() / "a1");
  EXPECT_FALSE(a1.empty());
  EXPECT_EQ(a1, ReadBytes(tmp.path() / "a2"));
  EXPECT_EQ(a1, ReadBytes(tmp.path() / "a3"));
}

TEST_P(ArchiveRoundTrip, RefusesFolderWithoutFiles) {
  ScopedTempDir tmp = MakeTempDir();
  ASSERT_TRUE(fs::create_directories(tmp.path() / "src/only-dirs/inside"));
  Result<Manifest> created = CreateArchive(tmp.path() / "src", GetParam(), tmp.path() / "a");
  ASSERT_FALSE(created);
  EXPECT_EQ(created.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(tmp.path() / "a"));
}

TEST_P(ArchiveRoundTrip, RefusesSymlinkInSourceAndWritesNothing) {
  ScopedTempDir tmp = MakeTempDir();
  WriteBytes(tmp.path() / "src/index.html", "x");
  WriteBytes(tmp.path() / "src/assets/real.js", "y");
  ASSERT_EQ(::symlink("real.js", (tmp.path() / "src/assets/link.js").c_str()), 0);
  Result<Manifest> r = CreateArchive(tmp.path() / "src", GetParam(), tmp.path() / "out.archive");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnsafePath);
  EXPECT_NE(r.error().message().find("assets/link.js"), std::string::npos) << r.error().message();
  // Neither the output nor a temporary file is left behind.
  EXPECT_EQ(CountEntries(tmp.path()), CountEntries(tmp.path() / "src") + 1);
  EXPECT_FALSE(fs::exists(tmp.path() / "out.archive"));
}

TEST_P(ArchiveRoundTrip, RefusesSymlinkedDirectoryInSource) {
  ScopedTempDir tmp = MakeTempDir();
  WriteBytes(tmp.path() / "outside/secret", "s");
  WriteBytes(tmp.path() / "src/index.html", "x");
  ASSERT_EQ(::symlink((tmp.path() / "outside").c_str(), (tmp.path() / "src/escape").c_str()), 0);
  Result<Manifest> r = CreateArchive(tmp.path() / "src", GetParam(), tmp.path() / "out.archive");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnsafePath);
  EXPECT_NE(r.error().message().find("escape"), std::string::npos) << r.error().message();
  EXPECT_FALSE(fs::exists(tmp.path() / "out.archive"));
}

TEST_P(ArchiveRoundTrip, RefusesFifoInSource) {
  ScopedTempDir tmp = MakeTempDir();
  WriteBytes(tmp.path() / "src/index.html", "x");
  ASSERT_EQ(::mkfifo((tmp.path() / "src/pipe").c_str(), 0644), 0);
  Result<Manifest> r = CreateArchive(tmp.path() / "src", GetParam(), tmp.path() / "out.archive");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnsafePath);
  EXPECT_NE(r.error().message().find("pipe"), std::string::npos) << r.error().message();
  EXPECT_FALSE(fs::exists(tmp.path() / "out.archive"));
}

TEST_P(ArchiveRoundTrip, RefusesUnsafeNameInSource) {
  ScopedTempDir tmp = MakeTempDir();
  WriteBytes(tmp.path() / "src/back\\slash", "x");
  Result<Manifest> r = CreateArchive(tmp.path() / "src", GetParam(), tmp.path() / "out.archive");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnsafePath);
  EXPECT_FALSE(fs::exists(tmp.path() / "out.archive"));
}

TEST_P(ArchiveRoundTrip, CreateEnforcesLimits) {
  ScopedTempDir tmp = MakeTempDir();
  WriteTree(tmp.path() / "src", {{"a", "1234"}, {"b/c", "5678"}, {"d", "9"}});
  Limits few_files;
  few_files.max_files = 2;
  Result<Manifest> r = CreateArchive(tmp.path() / "src", GetParam(), tmp.path() / "out", few_files);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kLimitExceeded);
  Limits small;
  small.max_total_size = 8;
  r = CreateArchive(tmp.path() / "src", GetParam(), tmp.path() / "out", small);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kLimitExceeded);
  Limits shallow;
  shallow.max_path_depth = 1;
  r = CreateArchive(tmp.path() / "src", GetParam(), tmp.path() / "out", shallow);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnsafePath);
  EXPECT_FALSE(fs::exists(tmp.path() / "out"));
  small.max_total_size = 9;
  EXPECT_TRUE(CreateArchive(tmp.path() / "src", GetParam(), tmp.path() / "out", small));
}

TEST_P(ArchiveRoundTrip, CreateFromMissingFolderFails) {
  ScopedTempDir tmp = MakeTempDir();
  Result<Manifest> r = CreateArchive(tmp.path() / "nope", GetParam(), tmp.path() / "out");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  WriteBytes(tmp.path() / "file", "x");
  r = CreateArchive(tmp.path() / "file", GetParam(), tmp.path() / "out");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(tmp.path() / "out"));
}

INSTANTIATE_TEST_SUITE_P(ArchiveFormats, ArchiveRoundTrip,
                         ::testing::Values(ArchiveFormat::kZip, ArchiveFormat::kTar),
                         [](const auto& info) {
                           return std::string(ArchiveFormatName(info.param));
                         });

// ------------------------------------------------------------------------------------------------
// The Capgo vector: a zip made by ordinary tools, with directory entries.

TEST(ArchiveCapgo, ScanMatchesTheDistFolder) {
  const fs::path zip = fs::path(AIRLOCK_VECTORS_DIR) / "capgo/full/bundle.zip";
  const fs::path dist = fs::path(AIRLOCK_VECTORS_DIR) / "capgo/dist";
  ArchiveFormat format = ArchiveFormat::kTar;
  Result<Manifest> m = ScanArchive(zip, {}, &format);
  ASSERT_TRUE(m) << Message(m);
  EXPECT_EQ(format, ArchiveFormat::kZip);
  ASSERT_EQ(m->size(), 3u);
  EXPECT_EQ((*m)[0].path, "assets/app.js");
  EXPECT_EQ((*m)[1].path, "assets/style.css");
  EXPECT_EQ((*m)[2].path, "index.html");
  for (const ManifestEntry& e : *m) {
    uint64_t size = 0;
    Result<Bytes> digest = crypto::Sha256File(dist / e.path, &size);
    ASSERT_TRUE(digest) << Message(digest);
    EXPECT_EQ(e.sha256, HexEncode(*digest)) << e.path;
    EXPECT_EQ(e.size, size) << e.path;
  }
}

TEST(ArchiveCapgo, ExtractGivesTheDistFolder) {
  const fs::path zip = fs::path(AIRLOCK_VECTORS_DIR) / "capgo/full/bundle.zip";
  Result<Manifest> m = ScanArchive(zip);
  ASSERT_TRUE(m) << Message(m);
  ScopedTempDir tmp = MakeTempDir();
  Result<void> r = ExtractArchive(zip, *m, tmp.path());
  ASSERT_TRUE(r) << Message(r);
  EXPECT_EQ(ReadTree(tmp.path()), ReadTree(fs::path(AIRLOCK_VECTORS_DIR) / "capgo/dist"));
}

// ------------------------------------------------------------------------------------------------
// Hostile archives, built on the fly.

struct HostileCase {
  std::string name;
  ArchiveFormat format;
  std::vector<RawEntry> entries;
  ErrorCode code;
  std::string named;  // the error message must contain this
};

std::vector<HostileCase> HostileCases() {
  std::vector<HostileCase> cases;
  for (ArchiveFormat f : {ArchiveFormat::kTar, ArchiveFormat::kZip}) {
    const std::string fmt(ArchiveFormatName(f));
    cases.push_back({fmt + " parent traversal",
                     f,
                     {{"ok", AE_IFREG, "1"}, {"../evil", AE_IFREG, "x"}},
                     ErrorCode::kUnsafePath,
                     "../evil"});
    cases.push_back({fmt + " inner traversal",
                     f,
                     {{"a/../../evil", AE_IFREG, "x"}},
                     ErrorCode::kUnsafePath,
                     "a/../../evil"});
    cases.push_back(
        {fmt + " absolute", f, {{"/etc/x", AE_IFREG, "x"}}, ErrorCode::kUnsafePath, "/etc/x"});
    cases.push_back(
        {fmt + " backslash", f, {{"..\\evil", AE_IFREG, "x"}}, ErrorCode::kUnsafePath, "evil"});
    cases.push_back(
        {fmt + " dot slash", f, {{"./a", AE_IFREG, "x"}}, ErrorCode::kUnsafePath, "./a"});
    cases.push_back({fmt + " symlink",
                     f,
                     {{"link", AE_IFLNK, "", "../../../../etc"}, {"link/passwd", AE_IFREG, "x"}},
                     ErrorCode::kUnsafePath,
                     "link"});
    cases.push_back({fmt + " harmless symlink",
                     f,
                     {{"a", AE_IFREG, "x"}, {"b", AE_IFLNK, "", "a"}},
                     ErrorCode::kUnsafePath,
                     "\"b\""});
    cases.push_back({fmt + " duplicate file",
                     f,
                     {{"a", AE_IFREG, "good"}, {"a", AE_IFREG, "evil"}},
                     ErrorCode::kUnsafePath,
                     "duplicate"});
    cases.push_back({fmt + " file then inside it",
                     f,
                     {{"a", AE_IFREG, "x"}, {"a/b", AE_IFREG, "y"}},
                     ErrorCode::kUnsafePath,
                     "a/b"});
    cases.push_back({fmt + " directory then file of same name",
                     f,
                     {{"d/", AE_IFDIR}, {"d", AE_IFREG, "x"}},
                     ErrorCode::kUnsafePath,
                     "\"d\""});
    cases.push_back({fmt + " duplicate directory",
                     f,
                     {{"d/", AE_IFDIR}, {"d/", AE_IFDIR}},
                     ErrorCode::kUnsafePath,
                     "duplicate"});
  }
  // Hard links and device nodes exist only in tar.
  cases.push_back({"tar hard link",
                   ArchiveFormat::kTar,
                   {{"a", AE_IFREG, "x"}, {"b", AE_IFREG, "", "", "a"}},
                   ErrorCode::kUnsafePath,
                   "\"b\""});
  cases.push_back({"tar hard link outside",
                   ArchiveFormat::kTar,
                   {{"b", AE_IFREG, "", "", "/etc/passwd"}},
                   ErrorCode::kUnsafePath,
                   "\"b\""});
  cases.push_back(
      {"tar char device", ArchiveFormat::kTar, {{"dev", AE_IFCHR}}, ErrorCode::kUnsafePath, "dev"});
  cases.push_back(
      {"tar fifo", ArchiveFormat::kTar, {{"fifo", AE_IFIFO}}, ErrorCode::kUnsafePath, "fifo"});
  cases.push_back({"tar block device",
                   ArchiveFormat::kTar,
                   {{"blk", AE_IFBLK}},
                   ErrorCode::kUnsafePath,
                   "blk"});
  return cases;
}

TEST(ArchiveHostile, ScanAndExtractRefuseAndWriteNothingOutside) {
  for (const HostileCase& c : HostileCases()) {
    SCOPED_TRACE(c.name);
    ScopedTempDir tmp = MakeTempDir();
    const fs::path archive_path = tmp.path() / "hostile";
    WriteRawArchive(archive_path, c.format, c.entries);
    if (::testing::Test::HasFatalFailure()) return;

    Result<Manifest> scanned = ScanArchive(archive_path);
    ASSERT_FALSE(scanned);
    EXPECT_EQ(scanned.error().code(), c.code) << scanned.error().ToString();
    EXPECT_NE(scanned.error().message().find(c.named), std::string::npos)
        << scanned.error().ToString();

    // Extraction against a manifest listing every regular entry, so the refusal is the entry's own.
    Manifest manifest;
    for (const RawEntry& e : c.entries) {
      if (e.type != AE_IFREG || !e.hardlink.empty() ||
          ValidateBundlePath(e.path).has_value() == false) {
        continue;
      }
      if (std::any_of(manifest.begin(), manifest.end(),
                      [&](const auto& m) { return m.path == e.path; })) {
        continue;
      }
      manifest.push_back({e.path, e.data.size(), Sha256Hex(e.data)});
    }
    std::sort(manifest.begin(), manifest.end(),
              [](const auto& a, const auto& b) { return a.path < b.path; });
    const fs::path out = tmp.path() / "sub" / "out";
    ASSERT_TRUE(fs::create_directories(out));
    Result<void> extracted = ExtractArchive(archive_path, manifest, out);
    ASSERT_FALSE(extracted);
    EXPECT_EQ(extracted.error().code(), c.code) << extracted.error().ToString();

    // Nothing beside the output folder, and nothing in it but regular files and directories.
    EXPECT_EQ(CountEntries(tmp.path() / "sub"), 1 + CountEntries(out));
    EXPECT_EQ(CountEntries(tmp.path()), 2 + CountEntries(tmp.path() / "sub"));
    EXPECT_FALSE(fs::exists(tmp.path() / "evil"));
    EXPECT_FALSE(fs::exists(tmp.path() / "sub" / "evil"));
    std::error_code ec;
    for (fs::recursive_directory_iterator it(out, ec), end; it != end; it.increment(ec)) {
      const fs::file_status st = it->symlink_status();
      EXPECT_TRUE(fs::is_regular_file(st) || fs::is_directory(st)) << it->path();
    }
    // The first of two duplicates may have been written, but never the second's contents.
    if (fs::is_regular_file(out / "a")) {
      EXPECT_NE(ReadBytes(out / "a"), "evil");
    }
  }
}

TEST(ArchiveHostile, DirectoryEntriesAreAcceptedButCreateNothing) {
  ScopedTempDir tmp = MakeTempDir();
  const fs::path archive_path = tmp.path() / "a.tar";
  WriteRawArchive(
      archive_path, ArchiveFormat::kTar,
      {{"d/", AE_IFDIR}, {"d/f", AE_IFREG, "x"}, {"lonely/", AE_IFDIR}, {"e", AE_IFDIR}});
  Result<Manifest> m = ScanArchive(archive_path);
  ASSERT_TRUE(m) << Message(m);
  ASSERT_EQ(m->size(), 1u);
  EXPECT_EQ((*m)[0].path, "d/f");
  const fs::path out = tmp.path() / "out";
  ASSERT_TRUE(fs::create_directory(out));
  ASSERT_TRUE(ExtractArchive(archive_path, *m, out));
  EXPECT_EQ(ReadTree(out), (std::map<std::string, std::string>{{"d/f", "x"}}));
  EXPECT_FALSE(fs::exists(out / "lonely"));
  EXPECT_FALSE(fs::exists(out / "e"));
}

// libarchive's zip reader turns '\\' in entry names into '/', so a zip name with a backslash is
// read (and validated, and extracted) as the '/'-separated path; tar names keep it and are refused.
// Pinned here so that a libarchive upgrade changing this is noticed.
TEST(ArchiveHostile, ZipBackslashesAreReadAsSlashes) {
  ScopedTempDir tmp = MakeTempDir();
  WriteRawArchive(tmp.path() / "a.zip", ArchiveFormat::kZip, {{"dir\\f", AE_IFREG, "x"}});
  Result<Manifest> m = ScanArchive(tmp.path() / "a.zip");
  ASSERT_TRUE(m) << Message(m);
  ASSERT_EQ(m->size(), 1u);
  EXPECT_EQ((*m)[0].path, "dir/f");
  WriteRawArchive(tmp.path() / "a.tar", ArchiveFormat::kTar, {{"dir\\f", AE_IFREG, "x"}});
  m = ScanArchive(tmp.path() / "a.tar");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kUnsafePath);
}

TEST(ArchiveHostile, EncryptedZipEntryIsUnsupported) {
  ScopedTempDir tmp = MakeTempDir();
  const fs::path zip = tmp.path() / "enc.zip";
  WriteRawArchive(zip, ArchiveFormat::kZip, {{"secret.txt", AE_IFREG, "top secret"}}, "password");
  if (::testing::Test::HasFatalFailure()) return;
  Result<Manifest> m = ScanArchive(zip);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kUnsupported) << m.error().ToString();
  const fs::path out = tmp.path() / "out";
  ASSERT_TRUE(fs::create_directory(out));
  Result<void> r = ExtractArchive(zip, {{"secret.txt", 10, Sha256Hex("top secret")}}, out);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnsupported);
  EXPECT_EQ(CountEntries(out), 0u);
}

// ------------------------------------------------------------------------------------------------
// Limits.

TEST(ArchiveLimits, ZipBombStopsAtTotalSize) {
  ScopedTempDir tmp = MakeTempDir();
  const fs::path zip = tmp.path() / "bomb.zip";
  constexpr uint64_t kBombSize = 64ull << 20;
  WriteZeroBomb(zip, kBombSize);
  ASSERT_LT(fs::file_size(zip), 1u << 20);
  Limits limits;
  limits.max_total_size = 1 << 20;

  const auto start = std::chrono::steady_clock::now();
  Result<Manifest> m = ScanArchive(zip, limits);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kLimitExceeded) << m.error().ToString();

  const fs::path out = tmp.path() / "out";
  ASSERT_TRUE(fs::create_directory(out));
  const Manifest honest = {{"zeros.bin", kBombSize, Sha256Hex(std::string(kBombSize, '\0'))}};
  Result<void> r = ExtractArchive(zip, honest, out, limits);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kLimitExceeded) << r.error().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(ArchiveLimits, ZipBombLyingAboutItsSizeStopsWhileReading) {
  ScopedTempDir tmp = MakeTempDir();
  const fs::path zip = tmp.path() / "liar.zip";
  constexpr uint64_t kBombSize = 64ull << 20;
  WriteZeroBomb(zip, kBombSize);
  // Every size field now claims 100 bytes.
  ASSERT_GE(PatchZipSizes(zip, static_cast<uint32_t>(kBombSize), 100), 1u);
  Limits limits;
  limits.max_total_size = 1 << 20;
  // libarchive inflates past the declared size (it checks the size only at the end of the entry),
  // so it is our count of real bytes that stops it.
  Result<Manifest> m = ScanArchive(zip, limits);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kLimitExceeded) << m.error().ToString();
  const fs::path out = tmp.path() / "out";
  ASSERT_TRUE(fs::create_directory(out));
  Result<void> r =
      ExtractArchive(zip, {{"zeros.bin", 100, Sha256Hex(std::string(100, '\0'))}}, out);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch) << r.error().ToString();
  EXPECT_LE(fs::file_size(out / "zeros.bin"), 100u);
  // Without a manifest bound, the size limit stops it.
  fs::remove_all(out);
  ASSERT_TRUE(fs::create_directory(out));
  r = ExtractArchive(zip, {{"zeros.bin", kBombSize, Sha256Hex(std::string(kBombSize, '\0'))}}, out,
                     limits);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kLimitExceeded) << r.error().ToString();
  EXPECT_LE(fs::file_size(out / "zeros.bin"), limits.max_total_size);
}

TEST(ArchiveLimits, TotalSizeCountsAllFiles) {
  ScopedTempDir tmp = MakeTempDir();
  WriteTree(tmp.path() / "src", {{"a", std::string(600, 'a')}, {"b", std::string(600, 'b')}});
  ASSERT_TRUE(CreateArchive(tmp.path() / "src", ArchiveFormat::kTar, tmp.path() / "a.tar"));
  Limits limits;
  limits.max_total_size = 1000;
  Result<Manifest> m = ScanArchive(tmp.path() / "a.tar", limits);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kLimitExceeded);
  limits.max_total_size = 1200;
  EXPECT_TRUE(ScanArchive(tmp.path() / "a.tar", limits));
}

TEST(ArchiveLimits, EntryCountIncludesDirectories) {
  ScopedTempDir tmp = MakeTempDir();
  const fs::path path = tmp.path() / "a.tar";
  WriteRawArchive(path, ArchiveFormat::kTar,
                  {{"d/", AE_IFDIR}, {"d/a", AE_IFREG, "1"}, {"b", AE_IFREG, "2"}});
  Limits limits;
  limits.max_files = 2;
  Result<Manifest> m = ScanArchive(path, limits);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kLimitExceeded);
  limits.max_files = 3;
  EXPECT_TRUE(ScanArchive(path, limits));
}

TEST(ArchiveLimits, PathLimitsApplyToEntries) {
  ScopedTempDir tmp = MakeTempDir();
  const fs::path path = tmp.path() / "a.zip";
  WriteRawArchive(path, ArchiveFormat::kZip, {{"a/b/c", AE_IFREG, "1"}});
  Limits limits;
  limits.max_path_depth = 2;
  Result<Manifest> m = ScanArchive(path, limits);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kUnsafePath);
  limits = {};
  limits.max_path_length = 4;
  m = ScanArchive(path, limits);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kUnsafePath);
}

// ------------------------------------------------------------------------------------------------
// Extraction against a manifest.

class ArchiveExtract : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteTree(tmp_.path() / "src", {{"a.txt", "alpha"}, {"dir/b.txt", "bravo!"}});
    Result<Manifest> m = CreateArchive(tmp_.path() / "src", ArchiveFormat::kZip, archive_);
    ASSERT_TRUE(m) << Message(m);
    manifest_ = *m;
    ASSERT_TRUE(fs::create_directory(out_));
  }

  void ExpectMismatch(const Manifest& manifest, std::string_view message_part) {
    Result<void> r = ExtractArchive(archive_, manifest, out_);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch) << r.error().ToString();
    EXPECT_NE(r.error().message().find(message_part), std::string::npos) << r.error().ToString();
  }

  ScopedTempDir tmp_ = MakeTempDir();
  fs::path archive_ = tmp_.path() / "app.zip";
  fs::path out_ = tmp_.path() / "out";
  Manifest manifest_;
};

TEST_F(ArchiveExtract, AcceptsItsOwnManifest) {
  ASSERT_TRUE(ExtractArchive(archive_, manifest_, out_));
  EXPECT_EQ(ReadBytes(out_ / "a.txt"), "alpha");
  EXPECT_EQ(ReadBytes(out_ / "dir/b.txt"), "bravo!");
}

TEST_F(ArchiveExtract, DifferentDigestIsHashMismatch) {
  Manifest m = manifest_;
  m[1].sha256 = Sha256Hex("bravo?");
  ExpectMismatch(m, "dir/b.txt");
}

TEST_F(ArchiveExtract, SmallerManifestSizeStopsAtTheExcess) {
  Manifest m = manifest_;
  m[0].size = 3;
  ExpectMismatch(m, "\"a.txt\" larger than manifest");
  // Not a byte past the manifest's size was written.
  EXPECT_LE(fs::file_size(out_ / "a.txt"), 3u);
}

TEST_F(ArchiveExtract, LargerManifestSizeIsHashMismatch) {
  Manifest m = manifest_;
  m[0].size = 6;
  ExpectMismatch(m, "a.txt");
}

TEST_F(ArchiveExtract, FileMissingFromManifestIsUnexpected) {
  Manifest m = {manifest_[0]};
  ExpectMismatch(m, "unexpected file \"dir/b.txt\"");
}

TEST_F(ArchiveExtract, ManifestFileMissingFromArchive) {
  Manifest m = manifest_;
  m.push_back({"zzz.txt", 1, Sha256Hex("z")});
  ExpectMismatch(m, "missing file \"zzz.txt\"");
}

TEST_F(ArchiveExtract, RefusesNonEmptyOrMissingOutput) {
  WriteBytes(out_ / "already", "x");
  Result<void> r = ExtractArchive(archive_, manifest_, out_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kAlreadyExists);
  r = ExtractArchive(archive_, manifest_, tmp_.path() / "missing");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_FALSE(fs::exists(tmp_.path() / "missing"));
}

TEST_F(ArchiveExtract, RefusesManifestWithDuplicates) {
  Manifest m = manifest_;
  m.push_back(m[0]);
  Result<void> r = ExtractArchive(archive_, m, out_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
}

// ------------------------------------------------------------------------------------------------
// Not archives.

TEST(ArchiveMalformed, GarbageEmptyAndTruncatedAreMalformed) {
  ScopedTempDir tmp = MakeTempDir();
  WriteBytes(tmp.path() / "garbage", RandomBytes(4096, 7));
  WriteBytes(tmp.path() / "empty", "");
  WriteBytes(tmp.path() / "text", "this is not an archive\n");
  WriteTree(tmp.path() / "src", {{"a", RandomBytes(100000, 9)}, {"b", "bee"}});
  Manifest manifest;
  for (ArchiveFormat f : {ArchiveFormat::kZip, ArchiveFormat::kTar}) {
    const fs::path whole = tmp.path() / ("whole." + std::string(ArchiveFormatName(f)));
    Result<Manifest> created = CreateArchive(tmp.path() / "src", f, whole);
    ASSERT_TRUE(created) << Message(created);
    manifest = *created;
    const std::string bytes = ReadBytes(whole);
    WriteBytes(tmp.path() / ("truncated." + std::string(ArchiveFormatName(f))),
               bytes.substr(0, bytes.size() / 2));
  }
  for (const char* name : {"garbage", "empty", "text", "truncated.zip", "truncated.tar"}) {
    SCOPED_TRACE(name);
    Result<Manifest> m = ScanArchive(tmp.path() / name);
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().code(), ErrorCode::kMalformed) << m.error().ToString();
    const fs::path out = tmp.path() / (std::string("out-") + name);
    ASSERT_TRUE(fs::create_directory(out));
    // With the manifest of the intact archive, so extraction gets as far as the damage.
    Result<void> r = ExtractArchive(tmp.path() / name, manifest, out);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << r.error().ToString();
  }
}

TEST(ArchiveMalformed, EmptyTarIsEmptyButEmptyZipIsMalformed) {
  ScopedTempDir tmp = MakeTempDir();
  WriteRawArchive(tmp.path() / "empty.tar", ArchiveFormat::kTar, {});
  WriteRawArchive(tmp.path() / "empty.zip", ArchiveFormat::kZip, {});
  ArchiveFormat format = ArchiveFormat::kZip;
  Result<Manifest> m = ScanArchive(tmp.path() / "empty.tar", {}, &format);
  ASSERT_TRUE(m) << Message(m);
  EXPECT_TRUE(m->empty());
  EXPECT_EQ(format, ArchiveFormat::kTar);
  m = ScanArchive(tmp.path() / "empty.zip");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kMalformed);
}

TEST(ArchiveMalformed, MissingArchiveIsNotFound) {
  ScopedTempDir tmp = MakeTempDir();
  Result<Manifest> m = ScanArchive(tmp.path() / "nope.zip");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kNotFound);
  m = ScanArchive(tmp.path());
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kInvalidArgument);
  // A FIFO is refused, not waited on.
  ASSERT_EQ(::mkfifo((tmp.path() / "fifo").c_str(), 0644), 0);
  m = ScanArchive(tmp.path() / "fifo");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kInvalidArgument);
}

TEST(ArchiveMalformed, CorruptedZipDataIsMalformed) {
  ScopedTempDir tmp = MakeTempDir();
  WriteTree(tmp.path() / "src", {{"a", RandomBytes(50000, 11)}});
  const fs::path zip = tmp.path() / "a.zip";
  ASSERT_TRUE(CreateArchive(tmp.path() / "src", ArchiveFormat::kZip, zip));
  std::string bytes = ReadBytes(zip);
  bytes[bytes.size() / 2] ^= 0x55;  // inside the deflated data
  WriteBytes(zip, bytes);
  Result<Manifest> m = ScanArchive(zip);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kMalformed) << m.error().ToString();
}

}  // namespace
}  // namespace airlock::bundle
