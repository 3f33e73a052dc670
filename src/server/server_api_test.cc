// The admin and device API driven through a Router (handlers called directly), over a real SQLite
// store, a real AppRepo on a file vault and a real access store (server_api_test_fixture.h).
#include "server/server_api.h"

#include "server/server_api_test_fixture.h"

namespace airlock::server {
namespace {

using namespace testing_fixture;  // NOLINT(google-build-using-namespace): the shared fixture

// --- authentication and input validation

TEST_F(ServerApiTest, AdminRoutesNeedAKnownTokenWithTheRole) {
  Json body = {{"app_id", kApp}};
  Reply none = Call("POST", "/api/v1/apps", body.dump());
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.error(), "unauthorized");
  Reply unknown = Call("POST", "/api/v1/apps", body.dump(), "alk_" + std::string(64, '0'));
  EXPECT_EQ(unknown.status, 401);
  Reply garbage = Call("POST", "/api/v1/apps", body.dump(), "nonsense");
  EXPECT_EQ(garbage.status, 401);
  Reply reader = Call("POST", "/api/v1/apps", body.dump(), reader_token_);
  EXPECT_EQ(reader.status, 403);
  EXPECT_EQ(reader.error(), "forbidden");
  EXPECT_EQ(store_->ListApps()->size(), 0u);
  // Reading is allowed to the read-only token.
  Reply list = Call("GET", "/api/v1/apps", "", reader_token_);
  EXPECT_EQ(list.status, 200);
  EXPECT_EQ(list.body["apps"], Json::array());
}

TEST_F(ServerApiTest, CreateAppReturnsKeysAndTokenOnceAndRefusesDuplicatesAndBadInput) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  EXPECT_EQ(created_["app_id"], kApp);
  std::string token = created_["enrollment_token"];
  ASSERT_EQ(token.size(), 4u + 64u);
  EXPECT_EQ(token.substr(0, 4), "enr_");
  EXPECT_TRUE(created_["online_keys"].contains("snapshot_keyid"));
  auto app = store_->GetApp(kApp);
  ASSERT_TRUE(app);
  EXPECT_EQ(app->enroll_token_sha256, HexEncode(crypto::Sha256(AsBytes(token))));

  Reply dup = Admin("POST", "/api/v1/apps", {{"app_id", kApp}});
  EXPECT_EQ(dup.status, 409);
  EXPECT_EQ(dup.error(), "already_exists");
  Reply bad_json = Call("POST", "/api/v1/apps", "{\"app_id\": ", owner_token_);
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_EQ(bad_json.error(), "bad_request");
  Reply long_id = Admin("POST", "/api/v1/apps", {{"app_id", std::string(129, 'a')}});
  EXPECT_EQ(long_id.status, 400);
  Reply bad_chars = Admin("POST", "/api/v1/apps", {{"app_id", "com/example"}});
  EXPECT_EQ(bad_chars.status, 400);
  Reply bad_key = Admin("POST", "/api/v1/apps", {{"app_id", "x.y"}, {"app_key", "not a pem"}});
  EXPECT_EQ(bad_key.status, 400);
  EXPECT_EQ(store_->ListApps()->size(), 1u);

  Reply got = Admin("GET", std::string("/api/v1/apps/") + kApp);
  ASSERT_EQ(got.status, 200) << got.body.dump();
  EXPECT_EQ(got.body["root_version"], 1);
  EXPECT_EQ(got.body["content_key"], content_key_pem_);
  EXPECT_TRUE(got.body["app_key"].is_null());
  EXPECT_EQ(Admin("GET", "/api/v1/apps/no.such.app").status, 404);
}

TEST_F(ServerApiTest, EnrollmentTokenRotationRetiresTheOldToken) {
  CreateApp();
  const std::string old_token = enrollment_token_;
  auto device_key = NewKey(crypto::KeyType::kX25519);
  ASSERT_EQ(Enroll("dev-1", device_key).status, 201);

  const std::string path = std::string("/api/v1/apps/") + kApp + "/enrollment-token";
  EXPECT_EQ(Call("POST", path, "", reader_token_).status, 403);
  EXPECT_EQ(Call("POST", path, "").status, 401);
  EXPECT_EQ(Enroll("dev-2", NewKey(crypto::KeyType::kX25519), old_token).status, 201);  // unchanged

  Reply rotated = Admin("POST", path);
  ASSERT_EQ(rotated.status, 200) << rotated.raw;
  EXPECT_EQ(rotated.body["app_id"], kApp);
  const std::string new_token = rotated.body["enrollment_token"];
  EXPECT_EQ(new_token.rfind("enr_", 0), 0u);
  EXPECT_EQ(new_token.size(), 4u + 64u);
  EXPECT_NE(new_token, old_token);
  EXPECT_EQ(store_->GetApp(kApp)->enroll_token_sha256,
            HexEncode(crypto::Sha256(AsBytes(new_token))));

  Reply refused = Enroll("dev-3", NewKey(crypto::KeyType::kX25519), old_token);
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(refused.error(), "unauthorized");
  EXPECT_EQ(Enroll("dev-3", NewKey(crypto::KeyType::kX25519), new_token).status, 201);
  // Devices enrolled before stay enrolled (same key again: 200).
  EXPECT_EQ(Enroll("dev-1", device_key, new_token).status, 200);
  EXPECT_EQ(Check("dev-1", "0.9.0").status, 200);

  EXPECT_EQ(Admin("POST", "/api/v1/apps/no.such.app/enrollment-token").status, 404);
  EXPECT_EQ(Admin("POST", "/api/v1/apps/bad%20id/enrollment-token").status, 400);
}

