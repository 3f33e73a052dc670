#include "client/install_journal.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "common/file.h"

namespace airlock::client {
namespace {

namespace fs = std::filesystem;

class InstallJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<ScopedTempDir>(*ScopedTempDir::Create());
    auto j = InstallJournal::Open(tmp_->path() / "agent.db");
    ASSERT_TRUE(j) << j.error().ToString();
    journal_ = std::make_unique<InstallJournal>(std::move(*j));
  }

  JournalState Load() { return *journal_->Load(); }

  // Stages and confirms `id` from a rest state.
  void Install(const std::string& id, uint64_t floor = 0) {
    ASSERT_TRUE(journal_->BeginStaging({id, "1.0." + id, floor}, 100));
    ASSERT_TRUE(journal_->FinishStaging(id, "[]", 101));
    ASSERT_TRUE(journal_->BeginSwitch(id, 102));
    ASSERT_TRUE(journal_->FinishSwitch(200, 103));
    ASSERT_TRUE(journal_->Confirm(id, 104));
  }

  std::unique_ptr<ScopedTempDir> tmp_;
  std::unique_ptr<InstallJournal> journal_;
};

TEST(InstallStateTable, EveryNamedStateParsesBackAndUnknownIsMalformed) {
  for (InstallState s : {InstallState::kIdle, InstallState::kStaging, InstallState::kStaged,
                         InstallState::kSwitching, InstallState::kAwaitingHealth,
                         InstallState::kConfirmed, InstallState::kRollingBack}) {
    EXPECT_EQ(*ParseInstallState(InstallStateName(s)), s);
  }
  EXPECT_EQ(ParseInstallState("installing").error().code(), ErrorCode::kMalformed);
}

TEST(InstallStateTable, HasNoShortcutFromStagedToAwaitingOrFromIdleToSwitching) {
  EXPECT_TRUE(IsAllowedTransition(InstallState::kStaged, InstallState::kSwitching));
  EXPECT_FALSE(IsAllowedTransition(InstallState::kStaged, InstallState::kAwaitingHealth));
  EXPECT_FALSE(IsAllowedTransition(InstallState::kIdle, InstallState::kSwitching));
  EXPECT_FALSE(IsAllowedTransition(InstallState::kStaging, InstallState::kSwitching));
  EXPECT_FALSE(IsAllowedTransition(InstallState::kRollingBack, InstallState::kAwaitingHealth));
}

TEST(ReleaseId, AcceptsSafeNamesAndRefusesPathsAndDotNames) {
  EXPECT_TRUE(ValidateReleaseId("rel-1.2.3_b"));
  EXPECT_TRUE(ValidateReleaseId(std::string(128, 'a')));
  for (std::string bad : {std::string(), std::string(129, 'a'), std::string(".hidden"),
                          std::string(".."), std::string("a/b"), std::string("a b"),
                          std::string("rel\n"), std::string("r\0x", 3), std::string("é")}) {
    auto r = ValidateReleaseId(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
}

TEST_F(InstallJournalTest, StartsIdleWithNothingActive) {
  JournalState s = Load();
  EXPECT_EQ(s.state, InstallState::kIdle);
  EXPECT_TRUE(s.active.empty());
  EXPECT_TRUE(s.last_good.empty());
  EXPECT_EQ(s.highest_floor, 0u);
}

TEST_F(InstallJournalTest, WalksStagingStagedSwitchingAwaitingConfirmed) {
  auto s = journal_->BeginStaging({"r1", "1.0.0", 2}, 10);
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->state, InstallState::kStaging);
  EXPECT_EQ(s->target.id, "r1");
  s = journal_->FinishStaging("r1", R"([{"path":"a","size":1,"sha256":"00"}])", 11);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->state, InstallState::kStaged);
  EXPECT_EQ(s->highest_floor, 2u);
  EXPECT_EQ(*journal_->Manifest("r1"), R"([{"path":"a","size":1,"sha256":"00"}])");
  s = journal_->BeginSwitch("r1", 12);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->state, InstallState::kSwitching);
  EXPECT_EQ(s->active.id, "r1");
  EXPECT_TRUE(s->last_good.empty());  // nothing before: the built-in
  s = journal_->FinishSwitch(50, 13);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->state, InstallState::kAwaitingHealth);
  EXPECT_EQ(s->health_deadline, 50);
  s = journal_->Confirm("r1", 14);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->state, InstallState::kConfirmed);
  EXPECT_EQ(Load().active.id, "r1");

  auto log = *journal_->Log(10);
  ASSERT_EQ(log.size(), 5u);
  EXPECT_EQ(log[0].from, "idle");
  EXPECT_EQ(log[0].to, "staging");
  EXPECT_EQ(log[4].to, "confirmed");
  EXPECT_EQ(log[4].release, "r1");
}

