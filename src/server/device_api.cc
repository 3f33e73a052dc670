// The device API (/v1/enroll, /v1/check, /v1/report): docs/api/server-api.md is the contract.
//
// Hot path. /v1/check reads the device row and the app's channels from the ChannelCache, so a warm
// check makes no database round trip. last_seen is recorded (LastSeenWriter, written behind the
// request in airlockd) only when the cached row's last_seen is at least
// ServerApiDeps::last_seen_interval seconds old (default 60), so a device checking in a tight loop
// costs one write a minute, and last_seen is accurate to that interval. Channel resolution is
// ResolveChannel (channel_cache.h), the same function Capgo /updates uses, and the rollout bucket
// is InRollout (store_catalog.h), so both protocols agree on every device.
//
// Device authentication (docs/api/server-api.md, "Device authentication"). Every device request is
// signed with the device's Ed25519 key (crypto/device_request.h); the parsed key is cached with the
// device row (ChannelCache::DeviceWithKey), so a warm check costs one signature verification and no
// database read. Order on /v1/check and /v1/report: parse the ids, find the device (403
// device_not_enrolled), verify the signature (401), then its status (403 device_revoked /
// device_pending); only then is anything read for or written about the device. Replays inside the
// timestamp window are harmless: a check is a read (and a last_seen touch), a report's events are
// de-duplicated per (app, device, seq), an enrollment is idempotent.
//
// Rollbacks. A device whose version is above the channel's current version is offered the channel's
// release (rollback: true) only when the channel was rolled back through the admin API, which
// checked that the signed targets allow it (Channel::rolled_back); otherwise it is up_to_date (it
// may have come from another channel), as Capgo's downgrade_not_authorized.
#include <cctype>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bundle/bundle.h"
#include "common/bytes.h"
#include "common/flat_json.h"
#include "common/semver.h"
#include "crypto/base64.h"
#include "crypto/device_request.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/wrap.h"
#include "monitor/monitor.h"
#include "server/capgo_api.h"
#include "server/channel_cache.h"
#include "server/delta_index.h"
#include "server/device_keys.h"
#include "server/json_text.h"
#include "server/last_seen_writer.h"
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
      "offered",   "downloaded", "verified",     "installed",
      "confirmed", "failed",     "rolled_back", "delta_refused"};
  for (auto k : kKinds) {
    if (k == kind) return true;
  }
  return false;
}

Response DeviceOk(int status, const Json& body) {
  return JsonResponse(status, body.dump(-1, ' ', false, Json::error_handler_t::replace));
}

Response Bad(std::string message) { return JsonError(400, "bad_request", message); }

Response NotEnrolled() { return JsonError(403, "device_not_enrolled", "device is not enrolled"); }

Response Unauthorized(std::string_view message) { return JsonError(401, "unauthorized", message); }

// 401 for a request whose signature headers do not prove possession of `key` (nullptr: the device
// has no signing key); nullopt when they do.
std::optional<Response> VerifyDeviceSignature(const Request& req, std::string_view device_id,
                                              const crypto::PublicKey* key, int64_t now) {
  std::string_view header_id = req.Header(crypto::kDeviceIdHeader);
  std::string_view timestamp = req.Header(crypto::kDeviceTimestampHeader);
  std::string_view signature = req.Header(crypto::kDeviceSignatureHeader);
  if (header_id.empty() || timestamp.empty() || signature.empty()) {
    return Unauthorized("device requests must be signed (X-Airlock-Device, X-Airlock-Timestamp, "
                        "X-Airlock-Signature)");
  }
  if (header_id != device_id) return Unauthorized("X-Airlock-Device does not match device_id");
  if (key == nullptr) {
    return Unauthorized("the device was enrolled without a signing key: enroll it again");
  }
  auto verified = crypto::VerifyDeviceRequest(*key, req.method, req.path, device_id, timestamp,
                                              signature, AsBytes(req.body), now);
  if (verified) return std::nullopt;
  if (verified.error().code() == ErrorCode::kExpired) {
    return JsonError(401, "clock_skew",
                     "X-Airlock-Timestamp is more than " +
                         std::to_string(crypto::kDeviceRequestWindow) +
                         " seconds from the server's clock (" + std::to_string(now) + ")");
  }
  return Unauthorized("bad device signature: " + verified.error().message());
}

