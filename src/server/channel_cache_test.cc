// ChannelCache over a real SQLite store, with an injected steady clock (no sleeps).
#include "server/channel_cache.h"

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "common/file.h"
#include "server/store_catalog.h"
#include "storage/store.h"

namespace airlock::server {
namespace {

constexpr char kApp[] = "com.example.app";
const std::string kKey(64, 'b');

class ChannelCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ScopedTempDir::Create({}, "channel-cache-");
    ASSERT_TRUE(dir);
    dir_.emplace(std::move(*dir));
    auto store = storage::OpenStore("sqlite:" + (dir_->path() / "s.db").string(), 1000);
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    ASSERT_TRUE(store_->CreateApp({kApp, "Example", 1000}));
    storage::Channel c;
    c.app_id = kApp;
    c.name = "production";
    c.is_default = true;
    ASSERT_TRUE(store_->CreateChannel(c));
    ASSERT_TRUE(store_->CreateDevice({kApp, "dev-1", kKey, "android", std::nullopt, 1000}));
  }

  ChannelCache::Options Options() {
    ChannelCache::Options o;
    o.ttl = std::chrono::milliseconds(2000);
    o.device_ttl = std::chrono::milliseconds(5000);
    o.clock = [this] { return now_; };
    return o;
  }

  storage::Release MakeRelease(const std::string& version) {
    storage::Release r;
    r.app_id = kApp;
    r.version = version;
    r.target_name = "bundle-" + version + ".alb";
    r.sha256 = std::string(64, 'a');
    r.length = 10;
    r.created_at = 1000;
    return r;
  }

  std::optional<ScopedTempDir> dir_;
  std::unique_ptr<storage::Store> store_;
  std::chrono::steady_clock::time_point now_{std::chrono::seconds(100)};
};

TEST_F(ChannelCacheTest, WarmReadsMakeNoStoreCallUntilTheTtlPasses) {
  ChannelCache cache(store_.get(), Options());
  auto first = cache.Channels(kApp);
  ASSERT_TRUE(first) << first.error().ToString();
  ASSERT_EQ((*first)->channels.size(), 1u);
  EXPECT_FALSE((*first)->channels[0].release.has_value());
  EXPECT_EQ(cache.channel_loads(), 1u);

  // Another process publishes: this one sees it only after the TTL.
  ASSERT_TRUE(store_->PublishRelease(MakeRelease("1.0.0"), "production"));
  now_ += std::chrono::milliseconds(1999);
  auto warm = cache.Channels(kApp);
  ASSERT_TRUE(warm);
  EXPECT_EQ(warm->get(), first->get());
  EXPECT_EQ(cache.channel_loads(), 1u);

  now_ += std::chrono::milliseconds(1);
  auto fresh = cache.Channels(kApp);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(cache.channel_loads(), 2u);
  ASSERT_TRUE((*fresh)->Default()->release.has_value());
  EXPECT_EQ((*fresh)->Default()->release->version, "1.0.0");
}

TEST_F(ChannelCacheTest, InvalidateIsSeenAtOnce) {
  ChannelCache cache(store_.get(), Options());
  ASSERT_TRUE(cache.Channels(kApp));
  ASSERT_TRUE(store_->PublishRelease(MakeRelease("1.0.0"), "production"));
  cache.Invalidate(kApp);
  auto fresh = cache.Channels(kApp);
  ASSERT_TRUE(fresh);
  ASSERT_TRUE((*fresh)->Find("production")->release.has_value());
  EXPECT_EQ(cache.channel_loads(), 2u);
}

