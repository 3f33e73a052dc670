// DownloadFile: fetches a blob into `dest` through `dest`.part, with resume, a hard size bound and
// a streaming SHA-256, and places it only when its length and hash are the ones the caller expects
// (the signed TUF length and hash: the caller passes what it verified, never the server's claim).
//
//   - An existing part is re-hashed from its first byte, then the rest is asked for with an HTTP
//     Range from the part's size (client/http.h checks the 206's Content-Range starts there). A
//     server that answers 200 (no ranges) gets one new request from byte 0, the part emptied first.
//   - The transfer is aborted at the first byte past `expected_length` (kLimitExceeded), so an
//     endless or oversized answer costs at most one network buffer; such a part is deleted.
//   - When the part reaches `expected_length` its SHA-256 is compared: a mismatch deletes the part
//     (kHashMismatch); a match fsyncs it and renames it onto `dest` (replacing any file there),
//     then fsyncs the directory.
//   - A transfer that ends early (connection lost, timeout, the server closed the body) keeps the
//     part for the next call: kIo, or kTruncated when the server ended the body on its own.
//   - A `dest` already holding exactly the expected bytes is accepted without any request.
// The part is created 0600 and never followed through a symlink. Not thread-safe for one `dest`:
// two concurrent calls for the same destination must be serialised by the caller.
#ifndef AIRLOCK_CLIENT_DOWNLOAD_H_
#define AIRLOCK_CLIENT_DOWNLOAD_H_

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "common/result.h"

namespace airlock::client {

struct DownloadOptions {
  std::chrono::seconds connect_timeout{30};
  // Slow-retrieval defence: abort (kIo, part kept) when fewer than low_speed_limit bytes/s arrive
  // for low_speed_time.
  uint64_t low_speed_limit_bytes_per_second = 100;
  std::chrono::seconds low_speed_time{30};
  // Redirects (a CDN's signed URL) are followed, http/https only, at most this many times. Safe:
  // the bytes are checked against the expected hash, not against where they came from.
  int max_redirects = 5;
  std::string user_agent = "airlock-agent/0.1";
  // Called with (bytes of the file so far, expected_length) after each chunk written, and once
  // before the transfer with what the part already holds. Must not throw.
  std::function<void(uint64_t done, uint64_t total)> progress;
};

// The part file DownloadFile uses for `dest`: dest + ".part".
std::filesystem::path PartPath(const std::filesystem::path& dest);

// See above. `expected_sha256_hex`: 64 hex digits (kInvalidArgument otherwise). Other errors:
// kInvalidArgument (not an http/https URL), kNotFound (HTTP 403/404/410), kLimitExceeded,
// kHashMismatch, kTruncated, kIo.
[[nodiscard]] Result<void> DownloadFile(const std::string& url, const std::filesystem::path& dest,
                                        uint64_t expected_length,
                                        const std::string& expected_sha256_hex,
                                        const DownloadOptions& options = {});

}  // namespace airlock::client

#endif  // AIRLOCK_CLIENT_DOWNLOAD_H_