// 403 for a device that may not be served; nullopt for an active one.
std::optional<Response> StatusRefusal(storage::DeviceStatus status) {
  switch (status) {
    case storage::DeviceStatus::kActive:
      return std::nullopt;
    case storage::DeviceStatus::kPending:
      return JsonError(403, "device_pending", "the device waits for an operator's approval");
    case storage::DeviceStatus::kRevoked:
      return JsonError(403, "device_revoked", "the device is revoked");
  }
  return JsonError(403, "device_revoked", "the device is revoked");
}

Response FromCapgo(CapgoReply reply) {
  Response r = JsonResponse(reply.status, std::move(reply.body));
  for (auto& [name, value] : reply.headers) r.SetHeader(name, value);
  return r;
}

CapgoRateLimiter::Options LimiterOptions(ServerApiDeps::Rate rate, size_t max_keys) {
  return {rate.burst, rate.per_second, max_keys};
}

// Replies of /v1/check are built by hand: the same bytes as the nlohmann::json dump they replaced
// (keys in std::map order, strings escaped by AppendJsonString), without a DOM per request.
// server_api_test compares both for the same inputs.
Response NoUpdate(std::string_view reason) {
  std::string out = "{\"reason\":";
  AppendJsonString(&out, reason);
  out += ",\"update\":false}";
  return JsonResponse(200, std::move(out));
}

