// The update server's state: apps, channels, releases, devices and device events, behind one
// interface with an SQLite (embedded default) and a PostgreSQL (scale-out) implementation.
//
// Contract for every method:
//  - Returns Result; never throws.
//  - Inputs are validated before touching the database: identifiers are 1..kMaxIdLength bytes of
//    [A-Za-z0-9._-], versions are semver (kMaxSemverLength), free text is bounded; violations are
//    kInvalidArgument (kLimitExceeded for an over-long event batch) and change nothing.
//  - kNotFound when a named row (or the row it refers to) does not exist; kAlreadyExists when
//  creating
//    a row whose key is taken; kIo when the database fails.
//  - Multi-row changes are atomic (one transaction).
//  - Thread-safe: calls on one Store are serialized internally. Several processes may share one
//    PostgreSQL database (or one SQLite file, writes serialized by SQLite's lock).
//  - Times are Unix seconds supplied by the caller (the store reads no clock).
#ifndef AIRLOCK_STORAGE_STORE_H_
#define AIRLOCK_STORAGE_STORE_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace airlock::storage {

inline constexpr size_t kMaxIdLength = 128;     // app ids, channel names, device ids, event kinds
inline constexpr size_t kMaxTextLength = 4096;  // display names, target names, event details
inline constexpr size_t kMaxCapgoManifestText = 8 << 20;  // a release's Capgo manifest JSON
inline constexpr size_t kMaxEventBatch = 1000;  // events per AppendDeviceEvents call
inline constexpr size_t kMaxListLimit = 10000;  // rows per List call
// Rows per ListChannelOverrides call (the channel cache keeps an app's overrides in memory).
inline constexpr size_t kMaxOverrideListLimit = 1000000;

// kToken: a device enrolls with the app's enrollment token and is active at once. kApprove: the
// token, then the device waits as kPending until an operator approves it. kPreauth: only a signing
// key registered beforehand (AddPreauthorizedKeys) enrolls; no token needed.
enum class EnrollPolicy { kToken, kApprove, kPreauth };
std::string_view EnrollPolicyName(EnrollPolicy policy);  // "token", "approve", "preauth"
Result<EnrollPolicy> ParseEnrollPolicy(std::string_view name);

// kActive: served. kPending: enrolled under kApprove, not yet approved (device routes answer 403
// device_pending). kRevoked: refused on every device route, never gets another wrapped key.
enum class DeviceStatus { kActive, kPending, kRevoked };
std::string_view DeviceStatusName(DeviceStatus status);  // "active", "pending", "revoked"
Result<DeviceStatus> ParseDeviceStatus(std::string_view name);

struct App {
  std::string app_id;
  std::string display_name;
  int64_t created_at = 0;
  // Hex SHA-256 of the app's enrollment token ("enr_..."); devices enroll with the token.
  std::optional<std::string> enroll_token_sha256;
  // SPKI PEM of the developer's key for `app` encryption mode (bounded by kMaxTextLength).
  std::optional<std::string> app_key;
  // How new devices enroll (migration 0004): see EnrollPolicy.
  EnrollPolicy enroll_policy = EnrollPolicy::kToken;
  bool operator==(const App&) const = default;
};

enum class EncryptionMode { kNone, kApp, kDevice };
std::string_view EncryptionModeName(EncryptionMode mode);  // "none", "app", "device"
Result<EncryptionMode> ParseEncryptionMode(std::string_view name);

struct Release {
  std::string app_id;
  std::string version;      // semver
  std::string target_name;  // the TUF target path
  std::string sha256;       // 64 lower-case hex digits of the sealed bundle
  int64_t length = 0;       // bytes, >= 0
  EncryptionMode encryption = EncryptionMode::kNone;
  // Capgo encryption v2 form (only for bundles published with --capgo).
  std::optional<std::string> capgo_session_key;
  std::optional<std::string> capgo_checksum;
  int64_t created_at = 0;
  // "alb" (sealed bundle) or "zip"; nullopt for rows written before migration 0002.
  std::optional<std::string> format;
  // The Capgo-encrypted zip (a second TUF target) when published with --capgo: all set or all
  // nullopt.
  std::optional<std::string> capgo_target;
  std::optional<std::string> capgo_sha256;  // 64 lower-case hex
  std::optional<int64_t> capgo_length;
  // The plugin's key id of the key the Capgo form was encrypted for (migration 0005); nullopt: not
  // recorded (published before 0005, or the signed metadata did not name it), not checked.
  std::optional<std::string> capgo_key_id;
  // The Capgo manifest (partial update): JSON [{"file_name", "file_hash", "sha256"}], checked by
  // the admin API against the signed targets; at most kMaxCapgoManifestText bytes.
  std::optional<std::string> capgo_manifest;
  bool operator==(const Release&) const = default;
};

