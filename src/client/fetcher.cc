#include "client/fetcher.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/file.h"

namespace airlock::client {

namespace {

Result<void> DeliverInChunks(ByteSpan body, size_t chunk_size, const ChunkSink& sink) {
  for (size_t off = 0; off < body.size(); off += chunk_size) {
    AIRLOCK_TRY(sink(body.subspan(off, std::min(chunk_size, body.size() - off))));
  }
  return {};
}

std::string LocalPath(const std::string& url) {
  constexpr std::string_view kScheme = "file://";
  return url.rfind(kScheme, 0) == 0 ? url.substr(kScheme.size()) : url;
}

}  // namespace

Result<void> Fetcher::FetchTo(const std::string& url, uint64_t max_length, const ChunkSink& sink) {
  AIRLOCK_ASSIGN_OR_RETURN(Bytes body, Fetch(url, max_length));
  if (body.size() > max_length) {
    return MakeError(ErrorCode::kLimitExceeded,
                     url + ": more than " + std::to_string(max_length) + " bytes");
  }
  return DeliverInChunks(body, kFetchChunkSize, sink);
}

Result<void> MemoryFetcher::FetchTo(const std::string& url, uint64_t max_length,
                                    const ChunkSink& sink) {
  requests_.push_back(url);
  auto it = files_.find(url);
  if (it == files_.end()) return MakeError(ErrorCode::kNotFound, "not found: " + url);
  const Bytes& body = it->second;
  const size_t deliverable = static_cast<size_t>(std::min<uint64_t>(body.size(), max_length));
  delivered_bytes_ += deliverable;
  AIRLOCK_TRY(DeliverInChunks(ByteSpan(body.data(), deliverable), chunk_size_, sink));
  if (body.size() > max_length) {
    delivered_bytes_ += 1;  // the byte that crossed the bound
    return MakeError(ErrorCode::kLimitExceeded,
                     url + ": more than " + std::to_string(max_length) + " bytes");
  }
  return {};
}

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
  // ReadFile reports kNotFound / kLimitExceeded / kIo exactly as the Fetcher contract asks.
  return ReadFile(LocalPath(url), max_length);
}

Result<void> FileFetcher::FetchTo(const std::string& url, uint64_t max_length,
                                  const ChunkSink& sink) {
  const std::string path = LocalPath(url);
  uint64_t size = 0;
  AIRLOCK_ASSIGN_OR_RETURN(UniqueFd fd, OpenForRead(path, &size));
  auto too_long = [&] {
    return MakeError(ErrorCode::kLimitExceeded,
                     path + ": more than " + std::to_string(max_length) + " bytes");
  };
  if (size > max_length) return too_long();
  std::vector<uint8_t> buf(kFetchChunkSize);
  uint64_t offset = 0;
  while (true) {
    AIRLOCK_ASSIGN_OR_RETURN(size_t n, PreadSome(fd.get(), offset, buf));
    if (n == 0) return {};
    // The file may grow while it is read: the bound holds for what is read, not what was stat'ed.
    if (offset + n > max_length) return too_long();
    AIRLOCK_TRY(sink(ByteSpan(buf.data(), n)));
    offset += n;
  }
}

}  // namespace airlock::client
