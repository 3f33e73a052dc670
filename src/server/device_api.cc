// The device API (/v1/enroll, /v1/check, /v1/report): docs/api/server-api.md is the contract.
//
// Hot path. /v1/check reads the device row and the app's channels from the ChannelCache, so a warm
// check makes no database round trip. last_seen is written (Store::TouchDevice) only when the
// cached row's last_seen is at least ServerApiDeps::last_seen_interval seconds old (default 60), so
// a device checking in a tight loop costs one write a minute, and last_seen is accurate to that
// interval. Channel resolution is ResolveChannel (channel_cache.h), the same function Capgo
// /updates uses, and the rollout bucket is InRollout (store_catalog.h), so both protocols agree on
// every device.
//
// Rollbacks. A device whose version is above the channel's current version is offered the channel's
// release (rollback: true) only when the channel was rolled back through the admin API, which
// checked that the signed targets allow it (Channel::rolled_back); otherwise it is up_to_date (it
// may have come from another channel), as Capgo's downgrade_not_authorized.
#include <cctype>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "bundle/bundle.h"
#include "common/bytes.h"
#include "common/flat_json.h"
#include "common/semver.h"
#include "crypto/base64.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "server/channel_cache.h"
#include "server/json_text.h"
#include "server/server_api.h"
#include "server/store_catalog.h"