TEST_F(InstallJournalTest, SecondInstallMakesTheFirstTheLastGood) {
  Install("r1");
  Install("r2");
  JournalState s = Load();
  EXPECT_EQ(s.active.id, "r2");
  EXPECT_EQ(s.last_good.id, "r1");
}

TEST_F(InstallJournalTest, ConfirmationOfAnotherReleaseIsIgnoredAndChangesNothing) {
  Install("r1");
  ASSERT_TRUE(journal_->BeginStaging({"r2", "2.0.0", 0}, 1));
  ASSERT_TRUE(journal_->FinishStaging("r2", "[]", 1));
  ASSERT_TRUE(journal_->BeginSwitch("r2", 1));
  ASSERT_TRUE(journal_->FinishSwitch(99, 1));
  JournalState before = Load();
  auto r = journal_->Confirm("r1", 2);  // the old version's confirmation, landing late
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.error().message().find("ignored"), std::string::npos) << r.error().message();
  JournalState after = Load();
  EXPECT_EQ(after.state, InstallState::kAwaitingHealth);
  EXPECT_EQ(after.active.id, before.active.id);
  EXPECT_EQ(after.health_deadline, before.health_deadline);
}

TEST_F(InstallJournalTest, HealthExpiresOnlyAtTheDeadlineAndMarksTheReleaseFailed) {
  Install("r1");
  ASSERT_TRUE(journal_->BeginStaging({"r2", "2.0.0", 0}, 1));
  ASSERT_TRUE(journal_->FinishStaging("r2", "[]", 1));
  ASSERT_TRUE(journal_->BeginSwitch("r2", 1));
  ASSERT_TRUE(journal_->FinishSwitch(100, 1));
  EXPECT_EQ(journal_->ExpireHealth(99)->state, InstallState::kAwaitingHealth);
  auto s = journal_->ExpireHealth(100);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->state, InstallState::kRollingBack);
  EXPECT_EQ(s->active.id, "r1");
  EXPECT_EQ(s->rollback_reason, "health_timeout");
  s = journal_->FinishRollback(101);
  EXPECT_EQ(s->state, InstallState::kConfirmed);
  auto failed = *journal_->FindFailed("r2");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->reason, "health_timeout");

  auto again = journal_->BeginStaging({"r2", "2.0.0", 0}, 200);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_NE(again.error().message().find("never retried"), std::string::npos);
  EXPECT_EQ(Load().state, InstallState::kConfirmed);
}

TEST_F(InstallJournalTest, CrashLoopRollsBackAtTheLimitInOneTransition) {
  Install("r1");
  ASSERT_TRUE(journal_->BeginStaging({"r2", "2.0.0", 0}, 1));
  ASSERT_TRUE(journal_->FinishStaging("r2", "[]", 1));
  ASSERT_TRUE(journal_->BeginSwitch("r2", 1));
  ASSERT_TRUE(journal_->FinishSwitch(1000, 1));
  EXPECT_EQ(journal_->RecordStart(3, 2)->start_count, 1);
  EXPECT_EQ(journal_->RecordStart(3, 3)->state, InstallState::kAwaitingHealth);
  auto s = journal_->RecordStart(3, 4);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->state, InstallState::kRollingBack);
  EXPECT_EQ(s->rollback_reason, "crash_loop");
  EXPECT_EQ((*journal_->FindFailed("r2"))->reason, "crash_loop");
}

TEST_F(InstallJournalTest, FloorBelowTheHighestSeenIsRefused) {
  Install("r1", 5);
  auto r = journal_->BeginStaging({"r2", "2.0.0", 4}, 1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kRollback);
  EXPECT_EQ(Load().state, InstallState::kConfirmed);
  ASSERT_TRUE(journal_->RaiseFloor(7));
  ASSERT_TRUE(journal_->RaiseFloor(3));  // never lowers
  EXPECT_EQ(Load().highest_floor, 7u);
}

