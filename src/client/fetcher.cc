#include "client/fetcher.h"

#include <algorithm>

#include "common/file.h"

namespace airlock::client {

Result<Bytes> MemoryFetcher::Fetch(const std::string& url, uint64_t max_length) {
  requests_.push_back(url);
  auto it = files_.find(url);
  if (it == files_.end()) return MakeError(ErrorCode::kNotFound, "not found: " + url);
  const Bytes& body = it->second;
  if (body.size() > max_length) {
    // A streaming transport stops after the first byte past the bound.
    delivered_bytes_ += max_length + 1;
    return MakeError(ErrorCode::kLimitExceeded,
                     url + ": more than " + std::to_string(max_length) + " bytes");
  }
  delivered_bytes_ += body.size();
  return body;
}

Result<Bytes> FileFetcher::Fetch(const std::string& url, uint64_t max_length) {
  std::string path = url;
  constexpr std::string_view kScheme = "file://";
  if (path.rfind(kScheme, 0) == 0) path = path.substr(kScheme.size());
  // ReadFile reports kNotFound / kLimitExceeded / kIo exactly as the Fetcher contract asks.
  return ReadFile(path, max_length);
}

}  // namespace airlock::client
