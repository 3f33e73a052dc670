// Attacks on the device API and the refusals (docs/api/server-api.md, "Device authentication"):
// requests without the device's proof, revoked and pending devices, enrollment policies and limits,
// report quotas, and Capgo requests naming a natively enrolled device. Each asserts the status, the
// error code and that the database did not change.
#include <gtest/gtest.h>

#include "server/server_api_test_fixture.h"

namespace airlock::server {
namespace {

using namespace testing_fixture;  // NOLINT(google-build-using-namespace): the shared fixture

class DeviceAuthTest : public ServerApiTest {
 protected:
  std::string Apps() const { return std::string("/api/v1/apps/") + kApp; }

  Json ReportBody(const std::string& device, int64_t first_seq, int count) {
    Json events = Json::array();
    for (int i = 0; i < count; ++i) {
      events.push_back({{"seq", first_seq + i},
                        {"version", "1.0.0"},
                        {"kind", "downloaded"},
                        {"occurred_at", kNow}});
    }
    return {{"app_id", kApp}, {"device_id", device}, {"events", events}};
  }

  size_t EventCount(const std::string& device) {
    auto events = store_->ListDeviceEvents(kApp, device);
    EXPECT_TRUE(events);
    return events ? events->size() : 0;
  }

  std::string ReleaseSha() const {
    return HexEncode(crypto::Sha256(AsBytes(bundles_.at("1.0.0"))));
  }
};

TEST_F(DeviceAuthTest, ACheckWithoutTheDevicesProofIs401AndTouchesNothing) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  now_ = kNow + 600;  // last_seen is stale: any accepted check would write it
  const std::string body = CheckBody("dev-1", "0.9.0").dump();

  Reply unsigned_check = Call("POST", "/v1/check", body);
  EXPECT_EQ(unsigned_check.status, 401);
  EXPECT_EQ(unsigned_check.error(), "unauthorized");
  auto stranger = NewKey();
  Reply wrong_key = DeviceCall("/v1/check", body, "dev-1", &stranger);
  EXPECT_EQ(wrong_key.status, 401);
  EXPECT_EQ(wrong_key.error(), "unauthorized");
  EXPECT_NE(wrong_key.body["message"].get<std::string>().find("bad device signature"),
            std::string::npos);
  // Signed by dev-1, but for another body: the signature covers the body's SHA-256.
  auto sig = crypto::SignDeviceRequest(SigningKey("dev-1"), "POST", "/v1/check", "dev-1", now_,
                                       AsBytes(CheckBody("dev-1", "0.1.0").dump()));
  Reply tampered = Call("POST", "/v1/check", body, std::nullopt,
                        {{"X-Airlock-Device", "dev-1"},
                         {"X-Airlock-Timestamp", sig->timestamp},
                         {"X-Airlock-Signature", sig->signature}});
  EXPECT_EQ(tampered.status, 401);
  // A signature made for /v1/report does not open /v1/check.
  auto report_sig = crypto::SignDeviceRequest(SigningKey("dev-1"), "POST", "/v1/report", "dev-1",
                                              now_, AsBytes(body));
  Reply other_path = Call("POST", "/v1/check", body, std::nullopt,
                          {{"X-Airlock-Device", "dev-1"},
                           {"X-Airlock-Timestamp", report_sig->timestamp},
                           {"X-Airlock-Signature", report_sig->signature}});
  EXPECT_EQ(other_path.status, 401);
  // A captured request replayed after the window.
  Reply stale = DeviceCall("/v1/check", body, "dev-1", nullptr, now_ - 301);
  EXPECT_EQ(stale.status, 401);
  EXPECT_EQ(stale.error(), "clock_skew");

  auto device = store_->GetDevice(kApp, "dev-1");
  ASSERT_TRUE(device);
  EXPECT_EQ(device->last_seen, kNow);
  EXPECT_EQ(wrap_calls_.load(), 0);
  EXPECT_EQ(store_->GetWrappedKey(kApp, "dev-1", ReleaseSha()).error().code(),
            ErrorCode::kNotFound);

