#include "server/store_catalog.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <tuple>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/semver.h"

namespace airlock::server {

CapgoChannel ToCapgoChannel(const storage::Channel& channel) {
  CapgoChannel out;
  out.id = CapgoChannelId(channel.app_id, channel.name);
  out.name = channel.name;
  out.is_public = channel.is_default;
  out.allow_self_assign = channel.allow_self_assign;
  out.ios = channel.ios;
  out.android = channel.android;
  out.electron = channel.electron;
  out.min_native_version = channel.min_native_version;
  return out;
}

bool InRollout(std::string_view app_id, std::string_view device_id, int rollout_percent) {
  if (rollout_percent >= 100) return true;
  if (rollout_percent <= 0) return false;
  uint64_t hash = 14695981039346656037ull;
  auto mix = [&hash](std::string_view text) {
    for (unsigned char c : text) {
      hash ^= c;
      hash *= 1099511628211ull;
    }
  };
  mix(app_id);
  mix("/");
  mix(device_id);
  return static_cast<int>(hash % 100) < rollout_percent;
}

bool RolloutIncludes(const storage::Channel& channel, std::string_view device_id) {
  return channel.rolled_back || InRollout(channel.app_id, device_id, channel.rollout_percent);
}

namespace {

// The value, nullopt for kNotFound, or the error.
template <typename T>
Result<std::optional<T>> Optional(Result<T> result) {
  if (result) return std::optional<T>(std::move(*result));
  if (result.error().code() == ErrorCode::kNotFound) return std::optional<T>();
  return tl::unexpected(result.error());
}

}  // namespace

StoreCatalog::StoreCatalog(storage::Store* store, std::string public_url, ChannelCache* cache)
    : cache_(cache), public_url_(std::move(public_url)) {
  if (cache_ == nullptr) {
    ChannelCache::Options options;
    options.ttl = std::chrono::milliseconds(0);
    options.device_ttl = std::chrono::milliseconds(0);
    options.unknown_device_ttl = std::chrono::milliseconds(0);
    owned_cache_ = std::make_unique<ChannelCache>(store, options);
    cache_ = owned_cache_.get();
  }
  while (!public_url_.empty() && public_url_.back() == '/') public_url_.pop_back();
}

std::vector<CapgoManifestEntry> StoreCatalog::ManifestOf(const storage::Release& release) {
  const std::string key = release.app_id + "\n" + release.version;
  std::lock_guard lock(manifest_mu_);
  auto it = manifests_.find(key);
  if (it == manifests_.end()) {
    if (manifests_.size() >= 1000) manifests_.clear();  // bounded: the releases channels offer
    auto entries = std::make_shared<std::vector<CapgoManifestEntry>>();
    auto json = nlohmann::json::parse(*release.capgo_manifest, nullptr, false);
    if (json.is_array()) {
      for (const nlohmann::json& e : json) {
        if (!e.is_object() || !e.value("file_name", nlohmann::json()).is_string() ||
            !e.value("file_hash", nlohmann::json()).is_string() ||
            !e.value("sha256", nlohmann::json()).is_string()) {
          entries->clear();
          break;
        }
        entries->push_back({e["file_name"].get<std::string>(), e["file_hash"].get<std::string>(),
                            public_url_ + "/v1/blobs/" + e["sha256"].get<std::string>()});
      }
    }
    it = manifests_.emplace(key, std::move(entries)).first;
  }
  return *it->second;
}

Result<std::optional<CapgoOffer>> StoreCatalog::FindOffer(const CapgoDeviceInfo& device) {
  // The snapshot holds the app's overrides, so a warm cache answers without a device read (most
  // Capgo devices are not enrolled here and have none).
  AIRLOCK_ASSIGN_OR_RETURN(auto app, cache_->Channels(device.app_id));
  AIRLOCK_ASSIGN_OR_RETURN(auto override_name, cache_->Override(*app, device.device_id));
  bool via_device = false;
  const storage::ChannelRelease* channel =
      ResolveChannel(*app, override_name, device.default_channel, &via_device);
  if (channel == nullptr) return std::optional<CapgoOffer>();

  CapgoOffer offer;
  offer.channel = ToCapgoChannel(channel->channel);
  offer.via_device_override = via_device;
  const auto& release = channel->release;
  const bool offered = release && !channel->channel.paused &&
                       RolloutIncludes(channel->channel, device.device_id);
  if (offered && !(release->capgo_session_key && release->capgo_checksum)) {
    offer.release_without_capgo = release->version;
  }
  if (offered && release->capgo_session_key && release->capgo_checksum) {
    CapgoRelease capgo;
    capgo.version = release->version;
    capgo.url = public_url_ + "/v1/blobs/" + release->capgo_sha256.value_or(release->sha256);
    capgo.session_key = *release->capgo_session_key;
    capgo.checksum = *release->capgo_checksum;
    capgo.key_id = release->capgo_key_id.value_or("");
    capgo.authorized_rollback = channel->channel.rolled_back;
    if (release->capgo_manifest) capgo.manifest = ManifestOf(*release);
    offer.release = std::move(capgo);
  }
  return std::optional<CapgoOffer>(std::move(offer));
}

Result<std::vector<CapgoChannel>> StoreChannelRegistry::ListChannels(std::string_view app_id) {
  AIRLOCK_ASSIGN_OR_RETURN(auto channels, Optional(store_->ListChannels(app_id)));
  std::vector<CapgoChannel> out;
  if (channels) {
    for (const auto& c : *channels) out.push_back(ToCapgoChannel(c));
  }
  return out;
}

Result<std::optional<std::string>> StoreChannelRegistry::GetAssignment(std::string_view app_id,
                                                                       std::string_view device_id) {
  AIRLOCK_ASSIGN_OR_RETURN(auto device, Optional(store_->GetDevice(app_id, device_id)));
  if (!device || !storage::ClaimedIdMayUse(*device)) return std::optional<std::string>();
  return device->channel_override;
}

Result<void> StoreChannelRegistry::SetAssignment(std::string_view app_id, std::string_view device_id,
                                                 std::string_view channel_name) {
  AIRLOCK_ASSIGN_OR_RETURN(auto device, store_->GetDevice(app_id, device_id));
  if (!storage::ClaimedIdMayUse(device)) {
    return MakeError(ErrorCode::kWrongKey,
                     "device " + std::string(device_id) +
                         " is enrolled with a signing key or revoked: only "
                         "its own signed requests and the admin API change it");
  }
  device.channel_override = std::string(channel_name);
  AIRLOCK_TRY(store_->UpdateDevice(device));
  if (cache_ != nullptr) cache_->InvalidateDevice(app_id, device_id);
  return {};
}

Result<void> StoreChannelRegistry::ClearAssignment(std::string_view app_id, std::string_view device_id) {
  AIRLOCK_ASSIGN_OR_RETURN(auto device, Optional(store_->GetDevice(app_id, device_id)));
  if (!device || !storage::ClaimedIdMayUse(*device) || !device->channel_override) return {};
  device->channel_override.reset();
  AIRLOCK_TRY(store_->UpdateDevice(*device));
  if (cache_ != nullptr) cache_->InvalidateDevice(app_id, device_id);
  return {};
}

int64_t StoreStatsSink::NextSeq() {
  std::lock_guard<std::mutex> lock(mutex_);
  int64_t now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  last_seq_ = now_us > last_seq_ ? now_us : last_seq_ + 1;
  return last_seq_;
}

Result<void> StoreStatsSink::Record(const std::vector<CapgoStatsEvent>& events) {
  int64_t now = clock_();
  std::vector<storage::DeviceEvent> rows;
  // Whether each (app, device) of the batch may be written, read once per pair: the plugin's
  // batches are up to 200 events of one device, which were 200 reads of the same row.
  std::map<std::pair<std::string, std::string>, bool> may_use;
  for (const auto& event : events) {
    auto [it, fresh] = may_use.try_emplace({event.device.app_id, event.device.device_id}, false);
    if (fresh) {
      AIRLOCK_ASSIGN_OR_RETURN(
          auto device, Optional(store_->GetDevice(event.device.app_id, event.device.device_id)));
      it->second = device && storage::ClaimedIdMayUse(*device);
    }
    // Not enrolled, or enrolled natively (whose events come only from its signed reports):
    // accepted, not stored (see header).
    if (!it->second) continue;
    // "1.2.3:assets/app.js": the plugin names the file of a manifest failure after the version.
    std::string version = event.device.EffectiveVersion();
    std::string file;
    if (const size_t colon = version.find(':'); colon != std::string::npos) {
      file = version.substr(colon + 1);
      version.resize(colon);
    }
    if (!Semver::Parse(version)) continue;  // device events need a semver version
    storage::DeviceEvent row;
    row.app_id = event.device.app_id;
    row.device_id = event.device.device_id;
    row.seq = NextSeq();
    row.version = std::move(version);
    row.kind = "capgo_" + event.action;
    row.detail = file.empty() ? event.old_version_name : "file " + file;
    row.occurred_at = now;
    row.received_at = now;
    rows.push_back(std::move(row));
  }
  // One device at a time, under the hourly quota (a batch over it is dropped, as the plugin would
  // drop the whole batch on an error reply).
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return std::tie(a.app_id, a.device_id) < std::tie(b.app_id, b.device_id);
  });
  const storage::EventQuota quota{now - 3600, max_events_};
  for (size_t i = 0; i < rows.size();) {
    size_t end = i;
    while (end < rows.size() && end - i < storage::kMaxEventBatch &&
           rows[end].app_id == rows[i].app_id && rows[end].device_id == rows[i].device_id) {
      ++end;
    }
    auto stored = store_->AppendDeviceEvents(
        std::span<const storage::DeviceEvent>(rows.data() + i, end - i), quota);
    if (!stored && stored.error().code() != ErrorCode::kLimitExceeded) {
      return tl::unexpected(stored.error());
    }
    i = end;
  }
  return {};
}

}  // namespace airlock::server
