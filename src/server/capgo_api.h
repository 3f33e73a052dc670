// Capgo-compatible device protocol (`POST /updates`, `POST /stats`, `/channel_self`), transport-independent.
//
// The HTTP layer hands each request body (and, for `GET /channel_self`, the query parameters) to one of the
// Handle* functions below and writes the returned CapgoReply out unchanged. Nothing here opens a socket,
// touches storage or reads a clock directly: releases, channels and statistics come in through the small
// interfaces CapgoReleaseCatalog, CapgoChannelRegistry and CapgoStatsSink, and time through a clock function.
//
// Wire contract (what an unmodified @capgo/capacitor-updater expects; see docs/api/capgo.md):
//  * Success of /updates: HTTP 200 `{"version","url","session_key","checksum"[, "manifest":[{file_name,
//    file_hash, download_url}]]}`.
//  * Every "no update" answer of /updates: HTTP 200 `{"error": <code>, "message": <text>, "kind": <kind>}`
//    (plus `version`/`old` for some blocked codes), where kind is
//      "up_to_date" - the device already runs the offered bundle (code no_new_version_available);
//      "blocked"    - a channel rule forbids the update (disabled_platform_*, disable_auto_update_*,
//                     disable_emulator, disable_dev_build, cannot_update_via_private_channel,
//                     key_id_mismatch, and Airlock's own downgrade_not_authorized);
//      "failed"     - anything else (no_channel, no_bundle, ...).
//  * Input that is not a valid request (bad JSON, too large, too deep, wrong types, out-of-range strings,
//    non-semver versions): HTTP 400 (413 when the body exceeds kCapgoMaxBodyBytes) with the same
//    `{"error","message","kind":"failed"}` shape; nothing is recorded or changed.
//  * A failing interface (storage down): HTTP 500 `{"error":"internal_error",...,"kind":"failed"}`.
//  * Rate limited (CapgoRateLimiter): HTTP 429 with a `Retry-After` header (whole seconds, >= 1).
// All reply bodies are JSON; strings from the interfaces are emitted with invalid UTF-8 replaced.
//
// Thread-safety: the Handle* functions are reentrant; they are as thread-safe as the interface objects
// passed in. CapgoRateLimiter is internally synchronised.
#ifndef AIRLOCK_SERVER_CAPGO_API_H_
#define AIRLOCK_SERVER_CAPGO_API_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/flat_json.h"
#include "common/result.h"

namespace airlock::server {

// Bounds on untrusted input.
inline constexpr size_t kCapgoMaxBodyBytes = 64 * 1024;
inline constexpr size_t kCapgoMaxJsonDepth = 8;
// /stats: the plugin queues up to 200 events (CapgoUpdater.java MAX_PENDING_STATS) and sends them
// in one request, with web-view error metadata: bodies well over 64 KiB.
inline constexpr size_t kCapgoMaxStatsEvents = 200;
inline constexpr size_t kCapgoMaxStatsBodyBytes = 1024 * 1024;
inline constexpr size_t kCapgoMaxStatsVersionName = 1024;  // "1.2.3:assets/app.js"
inline constexpr size_t kCapgoMaxAppIdLength = 128;
inline constexpr size_t kCapgoMaxDeviceIdLength = 36;  // Capgo: z.string().max(36)
inline constexpr size_t kCapgoMaxShortString = 64;     // versions, channel names, actions, key ids
inline constexpr size_t kCapgoMaxCustomIdLength = 255;

enum class CapgoPlatform { kIos, kAndroid, kElectron };
std::string_view CapgoPlatformName(CapgoPlatform platform);

// The device description every plugin request carries. Parsed strictly: required fields must be present
// with the right JSON type; optional fields, when present, must have the right type; unknown fields are
// ignored.
struct CapgoDeviceInfo {
  std::string app_id;          // required; reverse-domain style: [A-Za-z0-9._-], 1..128 bytes
  std::string device_id;       // required; [A-Za-z0-9-], 1..36 bytes, stored lower-cased
  std::string version_name;    // required; "builtin" or the bundle version (semver when strict)
  std::string version_build;   // required; the native app version, semver
  std::string version_code;    // optional
  std::string version_os;      // optional
  CapgoPlatform platform = CapgoPlatform::kAndroid;  // required: "ios" | "android" | "electron"
  std::string plugin_version;  // required; semver
  bool is_emulator = false;    // optional, default false
  bool is_prod = true;         // optional, default true
  std::string default_channel;  // optional (`defaultChannel`); empty = none
  std::string custom_id;        // optional
  std::string key_id;           // optional; first chars of the app's public key, as the plugin sends it

