// The same typed suite runs against SQLite and a real PostgreSQL server.
#include "storage/store.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "storage/connection.h"
#include "storage/migrations.h"
#include "storage/pg_test_env.h"

#include "storage/store_test_fixture.h"

namespace airlock::storage {
namespace {

using namespace store_testing;  // NOLINT(google-build-using-namespace)
namespace fs = std::filesystem;

TYPED_TEST_SUITE(StoreTest, Backends, BackendNames);

TYPED_TEST(StoreTest, MigratesToNewestEmbeddedVersion) {
  auto version = this->store_->SchemaVersion();
  ASSERT_TRUE(version) << version.error().ToString();
  EXPECT_EQ(*version, Migrations().back().version);
}

TYPED_TEST(StoreTest, ReopeningAMigratedDatabaseKeepsData) {
  this->store_.reset();
  auto again = OpenStore(this->url_, kNow + 10);
  ASSERT_TRUE(again) << again.error().ToString();
  auto app = (*again)->GetApp("com.example.app");
  ASSERT_TRUE(app);
  EXPECT_EQ(app->display_name, "Example");
}

TYPED_TEST(StoreTest, RefusesSchemaNewerThanBinary) {
  this->store_.reset();
  {
    auto conn = OpenConnection(this->url_);
    ASSERT_TRUE(conn) << conn.error().ToString();
    Param p[] = {int64_t{9999}, std::string("9999_future.sql"), kNow};
    ASSERT_TRUE((*conn)->Exec(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)", p));
  }
  auto again = OpenStore(this->url_, kNow);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kUnsupported);
}

TYPED_TEST(StoreTest, AppsRoundTripAndReportExactErrors) {
  auto& s = *this->store_;
  auto app = s.GetApp("com.example.app");
  ASSERT_TRUE(app);
  EXPECT_EQ(*app, (App{"com.example.app", "Example", kNow}));
  auto dup = s.CreateApp({"com.example.app", "Again", kNow});
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(s.GetApp("missing").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(s.CreateApp({"bad id!", "x", kNow}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.CreateApp({std::string(kMaxIdLength + 1, 'a'), "x", kNow}).error().code(),
            ErrorCode::kInvalidArgument);
  // Quotes in values are data, not SQL.
  ASSERT_TRUE(s.CreateApp({"b", "Robert'); DROP TABLE apps;--", kNow}));
  auto apps = s.ListApps();
  ASSERT_TRUE(apps);
  ASSERT_EQ(apps->size(), 2u);
  EXPECT_EQ((*apps)[0].display_name, "Robert'); DROP TABLE apps;--");
}

TYPED_TEST(StoreTest, ChannelsRoundTripEveryField) {
  auto& s = *this->store_;
  ASSERT_TRUE(s.CreateRelease(this->MakeRelease("1.2.3")));
  Channel c = this->MakeChannel("beta");
  c.is_default = true;
  c.allow_self_assign = true;
  c.ios = false;
  c.android = true;
  c.electron = false;
  c.min_native_version = "2.0.0";
  c.rollout_percent = 25;
  c.paused = true;
  c.current_version = "1.2.3";
  auto created = s.CreateChannel(c);
  ASSERT_TRUE(created) << created.error().ToString();
  auto got = s.GetChannel("com.example.app", "beta");
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, c);

  c.paused = false;
  c.rollout_percent = 100;
  c.min_native_version.reset();
  ASSERT_TRUE(s.UpdateChannel(c));
  EXPECT_EQ(*s.GetChannel("com.example.app", "beta"), c);

  // Settings only: a stale release pointer in the update (read before another server published or
  // rolled back) is not written back.
  Channel stale = c;
  stale.current_version.reset();
  stale.rolled_back = true;
  stale.rollout_percent = 40;
  ASSERT_TRUE(s.UpdateChannel(stale));
  Channel expected = c;
  expected.rollout_percent = 40;
  EXPECT_EQ(*s.GetChannel("com.example.app", "beta"), expected);
  c = expected;

  EXPECT_EQ(s.UpdateChannel(this->MakeChannel("nope")).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(s.CreateChannel(c).error().code(), ErrorCode::kAlreadyExists);
  Channel orphan = this->MakeChannel("x");
  orphan.app_id = "no.such.app";
  EXPECT_EQ(s.CreateChannel(orphan).error().code(), ErrorCode::kNotFound);
  Channel bad = this->MakeChannel("y");
  bad.rollout_percent = 101;
  EXPECT_EQ(s.CreateChannel(bad).error().code(), ErrorCode::kInvalidArgument);
}

TYPED_TEST(StoreTest, ChannelCurrentVersionMustNameARelease) {
  Channel c = this->MakeChannel("production");
  c.current_version = "9.9.9";
  EXPECT_EQ(this->store_->CreateChannel(c).error().code(), ErrorCode::kNotFound);
}

TYPED_TEST(StoreTest, SettingADefaultChannelClearsThePreviousOne) {
  auto& s = *this->store_;
  EXPECT_EQ(s.GetDefaultChannel("com.example.app").error().code(), ErrorCode::kNotFound);
  Channel a = this->MakeChannel("production");
  a.is_default = true;
  ASSERT_TRUE(s.CreateChannel(a));
  Channel b = this->MakeChannel("beta");
  b.is_default = true;
  ASSERT_TRUE(s.CreateChannel(b));
  auto def = s.GetDefaultChannel("com.example.app");
  ASSERT_TRUE(def);
  EXPECT_EQ(def->name, "beta");
  EXPECT_FALSE(s.GetChannel("com.example.app", "production")->is_default);
  auto all = s.ListChannels("com.example.app");
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "beta");
}

TYPED_TEST(StoreTest, PublishSetsTheChannelsCurrentRelease) {
  auto& s = *this->store_;
  ASSERT_TRUE(s.CreateChannel(this->MakeChannel("production")));
  Release r = this->MakeRelease("1.0.0");
  r.capgo_session_key = "iv:wrapped";
  r.capgo_checksum = "abc";
  r.capgo_key_id = "MIIBCgKCAQEAqJikYizo";
  auto published = s.PublishRelease(r, "production");
  ASSERT_TRUE(published) << published.error().ToString();
  EXPECT_EQ(s.GetChannel("com.example.app", "production")->current_version, "1.0.0");
  auto got = s.GetRelease("com.example.app", "1.0.0");
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, r);
  // The channel join (what the channel cache and /updates read) carries every release column.
  auto channels = s.ListChannelReleases("com.example.app");
  ASSERT_TRUE(channels) << channels.error().ToString();
  ASSERT_EQ(channels->size(), 1u);
  ASSERT_TRUE((*channels)[0].release);
  EXPECT_EQ(*(*channels)[0].release, r);
}

TYPED_TEST(StoreTest, PublishToAMissingChannelLeavesNoRelease) {
  auto& s = *this->store_;
  auto published = s.PublishRelease(this->MakeRelease("1.0.0"), "nope");
  ASSERT_FALSE(published);
  EXPECT_EQ(published.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(s.GetRelease("com.example.app", "1.0.0").error().code(), ErrorCode::kNotFound);
}

TYPED_TEST(StoreTest, ReleasesAreValidatedAndListedNewestFirst) {
  auto& s = *this->store_;
  EXPECT_EQ(s.CreateRelease(this->MakeRelease("1.0")).error().code(), ErrorCode::kInvalidArgument);
  Release bad_hash = this->MakeRelease("1.0.0");
  bad_hash.sha256 = "ABC";
  EXPECT_EQ(s.CreateRelease(bad_hash).error().code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(s.CreateRelease(this->MakeRelease("1.0.0", kNow)));
  ASSERT_TRUE(s.CreateRelease(this->MakeRelease("1.1.0", kNow + 5)));
  EXPECT_EQ(s.CreateRelease(this->MakeRelease("1.0.0")).error().code(), ErrorCode::kAlreadyExists);
  auto list = s.ListReleases("com.example.app");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].version, "1.1.0");
  EXPECT_EQ((*list)[1].version, "1.0.0");
}

TYPED_TEST(StoreTest, AppsKeepTheEnrollmentTokenHashAndAppKey) {
  auto& s = *this->store_;
  App app{"com.example.keyed", "Keyed", kNow, std::string(64, 'c'),
          std::string("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")};
  ASSERT_TRUE(s.CreateApp(app));
  EXPECT_EQ(*s.GetApp("com.example.keyed"), app);
  // Apps made without them read back as nullopt.
  auto plain = s.GetApp("com.example.app");
  ASSERT_TRUE(plain);
  EXPECT_FALSE(plain->enroll_token_sha256.has_value());
  EXPECT_FALSE(plain->app_key.has_value());

  App bad_hash{"com.example.bad", "Bad", kNow, std::string("ABCD"), std::nullopt};
  EXPECT_EQ(s.CreateApp(bad_hash).error().code(), ErrorCode::kInvalidArgument);
  App long_key{"com.example.bad", "Bad", kNow, std::nullopt, std::string(kMaxTextLength + 1, 'k')};
  EXPECT_EQ(s.CreateApp(long_key).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.GetApp("com.example.bad").error().code(), ErrorCode::kNotFound);

  // A new enrollment token hash replaces the old one; nothing else changes.
  ASSERT_TRUE(s.SetEnrollTokenHash("com.example.keyed", std::string(64, 'd')));
  App rotated = app;
  rotated.enroll_token_sha256 = std::string(64, 'd');
  EXPECT_EQ(*s.GetApp("com.example.keyed"), rotated);
  ASSERT_TRUE(s.SetEnrollTokenHash("com.example.app", std::string(64, 'e')));  // had none
  EXPECT_EQ(s.GetApp("com.example.app")->enroll_token_sha256, std::string(64, 'e'));
  EXPECT_EQ(s.SetEnrollTokenHash("com.example.none", std::string(64, 'd')).error().code(),
            ErrorCode::kNotFound);
  EXPECT_EQ(s.SetEnrollTokenHash("com.example.keyed", "ABCD").error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.GetApp("com.example.keyed")->enroll_token_sha256, std::string(64, 'd'));
}

TYPED_TEST(StoreTest, ReleasesKeepFormatAndCapgoTarget) {
  auto& s = *this->store_;
  Release r = this->MakeRelease("2.0.0");
  r.format = "alb";
  r.capgo_target = "releases/2.0.0/capgo.zip";
  r.capgo_sha256 = std::string(64, 'd');
  r.capgo_length = 777;
  r.capgo_session_key = "iv:key";
  r.capgo_checksum = "sum";
  ASSERT_TRUE(s.CreateRelease(r));
  EXPECT_EQ(*s.GetRelease("com.example.app", "2.0.0"), r);

  Release partial = this->MakeRelease("2.0.1");
  partial.capgo_target = "capgo.zip";  // without sha256 and length
  EXPECT_EQ(s.CreateRelease(partial).error().code(), ErrorCode::kInvalidArgument);
  Release bad_format = this->MakeRelease("2.0.1");
  bad_format.format = "tar";
  EXPECT_EQ(s.CreateRelease(bad_format).error().code(), ErrorCode::kInvalidArgument);
  Release bad_sha = this->MakeRelease("2.0.1");
  bad_sha.capgo_target = "capgo.zip";
  bad_sha.capgo_sha256 = "xyz";
  bad_sha.capgo_length = 1;
  EXPECT_EQ(s.CreateRelease(bad_sha).error().code(), ErrorCode::kInvalidArgument);
  Release negative = bad_sha;
  negative.capgo_sha256 = std::string(64, 'e');
  negative.capgo_length = -1;
  EXPECT_EQ(s.CreateRelease(negative).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.GetRelease("com.example.app", "2.0.1").error().code(), ErrorCode::kNotFound);
}

TYPED_TEST(StoreTest, ListChannelReleasesJoinsEachChannelsCurrentRelease) {
  auto& s = *this->store_;
  EXPECT_TRUE(s.ListChannelReleases("no.such.app")->empty());
  EXPECT_EQ(s.ListChannelReleases("bad id!").error().code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(s.CreateChannel(this->MakeChannel("production")));
  ASSERT_TRUE(s.CreateChannel(this->MakeChannel("beta")));
  Release r = this->MakeRelease("1.0.0");
  r.format = "zip";
  ASSERT_TRUE(s.PublishRelease(r, "production"));
  auto list = s.ListChannelReleases("com.example.app");
  ASSERT_TRUE(list) << list.error().ToString();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].channel, *s.GetChannel("com.example.app", "beta"));
  EXPECT_FALSE((*list)[0].release.has_value());
  EXPECT_EQ((*list)[1].channel, *s.GetChannel("com.example.app", "production"));
  ASSERT_TRUE((*list)[1].release.has_value());
  EXPECT_EQ(*(*list)[1].release, r);
}

TYPED_TEST(StoreTest, SetChannelCurrentVersionRollsBackAndPublishClearsTheFlag) {
  auto& s = *this->store_;
  ASSERT_TRUE(s.CreateChannel(this->MakeChannel("production")));
  ASSERT_TRUE(s.PublishRelease(this->MakeRelease("1.0.0", kNow), "production"));
  ASSERT_TRUE(s.PublishRelease(this->MakeRelease("1.1.0", kNow + 1), "production"));

  auto rolled = s.SetChannelCurrentVersion("com.example.app", "production", "1.0.0", true);
  ASSERT_TRUE(rolled) << rolled.error().ToString();
  auto c = s.GetChannel("com.example.app", "production");
  EXPECT_EQ(c->current_version, "1.0.0");
  EXPECT_TRUE(c->rolled_back);

  // Refusals change nothing.
  EXPECT_EQ(s.SetChannelCurrentVersion("com.example.app", "production", "9.9.9", false)
                .error()
                .code(),
            ErrorCode::kNotFound);
  EXPECT_EQ(s.SetChannelCurrentVersion("com.example.app", "nope", "1.1.0", false).error().code(),
            ErrorCode::kNotFound);
  EXPECT_EQ(s.SetChannelCurrentVersion("com.example.app", "production", "1.1", false).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(*s.GetChannel("com.example.app", "production"), *c);

  ASSERT_TRUE(s.PublishRelease(this->MakeRelease("1.2.0", kNow + 2), "production"));
  c = s.GetChannel("com.example.app", "production");
  EXPECT_EQ(c->current_version, "1.2.0");
  EXPECT_FALSE(c->rolled_back);
}

TYPED_TEST(StoreTest, TouchDevicesWritesABatchNeverBackwardsAndSkipsUnknownDevices) {
  auto& s = *this->store_;
  Device d1 = this->MakeDevice("dev-1"), d2 = this->MakeDevice("dev-2"),
         d3 = this->MakeDevice("dev-3");
  for (const Device& d : {d1, d2, d3}) ASSERT_TRUE(s.CreateDevice(d));
  const std::string app = "com.example.app";
  std::vector<DeviceTouch> batch = {
      {app, "dev-1", d1.last_seen + 10}, {app, "dev-2", d2.last_seen - 5}, {app, "ghost", kNow}};
  ASSERT_TRUE(s.TouchDevices(batch));
  d1.last_seen += 10;  // only last_seen changed
  EXPECT_EQ(*s.GetDevice(app, "dev-1"), d1);
  EXPECT_EQ(*s.GetDevice(app, "dev-2"), d2);  // not moved back
  EXPECT_EQ(*s.GetDevice(app, "dev-3"), d3);

  // A bad id anywhere in the batch: refused, nothing written.
  batch = {{app, "dev-3", d3.last_seen + 1}, {app, "bad id!", kNow}};
  EXPECT_EQ(s.TouchDevices(batch).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(*s.GetDevice(app, "dev-3"), d3);

  // A full batch (1 500 parameters) is one statement; one more touch is refused.
  batch.clear();
  for (size_t i = 0; i + 1 < kMaxTouchBatch; ++i) batch.push_back({app, "ghost-" + std::to_string(i), kNow});
  batch.push_back({app, "dev-3", d3.last_seen + 7});
  ASSERT_TRUE(s.TouchDevices(batch));
  d3.last_seen += 7;
  EXPECT_EQ(*s.GetDevice(app, "dev-3"), d3);
  batch.push_back({app, "dev-1", kNow + 100});
  EXPECT_EQ(s.TouchDevices(batch).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(*s.GetDevice(app, "dev-1"), d1);
  EXPECT_TRUE(s.TouchDevices({}));
}

// The store is called from the server's threads at once: on PostgreSQL several connections serve
// them (kPostgresStoreConnections), on SQLite one serves each call in turn. Either way every call's
// result is whole.
TYPED_TEST(StoreTest, CallsFromManyThreadsAtOnceEachSeeWholeResults) {
  auto& s = *this->store_;
  const std::string app = "com.example.app";
  constexpr int kThreads = 8, kDevicesEach = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kDevicesEach; ++i) {
        const std::string id = "dev-" + std::to_string(t) + "-" + std::to_string(i);
        Device d = this->MakeDevice(id);
        const DeviceTouch touch{app, id, kNow + t * 100 + i};
        auto got = s.CreateDevice(d).and_then([&] { return s.TouchDevices({&touch, 1}); })
                       .and_then([&] { return s.GetDevice(app, id); });
        if (!got || got->last_seen != touch.last_seen || got->public_key != d.public_key) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto all = s.ListDevices(app);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), size_t{kThreads * kDevicesEach});
}

TEST(PostgresStoreTest, OpensItsConnectionsAtOnce) {
  auto url = testing::CreateTestDatabase();
  ASSERT_TRUE(url) << url.error().ToString();
  auto store = OpenStore(*url, kNow);
  ASSERT_TRUE(store) << store.error().ToString();
  auto probe = OpenConnection(*url);
  ASSERT_TRUE(probe) << probe.error().ToString();
  auto rows = (*probe)->Query(
      "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> "
      "pg_backend_pid()",
      {});
  ASSERT_TRUE(rows) << rows.error().ToString();
  EXPECT_EQ(rows->at(0).at(0).value_or(""), std::to_string(kPostgresStoreConnections));
}

TYPED_TEST(StoreTest, DevicesEnrollOnceAndTakeChannelOverrides) {
  auto& s = *this->store_;
  Device d = this->MakeDevice("dev-1");
  ASSERT_TRUE(s.CreateDevice(d));
  EXPECT_EQ(s.CreateDevice(d).error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(*s.GetDevice("com.example.app", "dev-1"), d);

  d.channel_override = "beta";
  EXPECT_EQ(s.UpdateDevice(d).error().code(), ErrorCode::kNotFound);  // no such channel yet
  ASSERT_TRUE(s.CreateChannel(this->MakeChannel("beta")));
  d.last_seen = kNow + 60;
  ASSERT_TRUE(s.UpdateDevice(d));
  EXPECT_EQ(*s.GetDevice("com.example.app", "dev-1"), d);

  Device bad_key = this->MakeDevice("dev-2");
  bad_key.public_key = "00";
  EXPECT_EQ(s.CreateDevice(bad_key).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.UpdateDevice(this->MakeDevice("ghost")).error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(s.CreateDevice(this->MakeDevice("dev-0")));
  auto list = s.ListDevices("com.example.app", 1);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].device_id, "dev-0");
  EXPECT_EQ(s.ListDevices("com.example.app", 0).error().code(), ErrorCode::kInvalidArgument);
}

TYPED_TEST(StoreTest, ListChannelOverridesListsOnlyTheAppsOverriddenDevices) {
  auto& s = *this->store_;
  ASSERT_TRUE(s.CreateChannel(this->MakeChannel("beta")));
  ASSERT_TRUE(s.CreateChannel(this->MakeChannel("internal")));
  for (std::string id : {"dev-c", "dev-a", "dev-b", "dev-plain"}) {
    ASSERT_TRUE(s.CreateDevice(this->MakeDevice(id)));
  }
  Device d = this->MakeDevice("dev-c");
  d.channel_override = "internal";
  ASSERT_TRUE(s.UpdateDevice(d));
  d = this->MakeDevice("dev-a");
  d.channel_override = "beta";
  ASSERT_TRUE(s.UpdateDevice(d));
  d = this->MakeDevice("dev-b");
  d.channel_override = "beta";
  ASSERT_TRUE(s.UpdateDevice(d));
  // Another app's overridden device is not listed.
  ASSERT_TRUE(s.CreateApp({"com.example.other", "Other", kNow}));
  Channel other_beta = this->MakeChannel("beta");
  other_beta.app_id = "com.example.other";
  ASSERT_TRUE(s.CreateChannel(other_beta));
  Device other{"com.example.other", "dev-0", kKey, "ios", "beta", kNow};
  ASSERT_TRUE(s.CreateDevice(other));

  auto all = s.ListChannelOverrides("com.example.app", 10);
  ASSERT_TRUE(all) << all.error().ToString();
  EXPECT_EQ(*all, (std::vector<ChannelOverride>{
                      {"dev-a", "beta"}, {"dev-b", "beta"}, {"dev-c", "internal"}}));
  auto two = s.ListChannelOverrides("com.example.app", 2);
  ASSERT_TRUE(two);
  EXPECT_EQ(*two, (std::vector<ChannelOverride>{{"dev-a", "beta"}, {"dev-b", "beta"}}));
  // Clearing an override removes the device from the list.
  d.channel_override.reset();
  ASSERT_TRUE(s.UpdateDevice(d));
  EXPECT_EQ(*s.ListChannelOverrides("com.example.app", kMaxOverrideListLimit),
            (std::vector<ChannelOverride>{{"dev-a", "beta"}, {"dev-c", "internal"}}));
  EXPECT_EQ(*s.ListChannelOverrides("com.example.other", 10),
            (std::vector<ChannelOverride>{{"dev-0", "beta"}}));
  EXPECT_TRUE(s.ListChannelOverrides("no.such.app", 10)->empty());

  EXPECT_EQ(s.ListChannelOverrides("bad id!", 10).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.ListChannelOverrides("com.example.app", 0).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.ListChannelOverrides("com.example.app", kMaxOverrideListLimit + 1).error().code(),
            ErrorCode::kInvalidArgument);
}

TYPED_TEST(StoreTest, DeviceStatusAndSigningKeyRoundTripAndUpdateKeepsStatus) {
  auto& s = *this->store_;
  Device d = this->MakeDevice("dev-1");
  d.signing_key = std::string(64, 'c');
  d.status = DeviceStatus::kPending;
  ASSERT_TRUE(s.CreateDevice(d));
  EXPECT_EQ(*s.GetDevice("com.example.app", "dev-1"), d);
  ASSERT_TRUE(s.SetDeviceStatus("com.example.app", "dev-1", DeviceStatus::kRevoked));
  // An update made from a row read before the revocation does not undo it.
  d.platform = "ios";
  ASSERT_TRUE(s.UpdateDevice(d));
  auto got = s.GetDevice("com.example.app", "dev-1");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, DeviceStatus::kRevoked);
  EXPECT_EQ(got->platform, "ios");
  // Nor does an approval made from such a row: a revoked device stays revoked (revoking is a
  // no-op).
  auto approved = s.SetDeviceStatus("com.example.app", "dev-1", DeviceStatus::kActive);
  ASSERT_FALSE(approved);
  EXPECT_EQ(approved.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(approved.error().message(), "device dev-1 is revoked");
  EXPECT_TRUE(s.SetDeviceStatus("com.example.app", "dev-1", DeviceStatus::kRevoked));
  EXPECT_EQ(s.GetDevice("com.example.app", "dev-1")->status, DeviceStatus::kRevoked);
  EXPECT_EQ(s.SetDeviceStatus("com.example.app", "ghost", DeviceStatus::kActive).error().code(),
            ErrorCode::kNotFound);
  Device bad = this->MakeDevice("dev-2");
  bad.signing_key = "XYZ";
  EXPECT_EQ(s.CreateDevice(bad).error().code(), ErrorCode::kInvalidArgument);
}

TYPED_TEST(StoreTest, EnrollPolicyDefaultsToTokenAndCanBeSet) {
  auto& s = *this->store_;
  EXPECT_EQ(s.GetApp("com.example.app")->enroll_policy, EnrollPolicy::kToken);
  ASSERT_TRUE(s.SetEnrollPolicy("com.example.app", EnrollPolicy::kPreauth));
  EXPECT_EQ(s.GetApp("com.example.app")->enroll_policy, EnrollPolicy::kPreauth);
  EXPECT_EQ(s.SetEnrollPolicy("no.such.app", EnrollPolicy::kApprove).error().code(),
            ErrorCode::kNotFound);
}

TYPED_TEST(StoreTest, PreauthorizedKeysAreClaimedByOneDeviceOnly) {
  auto& s = *this->store_;
  const std::string k1(64, '1'), k2(64, '2');
  std::vector<PreauthorizedKey> keys = {{"com.example.app", k1, std::nullopt, kNow},
                                        {"com.example.app", k2, "dev-2", kNow}};
  EXPECT_EQ(*s.AddPreauthorizedKeys(keys), 2u);
  EXPECT_EQ(*s.AddPreauthorizedKeys(keys), 0u);
  EXPECT_EQ(*s.ListPreauthorizedKeys("com.example.app"), keys);
  ASSERT_TRUE(s.ClaimPreauthorizedKey("com.example.app", k1, "dev-1"));
  ASSERT_TRUE(s.ClaimPreauthorizedKey("com.example.app", k1, "dev-1"));  // the same id again
  EXPECT_EQ(s.ClaimPreauthorizedKey("com.example.app", k1, "dev-9").error().code(),
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(s.ClaimPreauthorizedKey("com.example.app", k2, "dev-9").error().code(),
            ErrorCode::kAlreadyExists);
  EXPECT_EQ(s.ClaimPreauthorizedKey("com.example.app", std::string(64, '3'), "dev-1")
                .error()
                .code(),
            ErrorCode::kNotFound);
  std::vector<PreauthorizedKey> unknown_app = {{"no.such.app", k1, std::nullopt, kNow}};
  EXPECT_EQ(s.AddPreauthorizedKeys(unknown_app).error().code(), ErrorCode::kNotFound);
}

TYPED_TEST(StoreTest, WrappedKeysAreStoredOncePerDeviceAndBundle) {
  auto& s = *this->store_;
  ASSERT_TRUE(s.CreateDevice(this->MakeDevice("dev-1")));
  WrappedKey w{"com.example.app", "dev-1", kSha, kKey, "d3JhcHBlZA==", kNow};
  EXPECT_EQ(s.GetWrappedKey("com.example.app", "dev-1", kSha).error().code(),
            ErrorCode::kNotFound);
  ASSERT_TRUE(s.PutWrappedKey(w));
  EXPECT_EQ(*s.GetWrappedKey("com.example.app", "dev-1", kSha), w);
  // A second wrap to the same key does not replace the first; one to a new key does.
  WrappedKey same = w;
  same.wrapped_key = "b3RoZXI=";
  ASSERT_TRUE(s.PutWrappedKey(same));
  EXPECT_EQ(*s.GetWrappedKey("com.example.app", "dev-1", kSha), w);
  WrappedKey rekeyed = same;
  rekeyed.public_key = std::string(64, 'e');
  ASSERT_TRUE(s.PutWrappedKey(rekeyed));
  EXPECT_EQ(*s.GetWrappedKey("com.example.app", "dev-1", kSha), rekeyed);
  WrappedKey ghost = w;
  ghost.device_id = "ghost";
  EXPECT_EQ(s.PutWrappedKey(ghost).error().code(), ErrorCode::kNotFound);
}

TYPED_TEST(StoreTest, EventQuotaRefusesTheWholeBatchOverTheLimit) {
  auto& s = *this->store_;
  ASSERT_TRUE(s.CreateDevice(this->MakeDevice("d1")));
  ASSERT_TRUE(s.CreateDevice(this->MakeDevice("d2")));
  EventQuota quota{kNow, 3};
  std::vector<DeviceEvent> two = {this->MakeEvent("d1", 1, "offered"),
                                  this->MakeEvent("d1", 2, "downloaded")};
  EXPECT_EQ(*s.AppendDeviceEvents(two, quota), 2u);
  // Retried events count nothing new.
  EXPECT_EQ(*s.AppendDeviceEvents(two, quota), 0u);
  std::vector<DeviceEvent> more = {this->MakeEvent("d1", 3, "verified"),
                                   this->MakeEvent("d1", 4, "installed")};
  auto over = s.AppendDeviceEvents(more, quota);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code(), ErrorCode::kLimitExceeded);
  EXPECT_EQ(s.ListDeviceEvents("com.example.app", "d1")->size(), 2u);  // nothing of the batch
  // Another device has its own quota; events before `since` do not count.
  EXPECT_EQ(*s.AppendDeviceEvents(more, EventQuota{kNow + 2, 3}), 2u);
  std::vector<DeviceEvent> other = {this->MakeEvent("d2", 1, "offered")};
  EXPECT_EQ(*s.AppendDeviceEvents(other, quota), 1u);
  std::vector<DeviceEvent> mixed = {this->MakeEvent("d1", 9, "offered"),
                                    this->MakeEvent("d2", 9, "offered")};
  EXPECT_EQ(s.AppendDeviceEvents(mixed, quota).error().code(), ErrorCode::kInvalidArgument);
}

TYPED_TEST(StoreTest, EventBatchesAreIdempotentAndCounted) {
  auto& s = *this->store_;
  ASSERT_TRUE(s.CreateDevice(this->MakeDevice("d1")));
  ASSERT_TRUE(s.CreateDevice(this->MakeDevice("d2")));
  std::vector<DeviceEvent> batch = {this->MakeEvent("d1", 1, "downloaded"),
                                    this->MakeEvent("d1", 2, "installed"),
                                    this->MakeEvent("d2", 1, "downloaded")};
  batch[1].reason_code = "E_DISK_FULL";
  batch[1].detail = "no space left";
  auto stored = s.AppendDeviceEvents(batch);
  ASSERT_TRUE(stored) << stored.error().ToString();
  EXPECT_EQ(*stored, 3u);
  // A retried batch (the device never saw our answer) stores nothing twice.
  EXPECT_EQ(*s.AppendDeviceEvents(batch), 0u);

  auto events = s.ListDeviceEvents("com.example.app", "d1");
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[1], batch[1]);

  auto counts = s.CountEventsByKind("com.example.app", "1.0.0");
  ASSERT_TRUE(counts);
  EXPECT_EQ(*counts, (std::map<std::string, int64_t>{{"downloaded", 2}, {"installed", 1}}));
}

TYPED_TEST(StoreTest, EventBatchFromAnUnknownDeviceStoresNothing) {
  auto& s = *this->store_;
  ASSERT_TRUE(s.CreateDevice(this->MakeDevice("d1")));
  std::vector<DeviceEvent> batch = {this->MakeEvent("d1", 1, "downloaded"),
                                    this->MakeEvent("ghost", 1, "downloaded")};
  auto stored = s.AppendDeviceEvents(batch);
  ASSERT_FALSE(stored);
  EXPECT_EQ(stored.error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(s.ListDeviceEvents("com.example.app", "d1")->empty());
}

TYPED_TEST(StoreTest, EventBatchesAreBounded) {
  std::vector<DeviceEvent> batch(kMaxEventBatch + 1, this->MakeEvent("d1", 1, "downloaded"));
  EXPECT_EQ(this->store_->AppendDeviceEvents(batch).error().code(), ErrorCode::kLimitExceeded);
  DeviceEvent bad = this->MakeEvent("d1", 1, "downloaded");
  bad.detail = std::string(kMaxTextLength + 1, 'x');
  EXPECT_EQ(this->store_->AppendDeviceEvents({&bad, 1}).error().code(),
            ErrorCode::kInvalidArgument);
}

TYPED_TEST(StoreTest, SeveralProcessesCanShareOneDatabase) {
  // Two stores (as two airlockd would) on one database, started and writing at the same time.
  constexpr int kWriters = 4;
  constexpr int kDevicesEach = 20;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      auto store = OpenStore(this->url_, kNow);
      if (!store) {
        ++failures;
        return;
      }
      for (int i = 0; i < kDevicesEach; ++i) {
        auto d = this->MakeDevice("w" + std::to_string(w) + "-" + std::to_string(i));
        if (!(*store)->CreateDevice(d)) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto list = this->store_->ListDevices("com.example.app");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), static_cast<size_t>(kWriters * kDevicesEach));
}

TEST(OpenStore, ConcurrentFirstStartsMigrateOnce) {
  // Several airlockd starting together on an empty PostgreSQL database.
  auto url = testing::CreateTestDatabase();
  ASSERT_TRUE(url) << url.error().ToString();
  std::vector<std::thread> threads;
  std::vector<std::string> errors(4);
  for (size_t i = 0; i < errors.size(); ++i) {
    threads.emplace_back([&, i] {
      auto store = OpenStore(*url, kNow);
      if (!store) errors[i] = store.error().ToString();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors) EXPECT_EQ(e, "");
  auto conn = OpenConnection(*url);
  ASSERT_TRUE(conn);
  auto rows = (*conn)->Query("SELECT COUNT(*) FROM schema_migrations", {});
  ASSERT_TRUE(rows);
  EXPECT_EQ(*(*rows)[0][0], std::to_string(Migrations().size()));
}

// Terminates every other session on the database, as a server restart or a network drop would, and
// waits (up to 5 s, PostgreSQL >= 14) until they are gone.
void KillOtherSessions(const std::string& url) {
  auto admin = OpenConnection(url);
  ASSERT_TRUE(admin) << admin.error().ToString();
  ASSERT_TRUE((*admin)->Exec("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                             "WHERE datname = current_database() AND pid <> pg_backend_pid()"));
}

TEST(PostgresConnection, ReconnectsAfterTheConnectionIsLost) {
  auto url = testing::CreateTestDatabase();
  ASSERT_TRUE(url) << url.error().ToString();
  auto store = OpenStore(*url, kNow);
  ASSERT_TRUE(store) << store.error().ToString();
  KillOtherSessions(*url);
  // The first statement on the dead connection may fail; the store then reconnects.
  auto first = (*store)->CreateApp({"a", "A", kNow});
  if (!first) {
    EXPECT_EQ(first.error().code(), ErrorCode::kIo);
  }
  ASSERT_TRUE((*store)->CreateApp({"b", "B", kNow}));
  EXPECT_TRUE((*store)->GetApp("b"));
}

TEST(PostgresConnection, NeverCommitsATransactionCutInHalf) {
  auto url = testing::CreateTestDatabase();
  ASSERT_TRUE(url) << url.error().ToString();
  auto conn = OpenConnection(*url);
  ASSERT_TRUE(conn);
  ASSERT_TRUE((*conn)->ExecScript("CREATE TABLE t (x BIGINT NOT NULL)"));
  ASSERT_TRUE((*conn)->Begin());
  Param one[] = {int64_t{1}};
  ASSERT_TRUE((*conn)->Exec("INSERT INTO t (x) VALUES ($1)", one));
  KillOtherSessions(*url);
  Param two[] = {int64_t{2}};
  auto second = (*conn)->Exec("INSERT INTO t (x) VALUES ($1)", two);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), ErrorCode::kIo);
  auto committed = (*conn)->Commit();
  ASSERT_FALSE(committed);
  EXPECT_EQ(committed.error().code(), ErrorCode::kIo);
  auto rows = (*conn)->Query("SELECT COUNT(*) FROM t", {});
  ASSERT_TRUE(rows) << rows.error().ToString();
  EXPECT_EQ(*(*rows)[0][0], "0");
}

TEST(OpenStore, RejectsUnknownSchemesAndEmptyUrls) {
  EXPECT_EQ(OpenStore("mysql://localhost/x", kNow).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(OpenStore("", kNow).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(OpenStore("sqlite:", kNow).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(OpenStore(std::string(kMaxUrlLength + 1, 'a'), kNow).error().code(),
            ErrorCode::kInvalidArgument);
}

TEST(OpenStore, UnreachablePostgresIsAnIoError) {
  // Port 1 on loopback: nothing listens there.
  auto store = OpenStore("postgresql://airlock@127.0.0.1:1/x?connect_timeout=2", kNow);
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().code(), ErrorCode::kIo);
}

TEST(Migrations, AreEmbeddedAndNumberedWithoutGaps) {
  auto migrations = Migrations();
  ASSERT_FALSE(migrations.empty());
  for (size_t i = 0; i < migrations.size(); ++i) {
    EXPECT_EQ(migrations[i].version, static_cast<int64_t>(i + 1));
    EXPECT_FALSE(migrations[i].sql.empty());
  }
  EXPECT_EQ(migrations[0].name, "0001_init.sql");
}

}  // namespace
}  // namespace airlock::storage
