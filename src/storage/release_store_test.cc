// Approvals and release statistics in the store, on SQLite and on a real PostgreSQL server.
#include <gtest/gtest.h>

#include "storage/store_test_fixture.h"

namespace airlock::storage {
namespace {

using namespace store_testing;  // NOLINT(google-build-using-namespace)

template <typename Backend>
class ReleaseStoreTest : public StoreTest<Backend> {
 protected:
  void SetUp() override {
    StoreTest<Backend>::SetUp();
    Channel c = this->MakeChannel("production");
    c.approval_required = true;
    c.approval_rollout_above = 20;
    c.rollout_percent = 10;
    ASSERT_TRUE(this->store_->CreateChannel(c));
    ASSERT_TRUE(this->store_->PublishRelease(this->MakeRelease("1.0.0"), "production"));
    ASSERT_TRUE(this->store_->CreateRelease(this->MakeRelease("1.1.0")));
  }
  Approval Request(std::string kind) {
    Approval a;
    a.app_id = "com.example.app";
    a.channel = "production";
    a.kind = std::move(kind);
    a.requested_by = "ci";
    a.requester_lineage = "tok_1";
    a.requested_at = kNow;
    return a;
  }
  Channel Production() {
    auto c = this->store_->GetChannel("com.example.app", "production");
    EXPECT_TRUE(c) << c.error().ToString();
    return c ? *c : Channel{};
  }
};
TYPED_TEST_SUITE(ReleaseStoreTest, Backends, BackendNames);

TYPED_TEST(ReleaseStoreTest, AnApprovedPublishMovesTheChannelOnceARejectedOneNever) {
  Approval publish = this->Request("publish");
  publish.version = "1.1.0";
  auto made = this->store_->CreateApproval(publish);
  ASSERT_TRUE(made) << made.error().ToString();
  EXPECT_EQ(made->status, "pending");
  EXPECT_EQ(this->Production().current_version, "1.0.0") << "nothing moves while pending";
  auto approved = this->store_->DecideApproval("com.example.app", made->id, true, "bob", kNow + 5);
  ASSERT_TRUE(approved) << approved.error().ToString();
  EXPECT_EQ(approved->status, "approved");
  EXPECT_EQ(approved->decided_by, "bob");
  EXPECT_EQ(this->Production().current_version, "1.1.0");
  auto again = this->store_->DecideApproval("com.example.app", made->id, false, "carol", kNow + 6);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kRollback);
  EXPECT_EQ(this->Production().current_version, "1.1.0");

  Approval back = this->Request("publish");
  back.version = "1.0.0";
  auto second = this->store_->CreateApproval(back);
  ASSERT_TRUE(second);
  auto rejected = this->store_->DecideApproval("com.example.app", second->id, false, "bob", kNow);
  ASSERT_TRUE(rejected);
  EXPECT_EQ(rejected->status, "rejected");
  EXPECT_EQ(this->Production().current_version, "1.1.0");
  auto pending = this->store_->ListApprovals("com.example.app", "pending");
  ASSERT_TRUE(pending);
  EXPECT_TRUE(pending->empty());
  auto all = this->store_->ListApprovals("com.example.app", "");
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ(all->at(0).id, second->id) << "newest first";
}

TYPED_TEST(ReleaseStoreTest, APublishWaitingForApprovalCreatesItsReleaseOrNothing) {
  Approval publish = this->Request("publish");
  publish.version = "1.2.0";
  publish.channel = "staging";  // no such channel
  Release release = this->MakeRelease("1.2.0");
  auto refused = this->store_->CreateApproval(publish, &release);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kNotFound);
  auto absent = this->store_->GetRelease("com.example.app", "1.2.0");
  ASSERT_FALSE(absent) << "the release was rolled back with the approval";
  EXPECT_EQ(absent.error().code(), ErrorCode::kNotFound);
  publish.channel = "production";
  auto made = this->store_->CreateApproval(publish, &release);
  ASSERT_TRUE(made) << made.error().ToString();
  EXPECT_TRUE(this->store_->GetRelease("com.example.app", "1.2.0"));
  EXPECT_EQ(this->Production().current_version, "1.0.0");
  auto twice = this->store_->CreateApproval(publish, &release);
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code(), ErrorCode::kAlreadyExists);
}