  // The version the device runs: version_build when version_name is "builtin" (Capgo does the same).
  std::string EffectiveVersion() const;
};

// The native version as Capgo's backend reads it: a missing minor or patch part is 0 ("1" ->
// "1.0.0", "1.0" -> "1.0.0", "2.1-beta" -> "2.1.0-beta"); anything else is returned as it is (and
// must then be semver). The plugin sends the app's native version name unchanged, often "1.0".
std::string CoerceCapgoVersion(std::string_view version);

// Parses a device description from a parsed JSON object. kMalformed (wrong type, missing field),
// kLimitExceeded (string too long) or kInvalidArgument (bad platform, bad characters, not semver) with a
// message naming the field. `semver_version_name`: require version_name to be "builtin" or semver
// (/updates and /channel_self); /stats accepts any bounded string.
[[nodiscard]] Result<CapgoDeviceInfo> ParseCapgoDeviceInfo(const nlohmann::json& obj,
                                                           bool semver_version_name = true);

// One `POST /stats` event.
struct CapgoStatsEvent {
  CapgoDeviceInfo device;
  std::string action;            // required; [a-z0-9_], 1..64 bytes (e.g. "set", "download_fail")
  std::string old_version_name;  // optional
};

// A `POST /stats` body: one event object, or an array of 1..kCapgoMaxStatsEvents of them, each
// parsed on its own (an invalid event is an error in its slot, not of the body).
struct CapgoStatsBatch {
  bool is_array = false;
  std::vector<Result<CapgoStatsEvent>> events;
};

// Errors of the body as a whole: too large (kLimitExceeded), not JSON, neither an object nor an
// array, an empty array or more than kCapgoMaxStatsEvents events.
[[nodiscard]] Result<CapgoStatsBatch> ParseCapgoStats(std::string_view body);
// Parses a /stats body within its bounds (kCapgoMaxStatsBodyBytes, kCapgoMaxJsonDepth), stopping at
// the element after kCapgoMaxStatsEvents of an array: a 1 MiB array of tiny values is refused before
// its DOM is built.
[[nodiscard]] Result<nlohmann::json> ParseCapgoStatsJson(std::string_view body);
// The same for a body already parsed (ParseCapgoStatsJson):
// the /stats route parses a body of up to 1 MiB once, for its rate-limit key and for this.
[[nodiscard]] Result<CapgoStatsBatch> ParseCapgoStatsParsed(const Result<nlohmann::json>& parsed,
                                                            std::string_view body);

// Rules of a channel, as the admin configured them.
struct CapgoChannel {
  int64_t id = 0;    // stable number listed to devices (the plugin reads a number: CapgoChannelId)
  std::string name;  // what devices send as `defaultChannel` / `channel`
  bool is_public = false;          // the default channel for devices that name none
  bool allow_self_assign = false;  // devices may pick it through /channel_self or defaultChannel
  bool ios = true;
  bool android = true;
  bool electron = true;
  bool allow_emulator = true;
  bool allow_dev = true;  // non-production (is_prod=false) builds
  // Never offer a bundle whose version is below the device's native version_build.
  bool disable_auto_update_under_native = true;
  // When set, devices whose native version_build is below this get nothing from this channel.
  std::optional<std::string> min_native_version;