namespace airlock::server {

using Json = nlohmann::json;
using namespace api_internal;  // NOLINT(google-build-using-namespace): this module's own helpers

namespace {

constexpr size_t kMaxPlatformLength = 32;
constexpr size_t kMaxTokenLength = 256;

bool IsValidPlatform(std::string_view p) {
  if (p.empty() || p.size() > kMaxPlatformLength) return false;
  for (char c : p) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

bool IsEventKind(std::string_view kind) {
  static constexpr std::string_view kKinds[] = {
      "offered", "downloaded", "verified", "installed", "confirmed", "failed", "rolled_back"};
  for (auto k : kKinds) {
    if (k == kind) return true;
  }
  return false;
}

Response Ok(int status, const Json& body) {
  return JsonResponse(status, body.dump(-1, ' ', false, Json::error_handler_t::replace));
}

Response Bad(std::string message) { return JsonError(400, "bad_request", message); }

Response NotEnrolled() { return JsonError(403, "device_not_enrolled", "device is not enrolled"); }

// Replies of /v1/check are built by hand: the same bytes as the nlohmann::json dump they replaced
// (keys in std::map order, strings escaped by AppendJsonString), without a DOM per request.
// server_api_test compares both for the same inputs.
Response NoUpdate(std::string_view reason) {
  std::string out = "{\"reason\":";
  AppendJsonString(&out, reason);
  out += ",\"update\":false}";
  return JsonResponse(200, std::move(out));
}

// app_id and device_id of a device request, validated.
struct DeviceIds {
  std::string app_id;
  std::string device_id;
};
template <typename Object>
std::optional<Response> ReadIds(const Object& body, DeviceIds* ids) {
  auto app = ReqString(body, "app_id", storage::kMaxIdLength);
  if (!app) return Bad(app.error().message());
  auto device = ReqString(body, "device_id", storage::kMaxIdLength);
  if (!device) return Bad(device.error().message());
  if (!IsValidId(*app)) return Bad("app_id must be 1 to 128 bytes of [A-Za-z0-9._-]");
  if (!IsValidId(*device)) return Bad("device_id must be 1 to 128 bytes of [A-Za-z0-9._-]");
  ids->app_id = std::move(*app);
  ids->device_id = std::move(*device);
  return std::nullopt;
}

class DeviceApi {
 public:
  explicit DeviceApi(ServerApiDeps deps) : deps_(std::move(deps)) {
    if (deps_.cache == nullptr) {
      owned_cache_ = std::make_unique<ChannelCache>(deps_.store);
      deps_.cache = owned_cache_.get();
    }
    while (!deps_.public_url.empty() && deps_.public_url.back() == '/') deps_.public_url.pop_back();
  }

  Response Enroll(const Request& req) {
    auto parsed = ParseObjectBody(req.body);
    if (parsed.error) return *parsed.error;
    const Json& body = parsed.json;
    DeviceIds ids;
    if (auto bad = ReadIds(body, &ids)) return *bad;
    auto key_hex = ReqString(body, "public_key", 64);
    if (!key_hex) return Bad(key_hex.error().message());
    std::string key = *key_hex;
    for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!IsLowerHex(key, 64)) return Bad("public_key must be 64 hex digits (X25519)");
    auto platform = ReqString(body, "platform", kMaxPlatformLength);
    if (!platform) return Bad(platform.error().message());
    if (!IsValidPlatform(*platform)) return Bad("platform must be 1 to 32 bytes of [a-z0-9_-]");
    auto token = ReqString(body, "enrollment_token", kMaxTokenLength);
    if (!token) return Bad(token.error().message());

    auto app = deps_.store->GetApp(ids.app_id);
    if (!app && app.error().code() != ErrorCode::kNotFound) return ErrorResponse(app.error());
    // An unknown app answers like a wrong token, so app ids cannot be probed.
    Bytes given = crypto::Sha256(AsBytes(*token));
    Bytes expected;
    if (app && app->enroll_token_sha256) {
      auto decoded = HexDecode(*app->enroll_token_sha256);
      if (decoded) expected = std::move(*decoded);
    }
    if (expected.size() != given.size() || !ConstantTimeEqual(given, expected)) {
      return JsonError(401, "unauthorized", "wrong enrollment token");
    }

    storage::Device device{ids.app_id, ids.device_id, key, *platform, std::nullopt, Now(deps_)};
    auto created = deps_.store->CreateDevice(device);
    if (created) {
      if (deps_.cache != nullptr) deps_.cache->InvalidateDevice(ids.app_id, ids.device_id);
      return Ok(201, {{"device_id", ids.device_id}, {"enrolled", true}});
    }
    if (created.error().code() != ErrorCode::kAlreadyExists) return ErrorResponse(created.error());
    auto existing = deps_.store->GetDevice(ids.app_id, ids.device_id);
    if (!existing) return ErrorResponse(existing.error());
    if (existing->public_key != key) {
      return JsonError(409, "conflict",
                       "device " + ids.device_id + " is enrolled with another key");
    }
    return Ok(200, {{"device_id", ids.device_id}, {"enrolled", true}});
  }

  Response Check(const Request& req) {
    // A check-in is a flat object: read it without building a DOM (common/flat_json.h). Any other
    // body goes through ParseObjectBody, whose answer (value or error) is the reference, so both
    // paths answer alike.
    thread_local FlatJsonObject flat;
    if (flat.Parse(req.body, kMaxJsonBody)) return CheckFields(flat);
    auto parsed = ParseObjectBody(req.body);
    if (parsed.error) return *parsed.error;
    return CheckFields(parsed.json);
  }

  template <typename Object>
  Response CheckFields(const Object& body) {
    DeviceIds ids;
    if (auto bad = ReadIds(body, &ids)) return *bad;
    auto version_text = ReqString(body, "version", kMaxSemverLength);
    if (!version_text) return Bad(version_text.error().message());
    auto version = Semver::Parse(*version_text);
    if (!version) return Bad("version: " + version.error().message());
    auto native_text = ReqString(body, "native_version", kMaxSemverLength);
    if (!native_text) return Bad(native_text.error().message());
    auto native = Semver::Parse(*native_text);
    if (!native) return Bad("native_version: " + native.error().message());
    auto platform = ReqString(body, "platform", kMaxPlatformLength);
    if (!platform) return Bad(platform.error().message());
    if (!IsValidPlatform(*platform)) return Bad("platform must be 1 to 32 bytes of [a-z0-9_-]");
    auto requested = OptString(body, "channel", storage::kMaxIdLength);
    if (!requested) return Bad(requested.error().message());
    if (*requested && !IsValidId(**requested)) return Bad("bad channel name");

    auto device = deps_.cache->Device(ids.app_id, ids.device_id);
    if (!device) {
      if (device.error().code() == ErrorCode::kNotFound) return NotEnrolled();
      return ErrorResponse(device.error());
    }
    TouchIfStale(*device);
    auto app = deps_.cache->Channels(ids.app_id);
    if (!app) return ErrorResponse(app.error());
    const storage::ChannelRelease* resolved =
        ResolveChannel(**app, device->channel_override, requested->value_or(""));
    if (resolved == nullptr) return NoUpdate("no_release");
    const storage::Channel& channel = resolved->channel;
    if (channel.paused) return NoUpdate("paused");
    if (!resolved->release) return NoUpdate("no_release");
    const storage::Release& release = *resolved->release;
    if (!InRollout(ids.app_id, ids.device_id, channel.rollout_percent)) {
      return NoUpdate("not_in_rollout");
    }
    if (channel.min_native_version) {
      auto floor = Semver::Parse(*channel.min_native_version);
      if (floor && Compare(*native, *floor) < 0) return NoUpdate("native_too_old");
    }
    bool enabled = (*platform == "ios" && channel.ios) ||
                   (*platform == "android" && channel.android) ||
                   (*platform == "electron" && channel.electron) ||
                   (*platform != "ios" && *platform != "android" && *platform != "electron");
    if (!enabled) return NoUpdate("platform_disabled");
    auto offered = Semver::Parse(release.version);
    if (!offered) return ErrorResponse(offered.error());
    auto order = Compare(*offered, *version);
    bool rollback = false;
    if (order == 0) return NoUpdate("up_to_date");
    if (order < 0) {
      if (!channel.rolled_back) return NoUpdate("up_to_date");
      rollback = true;
    }

    std::string wrapped_key;
    if (release.encryption == storage::EncryptionMode::kDevice) {
      auto wrapped = WrappedKey(ids.app_id, release.sha256, device->public_key);
      if (!wrapped) return ErrorResponse(wrapped.error());
      wrapped_key = std::move(*wrapped);
    }
    // Keys in the order nlohmann::json (a std::map) wrote them.
    std::string out;
    out.reserve(320 + 2 * deps_.public_url.size() + release.target_name.size() + wrapped_key.size());
    out += "{\"channel\":";
    AppendJsonString(&out, channel.name);
    out += ",\"encryption\":";
    AppendJsonString(&out, storage::EncryptionModeName(release.encryption));
    out += rollback ? ",\"rollback\":true" : ",\"rollback\":false";
    out += ",\"target\":{\"length\":";
    out += std::to_string(release.length);
    out += ",\"name\":";
    AppendJsonString(&out, release.target_name);
    out += ",\"sha256\":";
    AppendJsonString(&out, release.sha256);
    out += "},\"tuf_url\":";
    AppendJsonString(&out, deps_.public_url + "/tuf/" + ids.app_id + "/");
    out += ",\"update\":true,\"url\":";
    AppendJsonString(&out, deps_.public_url + "/v1/blobs/" + release.sha256);
    out += ",\"version\":";
    AppendJsonString(&out, release.version);
    if (release.encryption == storage::EncryptionMode::kDevice) {
      out += ",\"wrapped_key\":";
      AppendJsonString(&out, wrapped_key);
    }
    out += '}';
    return JsonResponse(200, std::move(out));
  }

  Response Report(const Request& req) {
    auto parsed = ParseObjectBody(req.body);
    if (parsed.error) return *parsed.error;
    const Json& body = parsed.json;
    DeviceIds ids;
    if (auto bad = ReadIds(body, &ids)) return *bad;
    auto list = body.find("events");
    if (list == body.end() || !list->is_array() || list->empty() ||
        list->size() > storage::kMaxEventBatch) {
      return Bad("field 'events' must be an array of 1 to 1000 events");
    }
    int64_t now = Now(deps_);
    std::vector<storage::DeviceEvent> events;
    events.reserve(list->size());
    for (size_t i = 0; i < list->size(); ++i) {
      const Json& e = (*list)[i];
      std::string where = "events[" + std::to_string(i) + "]: ";
      if (!e.is_object()) return Bad(where + "not an object");
      auto seq = OptInt(e, "seq", 0, INT64_MAX);
      if (!seq) return Bad(where + seq.error().message());
      if (!*seq) return Bad(where + "field 'seq' is missing");
      auto version = ReqString(e, "version", kMaxSemverLength);
      if (!version) return Bad(where + version.error().message());
      if (auto v = Semver::Parse(*version); !v)
        return Bad(where + "version: " + v.error().message());
      auto kind = ReqString(e, "kind", storage::kMaxIdLength);
      if (!kind) return Bad(where + kind.error().message());
      if (!IsEventKind(*kind)) return Bad(where + "unknown kind '" + *kind + "'");
      auto reason = OptString(e, "reason_code", storage::kMaxIdLength);
      if (!reason) return Bad(where + reason.error().message());
      if (*reason && !reason->value().empty() && !IsValidId(**reason)) {
        return Bad(where + "reason_code must be [A-Za-z0-9._-]");
      }
      auto detail = OptString(e, "detail", storage::kMaxTextLength);
      if (!detail) return Bad(where + detail.error().message());
      auto occurred = OptInt(e, "occurred_at", 0, INT64_MAX);
      if (!occurred) return Bad(where + occurred.error().message());
      if (!*occurred) return Bad(where + "field 'occurred_at' is missing");
      events.push_back({ids.app_id, ids.device_id, **seq, *version, *kind, reason->value_or(""),
                        detail->value_or(""), **occurred, now});
    }
    auto device = deps_.cache->Device(ids.app_id, ids.device_id);
    if (!device) {
      if (device.error().code() == ErrorCode::kNotFound) return NotEnrolled();
      return ErrorResponse(device.error());
    }
    auto stored = deps_.store->AppendDeviceEvents(events);
    if (!stored) {
      if (stored.error().code() == ErrorCode::kNotFound) return NotEnrolled();
      return ErrorResponse(stored.error());
    }
    return Ok(200, {{"stored", *stored}});
  }

 private:
  // The content key of bundle `sha256` wrapped to the device key (base64). Wrapping goes through
  // the vault (an unwrap and a usage-log record each time, ~30 ms measured on a file vault), so
  // answers are kept per (app, bundle, device key): a device polling while it has not installed yet
  // costs one wrap. Reusing a wrapped key is safe (only that device's private key opens it); the
  // map is bounded.
  Result<std::string> WrappedKey(const std::string& app_id, const std::string& sha256,
                                 const std::string& device_key_hex) {
    std::string cache_key = app_id + "/" + sha256 + "/" + device_key_hex;
    {
      std::lock_guard lock(wrap_mutex_);
      auto it = wrapped_.find(cache_key);
      if (it != wrapped_.end()) return it->second;
    }
    AIRLOCK_ASSIGN_OR_RETURN(Bytes raw, HexDecode(device_key_hex));
    AIRLOCK_ASSIGN_OR_RETURN(auto key, crypto::PublicKey::FromRaw(crypto::KeyType::kX25519, raw));
    AIRLOCK_ASSIGN_OR_RETURN(
        Bytes wrapped, deps_.repo->WrapForDevice(app_id, BlobPath(deps_.data_dir, sha256), key));
    std::string encoded = crypto::Base64Encode(wrapped);
    std::lock_guard lock(wrap_mutex_);
    if (wrapped_.size() >= kMaxWrappedKeys) wrapped_.clear();
    wrapped_[cache_key] = encoded;
    return encoded;
  }

  void TouchIfStale(storage::Device device) {
    int64_t now = Now(deps_);
    if (now - device.last_seen < deps_.last_seen_interval) return;
    // Best effort: a failed write must not fail the check.
    if (deps_.store->TouchDevice(device.app_id, device.device_id, now)) {
      device.last_seen = now;
      deps_.cache->UpdateCachedDevice(device);
    }
  }

  static constexpr size_t kMaxWrappedKeys = 100000;

  std::unique_ptr<ChannelCache> owned_cache_;
  ServerApiDeps deps_;
  std::mutex wrap_mutex_;
  std::unordered_map<std::string, std::string> wrapped_;  // guarded by wrap_mutex_
};

}  // namespace

void AddDeviceRoutes(Router* router, const ServerApiDeps& deps) {
  auto api = std::make_shared<DeviceApi>(deps);
  router->Add("POST", "/v1/enroll", [api](const Request& req) { return api->Enroll(req); });
  router->Add("POST", "/v1/check", [api](const Request& req) { return api->Check(req); });
  router->Add("POST", "/v1/report", [api](const Request& req) { return api->Report(req); });
}

}  // namespace airlock::server
