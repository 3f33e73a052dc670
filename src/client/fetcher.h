// Fetcher: the one seam through which the TUF client reads remote (untrusted) bytes. The updater
// only ever asks for a URL and a byte bound; transports (HTTP(S), local files, memory for tests)
// live behind it.
#ifndef AIRLOCK_CLIENT_FETCHER_H_
#define AIRLOCK_CLIENT_FETCHER_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace airlock::client {

// The largest chunk FetchTo hands its sink (HttpFetcher's are at most 64 KiB).
inline constexpr size_t kFetchChunkSize = 64 * 1024;

// Receives a body chunk by chunk; an error stops the transfer and is what FetchTo returns.
using ChunkSink = std::function<Result<void>(ByteSpan)>;

// Fetches resources with a hard size bound, whole (Fetch) or streamed (FetchTo). Implementations
// must:
//  - return ErrorCode::kNotFound when the resource does not exist (HTTP 403/404/410, a missing
//  file), so
//    the updater can tell "no newer root" from a failure;
//  - return ErrorCode::kLimitExceeded as soon as more than `max_length` bytes arrive (endless-data
//    attack), without reading further;
//  - return ErrorCode::kIo for any other transport failure (refused connection, timeout, HTTP 5xx,
//  ...).
// Instances are used from one thread at a time.
class Fetcher {
 public:
  virtual ~Fetcher() = default;
  [[nodiscard]] virtual Result<Bytes> Fetch(const std::string& url, uint64_t max_length) = 0;
  // Streams the body to `sink` in chunks of at most kFetchChunkSize bytes. No byte past
  // `max_length` reaches the sink: a longer body is kLimitExceeded once the bound is crossed
  // (earlier chunks have been delivered). The default slices what Fetch() returns (for transports
  // that only have whole bodies); the fetchers below stream without holding the body.
  [[nodiscard]] virtual Result<void> FetchTo(const std::string& url, uint64_t max_length,
                                             const ChunkSink& sink);
};

// An in-memory fetcher for tests: serves a map url -> bytes and records every requested URL in
// order. A URL that is not in the map is kNotFound; a body longer than max_length is
// kLimitExceeded, and delivered_bytes() counts only what a streaming transport would have read
// before aborting (max_length + 1 at most per request).
class MemoryFetcher : public Fetcher {
 public:
  Result<Bytes> Fetch(const std::string& url, uint64_t max_length) override;
  // Delivers the body in chunks of chunk_size() bytes (also recorded in requests()).
  Result<void> FetchTo(const std::string& url, uint64_t max_length, const ChunkSink& sink) override;
  void set_chunk_size(size_t n) { chunk_size_ = n == 0 ? 1 : std::min(n, kFetchChunkSize); }
  size_t chunk_size() const { return chunk_size_; }

  void Set(const std::string& url, Bytes body) { files_[url] = std::move(body); }
  void Remove(const std::string& url) { files_.erase(url); }
  void ClearRequests() { requests_.clear(); }
  const std::vector<std::string>& requests() const { return requests_; }
  const std::map<std::string, Bytes>& files() const { return files_; }
  uint64_t delivered_bytes() const { return delivered_bytes_; }

 private:
  std::map<std::string, Bytes> files_;
  std::vector<std::string> requests_;
  uint64_t delivered_bytes_ = 0;
  size_t chunk_size_ = 16 * 1024;
};

// Reads URLs as local paths: "file:///abs/path" or a plain filesystem path. Useful to run the
// client against a repository on disk (for example `airlock repo verify`): pass "/repo/metadata/"
// as the metadata base URL. Missing files are kNotFound; files larger than max_length are
// kLimitExceeded.
class FileFetcher : public Fetcher {
 public:
  Result<Bytes> Fetch(const std::string& url, uint64_t max_length) override;
  Result<void> FetchTo(const std::string& url, uint64_t max_length, const ChunkSink& sink) override;
};

}  // namespace airlock::client

#endif  // AIRLOCK_CLIENT_FETCHER_H_
