// The Capgo interfaces of capgo_api.h implemented over storage::Store.
//
// Mapping (storage -> Capgo):
//  * Channel: id and name are the channel name; is_public = the app's default channel;
//  allow_emulator and
//    allow_dev are always true (storage has no such toggles yet); min_native_version and platform
//    toggles are copied.
//  * Channel resolution (StoreCatalog::FindOffer): the device's channel_override (enrolled devices
//  only),
//    else the request's `defaultChannel` when that channel allows self-assignment, else the app's
//    default channel; none of these -> no channel.
//  * Release: the channel's current_version, offered only when it was published with --capgo (it
//  has a
//    capgo_session_key and capgo_checksum); the download url is
//    `<public_url>/v1/blobs/<capgo_sha256>` (the Capgo-encrypted zip, a TUF target of its own), or
//    `<sha256>` for rows without capgo_sha256 (written before migration 0002, when sha256 named the
//    Capgo blob). A paused channel, or a device outside the rollout percentage (sticky: FNV-1a 64
//    of "app_id/device_id" mod 100), gets no release (Capgo `no_bundle`). A channel rolled back
//    through the admin API (the signed targets allow it) offers its release as an authorized
//    rollback.
//  * Channels, releases and device overrides come from a ChannelCache (channel_cache.h) snapshot of
//  the
//    app, so a warm /updates makes no database round trip and no per-device read, for enrolled
//    devices and for devices unknown here alike (above ChannelCache::Options::max_overrides
//    overrides per app, the device row is read through the cache instead); without a cache given,
//    the catalog reads the Store on every call.
//  * Capgo requests name a device by a claimed id only (as Capgo itself does), so they never change
//  a
//    natively enrolled or revoked device (storage::ClaimedIdMayUse): /updates does not follow its
//    override, GetAssignment does not show it, SetAssignment refuses it (kWrongKey),
//    ClearAssignment and stats leave it alone. Only rows without a signing key (enrolled before
//    migration 0004) and not revoked remain Capgo-assignable, and their stats are bounded per
//    device and hour like reports.
//  * Assignments (StoreChannelRegistry) are devices' channel_override. Only enrolled devices have a
//    row, so SetAssignment for an unknown device is kNotFound (/channel_self then answers that the
//    device may choose the channel and stores nothing: the plugin keeps the choice and sends it as
//    defaultChannel); a device is never created here, since that would let anyone claim a device
//    id before it enrolls.
//  * Stats (StoreStatsSink) become device events (kind "capgo_<action>", version = the running
//    version, detail = old version, or "file F" for a composite "1.2.3:F" version name) for
//    enrolled devices without a signing key; events of unknown or native devices, or whose running
//    version is not semver, are accepted and dropped.
//
// Thread-safety: as thread-safe as the Store (every Store is); the sink's sequence counter is
// locked.
#ifndef AIRLOCK_SERVER_STORE_CATALOG_H_
#define AIRLOCK_SERVER_STORE_CATALOG_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "server/capgo_api.h"
#include "server/channel_cache.h"
#include "storage/store.h"

namespace airlock::server {

// Unix seconds.
using UnixClock = std::function<int64_t()>;

// Converts a storage channel to the Capgo view.
CapgoChannel ToCapgoChannel(const storage::Channel& channel);

// True when `device_id` falls inside the channel's rollout percentage (sticky per device).
bool InRollout(std::string_view app_id, std::string_view device_id, int rollout_percent);
// Whether the channel's current release is offered to the device: always after a rollback (it
// exists to take every device off the release it replaced; the share applies again to the next
// publish), else InRollout with the channel's share. /v1/check and /updates both ask this.
bool RolloutIncludes(const storage::Channel& channel, std::string_view device_id);

class StoreCatalog : public CapgoReleaseCatalog {
 public:
  // `public_url`: scheme://host[:port] devices use to reach this server (no trailing '/'). `cache` (shared
  // with the device API, outliving the catalog) may be null: then a private cache with TTL 0 is used.
  StoreCatalog(storage::Store* store, std::string public_url, ChannelCache* cache = nullptr);
  [[nodiscard]] Result<std::optional<CapgoOffer>> FindOffer(const CapgoDeviceInfo& device) override;

 private:
  // The Capgo manifest of `release` with download URLs, parsed once per release (a release never
  // changes once published); empty if it has none or its stored JSON is not as the API wrote it.
  std::vector<CapgoManifestEntry> ManifestOf(const storage::Release& release);

  std::unique_ptr<ChannelCache> owned_cache_;
  ChannelCache* cache_;
  std::string public_url_;
  std::mutex manifest_mu_;
  std::map<std::string, std::shared_ptr<const std::vector<CapgoManifestEntry>>> manifests_;
};

class StoreChannelRegistry : public CapgoChannelRegistry {
 public:
  // `cache` (may be null) is told about assignment changes (InvalidateDevice: seen at once).
  explicit StoreChannelRegistry(storage::Store* store, ChannelCache* cache = nullptr)
      : store_(store), cache_(cache) {}
  [[nodiscard]] Result<std::vector<CapgoChannel>> ListChannels(std::string_view app_id) override;
  [[nodiscard]] Result<std::optional<std::string>> GetAssignment(std::string_view app_id,
                                                                 std::string_view device_id) override;
  [[nodiscard]] Result<void> SetAssignment(std::string_view app_id, std::string_view device_id,
                                           std::string_view channel_name) override;
  [[nodiscard]] Result<void> ClearAssignment(std::string_view app_id,
                                             std::string_view device_id) override;

 private:
  storage::Store* store_;
  ChannelCache* cache_;
};

class StoreStatsSink : public CapgoStatsSink {
 public:
  // At most `max_events_per_device_hour` events of one device are stored per rolling hour (as for
  // /v1/report); beyond it a device's events are accepted and dropped.
  StoreStatsSink(storage::Store* store, UnixClock clock, size_t max_events_per_device_hour = 1000)
      : store_(store), clock_(std::move(clock)), max_events_(max_events_per_device_hour) {}
  [[nodiscard]] Result<void> Record(const std::vector<CapgoStatsEvent>& events) override;

 private:
  // Capgo events carry no sequence number: use a strictly increasing microsecond stamp per process.
  int64_t NextSeq();

  storage::Store* store_;
  UnixClock clock_;
  size_t max_events_;
  std::mutex mutex_;
  int64_t last_seq_ = 0;  // guarded by mutex_
};

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_STORE_CATALOG_H_