  // With its proof (inside the window) the same device is served and seen.
  Reply ok = Check("dev-1", "0.9.0");
  ASSERT_EQ(ok.status, 200) << ok.raw;
  EXPECT_EQ(ok.body["update"], true);
  EXPECT_EQ(store_->GetDevice(kApp, "dev-1")->last_seen, kNow + 600);
}

TEST_F(DeviceAuthTest, OneDeviceCannotReportForAnotherAndSeqIsPerDevice) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Enroll("dev-a", NewKey(crypto::KeyType::kX25519)).status, 201);
  ASSERT_EQ(Enroll("dev-b", NewKey(crypto::KeyType::kX25519)).status, 201);
  // dev-a sends seq 1..3 under dev-b's id, signed with its own key (as dev-b, and as itself).
  const std::string forged = ReportBody("dev-b", 1, 3).dump();
  Reply as_b = DeviceCall("/v1/report", forged, "dev-b", &SigningKey("dev-a"));
  EXPECT_EQ(as_b.status, 401);
  EXPECT_EQ(as_b.error(), "unauthorized");
  Reply as_a = DeviceCall("/v1/report", forged, "dev-a");
  EXPECT_EQ(as_a.status, 401);
  EXPECT_EQ(as_a.error(), "unauthorized");
  EXPECT_EQ(EventCount("dev-b"), 0u);

  // dev-a's own seq 1..3 do not pre-empt dev-b's: de-duplication is per (app, device, seq).
  ASSERT_EQ(DeviceCall("/v1/report", ReportBody("dev-a", 1, 3).dump(), "dev-a").body["stored"], 3);
  Reply b = DeviceCall("/v1/report", forged, "dev-b");
  ASSERT_EQ(b.status, 200) << b.raw;
  EXPECT_EQ(b.body["stored"], 3);
  // A replayed report (inside the window) stores nothing twice.
  EXPECT_EQ(DeviceCall("/v1/report", forged, "dev-b").body["stored"], 0);
  EXPECT_EQ(EventCount("dev-a"), 3u);
  EXPECT_EQ(EventCount("dev-b"), 3u);
}

TEST_F(DeviceAuthTest, EnrollmentMustBeSignedByTheKeyItRegisters) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  auto x25519 = NewKey(crypto::KeyType::kX25519);
  auto claimed = NewKey();
  auto actual = NewKey();
  Json body = EnrollBody("dev-1", x25519, claimed, enrollment_token_);
  Reply refused = DeviceCall("/v1/enroll", body.dump(), "dev-1", &actual);
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(refused.error(), "unauthorized");
  Reply unsigned_enroll = Call("POST", "/v1/enroll", body.dump());
  EXPECT_EQ(unsigned_enroll.status, 401);
  EXPECT_EQ(store_->GetDevice(kApp, "dev-1").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(DeviceCall("/v1/enroll", body.dump(), "dev-1", &claimed).status, 201);
  // Someone else enrolling the same id with their own keys: 409, the row keeps the first keys.
  Reply takeover = Enroll("dev-1", NewKey(crypto::KeyType::kX25519));
  EXPECT_EQ(takeover.status, 409);
  EXPECT_EQ(store_->GetDevice(kApp, "dev-1")->signing_key,
            HexEncode(*claimed.Public().RawPublic()));
}