TEST_F(ServerApiTest, ChannelsAreCreatedPatchedAndValidated) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  std::string base = std::string("/api/v1/apps/") + kApp + "/channels";
  Reply c = Admin("POST", base,
                  {{"name", "beta"},
                   {"allow_self_assign", true},
                   {"rollout_percent", 50},
                   {"min_native_version", "2.0.0"}});
  ASSERT_EQ(c.status, 201) << c.body.dump();
  EXPECT_EQ(c.body["rollout_percent"], 50);
  EXPECT_EQ(c.body["min_native_version"], "2.0.0");
  EXPECT_TRUE(c.body["current_version"].is_null());
  EXPECT_EQ(Admin("POST", base, {{"name", "beta"}}).status, 409);
  EXPECT_EQ(Admin("POST", base, {{"name", "x"}, {"rollout_percent", 101}}).status, 400);
  EXPECT_EQ(Admin("POST", base, {{"name", "x"}, {"min_native_version", "1.0"}}).status, 400);
  EXPECT_EQ(Admin("POST", base, {{"name", "x"}, {"ios", "yes"}}).status, 400);
  EXPECT_EQ(Admin("POST", "/api/v1/apps/no.such.app/channels", {{"name", "x"}}).status, 404);

  Reply patched = Admin("PATCH", base + "/beta", {{"ios", false}, {"paused", true}});
  ASSERT_EQ(patched.status, 200) << patched.body.dump();
  EXPECT_EQ(patched.body["ios"], false);
  EXPECT_EQ(patched.body["paused"], true);
  EXPECT_EQ(patched.body["rollout_percent"], 50);
  Reply bad_patch = Admin("PATCH", base + "/beta", {{"rollout_percent", -1}});
  EXPECT_EQ(bad_patch.status, 400);
  EXPECT_EQ(store_->GetChannel(kApp, "beta")->rollout_percent, 50);
  EXPECT_EQ(Admin("GET", base + "/nope").status, 404);
  Reply list = Admin("GET", base);
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.body["channels"].size(), 1u);
}

// --- blobs

TEST_F(ServerApiTest, BlobUploadIsContentAddressedAndChecksTheClaimedDigest) {
  std::string content = "some bundle bytes";
  std::string sha = HexEncode(crypto::Sha256(AsBytes(content)));
  Reply wrong = Upload(content, {{"X-Airlock-Sha256", std::string(64, 'f')}});
  EXPECT_EQ(wrong.status, 422);
  EXPECT_EQ(wrong.error(), "verification_failed");
  EXPECT_FALSE(fs::exists(data_ / "blobs" / sha.substr(0, 2) / sha));

  Reply first = Upload(content, {{"X-Airlock-Sha256", sha}});
  ASSERT_EQ(first.status, 201) << first.body.dump();
  EXPECT_EQ(first.body["sha256"], sha);
  EXPECT_EQ(first.body["length"], content.size());
  EXPECT_EQ(ReadTextFile(data_ / "blobs" / sha.substr(0, 2) / sha, 1024).value_or(""), content);
  Reply again = Upload(content);
  EXPECT_EQ(again.status, 200);

  Reply reader = Call("POST", "/api/v1/blobs", "", reader_token_, {},
                      UploadedFile{dir_->path() / "none", 0, std::string(64, '0')});
  EXPECT_EQ(reader.status, 403);
}

// --- releases

TEST_F(ServerApiTest, ReleaseWithBadVersionOrUnknownChannelIsRefused) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  ASSERT_NO_FATAL_FAILURE(CreateChannel("production", true));
  std::string path = std::string("/api/v1/apps/") + kApp + "/releases";
  Json body = PublishBody("1.0", Json::object());
  Reply bad = Admin("POST", path, body);
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.error(), "bad_request");
  body = PublishBody("1.0.0", Json::object(), "nope");
  EXPECT_EQ(Admin("POST", path, body).status, 404);
  body = PublishBody("1.0.0", Json::object());
  body["encryption"] = "rot13";
  EXPECT_EQ(Admin("POST", path, body).status, 400);
  Reply reader = Call("POST", path, PublishBody("1.0.0", Json::object()).dump(), reader_token_);
  EXPECT_EQ(reader.status, 403);
  EXPECT_TRUE(store_->ListReleases(kApp)->empty());
}

