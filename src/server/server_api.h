// airlockd's own API: the admin API (/api/v1/...) and the device API (/v1/enroll, /v1/check,
// /v1/report). The contract is docs/api/server-api.md (and docs/api/openapi.yaml).
//
// Handlers run on the I/O threads; every dependency here is thread-safe (the AccessStore is used
// under an internal mutex of the API object). Hot paths (/v1/check, Capgo /updates) read channel
// and release state from a ChannelCache (channel_cache.h) rather than the database.
#ifndef AIRLOCK_SERVER_SERVER_API_H_
#define AIRLOCK_SERVER_SERVER_API_H_

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "access/access_store.h"
#include "common/bytes.h"
#include "common/result.h"
#include "crypto/keys.h"
#include "server/app_repo.h"
#include "server/router.h"
#include "storage/store.h"

namespace airlock::monitor {
class Monitor;
}

namespace airlock::server {

class ChannelCache;
class LastSeenWriter;

struct ServerApiDeps {
  storage::Store* store = nullptr;
  AppRepo* repo = nullptr;
  access::AccessStore* access = nullptr;  // DATA/access.db
  ChannelCache* cache = nullptr;        // invalidated by every admin change
  std::filesystem::path data_dir;       // DATA (blobs/ below it)
  std::string public_url;               // scheme://host[:port], no trailing '/'
  std::function<int64_t()> clock;       // Unix seconds; default system clock
  uint64_t max_upload_bytes = uint64_t{2} << 30;
  // The server vault's key usage log (keys/audit.h) that GET /api/v1/audit reads: the same file as
  // AppRepoOptions::audit_log resolves to. Empty: GET /api/v1/audit answers 404 not_found.
  std::filesystem::path audit_log;
  // /v1/check writes a device's last_seen at most once per this many seconds (the cached row says
  // when it was last written), so the warm hot path stays off the database.
  int64_t last_seen_interval = 60;
  // Where /v1/check records last_seen (last_seen_writer.h); airlockd's writes behind the request
  // and is flushed every second. Null: the device API writes each touch at once (kThrough).
  LastSeenWriter* last_seen = nullptr;

  // The monitor (monitor/monitor.h; docs/operations/alerts.md): admin requests (refusals included)
  // and device reports are recorded into its event stream, and the /api/v1/alerts routes use it.
  // Null: nothing is recorded and the alert routes answer 404 not_found.
  monitor::Monitor* monitor = nullptr;

  // --- devices (docs/api/server-api.md, "Device authentication") ---
  // Wraps a device-mode content key (DeviceKeyService, device_keys.h); default: the AppRepo's vault
  // (AppRepo::WrapForDevice on DATA/blobs/<sha256>). Runs on the key service's own threads.
  std::function<Result<Bytes>(const std::string& app_id, const std::string& sha256,
                              const crypto::PublicKey& device_key)>
      wrap_for_device;
  unsigned wrap_threads = 1;
  // Events a device may have stored per rolling hour (/v1/report answers 429 beyond it).
  size_t max_events_per_device_hour = 1000;
  // Enrollment attempts (any outcome) per source address and per app: a token bucket of `burst`
  // refilled at `per_second` (429 too_many_requests with Retry-After beyond it).
  struct Rate {
    double burst = 0;
    double per_second = 0;
  };
  Rate enroll_per_address{20, 20.0 / 60};
  Rate enroll_per_app{1000, 100};
  // Monotonic clock of the enrollment rate limits; default std::chrono::steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> steady_clock;
};

// Registers every /api/v1 route. The returned object owns per-API state (the access-store mutex)
// and must outlive the server.
struct AdminApi;
[[nodiscard]] std::shared_ptr<AdminApi> AddAdminRoutes(Router* router, const ServerApiDeps& deps);

// Registers POST /v1/enroll, /v1/check, /v1/report (GET /v1/blobs is in static_files.h). The
// returned object owns the device API's state (its key service's threads) and is kept alive by the
// routes too.
struct DeviceRoutes;
std::shared_ptr<DeviceRoutes> AddDeviceRoutes(Router* router, const ServerApiDeps& deps);
// Blocks until the device key service has no wrap queued or running (tests).
void WaitForDeviceKeyWraps(DeviceRoutes* routes);

// Shared by the admin and device API (defined in admin_api.cc); exposed for tests.
namespace api_internal {
inline constexpr size_t kMaxJsonBody = 1 << 20;
// {"error","message"} for a Store/AppRepo error: kInvalidArgument/kMalformed/kLimitExceeded -> 400
// bad_request, kNotFound -> 404, kAlreadyExists -> 409 already_exists, kRollback -> 409 conflict,
// kBadSignature/kExpired/kHashMismatch/kUnsupported/kWrongKey/kDecryptFailed -> 422
// verification_failed, anything else -> 500 internal (message logged, not sent).
Response ErrorResponse(const Error& error);
// A parsed JSON object body (at most kMaxJsonBody bytes, 32 levels), or the 413/400 reply.
struct ParsedBody {
  nlohmann::json json;
  std::optional<Response> error;
};
ParsedBody ParseObjectBody(std::string_view body);
// 1..128 bytes of [A-Za-z0-9._-].
bool IsValidId(std::string_view id);
int64_t Now(const ServerApiDeps& deps);
// DATA/blobs/<sha[0:2]>/<sha> (sha must be 64 lower-case hex).
std::filesystem::path BlobPath(const std::filesystem::path& data_dir, std::string_view sha256_hex);
// One JSON line on stderr.
void LogJson(const nlohmann::json& line);
// Typed fields of a parsed body; kMalformed naming the field (wrong type, missing, too long) or
// kInvalidArgument (out of range). Absent or null optional fields are nullopt.
// String fields read from a nlohmann::json object or from a FlatJsonObject (common/flat_json.h, the
// check-in fast path) alike.
template <typename Object>
Result<std::string> ReqString(const Object& obj, std::string_view key, size_t max_length) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) {
    return MakeError(ErrorCode::kMalformed, "field '" + std::string(key) + "' must be a string");
  }
  const auto& value = it->template get_ref<const std::string&>();
  if (value.size() > max_length) {
    return MakeError(ErrorCode::kMalformed, "field '" + std::string(key) + "' is longer than " +
                                                std::to_string(max_length) + " bytes");
  }
  return value;
}
template <typename Object>
Result<std::optional<std::string>> OptString(const Object& obj, std::string_view key,
                                             size_t max_length) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<std::string>();
  AIRLOCK_ASSIGN_OR_RETURN(auto value, ReqString(obj, key, max_length));
  return std::optional<std::string>(std::move(value));
}
Result<std::optional<bool>> OptBool(const nlohmann::json& obj, std::string_view key);
Result<std::optional<int64_t>> OptInt(const nlohmann::json& obj, std::string_view key, int64_t min,
                                      int64_t max);
}  // namespace api_internal

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_SERVER_API_H_