TEST_F(DeviceAuthTest, ARevokedDeviceIsRefusedEverywhereAndGetsNoWrappedKey) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  auto x25519 = NewKey(crypto::KeyType::kX25519);
  ASSERT_EQ(Enroll("dev-1", x25519).status, 201);
  Reply revoked = Admin("POST", Apps() + "/devices/dev-1/revoke");
  ASSERT_EQ(revoked.status, 200) << revoked.raw;
  EXPECT_EQ(revoked.body["status"], "revoked");
  now_ = kNow + 600;

  Reply check = CheckOnce("dev-1", "0.9.0");
  EXPECT_EQ(check.status, 403);
  EXPECT_EQ(check.error(), "device_revoked");
  Reply report = DeviceCall("/v1/report", ReportBody("dev-1", 1, 1).dump(), "dev-1");
  EXPECT_EQ(report.status, 403);
  EXPECT_EQ(report.error(), "device_revoked");
  Reply again = Enroll("dev-1", x25519);
  EXPECT_EQ(again.status, 403);
  EXPECT_EQ(again.error(), "device_revoked");
  WaitForDeviceKeyWraps(device_routes_.get());
  EXPECT_EQ(wrap_calls_.load(), 0);
  EXPECT_EQ(store_->GetWrappedKey(kApp, "dev-1", ReleaseSha()).error().code(),
            ErrorCode::kNotFound);
  EXPECT_EQ(EventCount("dev-1"), 0u);
  auto device = store_->GetDevice(kApp, "dev-1");
  EXPECT_EQ(device->last_seen, kNow);
  EXPECT_EQ(device->status, storage::DeviceStatus::kRevoked);
  // Revocation is final: approving it again is refused.
  Reply approve = Admin("POST", Apps() + "/devices/dev-1/approve");
  EXPECT_EQ(approve.status, 409);
  EXPECT_EQ(approve.error(), "conflict");
  EXPECT_EQ(Admin("POST", Apps() + "/devices/ghost/revoke").status, 404);
  Reply list = Admin("GET", Apps() + "/devices");
  EXPECT_EQ(list.body["devices"][0]["status"], "revoked");
}

TEST_F(DeviceAuthTest, ADeviceRevokedAfterItsKeyWasWrappedGetsItNoMore) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  ASSERT_EQ(Check("dev-1", "0.9.0").body["update"], true);
  ASSERT_EQ(Check("dev-1", "0.9.0").body["update"], true);
  EXPECT_EQ(wrap_calls_.load(), 1);  // once per device and release, stored
  EXPECT_TRUE(store_->GetWrappedKey(kApp, "dev-1", ReleaseSha()));
  ASSERT_EQ(Admin("POST", Apps() + "/devices/dev-1/revoke").status, 200);
  Reply check = CheckOnce("dev-1", "0.9.0");
  EXPECT_EQ(check.status, 403);
  EXPECT_EQ(check.error(), "device_revoked");
  EXPECT_FALSE(check.body.contains("wrapped_key"));
}

TEST_F(DeviceAuthTest, ApprovePolicyKeepsNewDevicesPendingUntilApproved) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  Reply set = Admin("PUT", Apps() + "/enrollment-policy", {{"policy", "approve"}});
  ASSERT_EQ(set.status, 200) << set.raw;
  EXPECT_EQ(set.body["policy"], "approve");
  EXPECT_EQ(Admin("PUT", Apps() + "/enrollment-policy", {{"policy", "open"}}).status, 400);
  EXPECT_EQ(Admin("GET", Apps() + "/enrollment-policy").body["policy"], "approve");
  EXPECT_EQ(Call("PUT", Apps() + "/enrollment-policy", Json{{"policy", "token"}}.dump(),
                 reader_token_)
                .status,
            403);

  Reply enrolled = Enroll("dev-1", NewKey(crypto::KeyType::kX25519));
  ASSERT_EQ(enrolled.status, 201) << enrolled.raw;
  EXPECT_EQ(enrolled.body["status"], "pending");
  now_ = kNow + 600;
  Reply check = CheckOnce("dev-1", "0.9.0");
  EXPECT_EQ(check.status, 403);
  EXPECT_EQ(check.error(), "device_pending");
  Reply report = DeviceCall("/v1/report", ReportBody("dev-1", 1, 1).dump(), "dev-1");
  EXPECT_EQ(report.status, 403);
  EXPECT_EQ(report.error(), "device_pending");
  EXPECT_EQ(EventCount("dev-1"), 0u);
  EXPECT_EQ(store_->GetDevice(kApp, "dev-1")->last_seen, kNow);
  EXPECT_EQ(wrap_calls_.load(), 0);

  Reply approved = Admin("POST", Apps() + "/devices/dev-1/approve");
  ASSERT_EQ(approved.status, 200) << approved.raw;
  EXPECT_EQ(approved.body["status"], "active");
  EXPECT_EQ(Check("dev-1", "0.9.0").body["update"], true);
}