TEST_F(ServerApiTest, TargetsSignedByAWrongKeyChangeNothing) {
  ASSERT_NO_FATAL_FAILURE(CreateApp());
  ASSERT_NO_FATAL_FAILURE(CreateChannel("production", true));
  metadata::Targets t;
  t.version = 1;
  t.expires = now_ + 90 * kDay;
  ASSERT_NO_FATAL_FAILURE(AddRelease(&t, "1.0.0"));
  auto before = TufFiles();
  crypto::PrivateKey wrong = NewKey();
  Reply pub = Admin("POST", std::string("/api/v1/apps/") + kApp + "/releases",
                    PublishBody("1.0.0", SignTargets(t, wrong)));
  EXPECT_EQ(pub.status, 422) << pub.body.dump();
  EXPECT_EQ(pub.error(), "verification_failed");
  EXPECT_TRUE(store_->ListReleases(kApp)->empty());
  EXPECT_FALSE(store_->GetChannel(kApp, "production")->current_version.has_value());
  EXPECT_EQ(TufFiles(), before);

  // Listed without the app/version custom: also refused, nothing written.
  metadata::Targets plain = t;
  for (auto& [name, file] : plain.targets)
    file.custom = Json{{"app_id", kApp}, {"version", "9.9.9"}};
  Reply mislabeled = Admin("POST", std::string("/api/v1/apps/") + kApp + "/releases",
                           PublishBody("1.0.0", SignTargets(plain, targets_key_)));
  EXPECT_EQ(mislabeled.status, 422) << mislabeled.body.dump();
  EXPECT_EQ(TufFiles(), before);
  EXPECT_TRUE(store_->ListReleases(kApp)->empty());
}

TEST_F(ServerApiTest, PublishAndDeviceModeCheckWrapsTheContentKeyToTheDevice) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  Reply releases = Admin("GET", std::string("/api/v1/apps/") + kApp + "/releases");
  ASSERT_EQ(releases.status, 200);
  ASSERT_EQ(releases.body["releases"].size(), 1u);
  const Json& rel = releases.body["releases"][0];
  EXPECT_EQ(rel["version"], "1.0.0");
  EXPECT_EQ(rel["encryption"], "device");
  EXPECT_EQ(rel["format"], "alb");
  EXPECT_EQ(rel["capgo"]["sha256"], capgo_sha_["1.0.0"]);
  EXPECT_TRUE(fs::exists(data_ / "tuf" / kApp / "1.targets.json"));
  EXPECT_TRUE(fs::exists(data_ / "tuf" / kApp / "timestamp.json"));
  EXPECT_EQ(Admin("POST", std::string("/api/v1/apps/") + kApp + "/releases",
                  PublishBody("1.0.0", SignTargets(targets_v1_, targets_key_)))
                .status,
            409);

  // Enrollment.
  crypto::PrivateKey device_key = NewKey(crypto::KeyType::kX25519);
  Reply wrong_token = Enroll("dev-1", device_key, "enr_" + std::string(64, '0'));
  EXPECT_EQ(wrong_token.status, 401);
  EXPECT_EQ(wrong_token.error(), "unauthorized");
  Reply unenrolled = Check("dev-1", "0.9.0");
  EXPECT_EQ(unenrolled.status, 403);
  EXPECT_EQ(unenrolled.error(), "device_not_enrolled");
  Reply enrolled = Enroll("dev-1", device_key);
  ASSERT_EQ(enrolled.status, 201) << enrolled.body.dump();
  EXPECT_EQ(enrolled.body["enrolled"], true);
  EXPECT_EQ(Enroll("dev-1", device_key).status, 200);
  Reply other_key = Enroll("dev-1", NewKey(crypto::KeyType::kX25519));
  EXPECT_EQ(other_key.status, 409);
  EXPECT_EQ(other_key.error(), "conflict");
  Json bad_platform =
      EnrollBody("dev-2", NewKey(crypto::KeyType::kX25519), SigningKey("dev-2"), enrollment_token_);
  bad_platform["platform"] = "Android!";
  EXPECT_EQ(DeviceCall("/v1/enroll", bad_platform.dump(), "dev-2").status, 400);

  // Check: an update with the content key wrapped to this device.
  Reply check = Check("dev-1", "0.9.0");
  ASSERT_EQ(check.status, 200) << check.body.dump();
  EXPECT_EQ(check.body["update"], true);
  EXPECT_EQ(check.body["version"], "1.0.0");
  EXPECT_EQ(check.body["channel"], "production");
  EXPECT_EQ(check.body["rollback"], false);
  std::string bundle = bundles_["1.0.0"];
  std::string sha = HexEncode(crypto::Sha256(AsBytes(bundle)));
  EXPECT_EQ(check.body["target"]["name"], BundleName("1.0.0"));
  EXPECT_EQ(check.body["target"]["sha256"], sha);
  EXPECT_EQ(check.body["target"]["length"], bundle.size());
  EXPECT_EQ(check.body["url"], std::string(kPublicUrl) + "/v1/blobs/" + sha);
  EXPECT_EQ(check.body["tuf_url"], std::string(kPublicUrl) + "/tuf/" + kApp + "/");
  EXPECT_EQ(check.body["encryption"], "device");
  auto wrapped = crypto::Base64Decode(check.body["wrapped_key"].get<std::string>());
  ASSERT_TRUE(wrapped);
  Bytes aad = bundle::ContentKeyAad(kApp, "1.0.0");
  auto device_content_key = crypto::UnwrapKey(device_key, *wrapped, aad);
  ASSERT_TRUE(device_content_key) << device_content_key.error().ToString();
  // The same content key the bundle wraps to our own test recipient.
  auto info = bundle::InspectBundle(dir_->path() / "bundle-1.0.0.alb", nullptr);
  ASSERT_TRUE(info);
  std::optional<Bytes> expected;
  for (const auto& r : info->header.recipients) {
    auto k = crypto::UnwrapKey(recipient_key_, r.wrapped_key, aad);
    if (k) expected = *k;
  }
  ASSERT_TRUE(expected.has_value());
  EXPECT_EQ(*device_content_key, *expected);

  Reply same = Check("dev-1", "1.0.0");
  EXPECT_EQ(same.body, (Json{{"update", false}, {"reason", "up_to_date"}}));
  Reply bad_version = Check("dev-1", "1.0");
  EXPECT_EQ(bad_version.status, 400);

  // The warm check path made no further channel loads than the first.
  uint64_t loads = cache_->channel_loads();
  ASSERT_EQ(Check("dev-1", "0.9.0").status, 200);
  EXPECT_EQ(cache_->channel_loads(), loads);

  // Admin listing of devices.
  Reply devices = Admin("GET", std::string("/api/v1/apps/") + kApp + "/devices?limit=10");
  ASSERT_EQ(devices.status, 200);
  ASSERT_EQ(devices.body["devices"].size(), 1u);
  EXPECT_EQ(devices.body["devices"][0]["device_id"], "dev-1");
  EXPECT_EQ(Admin("GET", std::string("/api/v1/apps/") + kApp + "/devices?limit=0").status, 400);
}

