// Rollback through the admin API (server_api_test_fixture.h): only to a release the developer
// signed as a rollback target for the channel, and then to every device of the channel.
#include "server/server_api_test_fixture.h"

namespace airlock::server {
namespace {

using namespace testing_fixture;  // NOLINT(google-build-using-namespace): the shared fixture

TEST_F(ServerApiTest, RollbackNeedsASignedRollbackTarget) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease(/*rollback_allowed=*/true));
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  std::string channel = std::string("/api/v1/apps/") + kApp + "/channels/production";

  // 1.1.0 in targets v2, which still lists 1.0.0 as a rollback target.
  metadata::Targets t2 = targets_v1_;
  t2.version = 2;
  ASSERT_NO_FATAL_FAILURE(AddRelease(&t2, "1.1.0"));
  Reply pub = Admin("POST", std::string("/api/v1/apps/") + kApp + "/releases",
                    PublishBody("1.1.0", SignTargets(t2, targets_key_)));
  ASSERT_EQ(pub.status, 201) << pub.body.dump();
  EXPECT_EQ(Check("dev-1", "1.1.0").body["reason"], "up_to_date");

  EXPECT_EQ(Admin("POST", channel + "/rollback", {{"to", "0.5.0"}}).status, 404);
  EXPECT_EQ(Admin("POST", channel + "/rollback", {{"to", "1.0"}}).status, 400);
  Reply rolled = Admin("POST", channel + "/rollback", {{"to", "1.0.0"}});
  ASSERT_EQ(rolled.status, 200) << rolled.body.dump();
  EXPECT_EQ(rolled.body["current_version"], "1.0.0");
  Reply check = Check("dev-1", "1.1.0");
  ASSERT_EQ(check.status, 200);
  EXPECT_EQ(check.body["update"], true);
  EXPECT_EQ(check.body["version"], "1.0.0");
  EXPECT_EQ(check.body["rollback"], true);

  // 1.1.0 is not a rollback target: refused, the channel stays.
  Reply refused = Admin("POST", channel + "/rollback", {{"to", "1.1.0"}});
  EXPECT_EQ(refused.status, 422) << refused.body.dump();
  EXPECT_EQ(refused.error(), "verification_failed");
  EXPECT_EQ(store_->GetChannel(kApp, "production")->current_version, "1.0.0");
}

TEST_F(ServerApiTest, RollbackObeysTheSignedChannelsAndTakesASignedPermissionInOneStep) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  ASSERT_NO_FATAL_FAILURE(CreateChannel("beta", false));
  const std::string app = std::string("/api/v1/apps/") + kApp;
  metadata::Targets t2;
  ASSERT_NO_FATAL_FAILURE(PublishNext(targets_v1_, 2, "1.1.0", &t2));

  // 1.0.0 is not signed as a rollback target: refused.
  Reply plain = Admin("POST", app + "/channels/production/rollback", {{"to", "1.0.0"}});
  EXPECT_EQ(plain.status, 422) << plain.body.dump();

  // The developer signs it as a rollback target, for production only.
  metadata::Targets t3 = t2;
  t3.version = 3;
  for (auto& [name, file] : t3.targets) {
    if ((*file.custom)["version"] == "1.0.0") (*file.custom)["rollback_allowed"] = true;
  }
  const Json signed3 = SignTargets(t3, targets_key_);
  // Beta is not among its channels: refused, and the signed metadata is not taken either.
  Reply beta = Admin("POST", app + "/channels/beta/rollback",
                     {{"to", "1.0.0"}, {"targets_metadata", signed3}});
  EXPECT_EQ(beta.status, 422) << beta.body.dump();
  EXPECT_NE(beta.body["message"].get<std::string>().find("is not signed for channel beta"),
            std::string::npos)
      << beta.body.dump();
  Reply info = Admin("GET", app);
  EXPECT_EQ(info.body["targets_version"], 2);
  // Production, with the permission: one step, targets v3 served, channel rolled back.
  Reply rolled = Admin("POST", app + "/channels/production/rollback",
                       {{"to", "1.0.0"}, {"targets_metadata", signed3}});
  ASSERT_EQ(rolled.status, 200) << rolled.body.dump();
  EXPECT_EQ(rolled.body["current_version"], "1.0.0");
  EXPECT_EQ(rolled.body["changed"], true);
  EXPECT_EQ(Admin("GET", app).body["targets_version"], 3);
  // Metadata signed by another key is refused (422) and changes nothing.
  metadata::Targets t4 = t3;
  t4.version = 4;
  const crypto::PrivateKey wrong = NewKey(crypto::KeyType::kEd25519);
  Reply forged = Admin("POST", app + "/channels/production/rollback",
                       {{"to", "1.0.0"}, {"targets_metadata", SignTargets(t4, wrong)}});
  EXPECT_EQ(forged.status, 422) << forged.body.dump();
  EXPECT_EQ(Admin("GET", app).body["targets_version"], 3);
  // Again to 1.0.0, the current release: 200, "changed": false, and even genuine new metadata sent
  // along is not accepted.
  Reply same = Admin("POST", app + "/channels/production/rollback",
                     {{"to", "1.0.0"}, {"targets_metadata", SignTargets(t4, targets_key_)}});
  ASSERT_EQ(same.status, 200) << same.body.dump();
  EXPECT_EQ(same.body["changed"], false);
  EXPECT_EQ(same.body["current_version"], "1.0.0");
  EXPECT_EQ(same.body["rolled_back"], true);
  EXPECT_EQ(Admin("GET", app).body["targets_version"], 3);
}