TEST_F(DeviceAuthTest, PreauthPolicyEnrollsOnlyRegisteredKeys) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Admin("PUT", Apps() + "/enrollment-policy", {{"policy", "preauth"}}).status, 200);
  // The enrollment token alone no longer enrolls.
  Reply unregistered = Enroll("dev-1", NewKey(crypto::KeyType::kX25519));
  EXPECT_EQ(unregistered.status, 403);
  EXPECT_EQ(unregistered.error(), "not_preauthorized");
  EXPECT_EQ(store_->GetDevice(kApp, "dev-1").error().code(), ErrorCode::kNotFound);

  const std::string key = HexEncode(*SigningKey("dev-1").Public().RawPublic());
  Reply added = Admin("POST", Apps() + "/preauthorized-keys",
                      {{"keys", {{{"signing_key", key}, {"device_id", "dev-1"}}}}});
  ASSERT_EQ(added.status, 200) << added.raw;
  EXPECT_EQ(added.body["added"], 1);
  EXPECT_EQ(Admin("POST", Apps() + "/preauthorized-keys", {{"keys", {{{"signing_key", "zz"}}}}})
                .status,
            400);
  EXPECT_EQ(Admin("GET", Apps() + "/preauthorized-keys").body["keys"][0]["signing_key"], key);
  // The key is registered for dev-1: another id enrolling with it is refused.
  Json as_other = EnrollBody("dev-2", NewKey(crypto::KeyType::kX25519), SigningKey("dev-1"), "");
  Reply other = DeviceCall("/v1/enroll", as_other.dump(), "dev-2", &SigningKey("dev-1"));
  EXPECT_EQ(other.status, 403);
  EXPECT_EQ(other.error(), "not_preauthorized");
  EXPECT_EQ(store_->GetDevice(kApp, "dev-2").error().code(), ErrorCode::kNotFound);
  // dev-1 enrolls with it, without the enrollment token.
  Json body = EnrollBody("dev-1", NewKey(crypto::KeyType::kX25519), SigningKey("dev-1"), "");
  Reply enrolled = DeviceCall("/v1/enroll", body.dump(), "dev-1");
  ASSERT_EQ(enrolled.status, 201) << enrolled.raw;
  EXPECT_EQ(enrolled.body["status"], "active");
  EXPECT_EQ(Check("dev-1", "0.9.0").body["update"], true);
}

TEST_F(DeviceAuthTest, ADeviceWithoutASigningKeyMustEnrollAgain) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  auto x25519 = NewKey(crypto::KeyType::kX25519);
  const std::string x_hex = HexEncode(*x25519.Public().RawPublic());
  ASSERT_TRUE(store_->CreateDevice({kApp, "dev-1", x_hex, "android", std::nullopt, kNow}));
  Reply check = CheckOnce("dev-1", "0.9.0");
  EXPECT_EQ(check.status, 401);
  EXPECT_EQ(check.error(), "unauthorized");
  // Its X25519 public key is no secret, so whoever enrolls with it first only gets a pending device
  // (review finding: the attacker's signing key was active at once, the real device locked out).
  Reply enrolled = Enroll("dev-1", x25519);
  ASSERT_EQ(enrolled.status, 200) << enrolled.raw;
  EXPECT_EQ(enrolled.body["status"], "pending");
  EXPECT_EQ(store_->GetDevice(kApp, "dev-1")->signing_key,
            HexEncode(*SigningKey("dev-1").Public().RawPublic()));
  Reply waiting = CheckOnce("dev-1", "0.9.0");
  EXPECT_EQ(waiting.status, 403);
  EXPECT_EQ(waiting.error(), "device_pending");
  ASSERT_EQ(Admin("POST", Apps() + "/devices/dev-1/approve").status, 200);
  EXPECT_EQ(Check("dev-1", "0.9.0").body["update"], true);
}

