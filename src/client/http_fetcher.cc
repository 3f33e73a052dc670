#include "client/http_fetcher.h"

#include "client/http.h"

namespace airlock::client {

HttpFetcher::HttpFetcher(HttpFetcherOptions options) : options_(std::move(options)) {}

Result<Bytes> HttpFetcher::Fetch(const std::string& url, uint64_t max_length) {
  Bytes body;
  AIRLOCK_TRY(FetchTo(url, max_length, [&body](ByteSpan chunk) -> Result<void> {
    body.insert(body.end(), chunk.begin(), chunk.end());
    return {};
  }));
  return body;
}

Result<void> HttpFetcher::FetchTo(const std::string& url, uint64_t max_length,
                                  const ChunkSink& chunk_sink) {
  if (!HasHttpScheme(url)) {
    return MakeError(ErrorCode::kInvalidArgument, "only http and https URLs are fetched: " + url);
  }
  HttpRequest request;
  request.url = url;
  request.user_agent = options_.user_agent;
  request.max_redirects = options_.max_redirects;
  request.max_body = max_length;
  request.connect_timeout = options_.connect_timeout;
  request.low_speed_limit = options_.low_speed_limit_bytes_per_second;
  request.low_speed_time = options_.low_speed_time;
  uint64_t received = 0;
  bool exceeded = false;
  bool sink_failed = false;  // the caller's sink refused: its error is returned as it is
  auto sink = [&](ByteSpan chunk) -> Result<void> {
    if (chunk.size() > max_length - received) {
      // The first byte past the bound: the transfer stops here and no byte past the bound reaches
      // the caller.
      exceeded = true;
      return MakeError(ErrorCode::kLimitExceeded,
                       url + ": response is longer than " + std::to_string(max_length) + " bytes");
    }
    received += chunk.size();
    auto taken = chunk_sink(chunk);
    if (!taken) sink_failed = true;
    return taken;
  };
  auto response = HttpExchange(request, sink);
  if (!response) {
    if (exceeded || (!sink_failed && response.error().code() == ErrorCode::kLimitExceeded)) {
      return MakeError(ErrorCode::kLimitExceeded,
                       url + ": response is longer than " + std::to_string(max_length) + " bytes");
    }
    return tl::unexpected(response.error());
  }
  const int status = response->status;
  if (status < 200 || status > 299) {
    if (status == 403 || status == 404 || status == 410) {
      return MakeError(ErrorCode::kNotFound, url + ": HTTP " + std::to_string(status));
    }
    return MakeError(ErrorCode::kIo, url + ": HTTP " + std::to_string(status));
  }
  return {};
}

}  // namespace airlock::client