// Each thread keeps the last snapshot it read; an invalidation made on another thread is seen by
// its next read all the same, and the TTL applies to it as to the shared map.
TEST_F(ChannelCacheTest, ThreadSnapshotsFollowInvalidationsFromOtherThreadsAndTheTtl) {
  ChannelCache cache(store_.get(), Options());
  auto version_here = [&]() -> std::optional<std::string> {
    auto app = cache.Channels(kApp);
    EXPECT_TRUE(app);
    if (!app) return std::nullopt;
    const auto& release = (*app)->Find("production")->release;
    return release ? std::optional<std::string>(release->version) : std::nullopt;
  };
  EXPECT_EQ(version_here(), std::nullopt);  // this thread's snapshot is now warm
  EXPECT_EQ(version_here(), std::nullopt);
  EXPECT_EQ(cache.channel_loads(), 1u);

  ASSERT_TRUE(store_->PublishRelease(MakeRelease("1.0.0"), "production"));
  std::thread admin([&] { cache.Invalidate(kApp); });  // the admin API runs on another thread
  admin.join();
  EXPECT_EQ(version_here(), "1.0.0");
  EXPECT_EQ(cache.channel_loads(), 2u);

  // Without an invalidation (another process published), the TTL decides for every thread.
  ASSERT_TRUE(store_->PublishRelease(MakeRelease("1.1.0"), "production"));
  EXPECT_EQ(version_here(), "1.0.0");
  now_ += std::chrono::milliseconds(2000);
  EXPECT_EQ(version_here(), "1.1.0");
  std::optional<std::string> seen_by_other;
  std::thread other([&] { seen_by_other = version_here(); });
  other.join();
  EXPECT_EQ(seen_by_other, "1.1.0");
  EXPECT_EQ(cache.channel_loads(), 3u);
}

// A snapshot handed out stays valid after the cache dropped it and after the cache is gone.
TEST_F(ChannelCacheTest, SnapshotsOutliveInvalidationAndTheCache) {
  std::shared_ptr<const AppChannels> kept;
  {
    ChannelCache cache(store_.get(), Options());
    auto app = cache.Channels(kApp);
    ASSERT_TRUE(app);
    kept = *app;
    cache.Invalidate(kApp);
  }
  ChannelCache other(store_.get(), Options());  // may reuse the address: must not see the old entry
  ASSERT_TRUE(store_->PublishRelease(MakeRelease("2.0.0"), "production"));
  auto fresh = other.Channels(kApp);
  ASSERT_TRUE(fresh);
  EXPECT_EQ((*fresh)->Find("production")->release->version, "2.0.0");
  EXPECT_EQ(kept->app_id, kApp);
  EXPECT_FALSE(kept->Find("production")->release.has_value());
}

