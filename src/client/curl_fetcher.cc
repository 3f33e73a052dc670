#include "client/curl_fetcher.h"

#include <curl/curl.h>

#include <optional>

#include "client/curl_util.h"

namespace airlock::client {
namespace {

struct Sink {
  const ChunkSink* sink = nullptr;
  uint64_t received = 0;
  uint64_t max_length = 0;
  bool exceeded = false;
  std::optional<Error> sink_error;  // what the caller's sink refused
};

size_t WriteCallback(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  size_t n = size * count;
  if (n > sink->max_length - sink->received) {
    // Returning less than n makes libcurl abort the transfer with CURLE_WRITE_ERROR right now, so
    // an endless response costs at most one network buffer beyond the bound, and no byte past the
    // bound reaches the caller.
    sink->exceeded = true;
    return 0;
  }
  sink->received += n;
  Result<void> ok = (*sink->sink)(ByteSpan(reinterpret_cast<const uint8_t*>(data), n));
  if (!ok) {
    sink->sink_error = ok.error();
    return 0;
  }
  return n;
}

}  // namespace

CurlFetcher::CurlFetcher(CurlFetcherOptions options) : options_(std::move(options)) {}

Result<Bytes> CurlFetcher::Fetch(const std::string& url, uint64_t max_length) {
  Bytes body;
  AIRLOCK_TRY(FetchTo(url, max_length, [&body](ByteSpan chunk) -> Result<void> {
    body.insert(body.end(), chunk.begin(), chunk.end());
    return {};
  }));
  return body;
}

Result<void> CurlFetcher::FetchTo(const std::string& url, uint64_t max_length,
                                  const ChunkSink& chunk_sink) {
  if (!HasHttpScheme(url)) {
    return MakeError(ErrorCode::kInvalidArgument, "only http and https URLs are fetched: " + url);
  }
  CurlGlobalInitOnce();
  CurlEasyPtr curl(curl_easy_init());
  if (!curl) return MakeError(ErrorCode::kInternal, "curl_easy_init failed");
  CURL* h = curl.get();
  Sink sink;
  sink.sink = &chunk_sink;
  sink.max_length = max_length;
  char error_buffer[CURL_ERROR_SIZE] = {0};

  bool ok = curl_easy_setopt(h, CURLOPT_URL, url.c_str()) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_MAXREDIRS, options_.max_redirects) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
            // Error bodies (>= 400) are not read at all, so a 404 page can never be mistaken for
            // an oversized response.
            curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT,
                             static_cast<long>(options_.connect_timeout.count())) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT,
                             options_.low_speed_limit_bytes_per_second) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME,
                             static_cast<long>(options_.low_speed_time.count())) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_length)) ==
                CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &WriteCallback) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_USERAGENT, options_.user_agent.c_str()) == CURLE_OK &&
            // Identity encoding only: the bound applies to the bytes we keep, and a compressed body
            // could expand far past what the server sent.
            curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, nullptr) == CURLE_OK;
  if (!ok) return MakeError(ErrorCode::kInternal, "cannot configure libcurl for " + url);

  CURLcode rc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  if (sink.exceeded || rc == CURLE_FILESIZE_EXCEEDED) {
    return MakeError(ErrorCode::kLimitExceeded,
                     url + ": response is longer than " + std::to_string(max_length) + " bytes");
  }
  if (sink.sink_error) return tl::unexpected(*sink.sink_error);
  if (rc == CURLE_UNSUPPORTED_PROTOCOL) {
    return MakeError(ErrorCode::kInvalidArgument, url + ": refused protocol (redirect?)");
  }
  if (rc == CURLE_HTTP_RETURNED_ERROR || (rc == CURLE_OK && (status < 200 || status > 299))) {
    if (status == 403 || status == 404 || status == 410) {
      return MakeError(ErrorCode::kNotFound, url + ": HTTP " + std::to_string(status));
    }
    return MakeError(ErrorCode::kIo, url + ": HTTP " + std::to_string(status));
  }
  if (rc != CURLE_OK) {
    std::string detail = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc);
    return MakeError(ErrorCode::kIo, url + ": " + detail);
  }
  return {};
}

}  // namespace airlock::client
