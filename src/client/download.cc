#include "client/download.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>

#include "client/curl_util.h"
#include "common/bytes.h"
#include "common/fd.h"
#include "common/file.h"
#include "crypto/hash.h"

namespace airlock::client {
namespace {

namespace fs = std::filesystem;

Error IoError(const std::string& what, const fs::path& path, int err) {
  return Error(ErrorCode::kIo, what + " " + path.string() + ": " + std::strerror(err));
}

bool IsHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The state of one transfer, shared with libcurl's write callback.
struct Transfer {
  int fd = -1;
  uint64_t written = 0;   // bytes in the part (and hashed) so far
  uint64_t expected = 0;  // the hard bound
  crypto::Hasher* hasher = nullptr;
  const DownloadOptions* options = nullptr;
  bool exceeded = false;
  std::optional<Error> write_error;
};

size_t WriteChunk(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (n > t->expected - t->written) {
    // The first byte past the signed length: stop now (libcurl aborts with CURLE_WRITE_ERROR).
    t->exceeded = true;
    return 0;
  }
  const ByteSpan chunk(reinterpret_cast<const uint8_t*>(data), n);
  if (::lseek(t->fd, static_cast<off_t>(t->written), SEEK_SET) < 0) {
    t->write_error = Error(ErrorCode::kIo, std::string("cannot seek the part: ") + strerror(errno));
    return 0;
  }
  auto wrote = WriteAll(t->fd, chunk);
  if (!wrote) {
    t->write_error = wrote.error();
    return 0;
  }
  t->hasher->Update(chunk);
  t->written += n;
  if (t->options->progress) t->options->progress(t->written, t->expected);
  return n;
}

// Hashes the part's first `size` bytes into `hasher` (constant memory).
Result<void> HashPrefix(int fd, uint64_t size, crypto::Hasher& hasher) {
  std::array<uint8_t, 64 * 1024> buf{};
  uint64_t offset = 0;
  while (offset < size) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - offset));
    AIRLOCK_TRY(PreadExact(fd, offset, std::span<uint8_t>(buf.data(), want)));
    hasher.Update(ByteSpan(buf.data(), want));
    offset += want;
  }
  return {};
}

Result<void> DropPart(int fd, const fs::path& part) {
  if (::ftruncate(fd, 0) != 0) return tl::unexpected(IoError("cannot truncate", part, errno));
  if (::unlink(part.c_str()) != 0 && errno != ENOENT) {
    return tl::unexpected(IoError("cannot remove", part, errno));
  }
  return {};
}

// Whether `dest` already holds exactly the expected bytes.
bool AlreadyComplete(const fs::path& dest, uint64_t expected_length, const std::string& hex) {
  std::error_code ec;
  const fs::file_status st = fs::symlink_status(dest, ec);
  if (ec || !fs::is_regular_file(st)) return false;
  if (fs::file_size(dest, ec) != expected_length || ec) return false;
  uint64_t size = 0;
  auto digest = crypto::Sha256File(dest, &size);
  return digest && size == expected_length && HexEncode(*digest) == hex;
}

}  // namespace

fs::path PartPath(const fs::path& dest) { return fs::path(dest.string() + ".part"); }