TEST_F(ServerApiTest, RolloutPausePlatformAndNativeFloorGateTheUpdate) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  std::string channel = std::string("/api/v1/apps/") + kApp + "/channels/production";

  Reply rollout = Admin("PUT", channel + "/rollout", {{"percent", 0}});
  ASSERT_EQ(rollout.status, 200) << rollout.body.dump();
  EXPECT_EQ(rollout.body["rollout_percent"], 0);
  EXPECT_EQ(Check("dev-1", "0.9.0").body["reason"], "not_in_rollout");
  EXPECT_EQ(Admin("PUT", channel + "/rollout", {{"percent", 101}}).status, 400);
  ASSERT_EQ(Admin("PUT", channel + "/rollout", {{"percent", 100}}).status, 200);

  Reply paused = Admin("POST", channel + "/pause");
  ASSERT_EQ(paused.status, 200);
  EXPECT_EQ(paused.body["paused"], true);
  EXPECT_EQ(Check("dev-1", "0.9.0").body["reason"], "paused");
  ASSERT_EQ(Admin("POST", channel + "/resume").status, 200);
  EXPECT_EQ(Check("dev-1", "0.9.0").body["update"], true);

  ASSERT_EQ(Admin("PATCH", channel, {{"android", false}}).status, 200);
  EXPECT_EQ(Check("dev-1", "0.9.0").body["reason"], "platform_disabled");
  EXPECT_EQ(Check("dev-1", "0.9.0", "ios").body["update"], true);
  ASSERT_EQ(Admin("PATCH", channel, {{"android", true}, {"min_native_version", "2.0.0"}}).status,
            200);
  EXPECT_EQ(Check("dev-1", "0.9.0").body["reason"], "native_too_old");
}

// Issue 10 item 2: a token holder can only withhold releases, never re-route or downgrade them.
TEST_F(ServerApiTest, PublishObeysTheSignedChannelsAndFloor) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_NO_FATAL_FAILURE(CreateChannel("beta", false));
  const std::string releases = std::string("/api/v1/apps/") + kApp + "/releases";
  auto targets_version = [&] {
    return Admin("GET", std::string("/api/v1/apps/") + kApp).body["targets_version"];
  };
  const Json listed = targets_version();

  // Signed for beta only; a token holder asks for production: 422, nothing changed.
  metadata::Targets t2 = targets_v1_;
  t2.version = 2;
  ASSERT_NO_FATAL_FAILURE(AddRelease(&t2, "1.1.0", false, Json::array({"beta"})));
  Reply rerouted = Admin("POST", releases, PublishBody("1.1.0", SignTargets(t2, targets_key_)));
  EXPECT_EQ(rerouted.status, 422) << rerouted.body.dump();
  EXPECT_EQ(rerouted.error(), "verification_failed");
  EXPECT_NE(rerouted.body["message"].get<std::string>().find("is not signed for channel production"),
            std::string::npos)
      << rerouted.body.dump();
  EXPECT_EQ(store_->GetChannel(kApp, "production")->current_version, "1.0.0");
  EXPECT_EQ(store_->GetRelease(kApp, "1.1.0").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(targets_version(), listed);
  // The same metadata to the channel it names is accepted.
  Reply beta = Admin("POST", releases, PublishBody("1.1.0", SignTargets(t2, targets_key_), "beta"));
  ASSERT_EQ(beta.status, 201) << beta.body.dump();

  // A floor of 2 signed in 1.2.0; then 1.3.0 signed with floor 0: refused.
  metadata::Targets t3 = t2;
  t3.version = 3;
  ASSERT_NO_FATAL_FAILURE(AddRelease(&t3, "1.2.0", false, Json::array({"production"}), 2));
  ASSERT_EQ(Admin("POST", releases, PublishBody("1.2.0", SignTargets(t3, targets_key_))).status, 201);
  metadata::Targets t4 = t3;
  t4.version = 4;
  ASSERT_NO_FATAL_FAILURE(AddRelease(&t4, "1.3.0"));
  Reply low = Admin("POST", releases, PublishBody("1.3.0", SignTargets(t4, targets_key_)));
  EXPECT_EQ(low.status, 422) << low.body.dump();
  EXPECT_NE(low.body["message"].get<std::string>().find("below the highest signed (2)"),
            std::string::npos)
      << low.body.dump();
  EXPECT_EQ(store_->GetChannel(kApp, "production")->current_version, "1.2.0");
  EXPECT_EQ(store_->GetRelease(kApp, "1.3.0").error().code(), ErrorCode::kNotFound);
}



