// CurlFetcher: the HTTP(S) transport of the TUF client, on libcurl.
#ifndef AIRLOCK_CLIENT_CURL_FETCHER_H_
#define AIRLOCK_CLIENT_CURL_FETCHER_H_

#include <chrono>
#include <string>

#include "client/fetcher.h"

namespace airlock::client {

struct CurlFetcherOptions {
  // Time allowed to establish the TCP/TLS connection.
  std::chrono::seconds connect_timeout{30};
  // Slow-retrieval defence: abort when fewer than low_speed_limit bytes/s arrive for
  // low_speed_time.
  long low_speed_limit_bytes_per_second = 100;
  std::chrono::seconds low_speed_time{30};
  // Redirects are followed (http/https only) at most this many times.
  long max_redirects = 5;
  std::string user_agent = "airlock-agent/0.1";
};

// Fetches http:// and https:// URLs only (other schemes, also via redirects, are refused with
// kInvalidArgument). The body is streamed (FetchTo: to the caller's sink, libcurl's chunks of at
// most 16 KiB; Fetch: into memory) and the transfer aborted as soon as it exceeds max_length
// (kLimitExceeded), also when the server announces a larger Content-Length. HTTP
// 403, 404 and 410 are kNotFound; other non-2xx statuses, timeouts and connection failures are kIo.
// TLS peers are verified against the system trust store. One easy handle per call: the object holds
// no connection state and is cheap to construct. Not thread-safe (use one instance per thread).
class CurlFetcher : public Fetcher {
 public:
  explicit CurlFetcher(CurlFetcherOptions options = {});
  Result<Bytes> Fetch(const std::string& url, uint64_t max_length) override;
  Result<void> FetchTo(const std::string& url, uint64_t max_length, const ChunkSink& sink) override;

 private:
  CurlFetcherOptions options_;
};

}  // namespace airlock::client

#endif  // AIRLOCK_CLIENT_CURL_FETCHER_H_
