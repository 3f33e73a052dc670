// The admin API's handlers for devices: list, approve, revoke, channel override, events, enrollment
// policy and preauthorized keys (server/admin_api_internal.h; docs/api/server-api.md is the
// contract).
#include <cctype>
#include <mutex>
#include <optional>
#include <string>

#include "common/bytes.h"
#include "crypto/keys.h"
#include "server/admin_api_internal.h"
#include "server/channel_cache.h"
#include "server/server_api.h"

namespace airlock::server {

using Json = nlohmann::json;
using namespace api_internal;    // NOLINT(google-build-using-namespace): this module's own helpers
using namespace admin_internal;  // NOLINT(google-build-using-namespace)

Response AdminApi::ListDevices(const Request& req) {
  std::optional<Response> err;
  auto limit = QueryLimit(req, 1000, &err);
  if (!limit) return *err;
  auto app = LoadApp(req, &err);
  if (!app) return *err;
  auto devices = deps.store->ListDevices(app->app_id, *limit);
  if (!devices) return ErrorResponse(devices.error());
  Json list = Json::array();
  for (const auto& d : *devices) list.push_back(DeviceJson(d));
  return Ok(200, {{"devices", list}});
}

Response AdminApi::SetDeviceStatus(const Request& req, storage::DeviceStatus status) {
  std::optional<Response> err;
  auto app = LoadApp(req, &err);
  if (!app) return *err;
  std::string device_id(req.Param("device"));
  if (!IsValidId(device_id)) return JsonError(400, "bad_request", "bad device id");
  if (auto set = deps.store->SetDeviceStatus(app->app_id, device_id, status); !set) {
    if (set.error().code() == ErrorCode::kAlreadyExists) {
      return JsonError(409, "conflict", set.error().message());
    }
    return ErrorResponse(set.error());
  }
  if (deps.cache != nullptr) deps.cache->InvalidateDevice(app->app_id, device_id);
  return Ok(200, {{"device_id", device_id}, {"status", storage::DeviceStatusName(status)}});
}

Response AdminApi::EnrollmentPolicy(const Request& req) {
  std::optional<Response> err;
  auto app = LoadApp(req, &err);
  if (!app) return *err;
  storage::EnrollPolicy policy = app->enroll_policy;
  if (req.method == "PUT") {
    auto parsed = ParseObjectBody(req.body);
    if (parsed.error) return *parsed.error;
    auto name = ReqString(parsed.json, "policy", storage::kMaxIdLength);
    if (!name) return BadRequest(name.error());
    auto wanted = storage::ParseEnrollPolicy(*name);
    if (!wanted) return BadRequest(wanted.error());
    if (auto set = deps.store->SetEnrollPolicy(app->app_id, *wanted); !set) {
      return ErrorResponse(set.error());
    }
    policy = *wanted;
  }
  return Ok(200, {{"app_id", app->app_id}, {"policy", storage::EnrollPolicyName(policy)}});
}

Response AdminApi::AddPreauthorizedKeys(const Request& req) {
  auto parsed = ParseObjectBody(req.body);
  if (parsed.error) return *parsed.error;
  std::optional<Response> err;
  auto app = LoadApp(req, &err);
  if (!app) return *err;
  auto list = parsed.json.find("keys");
  if (list == parsed.json.end() || !list->is_array() || list->empty() ||
      list->size() > storage::kMaxEventBatch) {
    return JsonError(400, "bad_request", "field 'keys' must be an array of 1 to 1000 keys");
  }
  std::vector<storage::PreauthorizedKey> keys;
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& k = (*list)[i];
    std::string where = "keys[" + std::to_string(i) + "]: ";
    if (!k.is_object()) return JsonError(400, "bad_request", where + "not an object");
    auto key = ReqString(k, "signing_key", 64);
    if (!key) return JsonError(400, "bad_request", where + key.error().message());
    std::string lower = *key;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!IsLowerHex(lower, 64) ||
        !crypto::PublicKey::FromRaw(crypto::KeyType::kEd25519, *HexDecode(lower))) {
      return JsonError(400, "bad_request", where + "signing_key must be an Ed25519 key (64 hex)");
    }
    auto device = OptString(k, "device_id", storage::kMaxIdLength);
    if (!device) return JsonError(400, "bad_request", where + device.error().message());
    if (*device && !IsValidId(**device)) {
      return JsonError(400, "bad_request", where + "bad device id");
    }
    keys.push_back({app->app_id, lower, *device, Now(deps)});
  }
  auto added = deps.store->AddPreauthorizedKeys(keys);
  if (!added) return ErrorResponse(added.error());
  return Ok(200, {{"added", *added}, {"keys", keys.size()}});
}