// A database holder (no API, no key) points a channel at a release its signed rules do not allow: the
// server withholds it instead of serving it.
TEST_F(ServerApiTest, ChannelRowsWrittenBehindTheApiCannotRerouteOrDowngrade) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_NO_FATAL_FAILURE(CreateChannel("beta", false));
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  metadata::Targets t2;
  ASSERT_NO_FATAL_FAILURE(PublishNext(targets_v1_, 2, "1.1.0", &t2));
  // Downgrade: production "rolled back" to 1.0.0, which is not a signed rollback target.
  ASSERT_TRUE(store_->SetChannelCurrentVersion(kApp, "production", "1.0.0", true));
  cache_->Invalidate(kApp);
  Reply down = Check("dev-1", "1.1.0");
  ASSERT_EQ(down.status, 200);
  EXPECT_EQ(down.body["update"], false);
  EXPECT_EQ(down.body["reason"], "no_release");
  // Re-route: beta pointed at 1.1.0, which is signed for production only.
  ASSERT_TRUE(store_->SetChannelCurrentVersion(kApp, "beta", "1.1.0", false));
  cache_->Invalidate(kApp);
  auto snapshot = cache_->Channels(kApp);
  ASSERT_TRUE(snapshot) << snapshot.error().ToString();
  for (const storage::ChannelRelease& row : (*snapshot)->channels) {
    EXPECT_FALSE(row.release.has_value()) << row.channel.name << " serves " << row.release->version;
  }
  // Downgrade without the rolled_back flag: 1.2.0 raises the floor to 1; a row pointing production
  // back at 1.1.0 (floor 0), flag off, is withheld too.
  metadata::Targets t3 = t2;
  t3.version = 3;
  ASSERT_NO_FATAL_FAILURE(AddRelease(&t3, "1.2.0", false, Json::array({"production"}), 1));
  ASSERT_EQ(Admin("POST", std::string("/api/v1/apps/") + kApp + "/releases",
                  PublishBody("1.2.0", SignTargets(t3, targets_key_)))
                .status,
            201);
  ASSERT_TRUE(store_->SetChannelCurrentVersion(kApp, "production", "1.1.0", false));
  cache_->Invalidate(kApp);
  Reply below = Check("dev-1", "1.0.0");
  EXPECT_EQ(below.body["update"], false) << below.body.dump();
  EXPECT_EQ(below.body["reason"], "no_release");
  // The Capgo blob of another release swapped into 1.2.0's row: withheld as well.
  {
    auto row = store_->GetRelease(kApp, "1.2.0");
    ASSERT_TRUE(row);
    storage::ChannelRelease swapped{*store_->GetChannel(kApp, "production"), *row};
    swapped.release->capgo_sha256 = capgo_sha_["1.1.0"];
    auto targets = repo_->CurrentTargets(kApp);
    ASSERT_TRUE(targets);
    EXPECT_FALSE(ChannelReleaseAllowed(*targets, swapped));
    swapped.release->capgo_sha256 = capgo_sha_["1.2.0"];
    swapped.channel.rolled_back = false;
    EXPECT_TRUE(ChannelReleaseAllowed(*targets, swapped));
  }
  // What the rules allow is still served.
  ASSERT_TRUE(store_->SetChannelCurrentVersion(kApp, "production", "1.2.0", false));
  cache_->Invalidate(kApp);
  Reply fine = Check("dev-1", "1.0.0");
  EXPECT_EQ(fine.body["update"], true);
  EXPECT_EQ(fine.body["version"], "1.2.0");
}

