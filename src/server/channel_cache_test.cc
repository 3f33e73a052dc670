// ChannelCache over a real SQLite store, with an injected steady clock (no sleeps).
#include "server/channel_cache.h"

#include <chrono>
#include <filesystem>
#include <memory>

#include <gtest/gtest.h>

#include "common/file.h"
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

  // UpdateCachedDevice does not turn an absent entry into a row.
  EXPECT_EQ(cache.Device(kApp, "dev-5").error().code(), ErrorCode::kNotFound);
  cache.UpdateCachedDevice({kApp, "dev-5", kKey, "ios", std::nullopt, 2000});
  EXPECT_EQ(cache.Device(kApp, "dev-5").error().code(), ErrorCode::kNotFound);
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
