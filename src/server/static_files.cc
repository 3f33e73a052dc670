#include "server/static_files.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>

#include <string>
#include <system_error>

#include "bundle/manifest.h"
#include "common/bytes.h"

namespace airlock::server {
namespace {

constexpr std::string_view kImmutable = "public, max-age=31536000, immutable";

// The path is safe to hand to the file system: ValidateBundlePath plus no hidden component.
bool SafeRelative(std::string_view path) {
  if (!bundle::ValidateBundlePath(path)) return false;
  size_t pos = 0;
  while (pos < path.size()) {
    if (path[pos] == '.') return false;
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  return true;
}

std::string HttpDate(time_t t) {
  struct tm tm_utc;
  gmtime_r(&t, &tm_utc);
  char buf[64];
  size_t n = strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm_utc);
  return std::string(buf, n);
}

bool ParseUint(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// If-None-Match matches `etag` ("*" or a comma-separated list; weak comparison).
bool EtagMatches(std::string_view header, std::string_view etag) {
  if (header.empty()) return false;
  if (header == "*") return true;
  size_t pos = 0;
  while (pos < header.size()) {
    size_t comma = header.find(',', pos);
    if (comma == std::string_view::npos) comma = header.size();
    std::string_view item = header.substr(pos, comma - pos);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.starts_with("W/")) item.remove_prefix(2);
    if (item == etag) return true;
    pos = comma + 1;
  }
  return false;
}

Response FileResponse(UniqueFd fd, uint64_t size) {
  Response response;
  response.file = FileBody{std::make_shared<UniqueFd>(std::move(fd)), 0, size};
  return response;
}

Response NotFound() { return JsonError(404, "not_found", "no such file"); }

}  // namespace

Result<void> EnsureDataLayout(const std::filesystem::path& data_dir) {
  for (const auto& dir : {data_dir, data_dir / "tuf", data_dir / "blobs"}) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return MakeError(ErrorCode::kIo, "create " + dir.string() + ": " + ec.message());
  }
  return {};
}

