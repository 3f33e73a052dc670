// LastSeenWriter (server/last_seen_writer.h) over a real SQLite store: touches recorded behind the
// request reach the devices table only at Flush, the later time wins, batches split at
// kMaxTouchBatch, a failing store keeps what it did not write, and memory is bounded.
#include "server/last_seen_writer.h"

#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "common/file.h"
#include "storage/connection.h"
#include "storage/store.h"

namespace airlock::server {
namespace {

constexpr int64_t kNow = 1'800'000'000;
constexpr char kApp[] = "com.example.seen";
constexpr char kKey[] = "0000000000000000000000000000000000000000000000000000000000000001";

class LastSeenWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ScopedTempDir::Create({}, "last-seen-");
    ASSERT_TRUE(dir) << dir.error().ToString();
    dir_.emplace(std::move(*dir));
    url_ = "sqlite:" + (dir_->path() / "airlock.db").string();
    auto store = storage::OpenStore(url_, kNow);
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);
    ASSERT_TRUE(store_->CreateApp({kApp, "Seen", kNow}));
  }

  void Enroll(const std::string& id) {
    ASSERT_TRUE(store_->CreateDevice({kApp, id, kKey, "android", std::nullopt, kNow}));
  }
  int64_t LastSeen(const std::string& id) { return store_->GetDevice(kApp, id)->last_seen; }
  // Another connection renames the devices table away (and back): the store's writes fail.
  void Rename(const char* from, const char* to) {
    auto conn = storage::OpenConnection(url_);
    ASSERT_TRUE(conn) << conn.error().ToString();
    ASSERT_TRUE((*conn)->ExecScript(std::string("ALTER TABLE ") + from + " RENAME TO " + to));
  }

  std::optional<ScopedTempDir> dir_;
  std::string url_;
  std::unique_ptr<storage::Store> store_;
};

TEST_F(LastSeenWriterTest, BehindTheRequestNothingIsWrittenUntilFlushAndTheLaterTimeWins) {
  Enroll("dev-1");
  Enroll("dev-2");
  LastSeenWriter writer(store_.get(), LastSeenWriter::Mode::kBehind);
  ASSERT_TRUE(writer.Touch(kApp, "dev-1", kNow + 60));
  ASSERT_TRUE(writer.Touch(kApp, "dev-1", kNow + 30));  // older: does not replace
  ASSERT_TRUE(writer.Touch(kApp, "dev-2", kNow + 90));
  ASSERT_TRUE(writer.Touch(kApp, "ghost", kNow + 90));  // unknown device: skipped by the store
  EXPECT_EQ(writer.pending(), 3u);
  EXPECT_EQ(LastSeen("dev-1"), kNow);
  EXPECT_EQ(LastSeen("dev-2"), kNow);

  auto written = writer.Flush();
  ASSERT_TRUE(written) << written.error().ToString();
  EXPECT_EQ(*written, 3u);
  EXPECT_EQ(writer.pending(), 0u);
  EXPECT_EQ(LastSeen("dev-1"), kNow + 60);
  EXPECT_EQ(LastSeen("dev-2"), kNow + 90);
  EXPECT_EQ(*writer.Flush(), 0u);
}

TEST_F(LastSeenWriterTest, ThroughWritesAtOnce) {
  Enroll("dev-1");
  LastSeenWriter writer(store_.get(), LastSeenWriter::Mode::kThrough);
  ASSERT_TRUE(writer.Touch(kApp, "dev-1", kNow + 5));
  EXPECT_EQ(LastSeen("dev-1"), kNow + 5);
  EXPECT_EQ(writer.pending(), 0u);
  EXPECT_EQ(writer.Touch(kApp, "bad id!", kNow).error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(LastSeenWriterTest, AFlushSplitsIntoBatchesOfTheStoresLimit) {
  const size_t n = 2 * storage::kMaxTouchBatch + 7;
  for (size_t i = 0; i < n; ++i) Enroll("dev-" + std::to_string(i));
  LastSeenWriter writer(store_.get(), LastSeenWriter::Mode::kBehind);
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(writer.Touch(kApp, "dev-" + std::to_string(i), kNow + 1 + static_cast<int64_t>(i)));
  }
  EXPECT_EQ(*writer.Flush(), n);
  for (size_t i : {size_t{0}, storage::kMaxTouchBatch - 1, storage::kMaxTouchBatch, n - 1}) {
    EXPECT_EQ(LastSeen("dev-" + std::to_string(i)), kNow + 1 + static_cast<int64_t>(i)) << i;
  }
}

TEST_F(LastSeenWriterTest, AFailingStoreKeepsWhatItDidNotWrite) {
  Enroll("dev-1");
  LastSeenWriter writer(store_.get(), LastSeenWriter::Mode::kBehind);
  ASSERT_TRUE(writer.Touch(kApp, "dev-1", kNow + 60));
  Rename("devices", "devices_away");
  auto failed = writer.Flush();
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code(), ErrorCode::kIo) << failed.error().ToString();
  EXPECT_EQ(writer.pending(), 1u);
  ASSERT_TRUE(writer.Touch(kApp, "dev-1", kNow + 120));  // meanwhile: the later time is kept
  Rename("devices_away", "devices");
  EXPECT_EQ(*writer.Flush(), 1u);
  EXPECT_EQ(LastSeen("dev-1"), kNow + 120);
}

TEST_F(LastSeenWriterTest, PendingTouchesAreBoundedAndTheOverflowIsCounted) {
  LastSeenWriter writer(store_.get(), LastSeenWriter::Mode::kBehind);
  for (size_t i = 0; i < LastSeenWriter::kMaxPending + 5; ++i) {
    ASSERT_TRUE(writer.Touch(kApp, "d" + std::to_string(i), kNow));
  }
  EXPECT_EQ(writer.pending(), LastSeenWriter::kMaxPending);
  EXPECT_EQ(writer.dropped(), 5u);
  // A device already recorded still moves forward when full.
  ASSERT_TRUE(writer.Touch(kApp, "d0", kNow + 1));
  EXPECT_EQ(writer.dropped(), 5u);
}

}  // namespace
}  // namespace airlock::server