struct Channel {
  std::string app_id;
  std::string name;
  bool is_default = false;  // at most one per app; setting it clears the others
  bool allow_self_assign = false;
  bool ios = true;
  bool android = true;
  bool electron = true;
  std::optional<std::string> min_native_version;  // semver; devices below it get nothing
  int rollout_percent = 100;                      // 0..100, sticky by hash of device id
  bool paused = false;
  std::optional<std::string> current_version;  // release offered on this channel
  // current_version was set by an allowed rollback (SetChannelCurrentVersion with rolled_back);
  // devices running a higher version may be offered it. Cleared by PublishRelease.
  bool rolled_back = false;
  // Four-eyes approval (docs/operations/approvals.md): a publish, a rollout above
  // approval_rollout_above percent, and a looser policy wait for a second principal. Written only
  // by CreateChannel, SetChannelApproval (tightening) and DecideApproval, never by UpdateChannel.
  bool approval_required = false;
  int approval_rollout_above = 100;
  bool operator==(const Channel&) const = default;
};

// A change waiting for (or decided by) a second principal. kind "publish": `version` becomes the
// channel's current release; "rollout": `rollout_percent`; "policy": the channel's approval policy
// (`policy_required`, `policy_rollout_above`).
struct Approval {
  int64_t id = 0;  // assigned by CreateApproval
  std::string app_id;
  std::string channel;
  std::string kind;
  std::optional<std::string> version;
  std::optional<int64_t> rollout_percent;
  std::optional<bool> policy_required;
  std::optional<int64_t> policy_rollout_above;
  std::string requested_by;  // the requesting principal's name
  // Its token id, then the ids of the tokens that minted it up to the first, space-separated.
  std::string requester_lineage;
  int64_t requested_at = 0;
  std::string status = "pending";  // "pending", "approved", "rejected"
  std::optional<std::string> decided_by;
  std::optional<int64_t> decided_at;
  bool operator==(const Approval&) const = default;
};

// A release's figures from its devices' reports (GetReleaseStats; docs/operations/statistics.md).
struct ReleaseStats {
  std::map<std::string, int64_t> funnel;            // kind -> distinct devices that reported it
  std::map<std::string, int64_t> failed_by_reason;  // failed or rolled_back, by reason code
  int64_t active_devices = 0;  // the app's devices seen since `active_since`, not revoked
  int64_t on_release = 0;      // devices whose latest confirmed/rolled_back event confirms it
  // (seconds after `from`, devices) for every device's first confirmation of the release as the
  // server received it (received_at, not the device's clock), aggregated per `bucket` seconds.
  std::vector<std::pair<int64_t, int64_t>> confirmed_by_bucket;

  // The funnel's steps in order (the kinds a device reports).
  static constexpr std::array<std::string_view, 7> kSteps = {
      "offered", "downloaded", "verified", "installed", "confirmed", "failed", "rolled_back"};
  // Devices that reported `step`, 0 when none did.
  int64_t Devices(std::string_view step) const;
  // confirmed / (confirmed + failed + rolled_back); nullopt before any device finished.
  std::optional<double> SuccessRate() const;
};

// A channel with its current release (nullopt when current_version is unset).
struct ChannelRelease {
  Channel channel;
  std::optional<Release> release;
  bool operator==(const ChannelRelease&) const = default;
};

struct Device {
  std::string app_id;
  std::string device_id;
  std::string public_key;  // X25519 public key, 64 lower-case hex digits
  std::string platform;    // "ios", "android", "electron", ...
  std::optional<std::string> channel_override;
  int64_t last_seen = 0;
  // Ed25519 public key (64 lower-case hex) that signs the device's requests; nullopt for a device
  // enrolled before migration 0004 (it must enroll again before it is served).
  std::optional<std::string> signing_key;
  DeviceStatus status = DeviceStatus::kActive;
  bool operator==(const Device&) const = default;
};