// Review finding: an X25519 key of low order (here all zeros) made every check of the device cost a
// vault unwrap that then failed. It is refused at enrollment; nothing is stored.
TEST_F(DeviceAuthTest, AnUnusableX25519KeyIsRefusedAtEnrollment) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  Json body =
      EnrollBody("dev-1", NewKey(crypto::KeyType::kX25519), SigningKey("dev-1"), enrollment_token_);
  body["public_key"] = std::string(64, '0');
  Reply refused = DeviceCall("/v1/enroll", body.dump(), "dev-1");
  EXPECT_EQ(refused.status, 400) << refused.raw;
  EXPECT_EQ(refused.body["message"], "public_key is not a usable X25519 public key");
  EXPECT_EQ(store_->GetDevice(kApp, "dev-1").error().code(), ErrorCode::kNotFound);
}

// Review finding: a refused enrollment (409) bound the preauthorized key to the wrong device id, so
// its rightful device could no longer enroll.
TEST_F(DeviceAuthTest, ARefusedEnrollmentLeavesThePreauthorizedKeyFree) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  ASSERT_EQ(Admin("PUT", Apps() + "/enrollment-policy", {{"policy", "preauth"}}).status, 200);
  const crypto::PrivateKey& factory = SigningKey("dev-2");
  ASSERT_EQ(
      Admin("POST", Apps() + "/preauthorized-keys",
            {{"keys", Json::array({{{"signing_key", HexEncode(*factory.Public().RawPublic())}}})}})
          .status,
      200);
  // The key used to re-enroll dev-1 (another device's id): 409, and the key stays unbound.
  Json taken = EnrollBody("dev-1", NewKey(crypto::KeyType::kX25519), factory, "");
  Reply conflict = DeviceCall("/v1/enroll", taken.dump(), "dev-1", &factory);
  EXPECT_EQ(conflict.status, 409) << conflict.raw;
  Reply rightful = Enroll("dev-2", NewKey(crypto::KeyType::kX25519));
  EXPECT_EQ(rightful.status, 201) << rightful.raw;
}

TEST_F(DeviceAuthTest, CapgoRequestsCannotChangeANativelyEnrolledDevice) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Admin("POST", Apps() + "/channels", {{"name", "beta"}, {"allow_self_assign", true}})
                .status,
            201);
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  Json capgo = {{"platform", "android"},   {"device_id", "dev-1"},    {"app_id", kApp},
                {"version_build", "0.9.0"}, {"version_name", "0.9.0"}, {"plugin_version", "6.0.0"}};
  // channel_self naming the native device's id: refused, its override unchanged.
  Json self = capgo;
  self["channel"] = "beta";
  Reply set = Call("POST", "/channel_self", self.dump());
  EXPECT_EQ(set.status, 400) << set.raw;
  EXPECT_EQ(set.error(), "device_enrolled_natively");
  EXPECT_EQ(store_->GetDevice(kApp, "dev-1")->channel_override, std::nullopt);
  // An admin-set override cannot be removed or read through Capgo either.
  ASSERT_EQ(Admin("PUT", Apps() + "/devices/dev-1/channel", {{"channel", "beta"}}).status, 200);
  Reply removed = Call("DELETE", "/channel_self", capgo.dump());
  EXPECT_EQ(removed.status, 400) << removed.raw;
  EXPECT_EQ(store_->GetDevice(kApp, "dev-1")->channel_override, "beta");
  Reply current = Call("PUT", "/channel_self", capgo.dump());
  EXPECT_EQ(current.body["status"], "default") << current.raw;
  // Stats naming it are accepted and dropped.
  Json stats = capgo;
  stats["action"] = "set";
  Reply recorded = Call("POST", "/stats", stats.dump());
  EXPECT_EQ(recorded.status, 200) << recorded.raw;
  EXPECT_EQ(EventCount("dev-1"), 0u);
  // Nor does /updates follow it (review finding: a claimed id read the admin-set channel, even of a
  // revoked device): the claimed id is answered as any Capgo device, from the default channel.
  ASSERT_EQ(Admin("POST", Apps() + "/devices/dev-1/revoke").status, 200);
  Json updates = capgo;
  updates.update(
      {{"version_code", "1"}, {"version_os", "14"}, {"is_emulator", false}, {"is_prod", true}});
  Reply offered = Call("POST", "/updates", updates.dump());
  EXPECT_EQ(offered.status, 200) << offered.raw;
  EXPECT_EQ(offered.body["version"], "1.0.0") << offered.raw;
}

