// A small HTTP client for the CLI's server commands (libcurl): JSON requests with a bearer token,
// streamed file uploads with an optional progress bar.
//
// Only http and https; redirects are not followed (the bearer token must never go to another host).
// Response bodies read into memory are bounded (max_body, kLimitExceeded above it); connects time
// out after 15 s and a transfer that moves less than 1 byte/s for 60 s is aborted.
//
// Errors: kInvalidArgument for a server URL that is not http(s); kIo "cannot reach SERVER: ..."
// when no HTTP answer came (refused, timeout, TLS; a certificate that does not verify adds a hint
// naming --cacert); HTTP statuses are returned, not turned into
// errors (see ServerError for the usual mapping). Not thread-safe; one client per command.
#ifndef AIRLOCK_CLI_HTTP_CLIENT_H_
#define AIRLOCK_CLI_HTTP_CLIENT_H_

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace airlock::cli {

struct HttpResponse {
  long status = 0;
  std::string body;
  std::string content_type;
};

// `method path` refused by the server: an Error naming the server's code and message
// ("POST /api/v1/apps: 409 already_exists: app exists"). The code is never kInvalidArgument (a
// refusal is a failure, exit 1): 404 kNotFound, 409 kAlreadyExists, 422 kBadSignature, 401/403
// kWrongKey, other statuses kIo.
Error ServerError(const std::string& method, const std::string& path, const HttpResponse& response);

class HttpClient {
 public:
  // `server` is the base URL ("http://127.0.0.1:8080", a trailing '/' is dropped); `token` is sent
  // as "Authorization: Bearer" when non-empty and never printed. `ca_file` (--cacert) is a PEM file
  // of the CA certificates that https:// servers are verified against, instead of the system's;
  // when empty, $CURL_CA_BUNDLE, then $SSL_CERT_FILE, are used as curl does. A CA file that cannot
  // be read is kNotFound / kIo naming it. Verification is never switched off.
  [[nodiscard]] static Result<HttpClient> Create(std::string server, std::string token,
                                                 std::string ca_file = {});

  // A request to server + path (path starts with '/'). `body` is sent as is with `content_type`.
  [[nodiscard]] Result<HttpResponse> Request(const std::string& method, const std::string& path,
                                             const std::optional<std::string>& body = std::nullopt,
                                             const std::string& content_type = "application/json",
                                             uint64_t max_body = kMaxJsonBody);

  // Request, then: a 2xx JSON body parsed (bounded); any other status -> ServerError.
  [[nodiscard]] Result<nlohmann::json> Json(
      const std::string& method, const std::string& path,
      const std::optional<nlohmann::json>& body = std::nullopt);

  // Streams `file` as the body (application/octet-stream) with extra `headers`; shows a progress
  // bar on stderr when stderr is a terminal and `label` is non-empty.
  [[nodiscard]] Result<HttpResponse> Upload(const std::string& path,
                                            const std::filesystem::path& file,
                                            const std::map<std::string, std::string>& headers,
                                            const std::string& label);

  const std::string& server() const { return server_; }

  static constexpr uint64_t kMaxJsonBody = 64ull * 1024 * 1024;

 private:
  HttpClient(std::string server, std::string token, std::string ca_file)
      : server_(std::move(server)), token_(std::move(token)), ca_file_(std::move(ca_file)) {}

  std::string server_;
  std::string token_;
  std::string ca_file_;  // empty: the system's CA store
};

}  // namespace airlock::cli

#endif  // AIRLOCK_CLI_HTTP_CLIENT_H_