// One device's last_seen for Store::TouchDevices.
struct DeviceTouch {
  std::string app_id;
  std::string device_id;
  int64_t last_seen = 0;
};
inline constexpr size_t kMaxTouchBatch = 500;  // touches per TouchDevices call
inline constexpr size_t kPostgresStoreConnections = 4;  // OpenStore's default on PostgreSQL

// Whether requests that name a device by a claimed id only (the Capgo routes) may read or change
// it: not for a device enrolled with a signing key (only its own signed requests and the admin API
// change it) nor for a revoked one. ListChannelOverrides applies the same rule in SQL.
inline bool ClaimedIdMayUse(const Device& device) {
  return !device.signing_key && device.status != DeviceStatus::kRevoked;
}

// A signing key allowed to enroll under EnrollPolicy::kPreauth.
struct PreauthorizedKey {
  std::string app_id;
  std::string signing_key;               // Ed25519 public, 64 lower-case hex
  std::optional<std::string> device_id;  // set: only this device id enrolls with the key
  int64_t created_at = 0;
  bool operator==(const PreauthorizedKey&) const = default;
};

// A device-mode content key wrapped to one device for one bundle.
struct WrappedKey {
  std::string app_id;
  std::string device_id;
  std::string sha256;       // the sealed bundle
  std::string public_key;   // the X25519 key (64 hex) it is wrapped to
  std::string wrapped_key;  // base64
  int64_t created_at = 0;
  bool operator==(const WrappedKey&) const = default;
};

// At most `max_events` events of one device with received_at >= `since` (AppendDeviceEvents).
struct EventQuota {
  int64_t since = 0;
  size_t max_events = 0;
};

// A device's channel_override (devices without one have none).
struct ChannelOverride {
  std::string device_id;
  std::string channel;
  bool operator==(const ChannelOverride&) const = default;
};

// One step a device reports (offered, downloaded, verified, installed, confirmed, failed,
// rolled_back), numbered by the device so a retried batch is stored once.
struct DeviceEvent {
  std::string app_id;
  std::string device_id;
  int64_t seq = 0;
  std::string version;
  std::string kind;
  std::string reason_code;  // empty on success
  std::string detail;
  int64_t occurred_at = 0;
  int64_t received_at = 0;
  bool operator==(const DeviceEvent&) const = default;
};

class Store {
 public:
  virtual ~Store() = default;

  // Schema version after migrations (the highest applied NNNN).
  [[nodiscard]] virtual Result<int64_t> SchemaVersion() = 0;

  [[nodiscard]] virtual Result<void> CreateApp(const App& app) = 0;
  [[nodiscard]] virtual Result<App> GetApp(std::string_view app_id) = 0;
  [[nodiscard]] virtual Result<std::vector<App>> ListApps() = 0;
  // Replaces the app's enrollment token hash (64 lower-case hex): the old token stops working.
  // kNotFound for an unknown app.
  [[nodiscard]] virtual Result<void> SetEnrollTokenHash(std::string_view app_id,
                                                        std::string_view sha256_hex) = 0;

  // The channel's current_version, if set, must name an existing release (else kNotFound).
  [[nodiscard]] virtual Result<void> CreateChannel(const Channel& channel) = 0;
  // Replaces the settings of the channel named by (app_id, name): is_default, allow_self_assign,
  // the platform toggles, min_native_version, rollout_percent, paused. Its release pointer
  // (current_version, rolled_back) is left as stored: it changes only through PublishRelease and
  // SetChannelCurrentVersion, so a settings edit that read the channel before another server's
  // publish cannot put the old release back.
  [[nodiscard]] virtual Result<void> UpdateChannel(const Channel& channel) = 0;
  [[nodiscard]] virtual Result<Channel> GetChannel(std::string_view app_id,
                                                   std::string_view name) = 0;
  // kNotFound if the app has no default channel.
  [[nodiscard]] virtual Result<Channel> GetDefaultChannel(std::string_view app_id) = 0;
  [[nodiscard]] virtual Result<std::vector<Channel>> ListChannels(std::string_view app_id) = 0;
  // Every channel of the app (by name) with its current release, in one query (the channel cache).
  // An unknown app has no channels (empty, not kNotFound).
  [[nodiscard]] virtual Result<std::vector<ChannelRelease>> ListChannelReleases(
      std::string_view app_id) = 0;
  // Sets the channel's current version (an existing release of the app, else kNotFound) and its
  // rolled_back flag; the other fields stay. kNotFound for an unknown channel.
  [[nodiscard]] virtual Result<void> SetChannelCurrentVersion(std::string_view app_id,
                                                              std::string_view channel,
                                                              std::string_view version,
                                                              bool rolled_back) = 0;