TEST_F(InstallJournalTest, WrongStateTransitionsAreRefusedWithNothingChanged) {
  EXPECT_EQ(journal_->BeginSwitch("r1", 1).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(journal_->FinishSwitch(1, 1).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(journal_->FinishRollback(1).error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(journal_->BeginRollback("manual_rollback", "", 1).error().code(), ErrorCode::kNotFound);
  ASSERT_TRUE(journal_->BeginStaging({"r1", "1.0.0", 0}, 1));
  auto busy = journal_->BeginStaging({"r9", "9.0.0", 0}, 1);
  EXPECT_EQ(busy.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(Load().target.id, "r1");
  EXPECT_EQ(journal_->AbandonStaging(2)->state, InstallState::kIdle);
  Install("r2");
  EXPECT_EQ(journal_->BeginStaging({"r2", "x", 0}, 1).error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(journal_->BeginStaging({"../x", "x", 0}, 1).error().code(),
            ErrorCode::kInvalidArgument);
}

// Walks scenarios that together take every edge of the table, and checks from the transition log
// that each edge was taken and that nothing outside the table ever happened.
TEST_F(InstallJournalTest, ScenariosTakeEveryEdgeOfTheTableAndNoOther) {
  auto ok = [](const Result<JournalState>& r) { ASSERT_TRUE(r) << r.error().ToString(); };
  ok(journal_->BeginStaging({"r1", "1", 0}, 1));
  ok(journal_->AbandonStaging(1));  // staging -> idle
  ok(journal_->BeginStaging({"r1", "1", 0}, 1));
  ok(journal_->FinishStaging("r1", "[]", 1));
  ok(journal_->BeginStaging({"r1", "1", 0}, 1));  // staged -> staging (staged again)
  ok(journal_->FinishStaging("r1", "[]", 1));
  ok(journal_->BeginSwitch("r1", 1));
  ok(journal_->FinishSwitch(10, 1));
  ok(journal_->Confirm("r1", 1));
  ok(journal_->BeginStaging({"r2", "2", 0}, 1));  // confirmed -> staging
  ok(journal_->AbandonStaging(1));                // staging -> confirmed
  ok(journal_->BeginStaging({"r2", "2", 0}, 1));
  ok(journal_->FinishStaging("r2", "[]", 1));
  ok(journal_->BeginRollback("manual_rollback", "", 1));  // staged -> rolling_back
  ok(journal_->FinishRollback(1));                        // rolling_back -> idle
  EXPECT_EQ(Load().state, InstallState::kIdle);
  Install("r3");
  ok(journal_->BeginStaging({"r4", "4", 0}, 1));
  ok(journal_->FinishStaging("r4", "[]", 1));
  ok(journal_->BeginSwitch("r4", 1));
  ok(journal_->FinishSwitch(10, 1));
  ok(journal_->ExpireHealth(10));   // awaiting_health -> rolling_back
  ok(journal_->FinishRollback(1));  // rolling_back -> confirmed
  EXPECT_EQ(Load().active.id, "r3");
  ok(journal_->BeginRollback("manual_rollback", "", 1));  // confirmed -> rolling_back
  ok(journal_->FinishRollback(1));
  ok(journal_->BeginStaging({"r5", "5", 0}, 1));
  ok(journal_->FinishStaging("r5", "[]", 1));
  ok(journal_->BeginSwitch("r5", 1));
  ok(journal_->BeginRollback("slot_missing", "", 1));  // switching -> rolling_back
  ok(journal_->FinishRollback(1));

  std::set<std::pair<std::string, std::string>> taken, table;
  auto log = journal_->Log(1000);
  ASSERT_TRUE(log);
  for (const auto& e : *log) {
    if (e.from != e.to) taken.insert({e.from, e.to});
  }
  const InstallState all[] = {InstallState::kIdle,           InstallState::kStaging,
                              InstallState::kStaged,         InstallState::kSwitching,
                              InstallState::kAwaitingHealth, InstallState::kConfirmed,
                              InstallState::kRollingBack};
  for (InstallState from : all) {
    for (InstallState to : all) {
      if (from != to && IsAllowedTransition(from, to)) {
        table.insert({std::string(InstallStateName(from)), std::string(InstallStateName(to))});
      }
    }
  }
  EXPECT_EQ(table.size(), 15u);
  EXPECT_EQ(taken, table);
}

TEST_F(InstallJournalTest, StateSurvivesReopening) {
  Install("r1", 3);
  journal_.reset();
  auto j = InstallJournal::Open(tmp_->path() / "agent.db");
  ASSERT_TRUE(j);
  JournalState s = *j->Load();
  EXPECT_EQ(s.state, InstallState::kConfirmed);
  EXPECT_EQ(s.active.id, "r1");
  EXPECT_EQ(s.highest_floor, 3u);
}

TEST_F(InstallJournalTest, RefusesAFileThatIsNotAJournal) {
  ASSERT_TRUE(WriteFileAtomic(tmp_->path() / "junk.db", ToBytes(std::string(4096, 'x'))));
  auto j = InstallJournal::Open(tmp_->path() / "junk.db");
  ASSERT_FALSE(j);
  EXPECT_EQ(j.error().code(), ErrorCode::kMalformed) << j.error().ToString();
}

}  // namespace
}  // namespace airlock::client
