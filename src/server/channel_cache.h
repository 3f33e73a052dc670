// In-memory cache of the state the device hot paths read (/v1/check and Capgo /updates): per app,
// its channels with their current release rows and the devices that have a channel override, and
// enrolled device rows.
//
// Freshness. An app's snapshot (AppChannels) is loaded from the Store on first use (two queries,
// Store::ListChannelReleases and Store::ListChannelOverrides) and kept for `ttl` (default 2 s):
// other airlockd processes sharing a PostgreSQL database see changes within the TTL; changes made
// through this process call Invalidate(app) (channels, releases) or InvalidateDevice(app, device)
// (enrollment, a device's channel override; it drops the app's snapshot too) and are seen at once.
// The overrides are in the snapshot because Capgo /updates mostly comes from devices never enrolled
// here: Override() answers from the snapshot, with no per-device read, when it holds every override
// of the app (at most `max_overrides`; above that, or with ttl 0, the snapshot holds none and
// Override() reads the device row through Device()). Device rows are kept for `device_ttl` (default
// 5 s) in a map of at most `max_devices` entries (when full, expired entries are dropped, and if
// none expired the whole map is cleared: a flood of fresh ids costs database reads, never unbounded
// memory). Unknown devices (kNotFound from the Store) are cached too, as absent, for
// `unknown_device_ttl` (default 5 s) in the same bounded map; an enrollment through another process
// sharing the database is therefore seen within that TTL (as a change to a device row is). With
// ttl 0 no snapshot is kept (every Channels() call reads the Store).
//
// Errors from the Store are returned and nothing is cached for them.
//
// Thread-safety: every method may be called from any thread (a shared_mutex; loads run outside it,
// so readers never wait for the database; two threads missing at once may both load, last one wins
// unless an invalidation happened meanwhile).
#ifndef AIRLOCK_SERVER_CHANNEL_CACHE_H_
#define AIRLOCK_SERVER_CHANNEL_CACHE_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "crypto/keys.h"
#include "storage/store.h"

namespace airlock::server {

// An immutable snapshot of one app's channels (sorted by name) and device channel overrides.
struct AppChannels {
  // Hashes std::string keys and std::string_view probes alike (lookups without a copy).
  struct IdHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::string app_id;
  std::vector<storage::ChannelRelease> channels;
  // device id -> channel name, for every device of the app that has an override when
  // overrides_complete; empty (and not to be trusted) otherwise.
  std::unordered_map<std::string, std::string, IdHash, std::equal_to<>> overrides;
  bool overrides_complete = false;

  // nullptr when absent.
  const storage::ChannelRelease* Find(std::string_view name) const;
  const storage::ChannelRelease* Default() const;
};

// Channel resolution shared by /v1/check and Capgo /updates: the device's override (when that
// channel exists), else `requested` when that channel allows self-assignment, else the app's
// default channel. nullptr when none applies. `via_device` (optional) is set when the override or
// the request chose it.
const storage::ChannelRelease* ResolveChannel(const AppChannels& app,
                                              const std::optional<std::string>& device_override,
                                              std::string_view requested,
                                              bool* via_device = nullptr);

// A device row with its signing key parsed once when the row is loaded (the check hot path verifies a
// signature per request and must not parse the key each time).
struct CachedDevice {
  storage::Device row;
  // Ed25519; null when the row has no signing key (enrolled before migration 0004) or it does not
  // parse (then no request of the device verifies).
  std::shared_ptr<const crypto::PublicKey> signing_key;
};

class ChannelCache {
 public:
  using SteadyClock = std::function<std::chrono::steady_clock::time_point()>;
  struct Options {
    std::chrono::milliseconds ttl{2000};
    std::chrono::milliseconds device_ttl{5000};
    std::chrono::milliseconds unknown_device_ttl{5000};  // 0: unknown devices are not cached
    size_t max_devices = 100000;  // known and unknown entries together
    // Overrides kept per app snapshot (capped at storage::kMaxOverrideListLimit - 1); an app with
    // more gets none in its snapshot (per-device reads instead). 0: never loaded.
    size_t max_overrides = 100000;
    SteadyClock clock;  // default std::chrono::steady_clock::now
    // Run once on every app snapshot as it is loaded (app id, its channel rows); it withholds a
    // channel's release by resetting it (the channel serves no release) until the next load.
    // airlockd sets it to the signed release rules (server/release_policy.h, SignedReleaseGate), so a
    // row written into the database behind the API cannot re-route or downgrade a release. Unset:
    // all served.
    std::function<void(std::string_view, std::vector<storage::ChannelRelease>*)> release_gate;
  };

  // `store` must outlive the cache.
  explicit ChannelCache(storage::Store* store);
  ChannelCache(storage::Store* store, Options options);
  ~ChannelCache();

  // The app's channels (empty for an unknown app). kInvalidArgument for a bad app id, Store errors.
  [[nodiscard]] Result<std::shared_ptr<const AppChannels>> Channels(std::string_view app_id);
  // The enrolled device, or kNotFound (also when a cached "unknown" entry answers).
  [[nodiscard]] Result<storage::Device> Device(std::string_view app_id, std::string_view device_id);
  // The same, with the parsed signing key (same caching).
  [[nodiscard]] Result<CachedDevice> DeviceWithKey(std::string_view app_id,
                                                   std::string_view device_id);
  // The device's channel override (nullopt when it has none or is not enrolled), from `app` (a
  // snapshot from Channels()) when it holds every override, else from Device(). Only overrides a
  // claimed id may use (storage::ClaimedIdMayUse): none for a native or revoked device. Store
  // errors.
  [[nodiscard]] Result<std::optional<std::string>> Override(const AppChannels& app,
                                                            std::string_view device_id);
  // Sets last_seen of the cached row (when LastSeenWriter recorded it), if cached. Only last_seen: a row
  // copied before a revocation must not put the old status back.
  void TouchCachedDevice(std::string_view app_id, std::string_view device_id, int64_t last_seen);

  void Invalidate(std::string_view app_id);
  // Drops the device row and the app's snapshot (its override map): after an enrollment or a
  // change of the device's channel override.
  void InvalidateDevice(std::string_view app_id, std::string_view device_id);
  void InvalidateAll();

  storage::Store* store() const { return store_; }

  // Counters for tests and metrics.
  uint64_t channel_loads() const;
  uint64_t device_loads() const;  // Store reads for devices (known or not)

 private:
  struct AppEntry {
    std::shared_ptr<const AppChannels> value;
    std::chrono::steady_clock::time_point expires;
  };
  struct DeviceEntry {
    std::optional<storage::Device> value;  // nullopt: the Store said kNotFound
    std::shared_ptr<const crypto::PublicKey> signing_key;
    std::chrono::steady_clock::time_point expires;
  };
  static std::string DeviceKey(std::string_view app_id, std::string_view device_id);
  std::chrono::steady_clock::time_point Now() const;

  storage::Store* const store_;
  const Options options_;
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, AppEntry> apps_;        // guarded by mutex_
  std::unordered_map<std::string, DeviceEntry> devices_;  // guarded by mutex_
  // Bumped (under mutex_) by every invalidation; read without the lock by the per-thread snapshot
  // check in Channels().
  std::atomic<uint64_t> generation_{0};
  const uint64_t id_;  // unique per cache object (the per-thread snapshot names its cache by it)
  uint64_t channel_loads_ = 0;  // guarded by mutex_
  uint64_t device_loads_ = 0;   // guarded by mutex_
};

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_CHANNEL_CACHE_H_