  [[nodiscard]] virtual Result<void> CreateRelease(const Release& release) = 0;
  // Creates the release and makes it the channel's current version (rolled_back cleared) in one
  // transaction.
  [[nodiscard]] virtual Result<void> PublishRelease(const Release& release,
                                                    std::string_view channel) = 0;
  [[nodiscard]] virtual Result<Release> GetRelease(std::string_view app_id,
                                                   std::string_view version) = 0;
  // Newest first by created_at, then version.
  [[nodiscard]] virtual Result<std::vector<Release>> ListReleases(std::string_view app_id) = 0;

  // Enrollment: kAlreadyExists if the device id is taken (re-keying is an explicit UpdateDevice).
  [[nodiscard]] virtual Result<void> CreateDevice(const Device& device) = 0;
  // Replaces the device's keys, platform, channel override and last_seen. Its status is left as
  // stored (it changes only through SetDeviceStatus), so an override edit that read the row before
  // a revocation cannot undo it.
  [[nodiscard]] virtual Result<void> UpdateDevice(const Device& device) = 0;
  // A revoked device stays revoked: kAlreadyExists for any other status (revoking again is a
  // no-op). kNotFound for an unknown device.
  [[nodiscard]] virtual Result<void> SetDeviceStatus(std::string_view app_id,
                                                     std::string_view device_id,
                                                     DeviceStatus status) = 0;
  // kNotFound for an unknown app.
  [[nodiscard]] virtual Result<void> SetEnrollPolicy(std::string_view app_id,
                                                     EnrollPolicy policy) = 0;

  // Registers preauthorized signing keys (one transaction); keys already registered are left as
  // they are. Returns how many were new. kNotFound for an unknown app; kLimitExceeded above
  // kMaxEventBatch keys.
  [[nodiscard]] virtual Result<size_t> AddPreauthorizedKeys(
      std::span<const PreauthorizedKey> keys) = 0;
  // By signing key, at most `limit`.
  [[nodiscard]] virtual Result<std::vector<PreauthorizedKey>> ListPreauthorizedKeys(
      std::string_view app_id, size_t limit = kMaxListLimit) = 0;
  // Binds the preauthorized `signing_key` to `device_id` (atomically). kNotFound if the key is not
  // registered; kAlreadyExists if it is bound to another device id.
  [[nodiscard]] virtual Result<void> ClaimPreauthorizedKey(std::string_view app_id,
                                                           std::string_view signing_key,
                                                           std::string_view device_id) = 0;

  // Stores a wrapped key; one already stored for (app, device, sha256) is replaced only when it was
  // wrapped to another public key. kNotFound for an unknown device.
  [[nodiscard]] virtual Result<void> PutWrappedKey(const WrappedKey& key) = 0;
  // kNotFound when none is stored.
  [[nodiscard]] virtual Result<WrappedKey> GetWrappedKey(std::string_view app_id,
                                                         std::string_view device_id,
                                                         std::string_view sha256) = 0;
  // Sets last_seen of up to kMaxTouchBatch devices in one statement (the check path's write-behind,
  // server/last_seen_writer.h), never moving one back; unknown devices are skipped. Every id is
  // checked first (kInvalidArgument; nothing written); an empty batch writes nothing.
  [[nodiscard]] virtual Result<void> TouchDevices(std::span<const DeviceTouch> touches) = 0;
  [[nodiscard]] virtual Result<Device> GetDevice(std::string_view app_id,
                                                 std::string_view device_id) = 0;
  [[nodiscard]] virtual Result<std::vector<Device>> ListDevices(std::string_view app_id,
                                                                size_t limit = kMaxListLimit) = 0;
  // The channel overrides a claimed id may use (ClaimedIdMayUse: devices without a signing key, not
  // revoked), by device id, at most `limit` (1 to kMaxOverrideListLimit, else kInvalidArgument). An
  // unknown app has none (empty).
  [[nodiscard]] virtual Result<std::vector<ChannelOverride>> ListChannelOverrides(
      std::string_view app_id, size_t limit) = 0;