// A device enrolled before signing keys (no signing key) is still Capgo-assignable, unless revoked;
// its Capgo stats are bounded per hour like signed reports.
TEST_F(DeviceAuthTest, CapgoRoutesLeaveARevokedOldDeviceAloneAndBoundItsStats) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(
      Admin("POST", Apps() + "/channels", {{"name", "beta"}, {"allow_self_assign", true}}).status,
      201);
  ASSERT_TRUE(
      store_->CreateDevice({kApp, "old-1", std::string(64, 'a'), "android", std::nullopt, kNow}));
  Json capgo = {{"platform", "android"},    {"device_id", "old-1"},    {"app_id", kApp},
                {"version_build", "0.9.0"}, {"version_name", "0.9.0"}, {"plugin_version", "6.0.0"}};
  Json stats = capgo;
  stats["action"] = "set";
  ASSERT_EQ(Call("POST", "/stats", stats.dump()).status, 200);
  EXPECT_EQ(EventCount("old-1"), 1u);
  ASSERT_EQ(Admin("POST", Apps() + "/devices/old-1/revoke").status, 200);
  Json self = capgo;
  self["channel"] = "beta";
  Reply set = Call("POST", "/channel_self", self.dump());
  EXPECT_EQ(set.status, 400) << set.raw;
  EXPECT_EQ(set.error(), "device_enrolled_natively");
  EXPECT_EQ(store_->GetDevice(kApp, "old-1")->channel_override, std::nullopt);
  ASSERT_EQ(Call("POST", "/stats", stats.dump()).status, 200);
  EXPECT_EQ(EventCount("old-1"), 1u);
}

// Review (issue 13): one /stats batch may name many devices and apps. Each event is written only
// for its own (app, device) row a claimed id may use: a native device, an unknown id and the same
// id under another app are accepted and dropped, wherever they sit in the batch.
TEST_F(DeviceAuthTest, AStatsBatchMixingDevicesWritesOnlyTheRowsClaimedIdsMayUse) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  ASSERT_TRUE(
      store_->CreateDevice({kApp, "old-1", std::string(64, 'a'), "android", std::nullopt, kNow}));
  auto event = [](std::string_view app, std::string_view device) {
    return Json{{"platform", "android"},    {"device_id", device},     {"app_id", app},
                {"version_build", "0.9.0"}, {"version_name", "0.9.0"}, {"plugin_version", "6.0.0"},
                {"action", "set"}};
  };
  Json batch = Json::array();
  for (int i = 0; i < 3; ++i) {
    batch.push_back(event(kApp, "old-1"));
    batch.push_back(event(kApp, "dev-1"));
    batch.push_back(event(kApp, "nobody-" + std::to_string(i)));
    batch.push_back(event("com.example.other", "old-1"));
  }
  Reply reply = Call("POST", "/stats", batch.dump());
  ASSERT_EQ(reply.status, 200) << reply.raw;
  ASSERT_EQ(reply.body["results"].size(), batch.size()) << reply.raw;
  for (const auto& result : reply.body["results"]) EXPECT_EQ(result["status"], "ok") << reply.raw;
  EXPECT_EQ(EventCount("old-1"), 3u);
  EXPECT_EQ(EventCount("dev-1"), 0u);
  EXPECT_EQ(EventCount("nobody-0"), 0u);
  EXPECT_EQ(store_->GetDevice(kApp, "nobody-0").error().code(), ErrorCode::kNotFound);
}

// Review finding: a publishing (CI) token could switch an app from preauth back to token
// enrollment. Choosing how devices get credentials now needs token.manage (owner, admin).
TEST_F(DeviceAuthTest, APublishingTokenCannotLoosenEnrollment) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Admin("PUT", Apps() + "/enrollment-policy", {{"policy", "preauth"}}).status, 200);
  const std::string ci = access_->CreateToken("ci", {access::Role::kReleaseManager})->token;
  Reply loosen = Call("PUT", Apps() + "/enrollment-policy", Json{{"policy", "token"}}.dump(), ci);
  EXPECT_EQ(loosen.status, 403) << loosen.raw;
  EXPECT_EQ(loosen.error(), "forbidden");
  Reply add =
      Call("POST", Apps() + "/preauthorized-keys",
           Json{{"keys", Json::array({{{"signing_key", std::string(64, 'b')}}})}}.dump(), ci);
  EXPECT_EQ(add.status, 403) << add.raw;
  EXPECT_EQ(store_->GetApp(kApp)->enroll_policy, storage::EnrollPolicy::kPreauth);
  EXPECT_TRUE(store_->ListPreauthorizedKeys(kApp, 10)->empty());
}