TEST_F(ServerApiTest, ReportsAreValidatedAndIdempotent) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  Json body = {{"app_id", kApp},
               {"device_id", "dev-1"},
               {"events",
                {{{"seq", 1}, {"version", "1.0.0"}, {"kind", "downloaded"}, {"occurred_at", kNow}},
                 {{"seq", 2},
                  {"version", "1.0.0"},
                  {"kind", "failed"},
                  {"reason_code", "E_DISK_FULL"},
                  {"detail", "no space"},
                  {"occurred_at", kNow}}}}};
  Reply first = DeviceCall("/v1/report", body.dump(), "dev-1");
  ASSERT_EQ(first.status, 200) << first.body.dump();
  EXPECT_EQ(first.body["stored"], 2);
  Reply again = DeviceCall("/v1/report", body.dump(), "dev-1");
  EXPECT_EQ(again.body["stored"], 0);

  Json bad_kind = body;
  bad_kind["events"][0]["kind"] = "exploded";
  bad_kind["events"][0]["seq"] = 3;
  EXPECT_EQ(DeviceCall("/v1/report", bad_kind.dump(), "dev-1").status, 400);
  Json empty = body;
  empty["events"] = Json::array();
  EXPECT_EQ(DeviceCall("/v1/report", empty.dump(), "dev-1").status, 400);
  Json stranger = body;
  stranger["device_id"] = "dev-9";
  EXPECT_EQ(DeviceCall("/v1/report", stranger.dump(), "dev-9").status, 403);
  EXPECT_EQ(store_->ListDeviceEvents(kApp, "dev-1")->size(), 2u);

  Reply events = Admin("GET", std::string("/api/v1/apps/") + kApp + "/devices/dev-1/events");
  ASSERT_EQ(events.status, 200);
  ASSERT_EQ(events.body["events"].size(), 2u);
  EXPECT_EQ(events.body["events"][1]["reason_code"], "E_DISK_FULL");
}

TEST_F(ServerApiTest, ChecksRecordLastSeenAtMostOncePerInterval) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  EXPECT_EQ(store_->GetDevice(kApp, "dev-1")->last_seen, kNow);
  now_ = kNow + 59;
  Reply first = Check("dev-1", "1.0.0");
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(store_->GetDevice(kApp, "dev-1")->last_seen, kNow);
  now_ = kNow + 60;
  ASSERT_EQ(Check("dev-1", "1.0.0").status, 200);
  EXPECT_EQ(store_->GetDevice(kApp, "dev-1")->last_seen, kNow + 60);
  now_ = kNow + 100;
  ASSERT_EQ(Check("dev-1", "1.0.0").status, 200);
  EXPECT_EQ(store_->GetDevice(kApp, "dev-1")->last_seen, kNow + 60);
}

TEST_F(ServerApiTest, RepeatedDeviceModeChecksGiveTheSameWrappedKey) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  ASSERT_EQ(Enroll("dev-2", NewKey(crypto::KeyType::kX25519)).status, 201);
  Reply a = Check("dev-1", "0.9.0");
  Reply b = Check("dev-1", "0.9.0");
  Reply c = Check("dev-2", "0.9.0");
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(a.body["wrapped_key"], b.body["wrapped_key"]);
  EXPECT_NE(a.body["wrapped_key"], c.body["wrapped_key"]);
}

TEST_F(ServerApiTest, OversizedJsonBodiesAre413) {
  std::string big = "{\"app_id\": \"" + std::string(1 << 20, 'a') + "\"}";
  Reply admin = Call("POST", "/api/v1/apps", big, owner_token_);
  EXPECT_EQ(admin.status, 413);
  EXPECT_EQ(admin.error(), "body_too_large");
  Reply device = Call("POST", "/v1/check", big);
  EXPECT_EQ(device.status, 413);
  Reply deep = Call("POST", "/v1/check", std::string(40, '[') + std::string(40, ']'));
  EXPECT_EQ(deep.status, 400);
}

TEST_F(ServerApiTest, CapgoUpdatesOffersTheCapgoBlob) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  Json request = {{"platform", "android"},
                  {"device_id", "7239a82f-4ea8-4e33-9085-f4ad974d3fc4"},
                  {"app_id", kApp},
                  {"version_build", "0.9.0"},
                  {"version_name", "builtin"},
                  {"plugin_version", "8.51.23"},
                  {"is_emulator", false},
                  {"is_prod", true}};
  Reply reply = Call("POST", "/updates", request.dump());
  ASSERT_EQ(reply.status, 200) << reply.body.dump();
  EXPECT_EQ(reply.body["version"], "1.0.0") << reply.body.dump();
  EXPECT_EQ(reply.body["url"], std::string(kPublicUrl) + "/v1/blobs/" + capgo_sha_["1.0.0"]);
  EXPECT_EQ(reply.body["session_key"], "iv:key");
  EXPECT_EQ(reply.body["checksum"], "abc123");
}

// The /v1/check and /updates replies are built by hand; they must be the bytes the nlohmann::json
// dump they replaced gave for the same values (std::map key order for /v1/check, insertion order
// for /updates).
TEST_F(ServerApiTest, HandBuiltRepliesMatchTheNlohmannDump) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  Reply check = Check("dev-1", "0.9.0");
  ASSERT_EQ(check.status, 200) << check.raw;
  std::string bundle = bundles_["1.0.0"];
  std::string sha = HexEncode(crypto::Sha256(AsBytes(bundle)));
  Json expected = {
      {"update", true},
      {"version", "1.0.0"},
      {"channel", "production"},
      {"rollback", false},
      {"target", {{"name", BundleName("1.0.0")}, {"length", bundle.size()}, {"sha256", sha}}},
      {"url", std::string(kPublicUrl) + "/v1/blobs/" + sha},
      {"tuf_url", std::string(kPublicUrl) + "/tuf/" + kApp + "/"},
      {"encryption", "device"},
      {"wrapped_key", check.body["wrapped_key"]}};
  EXPECT_EQ(check.raw, expected.dump());
  EXPECT_EQ(check.raw, check.body.dump());

  Reply same = Check("dev-1", "1.0.0");
  EXPECT_EQ(same.raw, R"({"reason":"up_to_date","update":false})");

  Json request = {{"platform", "android"},
                  {"device_id", "not-enrolled-1"},
                  {"app_id", kApp},
                  {"version_build", "0.9.0"},
                  {"version_name", "0.9.0"},
                  {"plugin_version", "6.0.0"}};
  Reply updates = Call("POST", "/updates", request.dump());
  ASSERT_EQ(updates.status, 200) << updates.raw;
  nlohmann::ordered_json capgo;
  capgo["version"] = "1.0.0";
  capgo["url"] = std::string(kPublicUrl) + "/v1/blobs/" + capgo_sha_["1.0.0"];
  capgo["session_key"] = "iv:key";
  capgo["checksum"] = "abc123";
  EXPECT_EQ(updates.raw, capgo.dump());
}

