// ReportQueue on a real SQLite file. Delivery to a real airlockd (in order, acknowledged events
// deleted) is tested in tests/device_api/device_api_test.cc.
#include "client/report_queue.h"

#include <sys/stat.h>

#include <filesystem>
#include <optional>

#include <gtest/gtest.h>

#include "common/file.h"

namespace airlock::client {
namespace {

namespace fs = std::filesystem;

NewReportEvent Event(const std::string& kind, const std::string& reason = "") {
  return NewReportEvent{"1.2.3", kind, reason, "", 1700000000};
}

std::vector<uint64_t> Seqs(const ReportQueue& q) {
  std::vector<uint64_t> out;
  const std::vector<ReportEvent> pending = q.Pending(1000).value();
  for (const ReportEvent& e : pending) out.push_back(e.seq);
  return out;
}

class ReportQueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = ScopedTempDir::Create({}, "airlock-reports-");
    ASSERT_TRUE(tmp);
    tmp_.emplace(std::move(*tmp));
    path_ = tmp_->path() / "reports.db";
  }
  std::optional<ScopedTempDir> tmp_;
  fs::path path_;
};

TEST_F(ReportQueueTest, SeqsIncreaseAndSurviveAReopen) {
  {
    auto q = ReportQueue::Open(path_);
    ASSERT_TRUE(q) << q.error().ToString();
    EXPECT_EQ(q->Enqueue(Event("offered")).value(), 1u);
    EXPECT_EQ(q->Enqueue(Event("downloaded")).value(), 2u);
    EXPECT_EQ(q->Enqueue(Event("failed", "hash_mismatch")).value(), 3u);
  }
  auto q = ReportQueue::Open(path_);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->Enqueue(Event("rolled_back", "health_timeout")).value(), 4u);
  auto pending = q->Pending(10);
  ASSERT_TRUE(pending);
  ASSERT_EQ(pending->size(), 4u);
  EXPECT_EQ((*pending)[0].kind, "offered");
  EXPECT_EQ((*pending)[2].reason_code, "hash_mismatch");
  EXPECT_EQ((*pending)[3].kind, "rolled_back");
  EXPECT_EQ((*pending)[3].occurred_at, 1700000000);
  EXPECT_EQ(Seqs(*q), (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(q->Pending(2).value().size(), 2u);
}

TEST_F(ReportQueueTest, AFullQueueDropsTheOldestAndCountsThem) {
  {
    auto q = ReportQueue::Open(path_, ReportQueueOptions{3, 100});
    ASSERT_TRUE(q);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(q->Enqueue(Event("offered")));
    EXPECT_EQ(Seqs(*q), (std::vector<uint64_t>{3, 4, 5}));
    EXPECT_EQ(q->DroppedCount().value(), 2u);
  }
  auto q = ReportQueue::Open(path_, ReportQueueOptions{3, 100});
  ASSERT_TRUE(q);
  EXPECT_EQ(q->DroppedCount().value(), 2u);
  EXPECT_EQ(q->Enqueue(Event("confirmed")).value(), 6u);
  EXPECT_EQ(Seqs(*q), (std::vector<uint64_t>{4, 5, 6}));
  EXPECT_EQ(q->DroppedCount().value(), 3u);
}

TEST_F(ReportQueueTest, RefusesAnEventTheServerWouldRefuseWithoutUsingASeq) {
  auto q = ReportQueue::Open(path_);
  ASSERT_TRUE(q);
  auto bad = q->Enqueue(Event("exploded"));
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  auto no_version = q->Enqueue(NewReportEvent{"", "offered", "", "", 1});
  ASSERT_FALSE(no_version);
  EXPECT_EQ(no_version.error().code(), ErrorCode::kInvalidArgument);
  auto not_semver = q->Enqueue(NewReportEvent{"v1.2", "offered", "", "", 1});
  ASSERT_FALSE(not_semver);
  EXPECT_EQ(not_semver.error().code(), ErrorCode::kInvalidArgument);
  auto bad_reason = q->Enqueue(Event("failed", "no spaces allowed"));
  ASSERT_FALSE(bad_reason);
  EXPECT_EQ(bad_reason.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(q->PendingCount().value(), 0u);
  EXPECT_EQ(q->Enqueue(Event("offered")).value(), 1u);
}

TEST_F(ReportQueueTest, FlushWhileOfflineKeepsEveryEvent) {
  auto identity = LoadOrCreateDeviceIdentity(tmp_->path() / "identity");
  ASSERT_TRUE(identity);
  // Nothing listens on 127.0.0.1:1: the connection is refused.
  auto client = DeviceApiClient::Create(*identity, {"http://127.0.0.1:1", "io.example.app"});
  ASSERT_TRUE(client);
  auto q = ReportQueue::Open(path_);
  ASSERT_TRUE(q);
  ASSERT_TRUE(q->Enqueue(Event("offered")));
  ASSERT_TRUE(q->Enqueue(Event("failed", "download_failed")));
  auto flushed = q->Flush(*client);
  ASSERT_FALSE(flushed);
  EXPECT_EQ(flushed.error().code(), ErrorCode::kIo) << flushed.error().ToString();
  EXPECT_EQ(Seqs(*q), (std::vector<uint64_t>{1, 2}));
}

TEST_F(ReportQueueTest, TheFileIsPrivateAndAForeignFileIsRefused) {
  ASSERT_TRUE(ReportQueue::Open(path_));
  struct stat st {};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  const fs::path junk = tmp_->path() / "junk.db";
  ASSERT_TRUE(WriteFileAtomic(junk, AsBytes(std::string(4096, 'x')), 0600));
  auto q = ReportQueue::Open(junk);
  ASSERT_FALSE(q);
  EXPECT_EQ(q.error().code(), ErrorCode::kMalformed) << q.error().ToString();
}

}  // namespace
}  // namespace airlock::client
