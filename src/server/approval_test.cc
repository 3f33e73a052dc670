// Four-eyes approval through the admin API (server_api_test_fixture.h), performed as the attacks it
// stops: the requester approving their own change, directly or with a token its token minted; one
// stolen token raising a rollout through a settings edit or switching the policy off. And the
// release statistics a dashboard reads.
#include "server/release_metrics.h"
#include "server/server_api_test_fixture.h"

namespace airlock::server {
namespace {

using namespace testing_fixture;  // NOLINT(google-build-using-namespace): the shared fixture

class ApprovalTest : public ServerApiTest {
 protected:
  void SetUp() override {
    ServerApiTest::SetUp();
    ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
    ASSERT_EQ(Enroll("dev-1", NewKey(crypto::KeyType::kX25519)).status, 201);
    auto bob = access_->CreateToken("bob", {access::Role::kReleaseManager});
    ASSERT_TRUE(bob) << bob.error().ToString();
    bob_token_ = bob->token;
    Reply tightened =
        Admin("PATCH", channel_, {{"approval_required", true}, {"approval_rollout_above", 20}});
    ASSERT_EQ(tightened.status, 200) << tightened.body.dump();
    EXPECT_EQ(tightened.body["approval_required"], true) << "tightening needs nobody";
  }
  Reply As(const std::string& token, const std::string& method, const std::string& target,
           const Json& body = nullptr) {
    return Call(method, target, body.is_null() ? "" : body.dump(), token);
  }
  storage::Channel Production() { return *store_->GetChannel(kApp, "production"); }