class DeviceLimitsTest : public DeviceAuthTest {
 protected:
  void CustomizeDeps(ServerApiDeps* deps) override {
    deps->enroll_per_address = {3, 0};
    deps->max_events_per_device_hour = 3;
  }
};

TEST_F(DeviceLimitsTest, EnrollmentAttemptsAreRateLimitedPerAddress) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Enroll("dev-" + std::to_string(i), NewKey(crypto::KeyType::kX25519),
                     "enr_" + std::string(64, '0'))
                  .status,
              401);
  }
  Reply limited = Enroll("dev-9", NewKey(crypto::KeyType::kX25519));
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.error(), "too_many_requests");
  EXPECT_EQ(store_->GetDevice(kApp, "dev-9").error().code(), ErrorCode::kNotFound);
}

TEST_F(DeviceLimitsTest, ReportsOverTheHourlyQuotaAre429AndStoreNothing) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  ASSERT_EQ(DeviceCall("/v1/report", ReportBody("dev-1", 1, 2).dump(), "dev-1").body["stored"], 2);
  Reply over = DeviceCall("/v1/report", ReportBody("dev-1", 3, 2).dump(), "dev-1");
  EXPECT_EQ(over.status, 429);
  EXPECT_EQ(over.error(), "too_many_events");
  EXPECT_EQ(EventCount("dev-1"), 2u);
  // A retry of what was stored is still answered (it adds nothing).
  EXPECT_EQ(DeviceCall("/v1/report", ReportBody("dev-1", 1, 2).dump(), "dev-1").body["stored"], 0);
  now_ = kNow + 3601;
  Reply later = DeviceCall("/v1/report", ReportBody("dev-1", 3, 2).dump(), "dev-1");
  EXPECT_EQ(later.status, 200) << later.raw;
  EXPECT_EQ(EventCount("dev-1"), 4u);
}

TEST_F(DeviceLimitsTest, CapgoStatsOfAnOldDeviceAreBoundedPerHour) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_TRUE(
      store_->CreateDevice({kApp, "old-1", std::string(64, 'a'), "android", std::nullopt, kNow}));
  StoreStatsSink sink(
      store_.get(), [this] { return now_; }, 3);
  std::vector<CapgoStatsEvent> events(5);
  for (auto& e : events) {
    e.device.app_id = kApp;
    e.device.device_id = "old-1";
    e.device.version_name = "0.9.0";
    e.action = "set";
  }
  ASSERT_TRUE(sink.Record({events.begin(), events.begin() + 2}));
  EXPECT_EQ(EventCount("old-1"), 2u);
  ASSERT_TRUE(sink.Record(events));  // over the quota: accepted, dropped
  EXPECT_EQ(EventCount("old-1"), 2u);
  now_ = kNow + 3601;
  ASSERT_TRUE(sink.Record({events.begin(), events.begin() + 3}));
  EXPECT_EQ(EventCount("old-1"), 5u);
}

class EnrollPerAppTest : public DeviceAuthTest {
 protected:
  void CustomizeDeps(ServerApiDeps* deps) override { deps->enroll_per_app = {2, 0}; }
};

TEST_F(EnrollPerAppTest, EnrollmentAttemptsAreRateLimitedPerApp) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  EXPECT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  EXPECT_EQ(Enroll("dev-2", NewKey(crypto::KeyType::kX25519)).status, 201);
  Reply limited = Enroll("dev-3", NewKey(crypto::KeyType::kX25519));
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.error(), "too_many_requests");
  EXPECT_EQ(store_->GetDevice(kApp, "dev-3").error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace airlock::server
