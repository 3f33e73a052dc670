#include "server/capgo_api.h"
#include "server/json_text.h"

#include <fstream>
#include <map>
#include <sstream>

#include <gtest/gtest.h>

#include "common/json.h"

namespace airlock::server {
namespace {

using Json = nlohmann::json;

std::string ReadVector(const std::string& name) {
  std::ifstream in(std::string(AIRLOCK_VECTORS_DIR) + "/capgo/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Json Body(const CapgoReply& reply) { return Json::parse(reply.body); }

Result<Json> ParseJsonForTest(std::string_view body) {
  return ParseJson(body, kCapgoMaxBodyBytes, kCapgoMaxJsonDepth);
}

// The vector request, optionally edited.
std::string VectorRequest(const std::function<void(Json&)>& edit = nullptr) {
  Json j = Json::parse(ReadVector("updates_request_example.json"));
  if (edit) edit(j);
  return j.dump();
}

CapgoRelease VectorRelease(const std::string& file) {
  Json expected = Json::parse(ReadVector(file));
  CapgoRelease release;
  release.version = expected["version"];
  release.url = expected["url"];
  release.session_key = expected["session_key"];
  release.checksum = expected["checksum"];
  if (expected.contains("manifest")) {
    for (const auto& e : expected["manifest"]) {
      release.manifest.push_back({e["file_name"], e["file_hash"], e["download_url"]});
    }
  }
  return release;
}

class FakeCatalog : public CapgoReleaseCatalog {
 public:
  Result<std::optional<CapgoOffer>> FindOffer(const CapgoDeviceInfo& device) override {
    last_device = device;
    if (fail) return MakeError(ErrorCode::kIo, "database down");
    return offer;
  }
  std::optional<CapgoOffer> offer;
  std::optional<CapgoDeviceInfo> last_device;
  bool fail = false;
};

CapgoChannel PublicChannel() {
  CapgoChannel c;
  c.id = 1;
  c.name = "production";
  c.is_public = true;
  return c;
}

FakeCatalog CatalogOffering(CapgoRelease release) {
  FakeCatalog catalog;
  catalog.offer = CapgoOffer{PublicChannel(), false, std::move(release)};
  return catalog;
}

void ExpectError(const CapgoReply& reply, int status, const std::string& code,
                 const std::string& kind) {
  EXPECT_EQ(reply.status, status) << reply.body;
  Json body = Body(reply);
  EXPECT_EQ(body["error"], code) << reply.body;
  EXPECT_TRUE(body["message"].is_string() && !body["message"].get<std::string>().empty())
      << reply.body;
  if (!kind.empty()) {
    EXPECT_EQ(body["kind"], kind) << reply.body;
  }
}

TEST(CapgoUpdates, VectorRequestParses) {
  auto info = ParseCapgoDeviceInfo(Json::parse(VectorRequest()));
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_EQ(info->app_id, "com.example.otatest");
  EXPECT_EQ(info->device_id, "7239a82f-4ea8-4e33-9085-f4ad974d3fc4");
  EXPECT_EQ(info->version_name, "builtin");
  EXPECT_EQ(info->EffectiveVersion(), "1.0.0");
  EXPECT_EQ(info->version_code, "10000");
  EXPECT_EQ(info->version_os, "14");
  EXPECT_EQ(info->platform, CapgoPlatform::kAndroid);
  EXPECT_EQ(info->plugin_version, "8.51.23");
  EXPECT_FALSE(info->is_emulator);
  EXPECT_TRUE(info->is_prod);
  EXPECT_EQ(info->default_channel, "");
  EXPECT_EQ(info->key_id, "MIIBCgKCAQEAxnu8GaHm");
}

TEST(CapgoUpdates, OffersReleaseWithBodyEqualToVector) {
  CapgoRelease release = VectorRelease("updates_response_full.json");
  release.version = "1.0.1";  // the device runs builtin 1.0.0; offer the next one
  FakeCatalog catalog = CatalogOffering(release);
  CapgoReply reply = HandleCapgoUpdates(VectorRequest(), catalog);
  ASSERT_EQ(reply.status, 200) << reply.body;
  Json expected = Json::parse(ReadVector("updates_response_full.json"));
  expected["version"] = "1.0.1";
  EXPECT_EQ(Body(reply), expected);
}

TEST(CapgoUpdates, OffersVectorVersionToDeviceOnOlderBundle) {
  FakeCatalog catalog = CatalogOffering(VectorRelease("updates_response_full.json"));
  CapgoReply reply = HandleCapgoUpdates(VectorRequest([](Json& j) {
                                          j["version_build"] = "0.9.0";
                                          j["version_name"] = "0.9.5";
                                        }),
                                        catalog);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(Body(reply), Json::parse(ReadVector("updates_response_full.json")));
}

TEST(CapgoUpdates, ManifestReleaseBodyEqualsManifestVector) {
  FakeCatalog catalog = CatalogOffering(VectorRelease("updates_response_manifest.json"));
  CapgoReply reply = HandleCapgoUpdates(VectorRequest([](Json& j) {
                                          j["version_build"] = "0.9.0";
                                          j["version_name"] = "builtin";
                                        }),
                                        catalog);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(Body(reply), Json::parse(ReadVector("updates_response_manifest.json")));
}

TEST(CapgoUpdates, OmitsManifestForPluginsThatCannotUseIt) {
  FakeCatalog catalog = CatalogOffering(VectorRelease("updates_response_manifest.json"));
  CapgoReply reply = HandleCapgoUpdates(VectorRequest([](Json& j) {
                                          j["version_build"] = "0.9.0";
                                          j["plugin_version"] = "6.24.9";
                                        }),
                                        catalog);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_FALSE(Body(reply).contains("manifest"));
}

TEST(CapgoUpdates, UpToDateWhenDeviceRunsOfferedVersion) {
  FakeCatalog catalog = CatalogOffering(VectorRelease("updates_response_full.json"));
  // builtin + version_build 1.0.0 == offered 1.0.0
  CapgoReply reply = HandleCapgoUpdates(VectorRequest(), catalog);
  ExpectError(reply, 200, "no_new_version_available", "up_to_date");
  EXPECT_EQ(Body(reply)["message"], "No new version available");
}

TEST(CapgoUpdates, BlockedWhenPlatformDisabledOnChannel) {
  FakeCatalog catalog = CatalogOffering(VectorRelease("updates_response_full.json"));
  catalog.offer->channel.android = false;
  CapgoReply reply =
      HandleCapgoUpdates(VectorRequest([](Json& j) { j["version_build"] = "0.9.0"; }), catalog);
  ExpectError(reply, 200, "disabled_platform_android", "blocked");
  EXPECT_EQ(Body(reply)["version"], "1.0.0");
  EXPECT_EQ(Body(reply)["old"], "0.9.0");
}

TEST(CapgoUpdates, BlockedOnPrivateChannelWithoutSelfAssign) {
  FakeCatalog catalog = CatalogOffering(VectorRelease("updates_response_full.json"));
  catalog.offer->channel.is_public = false;
  catalog.offer->channel.allow_self_assign = false;
  CapgoReply reply =
      HandleCapgoUpdates(VectorRequest([](Json& j) { j["version_build"] = "0.9.0"; }), catalog);
  ExpectError(reply, 200, "cannot_update_via_private_channel", "blocked");
  catalog.offer->via_device_override = true;  // an admin assignment is honoured
  reply = HandleCapgoUpdates(VectorRequest([](Json& j) { j["version_build"] = "0.9.0"; }), catalog);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(Body(reply)["version"], "1.0.0");
}

TEST(CapgoUpdates, BlockedBelowChannelMinNativeVersion) {
  FakeCatalog catalog = CatalogOffering(VectorRelease("updates_response_full.json"));
  catalog.offer->channel.min_native_version = "0.9.5";
  CapgoReply reply =
      HandleCapgoUpdates(VectorRequest([](Json& j) { j["version_build"] = "0.9.0"; }), catalog);
  ExpectError(reply, 200, "disable_auto_update_to_metadata", "blocked");
}

TEST(CapgoUpdates, BlockedUnderNativeVersion) {
  CapgoRelease release = VectorRelease("updates_response_full.json");
  release.authorized_rollback = true;
  FakeCatalog catalog = CatalogOffering(release);
  CapgoReply reply =
      HandleCapgoUpdates(VectorRequest([](Json& j) { j["version_build"] = "2.0.0"; }), catalog);
  ExpectError(reply, 200, "disable_auto_update_under_native", "blocked");
}

TEST(CapgoUpdates, NeverDowngradesWithoutAuthorizedRollback) {
  FakeCatalog catalog = CatalogOffering(VectorRelease("updates_response_full.json"));
  catalog.offer->channel.disable_auto_update_under_native = false;
  auto req = VectorRequest([](Json& j) {
    j["version_build"] = "0.9.0";
    j["version_name"] = "1.2.0";
  });
  ExpectError(HandleCapgoUpdates(req, catalog), 200, "downgrade_not_authorized", "blocked");
  catalog.offer->release->authorized_rollback = true;
  CapgoReply reply = HandleCapgoUpdates(req, catalog);
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(Body(reply), Json::parse(ReadVector("updates_response_full.json")));
}

TEST(CapgoUpdates, BlockedOnKeyIdMismatch) {
  CapgoRelease release = VectorRelease("updates_response_full.json");
  release.key_id = "SomeOtherKeyAAAAAAAA";
  FakeCatalog catalog = CatalogOffering(release);
  ExpectError(
      HandleCapgoUpdates(VectorRequest([](Json& j) { j["version_build"] = "0.9.0"; }), catalog),
      200, "key_id_mismatch", "blocked");
}

TEST(CapgoUpdates, BlockedForEmulatorAndDevBuildsWhenChannelForbids) {
  FakeCatalog catalog = CatalogOffering(VectorRelease("updates_response_full.json"));
  catalog.offer->channel.allow_emulator = false;
  catalog.offer->channel.allow_dev = false;
  ExpectError(HandleCapgoUpdates(VectorRequest([](Json& j) {
                                   j["version_build"] = "0.9.0";
                                   j["is_emulator"] = true;
                                 }),
                                 catalog),
              200, "disable_emulator", "blocked");
  ExpectError(HandleCapgoUpdates(VectorRequest([](Json& j) {
                                   j["version_build"] = "0.9.0";
                                   j["is_prod"] = false;
                                 }),
                                 catalog),
              200, "disable_dev_build", "blocked");
}

TEST(CapgoUpdates, FailedWhenNoChannelOrNoRelease) {
  FakeCatalog catalog;
  ExpectError(HandleCapgoUpdates(VectorRequest(), catalog), 200, "no_channel", "failed");
  catalog.offer = CapgoOffer{PublicChannel(), false, std::nullopt};
  ExpectError(HandleCapgoUpdates(VectorRequest(), catalog), 200, "no_bundle", "failed");
}

TEST(CapgoUpdates, NoBundleNamesTheReleasePublishedWithoutCapgo) {
  FakeCatalog catalog;
  catalog.offer = CapgoOffer{PublicChannel(), false, std::nullopt, "1.4.0"};
  CapgoReply reply = HandleCapgoUpdates(VectorRequest(), catalog);
  ExpectError(reply, 200, "no_bundle", "failed");
  EXPECT_EQ(Body(reply)["message"],
            "Cannot get bundle: release 1.4.0 of channel production has no Capgo form (published "
            "without --capgo)");
}

TEST(CapgoUpdates, CatalogErrorIsInternalError) {
  FakeCatalog catalog;
  catalog.fail = true;
  ExpectError(HandleCapgoUpdates(VectorRequest(), catalog), 500, "internal_error", "failed");
}

TEST(CapgoUpdates, RejectsBadJsonWithClearMessage) {
  FakeCatalog catalog = CatalogOffering(VectorRelease("updates_response_full.json"));
  CapgoReply reply = HandleCapgoUpdates("{\"app_id\": ", catalog);
  ExpectError(reply, 400, "invalid_json", "failed");
  ExpectError(HandleCapgoUpdates("[1,2]", catalog), 400, "invalid_request", "failed");
  EXPECT_FALSE(catalog.last_device.has_value());
}

TEST(CapgoUpdates, RejectsOversizedAndDeepBodies) {
  FakeCatalog catalog = CatalogOffering(VectorRelease("updates_response_full.json"));
  std::string big =
      VectorRequest([](Json& j) { j["padding"] = std::string(kCapgoMaxBodyBytes, 'x'); });
  ExpectError(HandleCapgoUpdates(big, catalog), 413, "payload_too_large", "failed");
  std::string deep = std::string(20, '[') + std::string(20, ']');
  ExpectError(HandleCapgoUpdates(deep, catalog), 400, "invalid_request", "failed");
}

TEST(CapgoUpdates, RejectsWrongTypesNamingTheField) {
  FakeCatalog catalog = CatalogOffering(VectorRelease("updates_response_full.json"));
  struct Case {
    std::function<void(Json&)> edit;
    std::string field;
  };
  std::vector<Case> cases = {
      {[](Json& j) { j["is_emulator"] = "false"; }, "is_emulator"},
      {[](Json& j) { j["app_id"] = 42; }, "app_id"},
      {[](Json& j) { j.erase("device_id"); }, "device_id"},
      {[](Json& j) { j["device_id"] = std::string(37, 'a'); }, "device_id"},
      {[](Json& j) { j["platform"] = "windows"; }, "platform"},
      {[](Json& j) { j["version_build"] = "1.0.x"; }, "version_build"},  // "1.0" is coerced
      {[](Json& j) { j["version_name"] = "v1.0.0"; }, "version_name"},
      {[](Json& j) { j["plugin_version"] = "latest"; }, "plugin_version"},
      {[](Json& j) { j["defaultChannel"] = Json::array(); }, "defaultChannel"},
      {[](Json& j) { j["app_id"] = "com.example/../x"; }, "app_id"},
  };
  for (const auto& c : cases) {
    CapgoReply reply = HandleCapgoUpdates(VectorRequest(c.edit), catalog);
    ExpectError(reply, 400, "invalid_request", "failed");
    EXPECT_NE(Body(reply)["message"].get<std::string>().find(c.field), std::string::npos)
        << reply.body;
  }
  EXPECT_FALSE(catalog.last_device.has_value());
}

TEST(CapgoUpdates, IgnoresUnknownFields) {
  FakeCatalog catalog = CatalogOffering(VectorRelease("updates_response_full.json"));
  CapgoReply reply = HandleCapgoUpdates(VectorRequest([](Json& j) {
                                          j["something_new"] = {{"nested", true}};
                                          j["version_build"] = "0.9.0";
                                        }),
                                        catalog);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(Body(reply)["version"], "1.0.0");
}

// The /updates route reads flat bodies through FlatJsonObject (no DOM): for every body it accepts,
// HandleCapgoUpdatesFlat answers byte for byte what the DOM path answers, valid or not.
TEST(CapgoUpdates, FlatFastPathAnswersExactlyAsTheDomPath) {
  std::vector<std::function<void(Json&)>> edits = {
      nullptr,
      [](Json& j) { j["version_build"] = "0.9.0"; },
      [](Json& j) {
        j["version_name"] = "1.0.0";
        j["version_build"] = "1.0.0";
      },
      [](Json& j) { j["version_name"] = "2.0.0"; },
      [](Json& j) { j["platform"] = "ios"; },
      [](Json& j) { j["is_emulator"] = true; },
      [](Json& j) { j["is_prod"] = nullptr; },
      [](Json& j) { j["defaultChannel"] = "beta"; },
      [](Json& j) { j["key_id"] = "other"; },
      [](Json& j) { j["is_emulator"] = "false"; },
      [](Json& j) { j["app_id"] = 42; },
      [](Json& j) { j.erase("device_id"); },
      [](Json& j) { j["device_id"] = std::string(37, 'a'); },
      [](Json& j) { j["device_id"] = "ABC-def"; },
      [](Json& j) { j["platform"] = "windows"; },
      [](Json& j) { j["version_build"] = "1.0"; },
      [](Json& j) { j["plugin_version"] = "5.9.0"; },
      [](Json& j) { j["custom_id"] = std::string(300, 'c'); },
      [](Json& j) { j["version_code"] = 10000; },
  };
  FlatJsonObject flat;
  size_t fast = 0;
  for (size_t i = 0; i < edits.size(); ++i) {
    const std::string body = VectorRequest(edits[i]);
    if (!flat.Parse(body, kCapgoMaxBodyBytes)) continue;  // numbers: the route uses the DOM path
    ++fast;
    FakeCatalog dom_catalog = CatalogOffering(VectorRelease("updates_response_full.json"));
    FakeCatalog flat_catalog = CatalogOffering(VectorRelease("updates_response_full.json"));
    CapgoReply dom = HandleCapgoUpdates(body, dom_catalog);
    CapgoReply fast = HandleCapgoUpdatesFlat(flat, flat_catalog);
    EXPECT_EQ(fast.status, dom.status) << body;
    EXPECT_EQ(fast.body, dom.body) << body;
    EXPECT_EQ(fast.headers, dom.headers) << body;
    EXPECT_EQ(flat_catalog.last_device.has_value(), dom_catalog.last_device.has_value()) << body;
  }
  EXPECT_EQ(fast, edits.size() - 2);  // all but the two bodies with a number member
}

// Each I/O thread reuses the last success reply it built; a change of any of its strings builds a
// new one.
TEST(CapgoUpdates, ReusedReplyFollowsEveryChangeOfTheRelease) {
  const std::string body = VectorRequest([](Json& j) { j["version_build"] = "0.9.0"; });
  CapgoRelease release = VectorRelease("updates_response_full.json");
  for (int field = 0; field < 5; ++field) {
    if (field == 1) release.version = "1.0.7";
    if (field == 2) release.url = "https://example.com/other.zip";
    if (field == 3) release.session_key = "other:key";
    if (field == 4) release.checksum = std::string(64, 'c');
    FakeCatalog catalog = CatalogOffering(release);
    for (int again = 0; again < 2; ++again) {
      CapgoReply reply = HandleCapgoUpdates(body, catalog);
      ASSERT_EQ(reply.status, 200) << reply.body;
      Json got = Body(reply);
      EXPECT_EQ(got["version"], release.version);
      EXPECT_EQ(got["url"], release.url);
      EXPECT_EQ(got["session_key"], release.session_key);
      EXPECT_EQ(got["checksum"], release.checksum);
    }
  }
}

TEST(CapgoUpdates, KindTableMatchesCapgo) {
  EXPECT_EQ(CapgoUpdateKind("no_new_version_available"), "up_to_date");
  EXPECT_EQ(CapgoUpdateKind("already_on_builtin"), "up_to_date");
  EXPECT_EQ(CapgoUpdateKind("disable_auto_update_to_major"), "blocked");
  EXPECT_EQ(CapgoUpdateKind("key_id_mismatch"), "blocked");
  EXPECT_EQ(CapgoUpdateKind("no_channel"), "failed");
  EXPECT_EQ(CapgoUpdateKind("anything_else"), "failed");
}

class FakeSink : public CapgoStatsSink {
 public:
  Result<void> Record(const std::vector<CapgoStatsEvent>& e) override {
    events.insert(events.end(), e.begin(), e.end());
    return {};
  }
  std::vector<CapgoStatsEvent> events;
};

Json StatsEvent(const std::string& action) {
  Json j = Json::parse(VectorRequest());
  j["action"] = action;
  j["version_name"] = "1.0.0";
  j["old_version_name"] = "builtin";
  return j;
}

TEST(CapgoStats, AcceptsSingleObject) {
  FakeSink sink;
  CapgoReply reply = HandleCapgoStats(StatsEvent("set").dump(), sink);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(Body(reply), Json({{"status", "ok"}}));
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.events[0].action, "set");
  EXPECT_EQ(sink.events[0].device.version_name, "1.0.0");
  EXPECT_EQ(sink.events[0].old_version_name, "builtin");
}

TEST(CapgoStats, AcceptsArrayOfEvents) {
  FakeSink sink;
  Json arr = Json::array({StatsEvent("download_10"), StatsEvent("download_complete")});
  CapgoReply reply = HandleCapgoStats(arr.dump(), sink);
  ASSERT_EQ(reply.status, 200) << reply.body;
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[1].action, "download_complete");
}

TEST(CapgoStats, RejectsTooManyEventsAndBadBodiesAndRecordsNothing) {
  FakeSink sink;
  Json arr = Json::array();
  for (size_t i = 0; i <= kCapgoMaxStatsEvents; ++i) arr.push_back(StatsEvent("set"));
  CapgoReply reply = HandleCapgoStats(arr.dump(), sink);
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(Body(reply)["error"], "invalid_request");
  EXPECT_EQ(Body(reply)["message"], "JSON array holds more than 200 elements");
  Json bad_single = StatsEvent("DROP TABLE");
  reply = HandleCapgoStats(bad_single.dump(), sink);
  EXPECT_EQ(reply.status, 400);
  Json missing = StatsEvent("set");
  missing.erase("action");
  EXPECT_EQ(HandleCapgoStats(missing.dump(), sink).status, 400);
  EXPECT_EQ(HandleCapgoStats("[]", sink).status, 400);
  EXPECT_EQ(HandleCapgoStats("\"set\"", sink).status, 400);
  EXPECT_TRUE(sink.events.empty());
}

// The plugin queues up to 200 events (CapgoUpdater.java MAX_PENDING_STATS) and sends them as one
// array; any 4xx but 408/429 drops the whole batch (isTransientStatsFailure). So a batch is
// answered per event: the good ones are recorded, the bad one is named.
TEST(CapgoStats, OneBadEventDoesNotSinkTheBatch) {
  FakeSink sink;
  Json arr =
      Json::array({StatsEvent("set"), StatsEvent("DROP TABLE"), StatsEvent("download_fail")});
  CapgoReply reply = HandleCapgoStats(arr.dump(), sink);
  ASSERT_EQ(reply.status, 200) << reply.body;
  const Json body = Body(reply);
  EXPECT_EQ(body["status"], "ok");
  ASSERT_EQ(body["results"].size(), 3u);
  EXPECT_EQ(body["results"][0], Json({{"index", 0}, {"status", "ok"}}));
  EXPECT_EQ(body["results"][1]["index"], 1);
  EXPECT_EQ(body["results"][1]["status"], "error");
  EXPECT_EQ(body["results"][1]["error"], "invalid_request");
  EXPECT_NE(body["results"][1]["message"].get<std::string>().find("event 1"), std::string::npos);
  EXPECT_EQ(body["results"][2], Json({{"index", 2}, {"status", "ok"}}));
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.events[0].action, "set");
  EXPECT_EQ(sink.events[1].action, "download_fail");
}

// The plugin's real batch: 200 events with web-view error metadata (well over 64 KiB), a
// timestamp, install_source, and composite version names for manifest file failures
// (DownloadService.java: `version + ":" + fileName`).
TEST(CapgoStats, AcceptsThePluginsFullBatch) {
  FakeSink sink;
  Json arr = Json::array();
  for (size_t i = 0; i < kCapgoMaxStatsEvents; ++i) {
    Json e = StatsEvent(i % 2 == 0 ? "download_manifest_file_fail" : "app_moved_to_foreground");
    e["version_name"] = i % 2 == 0 ? "1.2.3:assets/index-Bx7fK2.js" : "1.2.3";
    e["timestamp"] = 1764892800000 + static_cast<int64_t>(i);
    e["install_source"] = "com.android.vending";
    e["metadata"] = {{"error", std::string(600, 'e')}, {"stack", std::string(1200, 's')}};
    arr.push_back(std::move(e));
  }
  const std::string body = arr.dump();
  ASSERT_GT(body.size(), 64u * 1024);
  ASSERT_LT(body.size(), kCapgoMaxStatsBodyBytes);
  CapgoReply reply = HandleCapgoStats(body, sink);
  ASSERT_EQ(reply.status, 200) << reply.body.substr(0, 300);
  EXPECT_EQ(sink.events.size(), kCapgoMaxStatsEvents);
  EXPECT_EQ(sink.events[0].device.version_name, "1.2.3:assets/index-Bx7fK2.js");
  const Json answered = Body(reply);  // named: a range-for over a temporary's member dangles
  for (const auto& r : answered["results"]) EXPECT_EQ(r["status"], "ok");
  // Over 1 MiB: 413, nothing recorded.
  FakeSink none;
  EXPECT_EQ(HandleCapgoStats(std::string(kCapgoMaxStatsBodyBytes + 1, ' '), none).status, 413);
  EXPECT_TRUE(none.events.empty());
}

// The plugin sends the app's native version name as it is, often "1.0" (Capgo's backend pads it).
TEST(CapgoDeviceInfoTest, NativeVersionIsCoercedAsCapgoDoes) {
  EXPECT_EQ(CoerceCapgoVersion("1"), "1.0.0");
  EXPECT_EQ(CoerceCapgoVersion("1.0"), "1.0.0");
  EXPECT_EQ(CoerceCapgoVersion("2.1-beta.1"), "2.1.0-beta.1");
  EXPECT_EQ(CoerceCapgoVersion("1.2.3"), "1.2.3");
  EXPECT_EQ(CoerceCapgoVersion("1.2.3.4"), "1.2.3.4");  // left as it is: not semver, refused
  for (const char* native : {"1.0", "7"}) {
    Json j = Json::parse(VectorRequest());
    j["version_build"] = native;
    auto info = ParseCapgoDeviceInfo(j);
    ASSERT_TRUE(info) << native << ": " << info.error().ToString();
    EXPECT_EQ(info->version_build,
              std::string(native) + (std::string(native) == "7" ? ".0.0" : ".0"));
  }
  Json bad = Json::parse(VectorRequest());
  bad["version_build"] = "1.0.x";
  EXPECT_FALSE(ParseCapgoDeviceInfo(bad));
}

// Review (issue 13): padding makes no malformed native version pass; what it pads must still be
// strict semver (downgrade and native-floor decisions compare it).
TEST(CapgoDeviceInfoTest, CoercionLetsNoMalformedNativeVersionThrough) {
  for (const char* native : {"1.0-", "01.0", "1.", ".1", "1..0", "-1", "+1", "v1.0", "1.0 ",
                             "1.0-01", "1.0+", "1.0.0.0"}) {
    Json j = Json::parse(VectorRequest());
    j["version_build"] = native;
    auto info = ParseCapgoDeviceInfo(j);
    ASSERT_FALSE(info) << native << " was accepted as " << info->version_build;
    EXPECT_EQ(info.error().code(), ErrorCode::kInvalidArgument) << native;
    EXPECT_NE(info.error().message().find("field 'version_build' is not a semantic version"),
              std::string::npos)
        << info.error().ToString();
  }
  Json j = Json::parse(VectorRequest());
  j["version_build"] = "1.0+x";
  auto info = ParseCapgoDeviceInfo(j);
  ASSERT_TRUE(info) << info.error().ToString();
  EXPECT_EQ(info->version_build, "1.0.0+x");
}

TEST(CapgoChannelId, IsAStablePositiveNumberPerAppAndName) {
  const int64_t id = CapgoChannelId("com.example.app", "beta");
  EXPECT_GT(id, 0);
  EXPECT_LE(id, 0x7fffffff);  // fits the plugin's Java int (getInt) and Swift Int
  EXPECT_EQ(CapgoChannelId("com.example.app", "beta"), id);
  EXPECT_NE(CapgoChannelId("com.example.app", "production"), id);
  EXPECT_NE(CapgoChannelId("com.example.other", "beta"), id);
}

class FakeRegistry : public CapgoChannelRegistry {
 public:
  FakeRegistry() {
    CapgoChannel beta;
    beta.id = 2;
    beta.name = "beta";
    beta.allow_self_assign = true;
    CapgoChannel internal;
    internal.id = 3;
    internal.name = "internal";
    channels = {PublicChannel(), beta, internal};
  }
  Result<std::vector<CapgoChannel>> ListChannels(std::string_view) override { return channels; }
  Result<std::optional<std::string>> GetAssignment(std::string_view,
                                                   std::string_view device) override {
    auto it = assignments.find(std::string(device));
    if (it == assignments.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  }
  Result<void> SetAssignment(std::string_view, std::string_view device,
                             std::string_view channel) override {
    if (!enrolled) return MakeError(ErrorCode::kNotFound, "no such device");
    assignments[std::string(device)] = std::string(channel);
    return {};
  }
  Result<void> ClearAssignment(std::string_view, std::string_view device) override {
    assignments.erase(std::string(device));
    return {};
  }
  std::vector<CapgoChannel> channels;
  std::map<std::string, std::string> assignments;
  bool enrolled = true;
};

constexpr char kDevice[] = "7239a82f-4ea8-4e33-9085-f4ad974d3fc4";

CapgoReply Channel(CapgoChannelMethod method, FakeRegistry& registry,
                   const std::string& channel = "") {
  std::string body = VectorRequest([&](Json& j) {
    if (!channel.empty()) j["channel"] = channel;
  });
  return HandleCapgoChannelSelf(method, body, {}, registry);
}

TEST(CapgoChannelSelf, SetGetAndUnsetSelfAssignableChannel) {
  FakeRegistry registry;
  EXPECT_EQ(Body(Channel(CapgoChannelMethod::kPut, registry)),
            Json({{"channel", "production"}, {"status", "default"}}));
  CapgoReply set = Channel(CapgoChannelMethod::kPost, registry, "beta");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(Body(set), Json({{"status", "ok"}, {"allowSet", true}}));
  EXPECT_EQ(registry.assignments[kDevice], "beta");
  EXPECT_EQ(Body(Channel(CapgoChannelMethod::kPut, registry)),
            Json({{"channel", "beta"}, {"status", "override"}, {"allowSet", true}}));
  CapgoReply unset = Channel(CapgoChannelMethod::kDelete, registry);
  ASSERT_EQ(unset.status, 200) << unset.body;
  EXPECT_TRUE(registry.assignments.empty());
}

// A plain Capgo device (no row here): current plugins only ask whether the channel may be chosen,
// then keep it themselves and send it as defaultChannel (CapgoUpdater.java setChannel stores
// `channel` unless the answer has `error` or `unset`). Nothing is stored for it.
TEST(CapgoChannelSelf, UnknownDeviceMayChooseASelfAssignableChannelAndNothingIsStored) {
  FakeRegistry registry;
  registry.enrolled = false;
  CapgoReply set = Channel(CapgoChannelMethod::kPost, registry, "beta");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(Body(set), Json({{"status", "ok"}, {"allowSet", true}}));
  EXPECT_TRUE(registry.assignments.empty());
  // Its later getChannel names the channel it chose (the plugin saves the answered `channel`).
  std::string body = VectorRequest([](Json& j) { j["defaultChannel"] = "beta"; });
  EXPECT_EQ(Body(HandleCapgoChannelSelf(CapgoChannelMethod::kPut, body, {}, registry)),
            Json({{"channel", "beta"}, {"status", "override"}, {"allowSet", true}}));
  // A channel that does not allow self-assignment named as defaultChannel is not echoed back.
  body = VectorRequest([](Json& j) { j["defaultChannel"] = "internal"; });
  EXPECT_EQ(Body(HandleCapgoChannelSelf(CapgoChannelMethod::kPut, body, {}, registry)),
            Json({{"channel", "production"}, {"status", "default"}}));
}

// Choosing the public channel answers `unset: true`, which makes the plugin clear its stored
// choice (CapgoUpdater.java setChannel: Boolean.TRUE.equals(res.get("unset"))).
TEST(CapgoChannelSelf, SettingDefaultChannelClearsAssignment) {
  FakeRegistry registry;
  registry.assignments[kDevice] = "beta";
  CapgoReply reply = Channel(CapgoChannelMethod::kPost, registry, "production");
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(Body(reply), Json({{"status", "ok"}, {"unset", true}}));
  EXPECT_TRUE(registry.assignments.empty());
}

TEST(CapgoChannelSelf, RefusesChannelsThatDisallowSelfAssign) {
  FakeRegistry registry;
  CapgoReply reply = Channel(CapgoChannelMethod::kPost, registry, "internal");
  // The code the plugin fires channelPrivate for (CapacitorUpdaterPlugin.java setChannel).
  ExpectError(reply, 400, "channel_self_set_not_allowed", "");
  EXPECT_TRUE(registry.assignments.empty());
  ExpectError(Channel(CapgoChannelMethod::kPost, registry, "nope"), 400, "channel_not_found", "");
  // An admin put the device on "internal": the device may neither switch nor unset it.
  registry.assignments[kDevice] = "internal";
  ExpectError(Channel(CapgoChannelMethod::kPost, registry, "beta"), 400, "cannot_override", "");
  ExpectError(Channel(CapgoChannelMethod::kDelete, registry), 400, "cannot_override", "");
  EXPECT_EQ(registry.assignments[kDevice], "internal");
}

TEST(CapgoChannelSelf, ListsOnlyVisibleChannelsForPlatform) {
  FakeRegistry registry;
  registry.channels[1].ios = false;
  CapgoReply reply = HandleCapgoChannelSelf(
      CapgoChannelMethod::kGet, "", {{"app_id", "com.example.otatest"}, {"platform", "android"}},
      registry);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(Body(reply), Json::parse(R"([
    {"id":1,"name":"production","public":true,"allow_self_set":false},
    {"id":2,"name":"beta","public":false,"allow_self_set":true}])"));
  // The plugin fails the whole list unless every id is a number (CapgoUpdater.java
  // parseListChannelsResponse: `channelId instanceof Number`).
  for (const auto& channel : Body(reply)) EXPECT_TRUE(channel["id"].is_number_integer());
  reply =
      HandleCapgoChannelSelf(CapgoChannelMethod::kGet, "",
                             {{"app_id", "com.example.otatest"}, {"platform", "ios"}}, registry);
  EXPECT_EQ(Body(reply).size(), 1u);
  EXPECT_EQ(HandleCapgoChannelSelf(CapgoChannelMethod::kGet, "", {}, registry).status, 400);
}

TEST(CapgoChannelSelf, RejectsMissingChannelAndBadBody) {
  FakeRegistry registry;
  EXPECT_EQ(Channel(CapgoChannelMethod::kPost, registry).status, 400);
  EXPECT_EQ(HandleCapgoChannelSelf(CapgoChannelMethod::kPost, "nope", {}, registry).status, 400);
  EXPECT_TRUE(registry.assignments.empty());
}

// What the /updates success reply was before it was built by hand: the ordered_json dump.
std::string OrderedDump(const CapgoRelease& release, bool with_manifest) {
  nlohmann::ordered_json out;
  out["version"] = release.version;
  out["url"] = release.url;
  out["session_key"] = release.session_key;
  out["checksum"] = release.checksum;
  if (with_manifest && !release.manifest.empty()) {
    nlohmann::ordered_json entries = nlohmann::ordered_json::array();
    for (const auto& entry : release.manifest) {
      entries.push_back(nlohmann::ordered_json{{"file_name", entry.file_name},
                                               {"file_hash", entry.file_hash},
                                               {"download_url", entry.download_url}});
    }
    out["manifest"] = std::move(entries);
  }
  return out.dump(-1, ' ', false, Json::error_handler_t::replace);
}

TEST(CapgoUpdates, HandBuiltReplyIsTheOrderedJsonDump) {
  CapgoRelease release = VectorRelease("updates_response_manifest.json");
  release.session_key = "k\"ey\xff";  // escaping and invalid UTF-8 take the slow path
  FakeCatalog catalog = CatalogOffering(release);
  CapgoReply with = HandleCapgoUpdates(VectorRequest([](Json& j) {
                                         j["version_name"] = "0.0.1";
                                         j["version_build"] = "0.9.0";
                                         j["plugin_version"] = "8.0.0";
                                       }),
                                       catalog);
  ASSERT_EQ(with.status, 200) << with.body;
  EXPECT_EQ(with.body, OrderedDump(release, true));
  CapgoReply without = HandleCapgoUpdates(VectorRequest([](Json& j) {
                                            j["version_name"] = "0.0.1";
                                            j["version_build"] = "0.9.0";
                                            j["plugin_version"] = "5.0.0";
                                          }),
                                          catalog);
  ASSERT_EQ(without.status, 200) << without.body;
  EXPECT_EQ(without.body, OrderedDump(release, false));
  // The pre-parsed entry answers the same, and the same 400s.
  std::string body = VectorRequest([](Json& j) { j["version_name"] = "0.0.1"; });
  EXPECT_EQ(HandleCapgoUpdatesParsed(ParseJsonForTest(body), body, catalog).body,
            HandleCapgoUpdates(body, catalog).body);
  EXPECT_EQ(HandleCapgoUpdatesParsed(ParseJsonForTest("[1]"), "[1]", catalog).body,
            HandleCapgoUpdates("[1]", catalog).body);
  EXPECT_EQ(HandleCapgoUpdates("[1]", catalog).status, 400);
  EXPECT_EQ(HandleCapgoUpdatesParsed(ParseJsonForTest("{"), "{", catalog).body,
            HandleCapgoUpdates("{", catalog).body);
}

}  // namespace
}  // namespace airlock::server