  bool EnabledFor(CapgoPlatform platform) const;
};

// A channel's number for `GET /channel_self`: the plugin fails the whole list when an id is not a
// number (CapgoUpdater.java parseListChannelsResponse; InternalUtils.swift ChannelInfo.id: Int).
// Airlock names channels, so the number is derived from the app and the name: the first 31 bits
// of SHA-256("airlock capgo channel\n" app "\n" name), never 0. The same on every server and
// across restarts; a channel deleted and made again with the same name gets the same number.
int64_t CapgoChannelId(std::string_view app_id, std::string_view name);

struct CapgoManifestEntry {
  std::string file_name;
  std::string file_hash;
  std::string download_url;
};

// A release as the plugin sees it (Capgo encryption v2 form).
struct CapgoRelease {
  std::string version;      // semver
  std::string url;          // where the device downloads the (encrypted) zip
  std::string session_key;  // base64(iv) ":" base64(RSA block); empty for unencrypted bundles
  std::string checksum;     // hex
  std::vector<CapgoManifestEntry> manifest;  // empty = no partial update
  std::string key_id;       // key id the bundle was encrypted for; empty = not checked
  // The targets role signed this release as an allowed rollback target; only then may it be offered to a
  // device that runs a higher version.
  bool authorized_rollback = false;
};

// What a channel offers one device.
struct CapgoOffer {
  CapgoChannel channel;
  bool via_device_override = false;     // the channel came from the device's own override/assignment
  std::optional<CapgoRelease> release;  // nullopt: the channel has no release yet
  // When `release` is nullopt because the release this device would get was published without
  // the Capgo form (no --capgo): its version, named in the no_bundle reply.
  std::optional<std::string> release_without_capgo;
};

// Implemented by the server over storage. Resolves the channel for a device (device override, else
// `defaultChannel` when that channel allows self-assignment, else the app's public channel for the
// platform) and returns its current release. nullopt = no channel applies. Errors become HTTP 500.
class CapgoReleaseCatalog {
 public:
  virtual ~CapgoReleaseCatalog() = default;
  [[nodiscard]] virtual Result<std::optional<CapgoOffer>> FindOffer(const CapgoDeviceInfo& device) = 0;
};

// Implemented by the server over storage, for /channel_self. Errors become HTTP 500.
class CapgoChannelRegistry {
 public:
  virtual ~CapgoChannelRegistry() = default;
  [[nodiscard]] virtual Result<std::vector<CapgoChannel>> ListChannels(std::string_view app_id) = 0;
  // The channel name the device is assigned to, if any.
  [[nodiscard]] virtual Result<std::optional<std::string>> GetAssignment(std::string_view app_id,
                                                                         std::string_view device_id) = 0;
  [[nodiscard]] virtual Result<void> SetAssignment(std::string_view app_id, std::string_view device_id,
                                                   std::string_view channel_name) = 0;
  [[nodiscard]] virtual Result<void> ClearAssignment(std::string_view app_id,
                                                     std::string_view device_id) = 0;
};

// Receives validated /stats events (all of one request at once). Errors become HTTP 500.
class CapgoStatsSink {
 public:
  virtual ~CapgoStatsSink() = default;
  [[nodiscard]] virtual Result<void> Record(const std::vector<CapgoStatsEvent>& events) = 0;
};

struct CapgoReply {
  int status = 200;
  std::string body;  // JSON
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type: application/json
};

// The `kind` Capgo attaches to an /updates error code: "up_to_date", "blocked" or "failed".
std::string_view CapgoUpdateKind(std::string_view error_code);

// `POST /updates`. Decision order (first match answers): invalid input; no channel (no_channel); no
// release (no_bundle); key_id mismatch (blocked); already on the offered version (up_to_date); platform
// disabled, private channel, native-version floor, under-native, emulator, dev build (blocked); offered
// version below the running one without authorized_rollback (downgrade_not_authorized, blocked);
// otherwise the release. `manifest` is included only for plugins that support it.
CapgoReply HandleCapgoUpdates(std::string_view body, CapgoReleaseCatalog& catalog);
// The same, for a body already parsed with ParseJson(body, kCapgoMaxBodyBytes, kCapgoMaxJsonDepth) (the
// routes parse once for the rate-limit key and the handler); `body` is used only for the 413 decision.
CapgoReply HandleCapgoUpdatesParsed(const Result<nlohmann::json>& parsed, std::string_view body,
                                    CapgoReleaseCatalog& catalog);
// The same, for a body FlatJsonObject::Parse accepted (common/flat_json.h: the no-DOM fast path; for
// such bodies this answers exactly what HandleCapgoUpdatesParsed answers).
CapgoReply HandleCapgoUpdatesFlat(const FlatJsonObject& body, CapgoReleaseCatalog& catalog);

// `POST /stats`. One event: validated, handed to `sink`, `{"status":"ok"}` (400 when invalid). An
// array: the valid events are handed to `sink` and the answer is 200
// `{"status":"ok","results":[{"index":i,"status":"ok"} | {"index":i,"status":"error","error":
// "invalid_request","message":...}]}`. 413 over kCapgoMaxStatsBodyBytes.
CapgoReply HandleCapgoStats(std::string_view body, CapgoStatsSink& sink);
// HandleCapgoStats for a body already parsed as ParseCapgoStatsParsed takes it (same replies).
CapgoReply HandleCapgoStatsParsed(const Result<nlohmann::json>& parsed, std::string_view body,
                                  CapgoStatsSink& sink);

enum class CapgoChannelMethod { kPost, kPut, kGet, kDelete };

// `/channel_self`:
//  POST   body {device..., "channel"}: may the device choose a channel that allows self-assignment
//         -> `{"status":"ok","allowSet":true}` (stored for a device row Capgo may change; a device
//         without a row keeps the choice and sends it as defaultChannel); the app's public channel
//         -> `{"status":"ok","unset":true}` (clears an assignment);
//  PUT    body {device...}: current channel -> `{"channel","status":"override","allowSet"}` (an
//         assignment, else a self-assignable defaultChannel) or
//         `{"channel","status":"default"}`;
//  GET    query {app_id, platform}: channels a device may see -> `[{"id","name","public","allow_self_set"}]`;
//  DELETE body {device...}: remove a self-assignment -> `{"status":"ok"}`.
// Refusals are HTTP 400 `{"error","message"}` with Capgo's codes (channel_not_found,
// channel_self_set_not_allowed, cannot_override). For GET, `body` is ignored and `query` holds the
// decoded query parameters; for the others `query` is ignored.
CapgoReply HandleCapgoChannelSelf(CapgoChannelMethod method, std::string_view body,
                                  const std::vector<std::pair<std::string, std::string>>& query,
                                  CapgoChannelRegistry& registry);

// Token bucket per key (use the device id; the app id or client address for requests without one).
// Each key holds up to `burst` tokens, refilled at `refill_per_second`; a request takes one token.
// Memory is bounded by `max_keys` buckets in two generations: new keys go into the current one;
// when it holds max_keys / 2, it becomes the previous one and the old previous one is dropped. A key
// found in the previous generation moves back into the current one with its tokens. So a key is
// forgotten (and starts again with a full bucket) only after max_keys / 2 other keys arrived while it
// was silent; a flood of fresh ids never refuses newcomers and never grows memory, and it cannot
// lift the limit of a key that keeps sending (each request keeps it current). Keys are tracked by
// their 64-bit std::hash: two keys that collide share a bucket, which gives nothing to an attacker
// who can already send any device id (Capgo device ids are not authenticated). Thread-safe. With
// max_keys >= 1024 the table is split into kShards shards by key hash, each with its own lock and
// max_keys / kShards buckets, so request threads rarely wait for each other.
class CapgoRateLimiter {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  struct Options {
    double burst = 10;
    double refill_per_second = 1;
    size_t max_keys = 100000;
  };