// Capgo traffic from devices not enrolled here reads no device row (the app snapshot holds the
// overrides); /v1/check of such a device is served from the negative device cache after one read;
// enrolling through this process makes the device visible at once.
TEST_F(ServerApiTest, UnknownDevicesAreServedFromTheCacheUntilTheyEnroll) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  Json request = {{"platform", "android"},     {"device_id", "dev-9"},
                  {"app_id", kApp},            {"version_build", "0.9.0"},
                  {"version_name", "0.9.0"},   {"plugin_version", "6.0.0"}};
  ASSERT_EQ(Call("POST", "/updates", request.dump()).status, 200);
  uint64_t loads = cache_->device_loads();
  Reply again = Call("POST", "/updates", request.dump());
  ASSERT_EQ(again.status, 200);
  EXPECT_EQ(again.body["version"], "1.0.0");
  EXPECT_EQ(cache_->device_loads(), loads);  // warm: no database read
  EXPECT_EQ(Check("dev-9", "0.9.0").status, 403);
  EXPECT_EQ(cache_->device_loads(), loads + 1);  // /v1/check needs the row: one read...
  EXPECT_EQ(Check("dev-9", "0.9.0").status, 403);
  EXPECT_EQ(cache_->device_loads(), loads + 1);  // ...then the cached "unknown"

  ASSERT_EQ(Enroll("dev-9", NewKey(crypto::KeyType::kX25519)).status, 201);
  Reply check = Check("dev-9", "0.9.0");
  ASSERT_EQ(check.status, 200) << check.raw;
  EXPECT_EQ(check.body["update"], true);
}

TEST_F(ServerApiTest, TokensAreCreatedWithoutEscalationAndTheAuditLogIsReadable) {
  Reply created = Admin("POST", "/api/v1/tokens", {{"name", "ci"}, {"roles", {"release-manager"}}});
  ASSERT_EQ(created.status, 201) << created.body.dump();
  std::string ci = created.body["token"];
  EXPECT_EQ(ci.substr(0, 4), "alk_");
  EXPECT_EQ(Admin("POST", "/api/v1/tokens", {{"name", "ci"}, {"roles", {"read-only"}}}).status,
            409);
  EXPECT_EQ(Admin("POST", "/api/v1/tokens", {{"name", "x"}, {"roles", {"wizard"}}}).status, 400);
  // The release manager may publish, but not mint tokens.
  Reply minted =
      Call("POST", "/api/v1/tokens", Json{{"name", "y"}, {"roles", {"owner"}}}.dump(), ci);
  EXPECT_EQ(minted.status, 403);
  Reply app = Call("POST", "/api/v1/apps", Json{{"app_id", kApp}}.dump(), ci);
  EXPECT_EQ(app.status, 201) << app.body.dump();

  Reply tokens = Admin("GET", "/api/v1/tokens");
  ASSERT_EQ(tokens.status, 200);
  EXPECT_EQ(tokens.body["principals"].size(), 3u);

  Reply audit = Admin("GET", "/api/v1/audit?limit=2");
  ASSERT_EQ(audit.status, 200) << audit.body.dump();
  ASSERT_EQ(audit.body["records"].size(), 2u);
  EXPECT_LT(audit.body["records"][0]["seq"], audit.body["records"][1]["seq"]);
  EXPECT_EQ(Call("GET", "/api/v1/audit", "", reader_token_).status, 403);
}

TEST_F(ServerApiTest, AdminSetsAndClearsADeviceChannelOverride) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  const std::string apps = std::string("/api/v1/apps/") + kApp;
  ASSERT_EQ(Admin("POST", apps + "/channels", {{"name", "beta"}}).status, 201);
  EXPECT_EQ(Check("dev-1", "0.9.0").body["update"], true);  // default channel: production

  Reply set = Admin("PUT", apps + "/devices/dev-1/channel", {{"channel", "beta"}});
  ASSERT_EQ(set.status, 200) << set.body.dump();
  EXPECT_EQ(set.body["channel_override"], "beta");
  // Seen at once by the check path (the device's cache entry is invalidated): beta has no release.
  EXPECT_EQ(Check("dev-1", "0.9.0").body["reason"], "no_release");

  Reply unknown_channel = Admin("PUT", apps + "/devices/dev-1/channel", {{"channel", "nightly"}});
  EXPECT_EQ(unknown_channel.status, 404);
  Reply unknown_device = Admin("PUT", apps + "/devices/dev-2/channel", {{"channel", "beta"}});
  EXPECT_EQ(unknown_device.status, 404);
  EXPECT_EQ(Admin("PUT", apps + "/devices/dev-1/channel", {{"channel", 5}}).status, 400);
  EXPECT_EQ(Admin("PUT", apps + "/devices/dev-1/channel", Json::object()).status, 400);
  EXPECT_EQ(Check("dev-1", "0.9.0").body["reason"], "no_release");  // refusals changed nothing

  Reply cleared = Admin("PUT", apps + "/devices/dev-1/channel", {{"channel", nullptr}});
  ASSERT_EQ(cleared.status, 200) << cleared.body.dump();
  EXPECT_TRUE(cleared.body["channel_override"].is_null());
  EXPECT_EQ(Check("dev-1", "0.9.0").body["update"], true);
}