// Review finding: a permission signed on the Capgo zip alone made the rollback answer 200, and then
// the serving gate withheld the row from every device. Now the rollback is refused and changes
// nothing.
TEST_F(ServerApiTest, RollbackNeedsThePermissionOnEveryBlobOfTheRelease) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  const std::string app = std::string("/api/v1/apps/") + kApp;
  metadata::Targets t2;
  ASSERT_NO_FATAL_FAILURE(PublishNext(targets_v1_, 2, "1.1.0", &t2));
  metadata::Targets t3 = t2;
  t3.version = 3;
  (*t3.targets.at(CapgoName("1.0.0")).custom)["rollback_allowed"] = true;
  Reply half = Admin("POST", app + "/channels/production/rollback",
                     {{"to", "1.0.0"}, {"targets_metadata", SignTargets(t3, targets_key_)}});
  EXPECT_EQ(half.status, 422) << half.body.dump();
  EXPECT_EQ(half.error(), "verification_failed");
  EXPECT_NE(half.body["message"].get<std::string>().find(
                "not every blob of the release (bundle and Capgo zip) is signed as a rollback "
                "target for channel production"),
            std::string::npos)
      << half.body.dump();
  EXPECT_EQ(Admin("GET", app).body["targets_version"], 2);
  EXPECT_EQ(store_->GetChannel(kApp, "production")->current_version, "1.1.0");
  EXPECT_FALSE(store_->GetChannel(kApp, "production")->rolled_back);
  // With the permission on both blobs the same rollback goes through.
  (*t3.targets.at(BundleName("1.0.0")).custom)["rollback_allowed"] = true;
  Reply whole = Admin("POST", app + "/channels/production/rollback",
                      {{"to", "1.0.0"}, {"targets_metadata", SignTargets(t3, targets_key_)}});
  ASSERT_EQ(whole.status, 200) << whole.body.dump();
  EXPECT_EQ(store_->GetChannel(kApp, "production")->current_version, "1.0.0");
}

// A rollback takes every device of the channel off the release, whatever the rollout share: a
// device outside a 20 % rollout that had the release (installed before the share was cut) must
// not be left on it. The share applies again to the next publish.
TEST_F(ServerApiTest, RollbackReachesDevicesOutsideTheRollout) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease(/*rollback_allowed=*/true));
  ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
  const std::string channel = std::string("/api/v1/apps/") + kApp + "/channels/production";
  metadata::Targets t2;
  ASSERT_NO_FATAL_FAILURE(PublishNext(targets_v1_, 2, "1.1.0", &t2));
  ASSERT_EQ(Admin("PUT", channel + "/rollout", {{"percent", 0}}).status, 200);
  EXPECT_EQ(Check("dev-1", "1.1.0").body["reason"], "not_in_rollout");

  Reply rolled = Admin("POST", channel + "/rollback", {{"to", "1.0.0"}});
  ASSERT_EQ(rolled.status, 200) << rolled.body.dump();
  EXPECT_EQ(rolled.body["rollout_percent"], 0);  // kept for the next publish
  Reply check = Check("dev-1", "1.1.0");
  ASSERT_EQ(check.status, 200) << check.body.dump();
  EXPECT_EQ(check.body["update"], true);
  EXPECT_EQ(check.body["version"], "1.0.0");
  EXPECT_EQ(check.body["rollback"], true);

  // The next publish clears the rollback: the share gates again.
  metadata::Targets t3;
  ASSERT_NO_FATAL_FAILURE(PublishNext(t2, 3, "1.2.0", &t3));
  EXPECT_EQ(Check("dev-1", "1.0.0").body["reason"], "not_in_rollout");
}

}  // namespace
}  // namespace airlock::server