Result<void> DownloadFile(const std::string& url, const fs::path& dest, uint64_t expected_length,
                          const std::string& expected_sha256_hex, const DownloadOptions& options) {
  if (!HasHttpScheme(url)) {
    return MakeError(ErrorCode::kInvalidArgument, "only http and https URLs are fetched: " + url);
  }
  if (!IsHex64(expected_sha256_hex)) {
    return MakeError(ErrorCode::kInvalidArgument, "the expected SHA-256 is not 64 hex digits");
  }
  const std::string want_hex = Lower(expected_sha256_hex);
  if (AlreadyComplete(dest, expected_length, want_hex)) {
    if (options.progress) options.progress(expected_length, expected_length);
    return {};
  }
  const fs::path part = PartPath(dest);
  UniqueFd fd(::open(part.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600));
  if (!fd.valid()) return tl::unexpected(IoError("cannot open", part, errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return tl::unexpected(IoError("cannot stat", part, errno));
  if (!S_ISREG(st.st_mode)) {
    return MakeError(ErrorCode::kIo, part.string() + " is not a regular file");
  }

  // At most two passes: a resume, then (if the server ignored the Range) one from byte 0.
  for (int pass = 0; pass < 2; ++pass) {
    if (::fstat(fd.get(), &st) != 0) return tl::unexpected(IoError("cannot stat", part, errno));
    uint64_t have = static_cast<uint64_t>(st.st_size);
    if (have > expected_length) {
      // Longer than the signed length: nothing in it can be right.
      if (::ftruncate(fd.get(), 0) != 0) {
        return tl::unexpected(IoError("cannot truncate", part, errno));
      }
      have = 0;
    }
    crypto::Hasher hasher = crypto::Hasher::Sha256();
    AIRLOCK_TRY_CTX(HashPrefix(fd.get(), have, hasher), "re-hashing " + part.string());
    Transfer t;
    t.fd = fd.get();
    t.written = have;
    t.expected = expected_length;
    t.hasher = &hasher;
    t.options = &options;
    if (options.progress) options.progress(have, expected_length);

    CURLcode rc = CURLE_OK;
    long status = 0;
    char error_buffer[CURL_ERROR_SIZE] = {0};
    if (have < expected_length) {
      CurlGlobalInitOnce();
      CurlEasyPtr curl(curl_easy_init());
      if (!curl) return MakeError(ErrorCode::kInternal, "curl_easy_init failed");
      CURL* h = curl.get();
      bool ok = curl_easy_setopt(h, CURLOPT_URL, url.c_str()) == CURLE_OK &&
                curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
                curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK &&
                curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L) == CURLE_OK &&
                curl_easy_setopt(h, CURLOPT_MAXREDIRS, options.max_redirects) == CURLE_OK &&
                curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
                curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L) == CURLE_OK &&
                curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
                                 static_cast<long>(options.connect_timeout.count())) == CURLE_OK &&
                curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT,
                                 options.low_speed_limit_bytes_per_second) == CURLE_OK &&
                curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                                 static_cast<long>(options.low_speed_time.count())) == CURLE_OK &&
                // libcurl sends "Range: bytes=have-" and refuses (CURLE_RANGE_ERROR) an answer that
                // is not a 206 starting there.
                curl_easy_setopt(h, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(have)) ==
                    CURLE_OK &&
                curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &WriteChunk) == CURLE_OK &&
                curl_easy_setopt(h, CURLOPT_WRITEDATA, &t) == CURLE_OK &&
                curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer) == CURLE_OK &&
                curl_easy_setopt(h, CURLOPT_USERAGENT, options.user_agent.c_str()) == CURLE_OK &&
                curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, nullptr) == CURLE_OK;
      if (!ok) return MakeError(ErrorCode::kInternal, "cannot configure libcurl for " + url);
      rc = curl_easy_perform(h);
      curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    }

    if (t.exceeded) {
      AIRLOCK_TRY(DropPart(fd.get(), part));
      return MakeError(ErrorCode::kLimitExceeded, url + ": the server sent more than the " +
                                                      std::to_string(expected_length) +
                                                      " bytes the target is signed for");
    }
    if (t.write_error) return tl::unexpected(t.write_error->WithContext(part.string()));
    if (rc == CURLE_RANGE_ERROR && pass == 0) {
      // The server answered the Range with a whole body (200): start over from byte 0.
      if (::ftruncate(fd.get(), 0) != 0) {
        return tl::unexpected(IoError("cannot truncate", part, errno));
      }
      continue;
    }
    if (rc == CURLE_HTTP_RETURNED_ERROR) {
      if (status == 416 || status == 403 || status == 404 || status == 410) {
        // The blob is gone or shorter than the part: the part is no use any more.
        AIRLOCK_TRY(DropPart(fd.get(), part));
        return MakeError(status == 416 ? ErrorCode::kIo : ErrorCode::kNotFound,
                         url + ": HTTP " + std::to_string(status));
      }
      return MakeError(ErrorCode::kIo, url + ": HTTP " + std::to_string(status));
    }
    if (rc != CURLE_OK) {
      // Connection lost, timeout, slow server: the part keeps what arrived, for a resume.
      const std::string detail = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc);
      return MakeError(ErrorCode::kIo, url + ": " + detail + " (" + std::to_string(t.written) +
                                           " of " + std::to_string(expected_length) +
                                           " bytes kept for a resume)");
    }
    if (t.written < expected_length) {
      return MakeError(ErrorCode::kTruncated,
                       url + ": the body ended after " + std::to_string(t.written) + " of " +
                           std::to_string(expected_length) + " bytes (kept for a resume)");
    }
    const std::string got_hex = HexEncode(hasher.Finish());
    if (got_hex != want_hex) {
      AIRLOCK_TRY(DropPart(fd.get(), part));
      return MakeError(ErrorCode::kHashMismatch,
                       url + ": SHA-256 " + got_hex + " is not the expected " + want_hex);
    }
    if (::fsync(fd.get()) != 0) return tl::unexpected(IoError("cannot fsync", part, errno));
    if (::rename(part.c_str(), dest.c_str()) != 0) {
      return tl::unexpected(IoError("cannot rename into", dest, errno));
    }
    const fs::path dir = dest.parent_path().empty() ? fs::path(".") : dest.parent_path();
    AIRLOCK_TRY(FsyncPath(dir));
    return {};
  }
  return MakeError(ErrorCode::kIo, url + ": the server does not honour Range requests");
}

}  // namespace airlock::client