TEST_F(ChannelCacheTest, UnknownAppsHaveNoChannelsAndBadIdsAreRefused) {
  ChannelCache cache(store_.get(), Options());
  auto none = cache.Channels("no.such.app");
  ASSERT_TRUE(none);
  EXPECT_TRUE((*none)->channels.empty());
  EXPECT_EQ((*none)->Default(), nullptr);
  EXPECT_EQ(cache.Channels("bad id!").error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(ChannelCacheTest, DevicesAreCached) {
  ChannelCache cache(store_.get(), Options());
  auto d = cache.Device(kApp, "dev-1");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->public_key, kKey);
  ASSERT_TRUE(cache.Device(kApp, "dev-1"));
  EXPECT_EQ(cache.device_loads(), 1u);

  // A channel override set elsewhere shows after device_ttl; InvalidateDevice shows it at once.
  storage::Device changed = *d;
  changed.channel_override = "production";
  ASSERT_TRUE(store_->UpdateDevice(changed));
  EXPECT_FALSE(cache.Device(kApp, "dev-1")->channel_override.has_value());
  cache.InvalidateDevice(kApp, "dev-1");
  EXPECT_EQ(cache.Device(kApp, "dev-1")->channel_override, "production");
}

TEST_F(ChannelCacheTest, UnknownDevicesAreCachedAsAbsentUntilTtlOrInvalidation) {
  ChannelCache cache(store_.get(), Options());
  EXPECT_EQ(cache.Device(kApp, "dev-2").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(cache.device_loads(), 1u);
  // The warm miss makes no Store read.
  EXPECT_EQ(cache.Device(kApp, "dev-2").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(cache.device_loads(), 1u);

  // Enrolled elsewhere (another process): still absent until unknown_device_ttl passes...
  ASSERT_TRUE(store_->CreateDevice({kApp, "dev-2", kKey, "ios", std::nullopt, 1000}));
  EXPECT_EQ(cache.Device(kApp, "dev-2").error().code(), ErrorCode::kNotFound);
  now_ += std::chrono::milliseconds(4999);
  EXPECT_EQ(cache.Device(kApp, "dev-2").error().code(), ErrorCode::kNotFound);
  now_ += std::chrono::milliseconds(1);
  auto found = cache.Device(kApp, "dev-2");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->platform, "ios");
  EXPECT_EQ(cache.device_loads(), 2u);

  // ...and at once when this process enrolled it (the enroll route calls InvalidateDevice).
  EXPECT_EQ(cache.Device(kApp, "dev-3").error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(store_->CreateDevice({kApp, "dev-3", kKey, "android", std::nullopt, 1000}));
  cache.InvalidateDevice(kApp, "dev-3");
  EXPECT_TRUE(cache.Device(kApp, "dev-3"));
  // InvalidateAll drops absent entries too.
  EXPECT_EQ(cache.Device(kApp, "dev-4").error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(store_->CreateDevice({kApp, "dev-4", kKey, "android", std::nullopt, 1000}));
  cache.InvalidateAll();
  EXPECT_TRUE(cache.Device(kApp, "dev-4"));
  // Keys are per app.
  EXPECT_EQ(cache.Device("com.example.other", "dev-4").error().code(), ErrorCode::kNotFound);

  // TouchCachedDevice does not turn an absent entry into a row.
  EXPECT_EQ(cache.Device(kApp, "dev-5").error().code(), ErrorCode::kNotFound);
  cache.TouchCachedDevice(kApp, "dev-5", 2000);
  EXPECT_EQ(cache.Device(kApp, "dev-5").error().code(), ErrorCode::kNotFound);
  // It sets last_seen only: a revocation cached in between stays.
  ASSERT_TRUE(store_->SetDeviceStatus(kApp, "dev-4", storage::DeviceStatus::kRevoked));
  cache.InvalidateDevice(kApp, "dev-4");
  ASSERT_EQ(cache.Device(kApp, "dev-4")->status, storage::DeviceStatus::kRevoked);
  cache.TouchCachedDevice(kApp, "dev-4", 5000);
  EXPECT_EQ(cache.Device(kApp, "dev-4")->status, storage::DeviceStatus::kRevoked);
  EXPECT_EQ(cache.Device(kApp, "dev-4")->last_seen, 5000);
}

TEST_F(ChannelCacheTest, UnknownDeviceTtlZeroReadsTheStoreEveryTime) {
  auto options = Options();
  options.unknown_device_ttl = std::chrono::milliseconds(0);
  ChannelCache cache(store_.get(), options);
  EXPECT_EQ(cache.Device(kApp, "dev-2").error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(store_->CreateDevice({kApp, "dev-2", kKey, "ios", std::nullopt, 1000}));
  EXPECT_TRUE(cache.Device(kApp, "dev-2"));
  EXPECT_EQ(cache.device_loads(), 2u);
  // Known rows are still cached.
  EXPECT_TRUE(cache.Device(kApp, "dev-2"));
  EXPECT_EQ(cache.device_loads(), 2u);
}

TEST_F(ChannelCacheTest, UnknownDevicesShareTheDeviceBound) {
  auto options = Options();
  options.max_devices = 3;
  ChannelCache cache(store_.get(), options);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(cache.Device(kApp, "ghost-" + std::to_string(i)).error().code(), ErrorCode::kNotFound);
  }
  EXPECT_EQ(cache.device_loads(), 10u);
  // The latest is cached; the first was dropped when the map filled up.
  EXPECT_FALSE(cache.Device(kApp, "ghost-9"));
  EXPECT_EQ(cache.device_loads(), 10u);
  EXPECT_FALSE(cache.Device(kApp, "ghost-0"));
  EXPECT_EQ(cache.device_loads(), 11u);
}

TEST_F(ChannelCacheTest, DeviceMapIsBounded) {
  auto options = Options();
  options.max_devices = 2;
  ChannelCache cache(store_.get(), options);
  for (int i = 0; i < 5; ++i) {
    std::string id = "d" + std::to_string(i);
    ASSERT_TRUE(store_->CreateDevice({kApp, id, kKey, "ios", std::nullopt, 1000}));
    ASSERT_TRUE(cache.Device(kApp, id));
  }
  uint64_t loads = cache.device_loads();
  // The most recent one is still cached; the first was dropped.
  ASSERT_TRUE(cache.Device(kApp, "d4"));
  EXPECT_EQ(cache.device_loads(), loads);
  ASSERT_TRUE(cache.Device(kApp, "d0"));
  EXPECT_EQ(cache.device_loads(), loads + 1);
}

TEST_F(ChannelCacheTest, ZeroTtlReadsTheStoreEveryTime) {
  auto options = Options();
  options.ttl = std::chrono::milliseconds(0);
  ChannelCache cache(store_.get(), options);
  ASSERT_TRUE(cache.Channels(kApp));
  ASSERT_TRUE(cache.Channels(kApp));
  EXPECT_EQ(cache.channel_loads(), 2u);
}

class ChannelOverrideTest : public ChannelCacheTest {
 protected:
  void SetUp() override {
    ChannelCacheTest::SetUp();
    storage::Channel beta;
    beta.app_id = kApp;
    beta.name = "beta";
    ASSERT_TRUE(store_->CreateChannel(beta));
    ASSERT_TRUE(store_->PublishRelease(CapgoRelease("1.0.0"), "production"));
    // dev-1 (enrolled in the base fixture) has no override; dev-b1 and dev-b2 are on beta.
    SetOverride("dev-b1", "beta", /*create=*/true);
    SetOverride("dev-b2", "beta", /*create=*/true);
  }

  // A release offered to Capgo devices (it has the Capgo fields).
  storage::Release CapgoRelease(const std::string& version) {
    storage::Release r = MakeRelease(version);
    r.capgo_session_key = "iv:key";
    r.capgo_checksum = "abc123";
    return r;
  }

  void SetOverride(const std::string& device_id, std::optional<std::string> channel,
                   bool create = false) {
    storage::Device d{kApp, device_id, kKey, "android", std::move(channel), 1000};
    ASSERT_TRUE(create ? store_->CreateDevice(d) : store_->UpdateDevice(d));
  }

  static CapgoDeviceInfo Info(const std::string& device_id) {
    CapgoDeviceInfo info;
    info.app_id = kApp;
    info.device_id = device_id;
    info.version_name = "builtin";
    info.version_build = "0.9.0";
    info.plugin_version = "6.0.0";
    return info;
  }

  // The channel FindOffer picks for the device ("" for none); fails the test on an error.
  static std::string OfferedChannel(StoreCatalog& catalog, const std::string& device_id) {
    auto offer = catalog.FindOffer(Info(device_id));
    EXPECT_TRUE(offer) << offer.error().ToString();
    if (!offer || !offer->has_value()) return "";
    return (*offer)->channel.name;
  }
};

TEST_F(ChannelOverrideTest, TheSnapshotHoldsTheAppsOverrides) {
  ChannelCache cache(store_.get(), Options());
  auto app = cache.Channels(kApp);
  ASSERT_TRUE(app) << app.error().ToString();
  EXPECT_TRUE((*app)->overrides_complete);
  EXPECT_EQ((*app)->overrides.size(), 2u);
  EXPECT_EQ(cache.Override(**app, "dev-b1").value(), "beta");
  EXPECT_EQ(cache.Override(**app, "dev-b2").value(), "beta");
  EXPECT_EQ(cache.Override(**app, "dev-1").value(), std::nullopt);  // enrolled, no override
  EXPECT_EQ(cache.Override(**app, "never-seen").value(), std::nullopt);
  // Answered from the snapshot: no device read at all.
  EXPECT_EQ(cache.device_loads(), 0u);
  EXPECT_EQ(cache.channel_loads(), 1u);
  // An app without overrides has a complete, empty map.
  auto other = cache.Channels("com.example.other");
  ASSERT_TRUE(other);
  EXPECT_TRUE((*other)->overrides_complete);
  EXPECT_TRUE((*other)->overrides.empty());
}

TEST_F(ChannelOverrideTest, OverrideChangesShowAtOnceAfterInvalidateDeviceElseAfterTheTtl) {
  ChannelCache cache(store_.get(), Options());
  auto before = cache.Channels(kApp);
  ASSERT_TRUE(before);
  // Another process sets dev-1's override: seen when the snapshot expires.
  ASSERT_NO_FATAL_FAILURE(SetOverride("dev-1", "beta"));
  now_ += std::chrono::milliseconds(1999);
  auto warm = cache.Channels(kApp);
  ASSERT_TRUE(warm);
  EXPECT_EQ(warm->get(), before->get());
  EXPECT_EQ(cache.Override(**warm, "dev-1").value(), std::nullopt);
  now_ += std::chrono::milliseconds(1);
  auto fresh = cache.Channels(kApp);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(cache.channel_loads(), 2u);
  EXPECT_EQ(cache.Override(**fresh, "dev-1").value(), "beta");

  // This process clears it and calls InvalidateDevice: the next snapshot is reloaded at once.
  ASSERT_NO_FATAL_FAILURE(SetOverride("dev-1", std::nullopt));
  cache.InvalidateDevice(kApp, "dev-1");
  auto after = cache.Channels(kApp);
  ASSERT_TRUE(after);
  EXPECT_EQ(cache.channel_loads(), 3u);
  EXPECT_EQ(cache.Override(**after, "dev-1").value(), std::nullopt);
  EXPECT_EQ(cache.Override(**after, "dev-b1").value(), "beta");
  EXPECT_EQ(cache.device_loads(), 0u);
}

TEST_F(ChannelOverrideTest, MoreOverridesThanTheBoundFallBackToDeviceReads) {
  auto options = Options();
  options.max_overrides = 2;  // exactly as many as the app has: complete
  {
    ChannelCache cache(store_.get(), options);
    auto app = cache.Channels(kApp);
    ASSERT_TRUE(app);
    EXPECT_TRUE((*app)->overrides_complete);
    EXPECT_EQ((*app)->overrides.size(), 2u);
  }
  ASSERT_NO_FATAL_FAILURE(SetOverride("dev-1", "beta"));  // three now
  ChannelCache cache(store_.get(), options);
  auto app = cache.Channels(kApp);
  ASSERT_TRUE(app);
  EXPECT_FALSE((*app)->overrides_complete);
  EXPECT_TRUE((*app)->overrides.empty());
  EXPECT_EQ(cache.Override(**app, "dev-1").value(), "beta");
  EXPECT_EQ(cache.Override(**app, "dev-b2").value(), "beta");
  EXPECT_EQ(cache.Override(**app, "never-seen").value(), std::nullopt);
  EXPECT_EQ(cache.device_loads(), 3u);
  // The per-device answers are cached like Device() rows.
  EXPECT_EQ(cache.Override(**app, "dev-1").value(), "beta");
  EXPECT_EQ(cache.Override(**app, "never-seen").value(), std::nullopt);
  EXPECT_EQ(cache.device_loads(), 3u);
}

TEST_F(ChannelOverrideTest, ZeroTtlOrZeroMaxOverridesLoadsNoOverrides) {
  auto options = Options();
  options.ttl = std::chrono::milliseconds(0);
  options.device_ttl = std::chrono::milliseconds(0);
  options.unknown_device_ttl = std::chrono::milliseconds(0);
  ChannelCache uncached(store_.get(), options);
  auto app = uncached.Channels(kApp);
  ASSERT_TRUE(app);
  // The snapshot serves one call: one device read instead of every override.
  EXPECT_FALSE((*app)->overrides_complete);
  EXPECT_EQ(uncached.Override(**app, "dev-b1").value(), "beta");
  EXPECT_EQ(uncached.Override(**app, "dev-b1").value(), "beta");
  EXPECT_EQ(uncached.Override(**app, "never-seen").value(), std::nullopt);
  EXPECT_EQ(uncached.device_loads(), 3u);

  options = Options();
  options.max_overrides = 0;
  ChannelCache none(store_.get(), options);
  app = none.Channels(kApp);
  ASSERT_TRUE(app);
  EXPECT_FALSE((*app)->overrides_complete);
  EXPECT_EQ(none.Override(**app, "dev-b1").value(), "beta");
  EXPECT_EQ(none.device_loads(), 1u);
}

TEST_F(ChannelOverrideTest, CatalogOffersTheOverrideChannelWithoutDeviceReads) {
  ChannelCache cache(store_.get(), Options());
  StoreCatalog catalog(store_.get(), "https://updates.example.com", &cache);
  StoreChannelRegistry registry(store_.get(), &cache);
  EXPECT_EQ(OfferedChannel(catalog, "dev-b1"), "beta");
  EXPECT_EQ(OfferedChannel(catalog, "dev-1"), "production");
  // Warm: a stream of never-seen devices reads neither device rows nor channels.
  for (int i = 0; i < 20; ++i) {
    auto offer = catalog.FindOffer(Info("new-" + std::to_string(i)));
    ASSERT_TRUE(offer && offer->has_value());
    EXPECT_EQ((*offer)->channel.name, "production");
    ASSERT_TRUE((*offer)->release.has_value());
    EXPECT_EQ((*offer)->release->version, "1.0.0");
    EXPECT_FALSE((*offer)->via_device_override);
  }
  EXPECT_EQ(cache.device_loads(), 0u);
  EXPECT_EQ(cache.channel_loads(), 1u);

  // An assignment through this process (Capgo channel_self) is seen by the next offer at once.
  ASSERT_TRUE(registry.SetAssignment(kApp, "dev-1", "beta"));
  auto offer = catalog.FindOffer(Info("dev-1"));
  ASSERT_TRUE(offer && offer->has_value());
  EXPECT_EQ((*offer)->channel.name, "beta");
  EXPECT_TRUE((*offer)->via_device_override);
  EXPECT_FALSE((*offer)->release.has_value());  // beta has no release
  ASSERT_TRUE(registry.ClearAssignment(kApp, "dev-b1"));
  EXPECT_EQ(OfferedChannel(catalog, "dev-b1"), "production");
  EXPECT_EQ(cache.device_loads(), 0u);
  EXPECT_EQ(cache.channel_loads(), 3u);
}

TEST_F(ChannelOverrideTest, CatalogAnswersRightAboveTheOverrideBound) {
  auto options = Options();
  options.max_overrides = 1;
  ChannelCache cache(store_.get(), options);
  StoreCatalog catalog(store_.get(), "https://updates.example.com", &cache);
  StoreChannelRegistry registry(store_.get(), &cache);
  EXPECT_EQ(OfferedChannel(catalog, "dev-b1"), "beta");
  EXPECT_EQ(OfferedChannel(catalog, "dev-b2"), "beta");
  EXPECT_EQ(OfferedChannel(catalog, "dev-1"), "production");
  EXPECT_EQ(OfferedChannel(catalog, "never-seen"), "production");
  EXPECT_EQ(cache.device_loads(), 4u);
  EXPECT_EQ(OfferedChannel(catalog, "never-seen"), "production");  // cached as unknown
  EXPECT_EQ(cache.device_loads(), 4u);
  ASSERT_TRUE(registry.SetAssignment(kApp, "dev-1", "beta"));
  EXPECT_EQ(OfferedChannel(catalog, "dev-1"), "beta");
}

TEST_F(ChannelOverrideTest, CatalogWithoutACacheReadsTheStoreEveryCall) {
  StoreCatalog catalog(store_.get(), "https://updates.example.com");
  StoreChannelRegistry registry(store_.get());
  EXPECT_EQ(OfferedChannel(catalog, "dev-b1"), "beta");
  EXPECT_EQ(OfferedChannel(catalog, "never-seen"), "production");
  // Changes made by anyone are seen by the next call.
  ASSERT_TRUE(registry.SetAssignment(kApp, "dev-1", "beta"));
  EXPECT_EQ(OfferedChannel(catalog, "dev-1"), "beta");
  ASSERT_NO_FATAL_FAILURE(SetOverride("dev-b1", std::nullopt));
  EXPECT_EQ(OfferedChannel(catalog, "dev-b1"), "production");
  ASSERT_TRUE(store_->CreateDevice({kApp, "never-seen", kKey, "ios", "beta", 1000}));
  EXPECT_EQ(OfferedChannel(catalog, "never-seen"), "beta");
}

TEST_F(ChannelOverrideTest, AReleaseWithoutTheCapgoFormIsNamedNotOffered) {
  StoreCatalog catalog(store_.get(), "https://updates.example.com");
  ASSERT_TRUE(store_->PublishRelease(MakeRelease("1.1.0"), "production"));  // no --capgo
  auto offer = catalog.FindOffer(Info("never-seen"));
  ASSERT_TRUE(offer && offer->has_value());
  EXPECT_FALSE((*offer)->release);
  EXPECT_EQ((*offer)->release_without_capgo, "1.1.0");
  // Paused: nothing would be offered anyway, so no release is named.
  auto channel = store_->GetChannel(kApp, "production");
  ASSERT_TRUE(channel);
  channel->paused = true;
  ASSERT_TRUE(store_->UpdateChannel(*channel));
  offer = catalog.FindOffer(Info("never-seen"));
  ASSERT_TRUE(offer && offer->has_value());
  EXPECT_EQ((*offer)->release_without_capgo, std::nullopt);
}

TEST(ResolveChannel, OverrideThenSelfAssignableRequestThenDefault) {
  AppChannels app;
  auto add = [&](std::string name, bool is_default, bool self_assign) {
    storage::ChannelRelease c;
    c.channel.app_id = kApp;
    c.channel.name = std::move(name);
    c.channel.is_default = is_default;
    c.channel.allow_self_assign = self_assign;
    app.channels.push_back(c);
  };
  add("beta", false, true);
  add("internal", false, false);
  add("production", true, false);
  bool via = false;
  EXPECT_EQ(ResolveChannel(app, std::string("internal"), "beta", &via)->channel.name, "internal");
  EXPECT_TRUE(via);
  EXPECT_EQ(ResolveChannel(app, std::nullopt, "beta", &via)->channel.name, "beta");
  EXPECT_TRUE(via);
  EXPECT_EQ(ResolveChannel(app, std::nullopt, "internal", &via)->channel.name, "production");
  EXPECT_FALSE(via);
  EXPECT_EQ(ResolveChannel(app, std::string("gone"), "", &via)->channel.name, "production");
  AppChannels empty;
  EXPECT_EQ(ResolveChannel(empty, std::nullopt, "beta"), nullptr);
}

}  // namespace
}  // namespace airlock::server