TYPED_TEST(ReleaseStoreTest, ASettingsUpdateCannotRaiseARolloutPastTheApprovalThreshold) {
  Channel c = this->Production();
  c.rollout_percent = 100;
  c.approval_required = false;  // not written by UpdateChannel
  auto updated = this->store_->UpdateChannel(c);
  ASSERT_FALSE(updated);
  EXPECT_EQ(updated.error().code(), ErrorCode::kRollback);
  EXPECT_EQ(this->Production().rollout_percent, 10);
  EXPECT_TRUE(this->Production().approval_required);
  c.rollout_percent = 20;  // up to the threshold needs nobody
  ASSERT_TRUE(this->store_->UpdateChannel(c));
  EXPECT_EQ(this->Production().rollout_percent, 20);
  EXPECT_TRUE(this->Production().approval_required);

  Approval rollout = this->Request("rollout");
  rollout.rollout_percent = 100;
  auto made = this->store_->CreateApproval(rollout);
  ASSERT_TRUE(made);
  ASSERT_TRUE(this->store_->DecideApproval("com.example.app", made->id, true, "bob", kNow));
  EXPECT_EQ(this->Production().rollout_percent, 100);
}

TYPED_TEST(ReleaseStoreTest, PolicyChangesAndBadRequestsAreRefusedOrApplied) {
  Approval policy = this->Request("policy");
  policy.policy_required = false;
  policy.policy_rollout_above = 100;
  auto made = this->store_->CreateApproval(policy);
  ASSERT_TRUE(made) << made.error().ToString();
  ASSERT_TRUE(this->store_->DecideApproval("com.example.app", made->id, true, "bob", kNow));
  EXPECT_FALSE(this->Production().approval_required);
  EXPECT_EQ(this->Production().approval_rollout_above, 100);

  Approval unknown = this->Request("publish");
  unknown.version = "9.9.9";
  auto refused = this->store_->CreateApproval(unknown);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kNotFound);
  Approval bad = this->Request("rollout");
  bad.rollout_percent = 101;
  refused = this->store_->CreateApproval(bad);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
  Approval other = this->Request("dance");
  refused = this->store_->CreateApproval(other);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
  auto missing = this->store_->DecideApproval("com.example.app", 999, true, "bob", kNow);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  auto all = this->store_->ListApprovals("com.example.app", "");
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 1u) << "refused requests store nothing";
}

TYPED_TEST(ReleaseStoreTest, StatsCountDevicesPerStepReasonAndAdoption) {
  // Four active devices and one not seen for long: d1 and d2 confirm 1.1.0 (d2 two hours after
  // publishing), d3 fails its hash, d4 confirms and then rolls back, d5 is inactive.
  for (const char* id : {"d1", "d2", "d3", "d4", "d5"}) {
    Device d = this->MakeDevice(id);
    d.last_seen = std::string(id) == "d5" ? kNow - 90 * 86400 : kNow;
    ASSERT_TRUE(this->store_->CreateDevice(d));
  }
  auto event = [](std::string device, int64_t seq, std::string kind, int64_t received,
                  std::string reason = "") {
    return DeviceEvent{"com.example.app", std::move(device), seq, "1.1.0",
                       std::move(kind),   std::move(reason), "",  received,
                       received};
  };
  std::vector<DeviceEvent> events = {
      event("d1", 1, "offered", kNow),
      event("d1", 2, "downloaded", kNow + 10),
      event("d1", 3, "installed", kNow + 20),
      event("d1", 4, "confirmed", kNow + 30),
      event("d2", 1, "offered", kNow),
      event("d2", 2, "confirmed", kNow + 7200),
      event("d3", 1, "offered", kNow),
      event("d3", 2, "failed", kNow + 40, "hash_mismatch"),
      event("d4", 1, "confirmed", kNow + 50),
      event("d4", 2, "rolled_back", kNow + 60, "health_timeout"),
  };
  ASSERT_TRUE(this->store_->AppendDeviceEvents(events));
  auto stats =
      this->store_->GetReleaseStats("com.example.app", "1.1.0", kNow - 30 * 86400, kNow, 3600);
  ASSERT_TRUE(stats) << stats.error().ToString();
  EXPECT_EQ(stats->funnel.at("offered"), 3);
  EXPECT_EQ(stats->funnel.at("confirmed"), 3);
  EXPECT_EQ(stats->funnel.at("failed"), 1);
  EXPECT_EQ(stats->funnel.at("rolled_back"), 1);
  EXPECT_EQ(stats->failed_by_reason.at("hash_mismatch"), 1);
  EXPECT_EQ(stats->failed_by_reason.at("health_timeout"), 1);
  EXPECT_EQ(stats->active_devices, 4);
  EXPECT_EQ(stats->on_release, 2) << "d4 rolled back after confirming";
  std::vector<std::pair<int64_t, int64_t>> expected = {{0, 2}, {7200, 1}};
  EXPECT_EQ(stats->confirmed_by_bucket, expected);
  ASSERT_TRUE(this->store_->SetDeviceStatus("com.example.app", "d1", DeviceStatus::kRevoked));
  stats = this->store_->GetReleaseStats("com.example.app", "1.1.0", kNow - 30 * 86400, kNow, 3600);
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->active_devices, 3);
  EXPECT_EQ(stats->on_release, 1);
}

}  // namespace
}  // namespace airlock::storage
