#include "server/channel_cache.h"

#include <algorithm>
#include <mutex>
#include <utility>

#include "common/bytes.h"

namespace airlock::server {

const storage::ChannelRelease* AppChannels::Find(std::string_view name) const {
  for (const auto& c : channels) {
    if (c.channel.name == name) return &c;
  }
  return nullptr;
}

const storage::ChannelRelease* AppChannels::Default() const {
  for (const auto& c : channels) {
    if (c.channel.is_default) return &c;
  }
  return nullptr;
}

const storage::ChannelRelease* ResolveChannel(const AppChannels& app,
                                              const std::optional<std::string>& device_override,
                                              std::string_view requested, bool* via_device) {
  if (via_device != nullptr) *via_device = false;
  if (device_override) {
    if (const auto* c = app.Find(*device_override)) {
      if (via_device != nullptr) *via_device = true;
      return c;
    }
  }
  if (!requested.empty()) {
    const auto* c = app.Find(requested);
    if (c != nullptr && c->channel.allow_self_assign) {
      if (via_device != nullptr) *via_device = true;
      return c;
    }
  }
  return app.Default();
}

ChannelCache::ChannelCache(storage::Store* store) : ChannelCache(store, Options{}) {}

namespace {

std::atomic<uint64_t> g_next_cache_id{1};

// Per I/O thread, the last app snapshot it read. `value` aliases the shared snapshot through a
// control block of this thread's own, so the copies handed out count references on this thread
// only: two threads serving the same app no longer bounce the cache's lock and the snapshot's
// reference count between their cores on every request. Valid while the cache's generation (every
// invalidation bumps it) and the entry's expiry say so, the same rules as the shared map.
struct ThreadSnapshot {
  uint64_t cache_id = 0;
  uint64_t generation = 0;
  std::string app_id;
  std::shared_ptr<const AppChannels> value;
  std::chrono::steady_clock::time_point expires;
};
thread_local ThreadSnapshot t_snapshot;

}  // namespace

ChannelCache::ChannelCache(storage::Store* store, Options options)
    : store_(store), options_(std::move(options)), id_(g_next_cache_id.fetch_add(1)) {}

ChannelCache::~ChannelCache() {
  // This thread's snapshot may name this cache; drop the reference now rather than at thread exit.
  if (t_snapshot.cache_id == id_) t_snapshot = ThreadSnapshot{};
}

std::chrono::steady_clock::time_point ChannelCache::Now() const {
  return options_.clock ? options_.clock() : std::chrono::steady_clock::now();
}

std::string ChannelCache::DeviceKey(std::string_view app_id, std::string_view device_id) {
  // '/' cannot occur in an id, so the key is unambiguous.
  std::string key(app_id);
  key += '/';
  key += device_id;
  return key;
}

Result<std::shared_ptr<const AppChannels>> ChannelCache::Channels(std::string_view app_id) {
  auto now = Now();
  ThreadSnapshot& mine = t_snapshot;
  if (mine.cache_id == id_ && mine.value != nullptr && now < mine.expires && mine.app_id == app_id &&
      mine.generation == generation_.load(std::memory_order_acquire)) {
    return mine.value;
  }
  auto remember = [&](const AppEntry& entry, uint64_t generation) {
    auto holder = std::make_shared<std::shared_ptr<const AppChannels>>(entry.value);
    mine.cache_id = id_;
    mine.generation = generation;
    mine.app_id.assign(app_id);
    mine.value = std::shared_ptr<const AppChannels>(holder, holder->get());
    mine.expires = entry.expires;
  };
  uint64_t generation = 0;
  {
    std::shared_lock lock(mutex_);
    auto it = apps_.find(std::string(app_id));
    if (it != apps_.end() && now < it->second.expires) {
      remember(it->second, generation_.load());
      return mine.value;
    }
    generation = generation_.load();
  }
  AIRLOCK_ASSIGN_OR_RETURN(auto rows, store_->ListChannelReleases(app_id));
  auto value = std::make_shared<AppChannels>();
  value->app_id = std::string(app_id);
  value->channels = std::move(rows);
  if (options_.release_gate) options_.release_gate(app_id, &value->channels);
  // With ttl 0 the snapshot serves one request: one device read is cheaper than every override.
  const size_t max_overrides =
      std::min(options_.max_overrides, storage::kMaxOverrideListLimit - 1);
  if (options_.ttl.count() > 0 && max_overrides > 0) {
    // One more than kept tells a complete list from a truncated one.
    AIRLOCK_ASSIGN_OR_RETURN(auto overrides,
                             store_->ListChannelOverrides(app_id, max_overrides + 1));
    if (overrides.size() <= max_overrides) {
      value->overrides.reserve(overrides.size());
      for (auto& o : overrides) {
        value->overrides.emplace(std::move(o.device_id), std::move(o.channel));
      }
      value->overrides_complete = true;
    }
  }
  std::shared_ptr<const AppChannels> result = std::move(value);
  std::unique_lock lock(mutex_);
  ++channel_loads_;
  // Keep it only when no invalidation ran during the load (it might predate the change).
  if (options_.ttl.count() > 0 && generation == generation_.load()) {
    const AppEntry& entry = apps_[std::string(app_id)] = AppEntry{result, now + options_.ttl};
    remember(entry, generation);
  }
  return result;
}

namespace {

std::shared_ptr<const crypto::PublicKey> ParseSigningKey(const storage::Device& device) {
  if (!device.signing_key) return nullptr;
  auto raw = HexDecode(*device.signing_key);
  if (!raw) return nullptr;
  auto key = crypto::PublicKey::FromRaw(crypto::KeyType::kEd25519, *raw);
  if (!key) return nullptr;
  return std::make_shared<const crypto::PublicKey>(std::move(*key));
}

}  // namespace

Result<storage::Device> ChannelCache::Device(std::string_view app_id, std::string_view device_id) {
  AIRLOCK_ASSIGN_OR_RETURN(CachedDevice device, DeviceWithKey(app_id, device_id));
  return std::move(device.row);
}

Result<CachedDevice> ChannelCache::DeviceWithKey(std::string_view app_id,
                                                 std::string_view device_id) {
  auto now = Now();
  std::string key = DeviceKey(app_id, device_id);
  uint64_t generation = 0;
  {
    std::shared_lock lock(mutex_);
    auto it = devices_.find(key);
    if (it != devices_.end() && now < it->second.expires) {
      if (it->second.value) return CachedDevice{*it->second.value, it->second.signing_key};
      return MakeError(ErrorCode::kNotFound, "device " + std::string(device_id) + " not found");
    }
    generation = generation_;
  }
  auto device = store_->GetDevice(app_id, device_id);
  const bool unknown = !device && device.error().code() == ErrorCode::kNotFound;
  if (!device && !unknown) return tl::unexpected(device.error());  // never cached
  std::shared_ptr<const crypto::PublicKey> signing_key;
  if (device) signing_key = ParseSigningKey(*device);
  const auto ttl = unknown ? options_.unknown_device_ttl : options_.device_ttl;
  std::unique_lock lock(mutex_);
  ++device_loads_;
  // Keep it only when no invalidation ran during the load (an enrollment or assignment might have
  // happened after the read).
  if (ttl.count() > 0 && options_.max_devices > 0 && generation == generation_) {
    if (devices_.size() >= options_.max_devices && devices_.find(key) == devices_.end()) {
      std::erase_if(devices_, [&](const auto& kv) { return !(now < kv.second.expires); });
      if (devices_.size() >= options_.max_devices) devices_.clear();
    }
    DeviceEntry& entry = devices_[key];
    entry.expires = now + ttl;
    if (unknown) {
      entry.value.reset();
      entry.signing_key.reset();
    } else {
      entry.value = *device;
      entry.signing_key = signing_key;
    }
  }
  if (!device) return tl::unexpected(device.error());
  return CachedDevice{std::move(*device), std::move(signing_key)};
}

Result<std::optional<std::string>> ChannelCache::Override(const AppChannels& app,
                                                          std::string_view device_id) {
  if (app.overrides_complete) {
    auto it = app.overrides.find(device_id);
    if (it == app.overrides.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  auto device = Device(app.app_id, device_id);
  if (device) {
    if (!storage::ClaimedIdMayUse(*device)) return std::optional<std::string>();
    return device->channel_override;
  }
  if (device.error().code() == ErrorCode::kNotFound) return std::optional<std::string>();
  return tl::unexpected(device.error());
}

void ChannelCache::TouchCachedDevice(std::string_view app_id, std::string_view device_id,
                                     int64_t last_seen) {
  std::unique_lock lock(mutex_);
  auto it = devices_.find(DeviceKey(app_id, device_id));
  if (it == devices_.end() || !it->second.value) return;
  it->second.value->last_seen = std::max(it->second.value->last_seen, last_seen);
}

void ChannelCache::Invalidate(std::string_view app_id) {
  std::unique_lock lock(mutex_);
  ++generation_;
  apps_.erase(std::string(app_id));
}

void ChannelCache::InvalidateDevice(std::string_view app_id, std::string_view device_id) {
  std::unique_lock lock(mutex_);
  ++generation_;
  devices_.erase(DeviceKey(app_id, device_id));
  // The snapshot's override map may name the device. An enrollment (no override yet) would not
  // need this, but enrollments are rare next to checks, and one rule for every device change is
  // harder to get wrong than a second method.
  apps_.erase(std::string(app_id));
}

void ChannelCache::InvalidateAll() {
  std::unique_lock lock(mutex_);
  ++generation_;
  apps_.clear();
  devices_.clear();
}

uint64_t ChannelCache::channel_loads() const {
  std::shared_lock lock(mutex_);
  return channel_loads_;
}

uint64_t ChannelCache::device_loads() const {
  std::shared_lock lock(mutex_);
  return device_loads_;
}

}  // namespace airlock::server