  const std::string app_ = std::string("/api/v1/apps/") + kApp;
  const std::string channel_ = app_ + "/channels/production";
  std::string bob_token_;
};

TEST_F(ApprovalTest, APublishWaitsForASecondPrincipalAndTheRequesterCannotApproveIt) {
  metadata::Targets t2 = targets_v1_;
  t2.version = 2;
  ASSERT_NO_FATAL_FAILURE(AddRelease(&t2, "1.1.0"));
  Reply pub =
      Admin("POST", app_ + "/releases", PublishBody("1.1.0", SignTargets(t2, targets_key_)));
  ASSERT_EQ(pub.status, 202) << pub.body.dump();
  EXPECT_EQ(pub.body["status"], "pending_approval");
  const int64_t id = pub.body["approval"]["id"];
  EXPECT_EQ(pub.body["approval"]["requested_by"], "owner");
  EXPECT_EQ(Production().current_version, "1.0.0");
  Reply waiting = Check("dev-1", "1.0.0");
  EXPECT_EQ(waiting.body["update"], false) << waiting.body.dump();
  EXPECT_EQ(waiting.body["reason"], "up_to_date") << "not offered while pending";

  const std::string approve = app_ + "/approvals/" + std::to_string(id) + "/approve";
  Reply self = Admin("POST", approve);
  EXPECT_EQ(self.status, 403) << self.body.dump();
  EXPECT_EQ(self.error(), "self_approval");
  // A token the requester's token minted is the requester too, whatever its name.
  Reply minted = Admin("POST", "/api/v1/tokens", {{"name", "helper"}, {"roles", {"admin"}}});
  ASSERT_EQ(minted.status, 201) << minted.body.dump();
  Reply grandchild = As(minted.body["token"], "POST", "/api/v1/tokens",
                        {{"name", "grandchild"}, {"roles", {"admin"}}});
  ASSERT_EQ(grandchild.status, 201) << grandchild.body.dump();
  for (const std::string& token :
       {minted.body["token"].get<std::string>(), grandchild.body["token"].get<std::string>()}) {
    Reply lineage = As(token, "POST", approve);
    EXPECT_EQ(lineage.status, 403) << lineage.body.dump();
    EXPECT_EQ(lineage.error(), "self_approval");
  }
  // A read-only principal cannot approve at all.
  auto reader = access_->CreateToken("rita", {access::Role::kReadOnly});
  ASSERT_TRUE(reader);
  EXPECT_EQ(As(reader->token, "POST", approve).status, 403);
  EXPECT_EQ(Production().current_version, "1.0.0");
  auto pending = store_->GetApproval(kApp, id);
  ASSERT_TRUE(pending);
  EXPECT_EQ(pending->status, "pending");

  Reply approved = As(bob_token_, "POST", approve);
  ASSERT_EQ(approved.status, 200) << approved.body.dump();
  EXPECT_EQ(approved.body["status"], "approved");
  EXPECT_EQ(approved.body["decided_by"], "bob");
  EXPECT_EQ(Production().current_version, "1.1.0");
  Reply check = Check("dev-1", "1.0.0");
  EXPECT_EQ(check.body["update"], true) << check.body.dump();
  EXPECT_EQ(check.body["version"], "1.1.0");
  Reply twice = As(bob_token_, "POST", approve);
  EXPECT_EQ(twice.status, 409) << twice.body.dump();
  Reply list = Admin("GET", app_ + "/approvals?status=approved");
  ASSERT_EQ(list.status, 200);
  ASSERT_EQ(list.body["approvals"].size(), 1u);
  EXPECT_EQ(list.body["approvals"][0]["version"], "1.1.0");
}

TEST_F(ApprovalTest, OneTokenCannotRaiseARolloutOrSwitchTheGuardOffAlone) {
  Reply lowered = Admin("PUT", channel_ + "/rollout", {{"percent", 10}});
  ASSERT_EQ(lowered.status, 200) << "lowering needs nobody: " << lowered.body.dump();
  Reply patch = Admin("PATCH", channel_, {{"rollout_percent", 100}});
  EXPECT_EQ(patch.status, 409) << patch.body.dump();
  EXPECT_EQ(patch.error(), "approval_required");
  Reply within = Admin("PUT", channel_ + "/rollout", {{"percent", 20}});
  EXPECT_EQ(within.status, 200) << "up to the threshold needs nobody";
  Reply rollout = Admin("PUT", channel_ + "/rollout", {{"percent", 100}});
  ASSERT_EQ(rollout.status, 202) << rollout.body.dump();
  EXPECT_EQ(Production().rollout_percent, 20);

  Reply off = Admin("PATCH", channel_, {{"approval_required", false}});
  ASSERT_EQ(off.status, 202) << off.body.dump();
  Reply looser = Admin("PATCH", channel_, {{"approval_rollout_above", 90}});
  ASSERT_EQ(looser.status, 202) << looser.body.dump();
  Reply mixed = Admin("PATCH", channel_, {{"approval_required", false}, {"paused", true}});
  EXPECT_EQ(mixed.status, 400) << mixed.body.dump();
  EXPECT_TRUE(Production().approval_required);
  EXPECT_EQ(Production().approval_rollout_above, 20);
  EXPECT_FALSE(Production().paused);

  // The requester may withdraw its own request; a second principal approves the other.
  const std::string looser_id = std::to_string(looser.body["approval"]["id"].get<int64_t>());
  Reply withdrawn = Admin("POST", app_ + "/approvals/" + looser_id + "/reject");
  ASSERT_EQ(withdrawn.status, 200) << withdrawn.body.dump();
  EXPECT_EQ(withdrawn.body["status"], "rejected");
  const std::string rollout_id = std::to_string(rollout.body["approval"]["id"].get<int64_t>());
  ASSERT_EQ(As(bob_token_, "POST", app_ + "/approvals/" + rollout_id + "/approve").status, 200);
  EXPECT_EQ(Production().rollout_percent, 100);
  const std::string off_id = std::to_string(off.body["approval"]["id"].get<int64_t>());
  ASSERT_EQ(As(bob_token_, "POST", app_ + "/approvals/" + off_id + "/approve").status, 200);
  EXPECT_FALSE(Production().approval_required);
  EXPECT_EQ(Admin("GET", app_ + "/approvals?status=pending").body["approvals"].size(), 0u);
  EXPECT_EQ(Admin("GET", app_ + "/approvals?status=maybe").status, 400);
  EXPECT_EQ(Admin("POST", app_ + "/approvals/abc/approve").status, 400);
  EXPECT_EQ(As(bob_token_, "POST", app_ + "/approvals/999/approve").status, 404);
}

TEST_F(ApprovalTest, TheTokenThatMintedTheRequesterCannotApproveASiblingCan) {
  Reply ci = Admin("POST", "/api/v1/tokens", {{"name", "ci"}, {"roles", {"release-manager"}}});
  ASSERT_EQ(ci.status, 201) << ci.body.dump();
  Reply alice =
      Admin("POST", "/api/v1/tokens", {{"name", "alice"}, {"roles", {"release-manager"}}});
  ASSERT_EQ(alice.status, 201) << alice.body.dump();
  ASSERT_EQ(Admin("PUT", channel_ + "/rollout", {{"percent", 10}}).status, 200);
  Reply rollout = As(ci.body["token"], "PUT", channel_ + "/rollout", {{"percent", 100}});
  ASSERT_EQ(rollout.status, 202) << rollout.body.dump();
  const std::string approve = app_ + "/approvals/" +
                              std::to_string(rollout.body["approval"]["id"].get<int64_t>()) +
                              "/approve";
  Reply parent = Admin("POST", approve);
  EXPECT_EQ(parent.status, 403) << parent.body.dump();
  EXPECT_EQ(parent.error(), "self_approval");
  Reply sibling = As(alice.body["token"], "POST", approve);
  ASSERT_EQ(sibling.status, 200) << sibling.body.dump();
  EXPECT_EQ(sibling.body["decided_by"], "alice");
}

TEST_F(ServerApiTest, ReleaseStatsCountTheFunnelAndAdoption) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());
  const std::string app = std::string("/api/v1/apps/") + kApp;
  for (const char* d : {"dev-1", "dev-2", "dev-3"}) {
    ASSERT_EQ(Enroll(d, NewKey(crypto::KeyType::kX25519)).status, 201);
  }
  auto event = [](const char* device, int64_t seq, const char* kind, int64_t at,
                  const char* reason = "") {
    return storage::DeviceEvent{kApp, device, seq, "1.0.0", kind, reason, "", at, at};
  };
  std::vector<storage::DeviceEvent> events = {
      event("dev-1", 1, "offered", kNow), event("dev-1", 2, "confirmed", kNow + 600),
      event("dev-2", 1, "offered", kNow), event("dev-2", 2, "confirmed", kNow + 2 * kDay),
      event("dev-3", 1, "offered", kNow), event("dev-3", 2, "failed", kNow + 60, "hash_mismatch"),
  };
  auto appended = store_->AppendDeviceEvents(events);
  ASSERT_TRUE(appended) << appended.error().ToString();
  now_ = kNow + 3 * kDay;
  Reply stats = Admin("GET", app + "/releases/1.0.0/stats");
  ASSERT_EQ(stats.status, 200) << stats.body.dump();
  EXPECT_EQ(stats.body["funnel"]["offered"], 3);
  EXPECT_EQ(stats.body["funnel"]["confirmed"], 2);
  EXPECT_EQ(stats.body["funnel"]["failed"], 1);
  EXPECT_EQ(stats.body["funnel"]["downloaded"], 0);
  EXPECT_EQ(stats.body["failed_by_reason"]["hash_mismatch"], 1);
  EXPECT_DOUBLE_EQ(stats.body["success_rate"].get<double>(), 2.0 / 3);
  EXPECT_EQ(stats.body["channels"], Json::array({"production"}));
  EXPECT_EQ(stats.body["adoption"]["active_devices"], 3);
  EXPECT_EQ(stats.body["adoption"]["on_release"], 2);
  EXPECT_DOUBLE_EQ(stats.body["adoption"]["within_24h"].get<double>(), 1.0 / 3);
  const Json& series = stats.body["adoption_series"];
  ASSERT_FALSE(series.empty());
  EXPECT_EQ(series[0]["confirmed"], 1) << series.dump();
  EXPECT_EQ(series.back()["confirmed"], 2);
  EXPECT_EQ(series.back()["t"], kNow + 3 * kDay);
  // The same figures as gauges for /metrics (the channel's current release only).
  auto text = RenderReleaseMetrics(store_.get(), now_);
  ASSERT_TRUE(text) << text.error().ToString();
  const std::string labels =
      std::string("{app=\"") + kApp + "\",channel=\"production\",version=\"1.0.0\"";
  for (const std::string& line : {"airlock_release_devices" + labels + ",step=\"confirmed\"} 2\n",
                                 "airlock_release_devices" + labels + ",step=\"downloaded\"} 0\n",
                                 "airlock_release_adoption_ratio" + labels + "} 0.666667\n",
                                 "airlock_release_success_ratio" + labels + "} 0.666667\n",
                                 std::string("# TYPE airlock_release_devices gauge\n")}) {
    EXPECT_NE(text->find(line), std::string::npos) << line << " not in\n" << *text;
  }
  EXPECT_EQ(Admin("GET", app + "/releases/9.9.9/stats").status, 404);
  EXPECT_EQ(Admin("GET", app + "/releases/latest/stats").status, 400);
  EXPECT_EQ(Admin("GET", app + "/releases/1.0.0/stats?active_days=0").status, 400);
}

}  // namespace
}  // namespace airlock::server