Response KeyPending() {
  Response r = NoUpdate("key_pending");
  r.SetHeader("Retry-After", "2");
  return r;
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
  explicit DeviceApi(ServerApiDeps deps)
      : deps_(std::move(deps)),
        enroll_by_address_(LimiterOptions(deps_.enroll_per_address, 100000), SteadyClock()),
        enroll_by_app_(LimiterOptions(deps_.enroll_per_app, 10000), SteadyClock()) {
    if (deps_.cache == nullptr) {
      owned_cache_ = std::make_unique<ChannelCache>(deps_.store);
      deps_.cache = owned_cache_.get();
    }
    last_seen_ = deps_.last_seen;
    if (last_seen_ == nullptr) {
      owned_last_seen_ =
          std::make_unique<LastSeenWriter>(deps_.store, LastSeenWriter::Mode::kThrough);
      last_seen_ = owned_last_seen_.get();
    }
    while (!deps_.public_url.empty() && deps_.public_url.back() == '/') deps_.public_url.pop_back();
    auto wrap = deps_.wrap_for_device;
    if (!wrap) {
      wrap = [repo = deps_.repo, dir = deps_.data_dir](const std::string& app_id,
                                                       const std::string& sha256,
                                                       const crypto::PublicKey& key) {
        return repo->WrapForDevice(app_id, BlobPath(dir, sha256), key);
      };
    }
    DeviceKeyService::Options key_options;
    key_options.threads = deps_.wrap_threads;
    key_options.clock = [d = deps_] { return Now(d); };
    keys_ = std::make_unique<DeviceKeyService>(deps_.store, std::move(wrap), key_options);
    if (deps_.repo != nullptr) deltas_ = std::make_unique<DeltaIndex>(deps_.repo);
  }

  DeviceKeyService& keys() { return *keys_; }

  Response Enroll(const Request& req) {
    // Every attempt counts, so a wrong token cannot be guessed faster than the limits allow.
    if (auto refused = enroll_by_address_.Check(req.remote)) return FromCapgo(std::move(*refused));
    auto parsed = ParseObjectBody(req.body);
    if (parsed.error) return *parsed.error;
    const Json& body = parsed.json;
    DeviceIds ids;
    if (auto bad = ReadIds(body, &ids)) return *bad;
    if (auto refused = enroll_by_app_.Check(ids.app_id)) return FromCapgo(std::move(*refused));
    auto key_hex = ReqString(body, "public_key", 64);
    if (!key_hex) return Bad(key_hex.error().message());
    std::string key = Lower(*key_hex);
    if (!IsLowerHex(key, 64)) return Bad("public_key must be 64 hex digits (X25519)");
    auto signing_hex = ReqString(body, "signing_key", 64);
    if (!signing_hex) return Bad(signing_hex.error().message());
    std::string signing = Lower(*signing_hex);
    if (!IsLowerHex(signing, 64)) return Bad("signing_key must be 64 hex digits (Ed25519)");
    auto platform = ReqString(body, "platform", kMaxPlatformLength);
    if (!platform) return Bad(platform.error().message());
    if (!IsValidPlatform(*platform)) return Bad("platform must be 1 to 32 bytes of [a-z0-9_-]");
    auto token = OptString(body, "enrollment_token", kMaxTokenLength);
    if (!token) return Bad(token.error().message());

    // The enrollment is signed by the key it registers: proof that the device holds it.
    auto signing_key =
        crypto::PublicKey::FromRaw(crypto::KeyType::kEd25519, *HexDecode(signing));
    if (!signing_key) return Bad("signing_key is not an Ed25519 public key");
    if (auto refused = VerifyDeviceSignature(req, ids.device_id, &*signing_key, Now(deps_))) {
      return *refused;
    }

    auto app = deps_.store->GetApp(ids.app_id);
    if (!app && app.error().code() != ErrorCode::kNotFound) return ErrorResponse(app.error());
    const auto policy = app ? app->enroll_policy : storage::EnrollPolicy::kToken;
    if (policy != storage::EnrollPolicy::kPreauth) {
      // An unknown app answers like a wrong token, so app ids cannot be probed.
      Bytes given = crypto::Sha256(AsBytes(token->value_or("")));
      Bytes expected;
      if (app && app->enroll_token_sha256) {
        auto decoded = HexDecode(*app->enroll_token_sha256);
        if (decoded) expected = std::move(*decoded);
      }
      if (!*token || expected.size() != given.size() || !ConstantTimeEqual(given, expected)) {
        return Unauthorized("wrong enrollment token");
      }
    }
    // Under preauth the signing key is claimed for this device id only when the enrollment is going
    // to write it (a new device, or an old one getting its first signing key), so a refused
    // enrollment (409, revoked) leaves the preauthorized key free.
    auto claim = [&]() -> std::optional<Response> {
      if (policy != storage::EnrollPolicy::kPreauth) return std::nullopt;
      auto claimed = deps_.store->ClaimPreauthorizedKey(ids.app_id, signing, ids.device_id);
      if (claimed) return std::nullopt;
      if (claimed.error().code() == ErrorCode::kNotFound ||
          claimed.error().code() == ErrorCode::kAlreadyExists) {
        return JsonError(403, "not_preauthorized",
                         "the signing key is not preauthorized for this device");
      }
      return ErrorResponse(claimed.error());
    };

    auto existing = deps_.store->GetDevice(ids.app_id, ids.device_id);
    if (!existing && existing.error().code() != ErrorCode::kNotFound) {
      return ErrorResponse(existing.error());
    }
    if (!existing) {
      // The X25519 key must be one a content key can be wrapped to (not a low-order point), or
      // every check of the device would cost a vault unwrap that then fails.
      auto x25519 = crypto::PublicKey::FromRaw(crypto::KeyType::kX25519, *HexDecode(key));
      if (!x25519 || !crypto::CheckWrapRecipient(*x25519)) {
        return Bad("public_key is not a usable X25519 public key");
      }
      if (auto refused = claim()) return *refused;
      const auto status = policy == storage::EnrollPolicy::kApprove
                              ? storage::DeviceStatus::kPending
                              : storage::DeviceStatus::kActive;
      storage::Device device{ids.app_id,   ids.device_id, key,     *platform,
                             std::nullopt, Now(deps_),    signing, status};
      auto created = deps_.store->CreateDevice(device);
      if (created) {
        deps_.cache->InvalidateDevice(ids.app_id, ids.device_id);
        return Enrolled(201, ids.device_id, status);
      }
      if (created.error().code() != ErrorCode::kAlreadyExists) {
        return ErrorResponse(created.error());
      }
      // Enrolled by a concurrent request in between: answer as for an existing device.
      existing = deps_.store->GetDevice(ids.app_id, ids.device_id);
      if (!existing) return ErrorResponse(existing.error());
    }
    if (existing->status == storage::DeviceStatus::kRevoked) {
      return *StatusRefusal(existing->status);
    }
    if (existing->public_key != key || (existing->signing_key && existing->signing_key != signing)) {
      return JsonError(409, "conflict",
                       "device " + ids.device_id + " is enrolled with another key");
    }
    if (!existing->signing_key) {
      // Enrolled before devices had signing keys. Its X25519 public key is not a secret, so this
      // request does not prove it is the same device: the signing key is added and the device waits
      // for an operator's approval under every policy (docs/api/server-api.md, "Devices enrolled
      // before signing keys").
      if (auto refused = claim()) return *refused;
      existing->signing_key = signing;
      if (auto updated = deps_.store->UpdateDevice(*existing); !updated) {
        return ErrorResponse(updated.error());
      }
      if (auto set = deps_.store->SetDeviceStatus(ids.app_id, ids.device_id,
                                                  storage::DeviceStatus::kPending);
          !set) {
        return ErrorResponse(set.error());
      }
      existing->status = storage::DeviceStatus::kPending;
      deps_.cache->InvalidateDevice(ids.app_id, ids.device_id);
      LogJson({{"level", "warn"},
               {"msg", "a device enrolled without a signing key added one; it waits for approval"},
               {"app_id", ids.app_id},
               {"device_id", ids.device_id},
               {"remote", req.remote}});
    }
    return Enrolled(200, ids.device_id, existing->status);
  }

  Response Check(const Request& req) {
    // A check-in is a flat object: read it without building a DOM (common/flat_json.h). Any other
    // body goes through ParseObjectBody, whose answer (value or error) is the reference, so both
    // paths answer alike.
    thread_local FlatJsonObject flat;
    if (flat.Parse(req.body, kMaxJsonBody)) return CheckFields(req, flat);
    auto parsed = ParseObjectBody(req.body);
    if (parsed.error) return *parsed.error;
    return CheckFields(req, parsed.json);
  }

  template <typename Object>
  Response CheckFields(const Request& req, const Object& body) {
    DeviceIds ids;
    if (auto bad = ReadIds(body, &ids)) return *bad;
    CachedDevice device;
    if (auto refused = Authenticate(req, ids, &device)) return *refused;
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

    TouchIfStale(device.row);
    auto app = deps_.cache->Channels(ids.app_id);
    if (!app) return ErrorResponse(app.error());
    const storage::ChannelRelease* resolved =
        ResolveChannel(**app, device.row.channel_override, requested->value_or(""));
    if (resolved == nullptr) return NoUpdate("no_release");
    const storage::Channel& channel = resolved->channel;
    if (channel.paused) return NoUpdate("paused");
    if (!resolved->release) return NoUpdate("no_release");
    const storage::Release& release = *resolved->release;
    if (!RolloutIncludes(channel, ids.device_id)) {
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
      auto wrapped = keys_->Lookup(device.row, release.sha256);
      if (!wrapped) return ErrorResponse(wrapped.error());
      if (!*wrapped) return KeyPending();
      wrapped_key = std::move(**wrapped);
    }
    // Keys in the order nlohmann::json (a std::map) wrote them.
    std::string out;
    out.reserve(320 + 2 * deps_.public_url.size() + release.target_name.size() + wrapped_key.size());
    out += "{\"channel\":";
    AppendJsonString(&out, channel.name);
    // The signed delta from the device's release, when there is one: a device-mode release only
    // (the delta opens with the same wrapped key), never for a rollback.
    if (release.encryption == storage::EncryptionMode::kDevice && !rollback && deltas_) {
      if (auto delta = deltas_->Find(ids.app_id, release.version, *version_text)) {
        out += ",\"deltas\":[{\"base_version\":";
        AppendJsonString(&out, *version_text);
        out += ",\"length\":";
        out += std::to_string(delta->length);
        out += ",\"method\":";
        AppendJsonString(&out, delta->method);
        out += ",\"name\":";
        AppendJsonString(&out, delta->name);
        out += ",\"sha256\":";
        AppendJsonString(&out, delta->sha256);
        out += ",\"url\":";
        AppendJsonString(&out, deps_.public_url + "/v1/blobs/" + delta->sha256);
        out += "}]";
      }
    }
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
    CachedDevice device;
    if (auto refused = Authenticate(req, ids, &device)) return *refused;
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
    storage::EventQuota quota{now - kQuotaWindow, deps_.max_events_per_device_hour};
    auto stored = deps_.store->AppendDeviceEvents(events, quota);
    if (!stored) {
      if (stored.error().code() == ErrorCode::kNotFound) return NotEnrolled();
      if (stored.error().code() == ErrorCode::kLimitExceeded) {
        Response r = JsonError(429, "too_many_events",
                               "the device reported more than " +
                                   std::to_string(deps_.max_events_per_device_hour) +
                                   " events in the last hour; nothing of this batch was stored");
        r.SetHeader("Retry-After", "300");
        return r;
      }
      return ErrorResponse(stored.error());
    }
    RecordForMonitor(events, req.remote);
    return DeviceOk(200, {{"stored", *stored}});
  }

 private:
  static constexpr int64_t kQuotaWindow = 3600;

  // The report into the monitor's stream (retries are de-duplicated there by app/device/seq, like
  // here). Timed by the server's clock: a device's own clock is not trusted for windows. A failure
  // is logged; the device's report stays stored.
  void RecordForMonitor(const std::vector<storage::DeviceEvent>& events,
                        const std::string& remote) {
    if (deps_.monitor == nullptr) return;
    std::vector<monitor::Event> out;
    out.reserve(events.size());
    for (const storage::DeviceEvent& d : events) {
      monitor::Event e;
      e.source = "device";
      e.source_ref = d.app_id + "/" + d.device_id + "/" + std::to_string(d.seq);
      e.time = d.received_at;
      e.app_id = d.app_id;
      e.device_id = d.device_id;
      e.actor = d.device_id;
      e.address = remote;
      e.operation = d.kind;
      e.result = d.kind == "failed" || d.kind == "rolled_back" ? "failed" : "ok";
      e.reason = d.reason_code;
      e.version = d.version;
      e.detail = d.detail;
      out.push_back(std::move(e));
    }
    if (auto recorded = deps_.monitor->store().Append(out, Now(deps_)); !recorded) {
      LogJson({{"level", "error"},
               {"msg", "cannot record device events for the monitor"},
               {"error", recorded.error().ToString()}});
    }
  }

  static std::string Lower(std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
  }

  ChannelCache::SteadyClock SteadyClock() const {
    if (deps_.steady_clock) return deps_.steady_clock;
    return [] { return std::chrono::steady_clock::now(); };
  }

  static Response Enrolled(int status, const std::string& device_id,
                           storage::DeviceStatus device_status) {
    return DeviceOk(status, {{"device_id", device_id},
                             {"enrolled", true},
                             {"status", storage::DeviceStatusName(device_status)}});
  }

  // The enrolled device that signed `req`, or the refusal (403 not enrolled, 401 no proof, 403
  // revoked or pending). Nothing is read for the device or written before this passes.
  std::optional<Response> Authenticate(const Request& req, const DeviceIds& ids,
                                       CachedDevice* out) {
    auto device = deps_.cache->DeviceWithKey(ids.app_id, ids.device_id);
    if (!device) {
      if (device.error().code() == ErrorCode::kNotFound) return NotEnrolled();
      return ErrorResponse(device.error());
    }
    if (auto refused =
            VerifyDeviceSignature(req, ids.device_id, device->signing_key.get(), Now(deps_))) {
      return refused;
    }
    if (auto refused = StatusRefusal(device->row.status)) return refused;
    *out = std::move(*device);
    return std::nullopt;
  }

  void TouchIfStale(const storage::Device& device) {
    int64_t now = Now(deps_);
    if (now - device.last_seen < deps_.last_seen_interval) return;
    // Best effort: a failed write must not fail the check. Behind the request (airlockd), the
    // cached row is stamped at once so that the device is recorded once per interval, not at every
    // check until the flush; a write that then fails is retried at the next flush.
    if (last_seen_->Touch(device.app_id, device.device_id, now)) {
      deps_.cache->TouchCachedDevice(device.app_id, device.device_id, now);
    }
  }

  std::unique_ptr<ChannelCache> owned_cache_;
  ServerApiDeps deps_;
  std::unique_ptr<LastSeenWriter> owned_last_seen_;  // kThrough when deps.last_seen is null
  LastSeenWriter* last_seen_ = nullptr;
  CapgoRateLimiter enroll_by_address_;
  CapgoRateLimiter enroll_by_app_;
  std::unique_ptr<DeviceKeyService> keys_;
  std::unique_ptr<DeltaIndex> deltas_;  // null without a repository (some tests)
};

}  // namespace

// The routes' owner handle: the API type-erased (it lives in this file's anonymous namespace), and
// its key service for WaitForDeviceKeyWraps.
struct DeviceRoutes {
  std::shared_ptr<void> api;
  DeviceKeyService* keys = nullptr;  // owned by *api
};

std::shared_ptr<DeviceRoutes> AddDeviceRoutes(Router* router, const ServerApiDeps& deps) {
  auto api = std::make_shared<DeviceApi>(deps);
  router->Add("POST", "/v1/enroll", [api](const Request& req) { return api->Enroll(req); });
  router->Add("POST", "/v1/check", [api](const Request& req) { return api->Check(req); });
  router->Add("POST", "/v1/report", [api](const Request& req) { return api->Report(req); });
  return std::make_shared<DeviceRoutes>(DeviceRoutes{api, &api->keys()});
}

void WaitForDeviceKeyWraps(DeviceRoutes* routes) { routes->keys->WaitIdle(); }

}  // namespace airlock::server