Result<UniqueFd> OpenBeneath(const std::filesystem::path& root, std::string_view relative) {
  UniqueFd dir(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) {
    if (errno == ENOENT || errno == ENOTDIR) return MakeError(ErrorCode::kNotFound, root.string());
    return MakeError(ErrorCode::kIo, "open " + root.string() + ": " + std::strerror(errno));
  }
  std::string rel(relative);
  struct open_how how;
  std::memset(&how, 0, sizeof(how));
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(syscall(SYS_openat2, dir.get(), rel.c_str(), &how, sizeof(how)));
  if (fd < 0 && errno == ENOSYS) {
    // Kernels before 5.6: refuse any symlink at all, which is stricter than needed.
    fd = openat(dir.get(), rel.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
    if (fd >= 0) {
      char real[PATH_MAX];
      std::string proc = "/proc/self/fd/" + std::to_string(fd);
      ssize_t n = readlink(proc.c_str(), real, sizeof(real) - 1);
      std::error_code ec;
      auto canonical_root = std::filesystem::canonical(root, ec).string() + "/";
      if (n <= 0 || ec ||
          std::string_view(real, n).substr(0, canonical_root.size()) != canonical_root) {
        close(fd);
        return MakeError(ErrorCode::kUnsafePath, "path leaves " + root.string());
      }
    }
  }
  if (fd < 0) {
    if (errno == EXDEV || errno == ELOOP) {
      return MakeError(ErrorCode::kUnsafePath, "path leaves " + root.string());
    }
    if (errno == ENOENT || errno == ENOTDIR) return MakeError(ErrorCode::kNotFound, rel);
    return MakeError(ErrorCode::kIo, "open " + rel + ": " + std::strerror(errno));
  }
  UniqueFd file(fd);
  struct stat st;
  if (fstat(file.get(), &st) != 0) return MakeError(ErrorCode::kIo, std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return MakeError(ErrorCode::kNotFound, rel + " is not a regular file");
  // O_NONBLOCK was only to avoid hanging on a FIFO during open; regular files ignore it.
  return file;
}

std::string_view TufCacheControl(std::string_view file_name) {
  size_t dot = file_name.find('.');
  if (dot != std::string_view::npos && dot > 0) {
    std::string_view prefix = file_name.substr(0, dot);
    uint64_t version = 0;
    if (ParseUint(prefix, &version)) return kImmutable;  // 3.root.json, 12.snapshot.json
    if (prefix.size() >= 32 && IsLowerHex(prefix)) return kImmutable;  // <digest>.<target name>
  }
  return "no-cache";
}

std::optional<ByteRange> ParseRange(std::string_view header, uint64_t size) {
  constexpr std::string_view kUnit = "bytes=";
  if (!header.starts_with(kUnit)) return std::nullopt;
  std::string_view spec = header.substr(kUnit.size());
  while (!spec.empty() && spec.front() == ' ') spec.remove_prefix(1);
  while (!spec.empty() && spec.back() == ' ') spec.remove_suffix(1);
  if (spec.find(',') != std::string_view::npos) return std::nullopt;  // multi-range: send all
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  std::string_view first_text = spec.substr(0, dash);
  std::string_view last_text = spec.substr(dash + 1);
  uint64_t first = 0;
  uint64_t last = 0;
  if (first_text.empty()) {  // suffix range: the last N bytes
    uint64_t suffix = 0;
    if (!ParseUint(last_text, &suffix)) return std::nullopt;
    if (suffix == 0 || size == 0) return ByteRange{0, 0};
    suffix = std::min(suffix, size);
    return ByteRange{size - suffix, suffix};
  }
  if (!ParseUint(first_text, &first)) return std::nullopt;
  if (last_text.empty()) {
    last = size == 0 ? 0 : size - 1;
  } else {
    if (!ParseUint(last_text, &last)) return std::nullopt;
    if (last < first) return std::nullopt;  // syntactically invalid: ignore the header
    if (size > 0) last = std::min(last, size - 1);
  }
  if (first >= size) return ByteRange{0, 0};
  return ByteRange{first, last - first + 1};
}

// Answers a GET for the blob `digest` (64 lower-case hex, checked by the caller) with Range support.
Response ServeBlob(const std::filesystem::path& blob_root, std::string_view digest,
                   const Request& request) {
    std::string relative = std::string(digest.substr(0, 2)) + "/" + std::string(digest);
    uint64_t size = 0;
    auto fd = OpenBeneath(blob_root, relative);
    if (!fd) return NotFound();
    struct stat st;
    if (fstat(fd->get(), &st) != 0) return JsonError(500, "internal", "stat failed");
    size = static_cast<uint64_t>(st.st_size);
    const std::string etag = "\"" + std::string(digest) + "\"";
    Response response;
    std::optional<ByteRange> range;
    if (EtagMatches(request.Header("If-None-Match"), etag)) {
      response.status = 304;
    } else {
      // If-Range with another validator means the client's copy is stale: send everything.
      std::string_view if_range = request.Header("If-Range");
      if (if_range.empty() || if_range == etag) range = ParseRange(request.Header("Range"), size);
      if (range && range->length == 0) {
        response = JsonError(416, "range_not_satisfiable", "the range is outside the blob");
        response.SetHeader("Content-Range", "bytes */" + std::to_string(size));
      } else {
        response = FileResponse(std::move(*fd), size);
        if (range) {
          response.status = 206;
          response.file->offset = range->first;
          response.file->length = range->length;
          response.SetHeader("Content-Range", "bytes " + std::to_string(range->first) + "-" +
                                                  std::to_string(range->first + range->length - 1) +
                                                  "/" + std::to_string(size));
        }
        response.SetHeader("Content-Type", "application/octet-stream");
      }
    }
    response.SetHeader("Accept-Ranges", "bytes");
    response.SetHeader("ETag", etag);
    response.SetHeader("Cache-Control", kImmutable);
    return response;
}

void AddStaticRoutes(Router* router, const std::filesystem::path& data_dir) {
  const std::filesystem::path tuf_root = data_dir / "tuf";
  // Consistent-snapshot target paths for standard TUF clients (target base URL /tuf/<app>/targets/):
  // <dirs>/<sha256>.<basename> is the blob of that sha256. Blobs are content-addressed and clients check
  // every byte against signed targets metadata, so the name part is not looked up.
  router->Add("GET", "/tuf/{app}/targets/*", [blob_root = data_dir / "blobs"](const Request& request) {
    std::string_view app = request.Param("app");
    if (!SafeRelative(app) || !SafeRelative(request.rest)) return NotFound();
    std::string_view name = request.rest;
    if (size_t slash = name.rfind('/'); slash != std::string_view::npos)
      name.remove_prefix(slash + 1);
    if (name.size() < 66 || name[64] != '.' || !IsLowerHex(name.substr(0, 64))) return NotFound();
    return ServeBlob(blob_root, name.substr(0, 64), request);
  });
  router->Add("GET", "/tuf/{app}/*", [tuf_root](const Request& request) {
    std::string_view app = request.Param("app");
    if (!SafeRelative(app) || !SafeRelative(request.rest)) return NotFound();
    std::string relative = std::string(app) + "/" + request.rest;
    auto fd = OpenBeneath(tuf_root, relative);
    if (!fd) return NotFound();
    struct stat st;
    if (fstat(fd->get(), &st) != 0) return JsonError(500, "internal", "stat failed");
    char etag[64];
    std::snprintf(etag, sizeof(etag), "\"%llx-%llx\"", static_cast<unsigned long long>(st.st_size),
                  static_cast<unsigned long long>(st.st_mtim.tv_sec) * 1000000000ull +
                      static_cast<unsigned long long>(st.st_mtim.tv_nsec));
    std::string_view name = request.rest;
    if (size_t slash = name.rfind('/'); slash != std::string_view::npos)
      name.remove_prefix(slash + 1);
    Response response;
    if (EtagMatches(request.Header("If-None-Match"), etag)) {
      response.status = 304;
    } else {
      response = FileResponse(std::move(*fd), static_cast<uint64_t>(st.st_size));
      response.SetHeader("Content-Type",
                         name.ends_with(".json") ? "application/json" : "application/octet-stream");
    }
    response.SetHeader("Cache-Control", TufCacheControl(name));
    response.SetHeader("ETag", etag);
    response.SetHeader("Last-Modified", HttpDate(st.st_mtim.tv_sec));
    return response;
  });

  const std::filesystem::path blob_root = data_dir / "blobs";
  router->Add("GET", "/v1/blobs/{sha256}", [blob_root](const Request& request) {
    std::string_view digest = request.Param("sha256");
    if (!IsLowerHex(digest, 64)) {
      return JsonError(404, "not_found", "a blob is named by 64 lower-case hex digits");
    }
    return ServeBlob(blob_root, digest, request);
  });
}

}  // namespace airlock::server
