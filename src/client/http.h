// The device's HTTP client: one request at a time over HTTP/1.1, http:// or https:// only, on
// Boost.Beast and OpenSSL (libcrypto and libssl are loaded anyway; libcurl would bring some 25
// more libraries, ~4 MB of a device's resident memory, for protocols the agent never speaks).
//
// TLS: OpenSSL's default trust store (SSL_CERT_FILE / SSL_CERT_DIR honoured), TLS 1.2 or newer,
// the peer verified and its name (or IP address) checked against the URL's host, SNI sent.
// No proxy support (http_proxy and friends are not read), no compression (identity only, so that
// every bound applies to the bytes kept), no connection reuse. Names are resolved with the system
// resolver (getaddrinfo), under its own timeouts; connect_timeout starts after it.
#ifndef AIRLOCK_CLIENT_HTTP_H_
#define AIRLOCK_CLIENT_HTTP_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace airlock::client {

struct HttpRequest {
  std::string method = "GET";  // GET or POST
  std::string url;             // http:// or https://
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // sent with POST
  std::string user_agent;
  // > 0: asks for "Range: bytes=N-"; a 206 must then start exactly there (kIo otherwise). Any
  // other 2xx answer is returned without reading its body (the caller starts over).
  uint64_t range_from = 0;
  // Redirects (301, 302, 303, 307, 308) followed to http/https URLs only; 0: a redirect is
  // returned as it is, unread. More than max_redirects: kIo.
  int max_redirects = 0;
  // false: the body of a status >= 300 is not read (a 404 page never reaches the sink).
  bool read_error_body = false;
  // A declared Content-Length above this is refused before reading (kLimitExceeded); the sink
  // enforces the bound on what actually arrives.
  uint64_t max_body = UINT64_MAX;
  std::chrono::seconds connect_timeout{30};  // resolve + connect + TLS handshake
  std::chrono::seconds total_timeout{0};     // 0: none
  // Both set: the transfer fails (kIo) when fewer than low_speed_limit bytes per second arrived,
  // on average, over low_speed_time (also when nothing at all arrives for that long).
  uint64_t low_speed_limit = 0;
  std::chrono::seconds low_speed_time{0};
};

struct HttpResponse {
  int status = 0;
  std::string url;                  // after redirects
  int64_t retry_after_seconds = 0;  // Retry-After in delta-seconds (0 when absent or a date)
};

// Receives the body piece by piece as it arrives; an error stops the transfer and is returned.
using HttpBodySink = std::function<Result<void>(ByteSpan)>;

// Performs `request`. Errors: kInvalidArgument (not an http/https URL, a redirect elsewhere),
// kIo (DNS, connection, TLS, timeouts, too slow, a malformed or cut-off answer, a redirect loop),
// kLimitExceeded (declared body over max_body), or the sink's error. Any HTTP status is a
// success here: the caller decides what it means.
[[nodiscard]] Result<HttpResponse> HttpExchange(const HttpRequest& request,
                                                const HttpBodySink& sink);

// Whether `url` starts with http:// or https://.
bool HasHttpScheme(const std::string& url);

}  // namespace airlock::client

#endif  // AIRLOCK_CLIENT_HTTP_H_