  static constexpr size_t kShards = 16;

  CapgoRateLimiter(Options options, Clock clock);

  // nullopt when the request may proceed; otherwise the 429 reply to send (with Retry-After).
  std::optional<CapgoReply> Check(std::string_view key);

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point updated;
  };
  double Refilled(const Bucket& bucket, std::chrono::steady_clock::time_point now) const;
  CapgoReply Limited(double wait_seconds) const;

  // One generation: an open-addressing table (linear probing, at most half full) of key hashes,
  // so a lookup touches one or two cache lines and nothing is allocated per key. Id 0 marks an
  // empty slot (a key hashing to 0 is tracked as 1).
  struct Slot {
    uint64_t id = 0;
    Bucket bucket{};
  };
  struct Generation {
    Slot* slots = nullptr;  // `capacity` slots inside arena_
    size_t capacity = 0;    // a power of two, at least 2 * generation_size_
    size_t used = 0;
    Slot* Find(uint64_t id);  // the slot holding id, or the empty slot where it would go
  };
  struct FreeArena {
    void operator()(void* p) const;
  };
  struct Shard {
    std::mutex mutex;
    Generation current;   // guarded by mutex
    Generation previous;  // guarded by mutex
  };

  const Options options_;
  const Clock clock_;
  const size_t shard_count_;      // 1 or kShards
  const size_t generation_size_;  // per shard: max_keys / shard_count_ / 2 (at least 1)
  Shard shards_[kShards];
  // Every generation's slots in one block aligned to 2 MiB and advised for transparent huge pages:
  // lookups land at random in a few MiB, and with 4 KiB pages most of them also missed the TLB.
  std::unique_ptr<Slot, FreeArena> arena_;
};

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_CAPGO_API_H_