Response AdminApi::ListPreauthorizedKeys(const Request& req) {
  std::optional<Response> err;
  auto limit = QueryLimit(req, storage::kMaxListLimit, &err);
  if (!limit) return *err;
  auto app = LoadApp(req, &err);
  if (!app) return *err;
  auto keys = deps.store->ListPreauthorizedKeys(app->app_id, *limit);
  if (!keys) return ErrorResponse(keys.error());
  Json list = Json::array();
  for (const auto& k : *keys) {
    list.push_back({{"signing_key", k.signing_key},
                    {"device_id", k.device_id ? Json(*k.device_id) : Json(nullptr)},
                    {"created_at", k.created_at}});
  }
  return Ok(200, {{"keys", list}});
}

Response AdminApi::SetDeviceChannel(const Request& req) {
  auto parsed = ParseObjectBody(req.body);
  if (parsed.error) return *parsed.error;
  const Json& body = parsed.json;
  if (!body.contains("channel")) return JsonError(400, "bad_request", "missing field 'channel'");
  auto channel = OptString(body, "channel", storage::kMaxIdLength);
  if (!channel) return BadRequest(channel.error());
  if (*channel && !IsValidId(**channel)) {
    return JsonError(400, "bad_request", "channel must be 1 to 128 bytes of [A-Za-z0-9._-]");
  }
  std::string device_id(req.Param("device"));
  if (!IsValidId(device_id)) return JsonError(400, "bad_request", "bad device id");
  std::lock_guard lock(write_mutex);
  std::optional<Response> err;
  auto app = LoadApp(req, &err);
  if (!app) return *err;
  auto device = deps.store->GetDevice(app->app_id, device_id);
  if (!device) return ErrorResponse(device.error());
  if (*channel) {
    if (auto found = deps.store->GetChannel(app->app_id, **channel); !found) {
      return ErrorResponse(found.error());
    }
  }
  device->channel_override = *channel;
  if (auto updated = deps.store->UpdateDevice(*device); !updated) {
    return ErrorResponse(updated.error());
  }
  if (deps.cache != nullptr) deps.cache->InvalidateDevice(app->app_id, device_id);
  return Ok(200, DeviceJson(*device));
}

Response AdminApi::ListEvents(const Request& req) {
  std::optional<Response> err;
  auto limit = QueryLimit(req, storage::kMaxListLimit, &err);
  if (!limit) return *err;
  auto app = LoadApp(req, &err);
  if (!app) return *err;
  std::string device(req.Param("device"));
  if (!IsValidId(device)) return JsonError(400, "bad_request", "bad device id");
  auto events = deps.store->ListDeviceEvents(app->app_id, device, *limit);
  if (!events) return ErrorResponse(events.error());
  Json list = Json::array();
  for (const auto& e : *events) {
    list.push_back({{"seq", e.seq},
                    {"version", e.version},
                    {"kind", e.kind},
                    {"reason_code", e.reason_code},
                    {"detail", e.detail},
                    {"occurred_at", e.occurred_at},
                    {"received_at", e.received_at}});
  }
  return Ok(200, {{"events", list}});
}

}  // namespace airlock::server
