// Fetcher: the one seam through which the TUF client reads remote (untrusted) bytes. The updater
// only ever asks for a URL and a byte bound; transports (libcurl, local files, memory for tests)
// live behind it.
#ifndef AIRLOCK_CLIENT_FETCHER_H_
#define AIRLOCK_CLIENT_FETCHER_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace airlock::client {

// Fetches whole resources with a hard size bound. Implementations must:
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
};

// An in-memory fetcher for tests: serves a map url -> bytes and records every requested URL in
// order. A URL that is not in the map is kNotFound; a body longer than max_length is
// kLimitExceeded, and delivered_bytes() counts only what a streaming transport would have read
// before aborting (max_length + 1 at most per request).
class MemoryFetcher : public Fetcher {
 public:
  Result<Bytes> Fetch(const std::string& url, uint64_t max_length) override;

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
};

// Reads URLs as local paths: "file:///abs/path" or a plain filesystem path. Useful to run the
// client against a repository on disk (for example `airlock repo verify`): pass "/repo/metadata/"
// as the metadata base URL. Missing files are kNotFound; files larger than max_length are
// kLimitExceeded.
class FileFetcher : public Fetcher {
 public:
  Result<Bytes> Fetch(const std::string& url, uint64_t max_length) override;
};

}  // namespace airlock::client

#endif  // AIRLOCK_CLIENT_FETCHER_H_
