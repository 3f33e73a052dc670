#include "client/download.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <optional>

#include "bundle/background_hasher.h"
#include "client/http.h"
#include "client/io_error.h"
#include "common/bytes.h"
#include "common/fd.h"
#include "common/file.h"
#include "crypto/hash.h"

namespace airlock::client {
namespace {

namespace fs = std::filesystem;

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

// What arrives is gathered into blocks of kPartBlock bytes; a full block is appended to the part
// with one write and hashed on a second thread (bundle::BackgroundHasher) while the next block
// fills. Two blocks take turns, so memory stays constant.
constexpr size_t kPartBlock = 256 * 1024;

class PartWriter {
 public:
  // Appends to `fd` from byte `offset` on.
  PartWriter(int fd, uint64_t offset) : fd_(fd), flushed_(offset) {}

  // Hashes the part's first `size` bytes (a resume) before anything is appended.
  Result<void> HashExisting(uint64_t size) {
    uint64_t offset = 0;
    while (offset < size) {
      Bytes& buf = bufs_[current_];
      const size_t want = static_cast<size_t>(std::min<uint64_t>(kPartBlock, size - offset));
      buf.resize(want);
      AIRLOCK_TRY(PreadExact(fd_, offset, buf));
      SubmitAndSwitch();
      offset += want;
    }
    return {};
  }

  Result<void> Append(ByteSpan data) {
    while (!data.empty()) {
      Bytes& buf = bufs_[current_];
      if (buf.capacity() < kPartBlock) buf.reserve(kPartBlock);
      const size_t take = std::min(kPartBlock - buf.size(), data.size());
      buf.insert(buf.end(), data.begin(), data.begin() + take);
      data = data.subspan(take);
      if (buf.size() == kPartBlock) AIRLOCK_TRY(Flush());
    }
    return {};
  }

  // Writes and hashes what is gathered (a partial block at the end, or before giving up so that a
  // resume keeps every byte that arrived).
  Result<void> Flush() {
    Bytes& buf = bufs_[current_];
    if (buf.empty()) return {};
    if (::lseek(fd_, static_cast<off_t>(flushed_), SEEK_SET) < 0) {
      return MakeError(ErrorCode::kIo, std::string("cannot seek the part: ") + strerror(errno));
    }
    AIRLOCK_TRY(WriteAll(fd_, buf));
    flushed_ += buf.size();
    SubmitAndSwitch();
    return {};
  }

  std::string HexDigest() { return HexEncode(hasher_.Finish()); }

 private:
  // Hands the current buffer to the hasher and makes the other one current, empty, once the
  // hasher is done with what it held.
  void SubmitAndSwitch() {
    sequence_[current_] = hasher_.Submit(bufs_[current_]);
    current_ ^= 1;
    if (sequence_[current_] != 0) hasher_.WaitHashed(sequence_[current_]);
    sequence_[current_] = 0;
    bufs_[current_].clear();
  }

  int fd_;
  uint64_t flushed_;
  Bytes bufs_[2];
  uint64_t sequence_[2] = {0, 0};  // the hasher's number for what each buffer holds, 0: none
  int current_ = 0;
  bundle::BackgroundHasher hasher_;  // after the buffers: stopped before they go
};

// The state of one transfer, shared with its body sink.
struct Transfer {
  PartWriter* writer = nullptr;
  uint64_t written = 0;   // bytes in the part (and hashed) so far, or gathered to be
  uint64_t expected = 0;  // the hard bound
  const DownloadOptions* options = nullptr;
  bool exceeded = false;
  std::optional<Error> write_error;
};

// The sink of one transfer: what arrives goes to the part, never a byte past the signed length.
Result<void> Receive(Transfer& t, ByteSpan chunk) {
  if (chunk.size() > t.expected - t.written) {
    // The first byte past the signed length: the transfer stops here.
    t.exceeded = true;
    return MakeError(ErrorCode::kLimitExceeded, "more than the signed length");
  }
  auto appended = t.writer->Append(chunk);
  if (!appended) {
    t.write_error = appended.error();
    return appended;
  }
  t.written += chunk.size();
  if (t.options->progress) t.options->progress(t.written, t.expected);
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
    PartWriter writer(fd.get(), have);
    AIRLOCK_TRY_CTX(writer.HashExisting(have), "re-hashing " + part.string());
    Transfer t;
    t.writer = &writer;
    t.written = have;
    t.expected = expected_length;
    t.options = &options;
    if (options.progress) options.progress(have, expected_length);

    Result<HttpResponse> answer = HttpResponse{};
    if (have < expected_length) {
      HttpRequest request;
      request.url = url;
      request.user_agent = options.user_agent;
      request.max_redirects = options.max_redirects;
      request.connect_timeout = options.connect_timeout;
      request.low_speed_limit = options.low_speed_limit_bytes_per_second;
      request.low_speed_time = options.low_speed_time;
      request.range_from = have;
      answer = HttpExchange(request, [&t](ByteSpan chunk) { return Receive(t, chunk); });
    }
    // What arrived goes to the part, also when the transfer broke off (a resume keeps it).
    if (!t.exceeded && !t.write_error) {
      if (auto flushed = writer.Flush(); !flushed) t.write_error = flushed.error();
    }

    if (t.exceeded) {
      AIRLOCK_TRY(DropPart(fd.get(), part));
      return MakeError(ErrorCode::kLimitExceeded, url + ": the server sent more than the " +
                                                      std::to_string(expected_length) +
                                                      " bytes the target is signed for");
    }
    if (t.write_error) return tl::unexpected(t.write_error->WithContext(part.string()));
    if (!answer) {
      if (answer.error().code() == ErrorCode::kInvalidArgument)
        return tl::unexpected(answer.error());
      // Connection lost, timeout, slow server: the part keeps what arrived, for a resume.
      return MakeError(ErrorCode::kIo, answer.error().message() + " (" + std::to_string(t.written) +
                                           " of " + std::to_string(expected_length) +
                                           " bytes kept for a resume)");
    }
    const int status = answer->status;
    if (have < expected_length && have > 0 && status >= 200 && status <= 299 && status != 206) {
      if (pass == 0) {
        // The server answered the Range with a whole body (200): start over from byte 0.
        if (::ftruncate(fd.get(), 0) != 0) {
          return tl::unexpected(IoError("cannot truncate", part, errno));
        }
        continue;
      }
      break;
    }
    if (have < expected_length && (status < 200 || status > 299)) {
      if (status == 416 || status == 403 || status == 404 || status == 410) {
        // The blob is gone or shorter than the part: the part is no use any more.
        AIRLOCK_TRY(DropPart(fd.get(), part));
        return MakeError(status == 416 ? ErrorCode::kIo : ErrorCode::kNotFound,
                         url + ": HTTP " + std::to_string(status));
      }
      return MakeError(ErrorCode::kIo, url + ": HTTP " + std::to_string(status));
    }
    if (t.written < expected_length) {
      return MakeError(ErrorCode::kTruncated,
                       url + ": the body ended after " + std::to_string(t.written) + " of " +
                           std::to_string(expected_length) + " bytes (kept for a resume)");
    }
    const std::string got_hex = writer.HexDigest();
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
