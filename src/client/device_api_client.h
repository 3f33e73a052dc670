// DeviceApiClient: the device's side of airlockd's device API (docs/api/server-api.md, "Device
// API"): POST /v1/enroll, /v1/check and /v1/report, each signed with the device's Ed25519 key
// (crypto::SignDeviceRequest; the three X-Airlock-* headers over the exact body bytes sent).
//
// Nothing the server answers is trusted beyond parsing: a check's version, target, URLs and wrapped
// key are what the server *claims*; the caller verifies the target through TUF (Updater) and the
// wrapped key by unwrapping it (AES-GCM under the device's X25519 key) before using any of it.
//
// Transport: client/http.h, http:// and https:// only, redirects are not followed (a 3xx is an
// error), TLS peers verified against the system trust store, a connect timeout and a total timeout
// per request, response bodies bounded (kLimitExceeded past max_response_bytes).
//
// Errors (the message always names the route, and for HTTP refusals the status and the server's
// error code, e.g. "POST /v1/check: HTTP 403 device_pending: ..."); last_error() has the details:
//   kIo               connection failed, timed out, or HTTP 5xx / 3xx / other unexpected status
//   kInvalidArgument  HTTP 400 / 413 (the request was refused as malformed), or a bad server URL
//   kKeyUnusable      HTTP 401 / 403 (unauthorized, clock_skew, device_not_enrolled,
//                     device_pending, device_revoked, not_preauthorized)
//   kNotFound         HTTP 404
//   kAlreadyExists    HTTP 409 (the device id is enrolled with other keys)
//   kLimitExceeded    HTTP 429 (too_many_requests, too_many_events; see retry_after_seconds), or a
//                     response body longer than max_response_bytes
//   kMalformed        a 2xx body that is not the JSON the contract describes
// Not thread-safe (one instance per thread); one connection per request (client/http.h).
#ifndef AIRLOCK_CLIENT_DEVICE_API_CLIENT_H_
#define AIRLOCK_CLIENT_DEVICE_API_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "client/device_identity.h"
#include "common/bytes.h"
#include "common/result.h"

namespace airlock::client {

struct DeviceApiOptions {
  // Base URL of airlockd, e.g. "https://updates.example.com" (a trailing '/' is ignored).
  std::string server;
  std::string app_id;
  std::chrono::seconds connect_timeout{15};
  std::chrono::seconds request_timeout{60};
  size_t max_response_bytes = 1 << 20;
  std::string user_agent = "airlock-agent/0.1";
  // Unix seconds used for the signed timestamp (tests inject a skewed clock). Default: time(2).
  std::function<int64_t()> clock;
};

enum class EnrollStatus { kActive, kPending };

struct EnrollResult {
  EnrollStatus status = EnrollStatus::kPending;
  bool created = false;  // 201 (newly enrolled) rather than 200 (already enrolled)
};

struct CheckRequest {
  std::string version;         // the installed release's semver
  std::string native_version;  // the native shell's semver
  std::string platform;        // e.g. "android", "linux"
  std::string channel;         // requested channel; empty: not sent (server default)
};

struct CheckTarget {
  std::string name;  // TUF target name, e.g. "releases/1.2.0/bundle.alb"
  uint64_t length = 0;
  std::string sha256;  // 64 lower-case hex digits
};

// A delta the server says takes this device from its installed release to the offered one
// (bundle/delta.h); believed only once the signed targets list it the same way.
struct CheckDelta {
  std::string base_version;
  std::string method;  // "patch" / "files"
  CheckTarget target;
  std::string url;
};

// One /v1/check answer, as the server claims it.
struct CheckResult {
  bool update = false;
  // update == false: "up_to_date", "no_release", "paused", "not_in_rollout", "native_too_old",
  // "platform_disabled", "key_pending" (or a reason a newer server added).
  std::string reason;
  // reason == "key_pending": seconds to wait before checking again (the Retry-After header; 2 if
  // the server sent none), clamped to 1..3600.
  int64_t retry_after_seconds = 0;
  // update == true:
  std::string version;
  std::string channel;
  bool rollback = false;
  CheckTarget target;
  std::string url;         // the blob
  std::string tuf_url;     // the app's TUF repository base
  std::string encryption;  // "device", "app" or "none"
  Bytes wrapped_key;       // decoded; non-empty exactly when encryption == "device"
  std::vector<CheckDelta> deltas;  // at most 8 are read

  bool key_pending() const { return !update && reason == "key_pending"; }
};

// One event of /v1/report. kinds: offered, downloaded, verified, installed, confirmed, failed,
// rolled_back, delta_refused (a delta not used, the reason says why; the bundle follows).
struct ReportEvent {
  uint64_t seq = 0;
  std::string version;
  std::string kind;
  std::string reason_code;  // empty: not sent
  std::string detail;       // empty: not sent
  int64_t occurred_at = 0;  // Unix seconds
};

// What the last failed request got back from the server, when it answered at all.
struct ApiError {
  long http_status = 0;             // 0: no HTTP answer (connection, timeout, too large)
  std::string error_code;           // the body's "error", e.g. "device_pending"; may be empty
  std::string message;              // the body's "message"
  int64_t retry_after_seconds = 0;  // Retry-After, when sent (429, key_pending)
};

class DeviceApiClient {
 public:
  // `identity` must outlive the client. kInvalidArgument if options.server is not http(s) or the
  // app id is not 1..128 bytes of [A-Za-z0-9._-].
  static Result<DeviceApiClient> Create(const DeviceIdentity& identity, DeviceApiOptions options);

  // POST /v1/enroll with both public keys. `enrollment_token` may be empty (preauth policy).
  [[nodiscard]] Result<EnrollResult> Enroll(const std::string& enrollment_token,
                                            const std::string& platform);
  // POST /v1/check.
  [[nodiscard]] Result<CheckResult> Check(const CheckRequest& request);
  // POST /v1/report (1..1000 events; kInvalidArgument otherwise, nothing sent). Returns the
  // server's "stored" (events new to it; re-sent ones count 0).
  [[nodiscard]] Result<uint64_t> Report(const std::vector<ReportEvent>& events);

  const std::optional<ApiError>& last_error() const { return last_error_; }
  const std::string& device_id() const { return identity_->device_id; }

 private:
  struct Response {
    long status = 0;
    std::string body;
    int64_t retry_after_seconds = 0;
  };

  DeviceApiClient(const DeviceIdentity* identity, DeviceApiOptions options)
      : identity_(identity), options_(std::move(options)) {}
  // Signs and sends `body` to `path`; a 2xx answer is returned, anything else is an error (and
  // last_error_ set).
  Result<Response> Post(const std::string& path, const std::string& body);

  const DeviceIdentity* identity_;
  DeviceApiOptions options_;
  std::optional<ApiError> last_error_;
};

}  // namespace airlock::client

#endif  // AIRLOCK_CLIENT_DEVICE_API_CLIENT_H_
