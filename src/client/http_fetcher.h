// HttpFetcher: the HTTP(S) transport of the TUF client (client/http.h).
#ifndef AIRLOCK_CLIENT_HTTP_FETCHER_H_
#define AIRLOCK_CLIENT_HTTP_FETCHER_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "client/fetcher.h"

namespace airlock::client {

struct HttpFetcherOptions {
  // Time allowed to resolve, connect and finish the TLS handshake.
  std::chrono::seconds connect_timeout{30};
  // Slow-retrieval defence: abort when fewer than low_speed_limit bytes/s arrive, on average, over
  // low_speed_time.
  uint64_t low_speed_limit_bytes_per_second = 100;
  std::chrono::seconds low_speed_time{30};
  // Redirects are followed (http/https only) at most this many times.
  int max_redirects = 5;
  std::string user_agent = "airlock-agent/0.1";
};

// Fetches http:// and https:// URLs only (other schemes, also via redirects, are refused with
// kInvalidArgument). The body is streamed (FetchTo: to the caller's sink in pieces of at most
// 64 KiB; Fetch: into memory) and the transfer aborted as soon as it exceeds max_length
// (kLimitExceeded), also when the server announces a larger Content-Length. HTTP
// 403, 404 and 410 are kNotFound; other non-2xx statuses, timeouts and connection failures are kIo.
// TLS peers are verified against the system trust store. One connection per call: the object holds
// no connection state and is cheap to construct. Not thread-safe (use one instance per thread).
class HttpFetcher : public Fetcher {
 public:
  explicit HttpFetcher(HttpFetcherOptions options = {});
  Result<Bytes> Fetch(const std::string& url, uint64_t max_length) override;
  Result<void> FetchTo(const std::string& url, uint64_t max_length, const ChunkSink& sink) override;

 private:
  HttpFetcherOptions options_;
};

}  // namespace airlock::client

#endif  // AIRLOCK_CLIENT_HTTP_FETCHER_H_