  // Appends a batch atomically; events already stored (same app, device, seq) are skipped. Returns
  // the number newly stored. kLimitExceeded above kMaxEventBatch; kNotFound if a device is not
  // enrolled. With a quota, every event must be of one device (else kInvalidArgument), and when the
  // device's events received since quota->since plus the new ones would exceed quota->max_events
  // nothing is stored and the answer is kLimitExceeded (as for an over-long batch). Concurrent
  // appends for one device are serialized by a write to its row, so the bound holds across
  // processes too.
  [[nodiscard]] virtual Result<size_t> AppendDeviceEvents(
      std::span<const DeviceEvent> events, std::optional<EventQuota> quota = std::nullopt) = 0;
  // A device's events by seq, oldest first.
  [[nodiscard]] virtual Result<std::vector<DeviceEvent>> ListDeviceEvents(
      std::string_view app_id, std::string_view device_id, size_t limit = kMaxListLimit) = 0;
  // --- approvals (docs/operations/approvals.md) ---
  // Stores a pending approval and returns it with its id; with `release`, creates that release
  // first in the same transaction (a publish waiting for approval: both or neither). kNotFound for
  // an unknown channel, or for a publish of an unknown release; kAlreadyExists for a release that
  // exists; kInvalidArgument for a kind without its fields.
  [[nodiscard]] virtual Result<Approval> CreateApproval(const Approval& approval,
                                                        const Release* release = nullptr) = 0;
  [[nodiscard]] virtual Result<Approval> GetApproval(std::string_view app_id, int64_t id) = 0;
  // Newest first; `status` empty = any.
  [[nodiscard]] virtual Result<std::vector<Approval>> ListApprovals(
      std::string_view app_id, std::string_view status, size_t limit = kMaxListLimit) = 0;
  // Decides a pending approval. Approving applies its change to the channel in the same
  // transaction (publish: current version set, rolled_back cleared; rollout: rollout_percent;
  // policy: the approval policy). kRollback when it is no longer pending, kNotFound when unknown.
  [[nodiscard]] virtual Result<Approval> DecideApproval(std::string_view app_id, int64_t id,
                                                        bool approve, std::string_view decided_by,
                                                        int64_t decided_at) = 0;
  // Sets the channel's approval policy directly (the admin API only tightens it this way).
  [[nodiscard]] virtual Result<void> SetChannelApproval(std::string_view app_id,
                                                        std::string_view channel, bool required,
                                                        int rollout_above) = 0;

  // The release's funnel, reasons and adoption (ReleaseStats). `from` and `bucket` (> 0) place
  // the confirmations in time.
  [[nodiscard]] virtual Result<ReleaseStats> GetReleaseStats(std::string_view app_id,
                                                             std::string_view version,
                                                             int64_t active_since, int64_t from,
                                                             int64_t bucket) = 0;

  // Per-release funnel: event kind -> number of distinct devices that reported it.
  [[nodiscard]] virtual Result<std::map<std::string, int64_t>> CountEventsByKind(
      std::string_view app_id, std::string_view version) = 0;
};

// Opens and migrates a store. url: "sqlite:PATH" or a plain PATH (SQLite, created if missing, WAL),
// or "postgresql://..." / "postgres://..." (libpq URI). `now` is recorded in schema_migrations.
// The store is safe to call from many threads: on SQLite one connection serves one call at a time;
// on PostgreSQL `pg_connections` (at least 1) serve as many calls at once.
// Errors: kInvalidArgument (bad URL), kIo (cannot open/connect), kUnsupported (schema newer than
// binary).
[[nodiscard]] Result<std::unique_ptr<Store>> OpenStore(
    std::string_view url, int64_t now, size_t pg_connections = kPostgresStoreConnections);

}  // namespace airlock::storage

#endif  // AIRLOCK_STORAGE_STORE_H_