// --- Capgo /updates reads device channel overrides from the cached app snapshot

// A Capgo /updates request for `device`, running 0.9.0.
std::string UpdatesBody(const std::string& device) {
  return Json{{"platform", "android"},     {"device_id", device},
              {"app_id", kApp},            {"version_build", "0.9.0"},
              {"version_name", "0.9.0"},   {"plugin_version", "6.0.0"}}
      .dump();
}

TEST_F(ServerApiTest, WarmCapgoUpdatesOfNewDevicesReadNoDeviceRowAndNoChannels) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_NO_FATAL_FAILURE(CreateChannel("beta", false));
  // A device row a claimed id may use (no signing key; a native device's override is never read
  // through Capgo: device_auth_test.cc).
  ASSERT_TRUE(
      store_->CreateDevice({kApp, "dev-1", std::string(64, 'b'), "android", std::nullopt, kNow}));
  const std::string apps = std::string("/api/v1/apps/") + kApp;
  ASSERT_EQ(Admin("PUT", apps + "/devices/dev-1/channel", {{"channel", "beta"}}).status, 200);
  ASSERT_EQ(Call("POST", "/updates", UpdatesBody("dev-0")).status, 200);  // loads the snapshot
  const uint64_t device_loads = cache_->device_loads();
  const uint64_t channel_loads = cache_->channel_loads();
  for (int i = 1; i <= 50; ++i) {
    Reply reply = Call("POST", "/updates", UpdatesBody("new-" + std::to_string(i)));
    ASSERT_EQ(reply.status, 200);
    ASSERT_EQ(reply.body["version"], "1.0.0") << reply.raw;
  }
  // The device with an override gets its channel (beta: no release yet), still from the snapshot.
  Reply overridden = Call("POST", "/updates", UpdatesBody("dev-1"));
  ASSERT_EQ(overridden.status, 200);
  EXPECT_EQ(overridden.body["error"], "no_bundle") << overridden.raw;
  EXPECT_EQ(cache_->device_loads(), device_loads);
  EXPECT_EQ(cache_->channel_loads(), channel_loads);
}

TEST_F(ServerApiTest, OverridesSetThroughThisProcessAreSeenByTheNextCapgoUpdates) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  const std::string apps = std::string("/api/v1/apps/") + kApp;
  ASSERT_EQ(Admin("POST", apps + "/channels", {{"name", "beta"}, {"allow_self_assign", true}}).status,
            201);
  // A device row without a signing key (enrolled before migration 0004): the Capgo routes may assign
  // it (a natively enrolled device they may not: device_auth_test.cc).
  ASSERT_TRUE(store_->CreateDevice({kApp, "dev-1", std::string(64, 'b'), "android", std::nullopt, kNow}));
  EXPECT_EQ(Call("POST", "/updates", UpdatesBody("dev-1")).body["version"], "1.0.0");

  // Capgo channel_self: the device assigns itself to beta; no clock moves.
  Json self = Json::parse(UpdatesBody("dev-1"));
  self["channel"] = "beta";
  Reply assigned = Call("POST", "/channel_self", self.dump());
  ASSERT_EQ(assigned.status, 200) << assigned.raw;
  EXPECT_EQ(Call("POST", "/updates", UpdatesBody("dev-1")).body["error"], "no_bundle");
  EXPECT_EQ(Call("POST", "/updates", UpdatesBody("dev-2")).body["version"], "1.0.0");

  // The admin API clears it: back on the default channel at once.
  ASSERT_EQ(Admin("PUT", apps + "/devices/dev-1/channel", {{"channel", nullptr}}).status, 200);
  EXPECT_EQ(Call("POST", "/updates", UpdatesBody("dev-1")).body["version"], "1.0.0");
  // And sets it again.
  ASSERT_EQ(Admin("PUT", apps + "/devices/dev-1/channel", {{"channel", "beta"}}).status, 200);
  EXPECT_EQ(Call("POST", "/updates", UpdatesBody("dev-1")).body["error"], "no_bundle");
  // Capgo DELETE /channel_self removes the assignment.
  Reply removed = Call("DELETE", "/channel_self", UpdatesBody("dev-1"));
  ASSERT_EQ(removed.status, 200) << removed.raw;
  EXPECT_EQ(Call("POST", "/updates", UpdatesBody("dev-1")).body["version"], "1.0.0");
}

}  // namespace
}  // namespace airlock::server
