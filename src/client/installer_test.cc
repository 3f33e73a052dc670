#include "client/installer.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <future>

#include <gtest/gtest.h>

#include "client/install_test_util.h"
#include "common/fd.h"

namespace airlock::client {
namespace {

namespace fs = std::filesystem;
using testing::BundleFactory;
using testing::CurrentLink;
using testing::Entries;
using testing::SealedRelease;

class InstallerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<ScopedTempDir>(*ScopedTempDir::Create());
    factory_ = std::make_unique<BundleFactory>(tmp_->path());
    dir_ = tmp_->path() / "install";
    r1_ = factory_->Make("1.0.0");
    r2_ = factory_->Make("1.1.0");
    r3_ = factory_->Make("1.2.0");
    Reopen();
  }

  void Reopen(InstallerOptions options = {}) {
    installer_.reset();
    options.clock = [this] { return now_; };
    options.health_timeout_seconds = 30;
    options.crash_loop_limit = 3;
    options.app_id = testing::kTestApp;
    auto i = Installer::Open(dir_, options);
    ASSERT_TRUE(i) << i.error().ToString();
    installer_ = std::make_unique<Installer>(std::move(*i));
  }

  Result<InstallStatus> Stage(const std::string& id, const SealedRelease& r, uint64_t floor = 0) {
    return installer_->Stage(id, r.version, floor, r.bundle, factory_->verify_key(), r.content_key);
  }

  void Install(const std::string& id, const SealedRelease& r, uint64_t floor = 0) {
    auto s = Stage(id, r, floor);
    ASSERT_TRUE(s) << s.error().ToString();
    auto a = installer_->Activate(id);
    ASSERT_TRUE(a) << a.error().ToString();
    auto c = installer_->Confirm(id);
    ASSERT_TRUE(c) << c.error().ToString();
  }

  void StageAndActivate(const std::string& id, const SealedRelease& r) {
    auto s = Stage(id, r);
    ASSERT_TRUE(s) << s.error().ToString();
    auto a = installer_->Activate(id);
    ASSERT_TRUE(a) << a.error().ToString();
  }

  // `current` resolves to release `id` and its files are those of `r`, byte for byte.
  void ExpectCurrentIs(const std::string& id, const SealedRelease& r) {
    EXPECT_EQ(CurrentLink(installer_->layout()), "releases/" + id);
    auto v = VerifyTree(installer_->layout().current(), r.manifest);
    EXPECT_TRUE(v) << v.error().ToString();
  }

  InstallStatus Status() { return *installer_->Status(); }

  std::unique_ptr<ScopedTempDir> tmp_;
  std::unique_ptr<BundleFactory> factory_;
  fs::path dir_;
  SealedRelease r1_, r2_, r3_;
  std::time_t now_ = 1'000'000;
  std::unique_ptr<Installer> installer_;
};

TEST_F(InstallerTest, FreshDirectoryIsIdleWithNoCurrent) {
  InstallStatus s = Status();
  EXPECT_EQ(s.state, InstallState::kIdle);
  EXPECT_EQ(s.release, "");
  EXPECT_EQ(CurrentLink(installer_->layout()), "");
  EXPECT_EQ(Entries(dir_ / "releases"), std::vector<std::string>{});
}

TEST_F(InstallerTest, StageLeavesCurrentAloneThenActivateSwitchesAndConfirmCommits) {
  Install("r1", r1_);
  auto staged = Stage("r2", r2_, 1);
  ASSERT_TRUE(staged) << staged.error().ToString();
  EXPECT_EQ(staged->state, InstallState::kStaged);
  EXPECT_EQ(staged->pending_release, "r2");
  EXPECT_EQ(staged->highest_floor, 1u);
  ExpectCurrentIs("r1", r1_);
  EXPECT_EQ(Entries(dir_ / "releases"), (std::vector<std::string>{"r1", "r2"}));

  auto active = installer_->Activate("r2");
  ASSERT_TRUE(active) << active.error().ToString();
  EXPECT_EQ(active->state, InstallState::kAwaitingHealth);
  EXPECT_EQ(active->release, "r2");
  EXPECT_EQ(active->version, "1.1.0");
  EXPECT_EQ(active->last_good_release, "r1");
  EXPECT_EQ(active->health_deadline, now_ + 30);
  ExpectCurrentIs("r2", r2_);

  auto confirmed = installer_->Confirm("r2");
  ASSERT_TRUE(confirmed) << confirmed.error().ToString();
  EXPECT_EQ(confirmed->state, InstallState::kConfirmed);
  EXPECT_EQ(confirmed->release, "r2");
  EXPECT_TRUE(installer_->VerifyActive());
  // Confirming the confirmed release again (the app does so on every start) is harmless.
  EXPECT_TRUE(installer_->Confirm("r2"));
}

TEST_F(InstallerTest, ConfirmationOfTheOldReleaseAfterTheSwitchIsIgnored) {
  Install("r1", r1_);
  StageAndActivate("r2", r2_);
  auto r = installer_->Confirm("r1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.error().message().find("ignored"), std::string::npos) << r.error().message();
  InstallStatus s = Status();
  EXPECT_EQ(s.state, InstallState::kAwaitingHealth);
  EXPECT_EQ(s.release, "r2");
  ExpectCurrentIs("r2", r2_);
  // ... and the timeout still rolls back: the stray confirmation counted for nothing.
  now_ += 30;
  EXPECT_TRUE(*installer_->CheckHealth());
  ExpectCurrentIs("r1", r1_);
}

TEST_F(InstallerTest, HealthTimeoutRollsBackRemembersTheReleaseAndRefusesItAgain) {
  Install("r1", r1_);
  StageAndActivate("r2", r2_);
  EXPECT_FALSE(*installer_->Tick(now_ + 29));
  EXPECT_EQ(Status().state, InstallState::kAwaitingHealth);
  EXPECT_TRUE(*installer_->Tick(now_ + 30));
  InstallStatus s = Status();
  EXPECT_EQ(s.state, InstallState::kConfirmed);
  EXPECT_EQ(s.release, "r1");
  EXPECT_EQ(s.last_rollback_reason, "health_timeout");
  EXPECT_EQ(s.last_rollback_from, "r2");
  ASSERT_EQ(s.failed.size(), 1u);
  EXPECT_EQ(s.failed[0].id, "r2");
  EXPECT_EQ(s.failed[0].reason, "health_timeout");
  ExpectCurrentIs("r1", r1_);
  EXPECT_EQ(Entries(dir_ / "releases"), std::vector<std::string>{"r1"});

  // A late confirmation of the failed release does not bring it back.
  EXPECT_EQ(installer_->Confirm("r2").error().code(), ErrorCode::kNotFound);
  // Never retried, even after a restart.
  Reopen();
  auto again = Stage("r2", r2_);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_NE(again.error().message().find("never retried"), std::string::npos);
  EXPECT_EQ(Entries(dir_ / "releases"), std::vector<std::string>{"r1"});
  ExpectCurrentIs("r1", r1_);
}

TEST_F(InstallerTest, CrashLoopRollsBackAtTheLimit) {
  Install("r1", r1_);
  StageAndActivate("r2", r2_);
  EXPECT_FALSE(*installer_->RecordStart());
  EXPECT_FALSE(*installer_->RecordStart());
  EXPECT_EQ(Status().start_count, 2);
  EXPECT_TRUE(*installer_->RecordStart());
  InstallStatus s = Status();
  EXPECT_EQ(s.release, "r1");
  EXPECT_EQ(s.last_rollback_reason, "crash_loop");
  ExpectCurrentIs("r1", r1_);
  // Starts of a confirmed release are not counted.
  EXPECT_FALSE(*installer_->RecordStart());
  EXPECT_EQ(Status().state, InstallState::kConfirmed);
}

TEST_F(InstallerTest, ConfirmResetsTheStartCount) {
  Install("r1", r1_);
  StageAndActivate("r2", r2_);
  EXPECT_FALSE(*installer_->RecordStart());
  ASSERT_TRUE(installer_->Confirm("r2"));
  EXPECT_EQ(Status().start_count, 0);
  EXPECT_FALSE(*installer_->Tick(now_ + 1000));
  ExpectCurrentIs("r2", r2_);
}

// The app's `confirm` command is another process with its own Installer; it must not wait behind
// the daemon's lock (here: held by this test), and the daemon sees the confirmation.
TEST_F(InstallerTest, ConfirmFromAnotherInstallerCountsWithoutWaitingForTheLock) {
  Install("r1", r1_);
  Install("r2", r2_);
  InstallerOptions o;
  o.clock = [this] { return now_; };
  auto other = Installer::Open(dir_, o);  // the app's side, opened earlier
  ASSERT_TRUE(other) << other.error().ToString();
  StageAndActivate("r3", r3_);
  UniqueFd held(::open((dir_ / ".lock").c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(held.valid());
  ASSERT_EQ(::flock(held.get(), LOCK_EX | LOCK_NB), 0);
  auto c = other->Confirm("r3");
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ(c->state, InstallState::kConfirmed);
  // The lock was busy: the old slot r1 stays until the next operation.
  EXPECT_EQ(Entries(dir_ / "releases"), (std::vector<std::string>{"r1", "r2", "r3"}));
  held = UniqueFd();
  EXPECT_EQ(Status().state, InstallState::kConfirmed);
  EXPECT_FALSE(*installer_->CheckHealth());
  EXPECT_EQ(Entries(dir_ / "releases"), (std::vector<std::string>{"r2", "r3"}));
  ExpectCurrentIs("r3", r3_);
}

// `airlock-agent started` runs on the app's start path: while the daemon holds the lock (here: this
// test) staging a release, opening without waiting and recording a start must neither wait nor
// change anything (nothing awaits confirmation during a staging).
TEST_F(InstallerTest, RecordStartDoesNotWaitForTheLockWhenNothingAwaitsConfirmation) {
  Install("r1", r1_);
  UniqueFd held(::open((dir_ / ".lock").c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(held.valid());
  ASSERT_EQ(::flock(held.get(), LOCK_EX | LOCK_NB), 0);
  auto started = std::async(std::launch::async, [this]() -> Result<bool> {
    InstallerOptions o;
    o.clock = [this] { return now_; };
    o.wait_on_open = false;
    AIRLOCK_ASSIGN_OR_RETURN(Installer app_side, Installer::Open(dir_, o));
    return app_side.RecordStart();
  });
  const bool finished = started.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  held = UniqueFd();  // lets a waiting RecordStart finish, so the test ends either way
  ASSERT_TRUE(finished) << "RecordStart waited for the lock";
  auto r = started.get();
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_FALSE(*r);
  InstallStatus s = Status();
  EXPECT_EQ(s.state, InstallState::kConfirmed);
  EXPECT_EQ(s.start_count, 0);
  ExpectCurrentIs("r1", r1_);
}

TEST_F(InstallerTest, ManualRollbackReturnsToTheLastGoodRelease) {
  Install("r1", r1_);
  Install("r2", r2_);
  auto s = installer_->Rollback(kReasonManual);
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->release, "r1");
  EXPECT_EQ(s->last_good_release, "");
  EXPECT_EQ(s->failed.at(0).reason, "manual_rollback");
  ExpectCurrentIs("r1", r1_);
}

TEST_F(InstallerTest, RollbackOfTheFirstReleaseGoesToTheBuiltInOrToNothing) {
  StageAndActivate("r1", r1_);
  now_ += 31;
  EXPECT_TRUE(*installer_->CheckHealth());
  EXPECT_EQ(Status().state, InstallState::kIdle);
  EXPECT_EQ(CurrentLink(installer_->layout()), "");
  EXPECT_EQ(installer_->Rollback(kReasonManual).error().code(), ErrorCode::kNotFound);

  fs::path builtin = tmp_->path() / "builtin";
  fs::create_directories(builtin);
  InstallerOptions o;
  o.builtin_dir = builtin;
  Reopen(o);
  EXPECT_EQ(CurrentLink(installer_->layout()), builtin.string());
  StageAndActivate("r2", r2_);
  ASSERT_TRUE(installer_->Rollback(kReasonManual));
  EXPECT_EQ(CurrentLink(installer_->layout()), builtin.string());
}

TEST_F(InstallerTest, OldSlotsAreRemovedAfterAConfirm) {
  Install("r1", r1_);
  Install("r2", r2_);
  EXPECT_EQ(Entries(dir_ / "releases"), (std::vector<std::string>{"r1", "r2"}));
  Install("r3", r3_);
  EXPECT_EQ(Entries(dir_ / "releases"), (std::vector<std::string>{"r2", "r3"}));
  EXPECT_EQ(Status().last_good_release, "r2");
}

TEST_F(InstallerTest, FloorBelowTheHighestSeenIsRefusedWithNothingInstalled) {
  Install("r1", r1_, 5);
  auto r = Stage("r2", r2_, 4);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kRollback);
  EXPECT_EQ(StageFailureReason(r.error()), "downgrade_refused");
  EXPECT_EQ(Entries(dir_ / "releases"), std::vector<std::string>{"r1"});
  EXPECT_EQ(Status().state, InstallState::kConfirmed);
  ASSERT_TRUE(installer_->ObserveSecurityFloor(9));
  EXPECT_EQ(Stage("r2", r2_, 8).error().code(), ErrorCode::kRollback);
  EXPECT_TRUE(Stage("r2", r2_, 9));
}

// Flips one byte at `offset` from the end (payload) or the start (header) of a copy of the bundle.
fs::path Flipped(const SealedRelease& r, const fs::path& out, bool in_header) {
  Bytes b = *ReadFile(r.bundle, 1 << 26);
  size_t at = in_header ? 40 : b.size() - 20;
  b[at] ^= 0x01;
  EXPECT_TRUE(WriteFileAtomic(out, b));
  return out;
}

TEST_F(InstallerTest, TamperedBundleIsRefusedWithNothingInstalledAndCurrentUnchanged) {
  Install("r1", r1_);
  for (bool in_header : {false, true}) {
    SealedRelease bad = r2_;
    bad.bundle = Flipped(r2_, tmp_->path() / (in_header ? "h.alb" : "p.alb"), in_header);
    auto r = Stage("r2", bad);
    ASSERT_FALSE(r) << "a tampered bundle was staged";
    EXPECT_EQ(r.error().code(), in_header ? ErrorCode::kBadSignature : ErrorCode::kHashMismatch)
        << r.error().ToString();
    EXPECT_EQ(StageFailureReason(r.error()), in_header ? "signature_invalid" : "hash_mismatch");
    EXPECT_EQ(Entries(dir_ / "releases"), std::vector<std::string>{"r1"});
    ExpectCurrentIs("r1", r1_);
    InstallStatus s = Status();
    EXPECT_EQ(s.state, InstallState::kConfirmed);
    EXPECT_EQ(s.pending_release, "");
    EXPECT_TRUE(s.failed.empty());
    EXPECT_EQ(installer_->Activate("r2").error().code(), ErrorCode::kNotFound);
  }
  // The genuine bundle still installs (a corrupt download is not held against the release).
  StageAndActivate("r2", r2_);
  ExpectCurrentIs("r2", r2_);
}

TEST_F(InstallerTest, BundleOfAnotherVersionOrAppIsRefused) {
  Install("r1", r1_);
  auto r = installer_->Stage("r2", "9.9.9", 0, r2_.bundle, factory_->verify_key(), r2_.content_key);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch);
  SealedRelease other = factory_->Make("1.1.0", 0, "io.example.other");
  auto o = Stage("r2", other);
  ASSERT_FALSE(o);
  EXPECT_EQ(o.error().code(), ErrorCode::kHashMismatch);
  EXPECT_EQ(Entries(dir_ / "releases"), std::vector<std::string>{"r1"});
  ExpectCurrentIs("r1", r1_);
}

TEST_F(InstallerTest, ReleaseMarkedFailedOutsideARollbackIsNeverStaged) {
  ASSERT_TRUE(installer_->MarkFailed("r2", "1.1.0", "hash_mismatch", "download corrupt twice"));
  auto r = Stage("r2", r2_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_NE(r.error().message().find("hash_mismatch"), std::string::npos);
  EXPECT_EQ(Entries(dir_ / "releases"), std::vector<std::string>{});
  EXPECT_EQ(Status().failed.at(0).detail, "download corrupt twice");
}

TEST_F(InstallerTest, StageWhileAReleaseAwaitsHealthIsRefused) {
  Install("r1", r1_);
  StageAndActivate("r2", r2_);
  auto r = Stage("r3", r3_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(Entries(dir_ / "releases"), (std::vector<std::string>{"r1", "r2"}));
}

TEST_F(InstallerTest, ReleaseIdsThatAreNotPlainNamesAreRefused) {
  for (const char* id : {"../evil", ".staging-x", "a/b", "", "current"}) {
    auto r = Stage(id, r1_);
    if (std::string(id) == "current") {  // a plain name: fine, it lives under releases/
      EXPECT_TRUE(r) << r.error().ToString();
      continue;
    }
    ASSERT_FALSE(r) << id;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << id;
  }
  EXPECT_FALSE(fs::exists(tmp_->path() / "evil"));
}

TEST_F(InstallerTest, VerifyActiveNoticesChangedAddedAndRemovedFiles) {
  Install("r1", r1_);
  ASSERT_TRUE(installer_->VerifyActive());
  fs::path slot = installer_->layout().Slot("r1");
  BundleFactory::Write(slot / "index.html", "<html>evil</html>\n");
  auto changed = installer_->VerifyActive();
  ASSERT_FALSE(changed);
  EXPECT_EQ(changed.error().code(), ErrorCode::kHashMismatch);
  EXPECT_NE(changed.error().message().find("index.html"), std::string::npos);

  Install("r2", r2_);
  slot = installer_->layout().Slot("r2");
  BundleFactory::Write(slot / "assets/extra.so", "x");
  EXPECT_EQ(installer_->VerifyActive().error().code(), ErrorCode::kHashMismatch);
  fs::remove(slot / "assets/extra.so");
  ASSERT_TRUE(installer_->VerifyActive());
  fs::remove(slot / "VERSION");
  auto removed = installer_->VerifyActive();
  ASSERT_FALSE(removed);
  EXPECT_NE(removed.error().message().find("VERSION"), std::string::npos);
}

TEST_F(InstallerTest, StagedSlotChangedOnDiskIsNotActivated) {
  Install("r1", r1_);
  ASSERT_TRUE(Stage("r2", r2_));
  BundleFactory::Write(installer_->layout().Slot("r2") / "assets/app.js", "steal();\n");
  auto r = installer_->Activate("r2");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch);
  EXPECT_NE(r.error().message().find("assets/app.js"), std::string::npos) << r.error().message();
  EXPECT_EQ(Status().state, InstallState::kStaged);
  ExpectCurrentIs("r1", r1_);
  // Staged again from the bundle, it activates.
  StageAndActivate("r2", r2_);
  ExpectCurrentIs("r2", r2_);
}

// Activate skips hashing a slot that this installer staged moments before only while the kernel's
// stamp of the slot is unchanged: an attacker who rewrites a file with the same size and sets its
// modification time back still moves its change time, and the slot is hashed and refused.
TEST_F(InstallerTest, StagedSlotRewrittenWithItsOldSizeAndTimesIsNotActivated) {
  Install("r1", r1_);
  ASSERT_TRUE(Stage("r2", r2_));
  const fs::path file = installer_->layout().Slot("r2") / "assets/app.js";
  struct stat before {};
  ASSERT_EQ(::stat(file.c_str(), &before), 0);
  std::string same_size(static_cast<size_t>(before.st_size), 'x');
  BundleFactory::Write(file, same_size);
  const struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, file.c_str(), times, 0), 0);
  auto r = installer_->Activate("r2");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch);
  EXPECT_NE(r.error().message().find("assets/app.js"), std::string::npos) << r.error().message();
  EXPECT_EQ(Status().state, InstallState::kStaged);
  ExpectCurrentIs("r1", r1_);
}

TEST_F(InstallerTest, StagedSlotWithAFileAddedIsNotActivated) {
  Install("r1", r1_);
  ASSERT_TRUE(Stage("r2", r2_));
  BundleFactory::Write(installer_->layout().Slot("r2") / "assets/extra.js", "steal();\n");
  auto r = installer_->Activate("r2");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch);
  EXPECT_NE(r.error().message().find("assets/extra.js"), std::string::npos) << r.error().message();
  EXPECT_EQ(Status().state, InstallState::kStaged);
  ExpectCurrentIs("r1", r1_);
}

// A slot staged by another process (here: another installer object) is always hashed again.
TEST_F(InstallerTest, StagedSlotChangedBeforeAnotherInstallerActivatesItIsNotActivated) {
  Install("r1", r1_);
  ASSERT_TRUE(Stage("r2", r2_));
  Reopen();
  BundleFactory::Write(installer_->layout().Slot("r2") / "assets/app.js", "steal();\n");
  auto r = installer_->Activate("r2");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch);
  ExpectCurrentIs("r1", r1_);
}

TEST(TreeStamp, ChangesWithEveryWriteRenameAndChmodButNotWithReads) {
  auto tmp = ScopedTempDir::Create();
  ASSERT_TRUE(tmp);
  const fs::path dir = tmp->path() / "tree";
  fs::create_directories(dir / "a");
  BundleFactory::Write(dir / "a/b.txt", "one");
  BundleFactory::Write(dir / "c.txt", "two");
  auto first = StampTree(dir);
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(first->size(), 4u);  // the directory itself, a, a/b.txt, c.txt
  ASSERT_TRUE(ReadFile(dir / "a/b.txt", 100));
  EXPECT_EQ(*StampTree(dir), *first);
  ASSERT_EQ(::chmod((dir / "c.txt").c_str(), 0600), 0);
  auto chmodded = StampTree(dir);
  ASSERT_TRUE(chmodded);
  EXPECT_NE(*chmodded, *first);
  fs::rename(dir / "a/b.txt", dir / "a/d.txt");
  auto renamed = StampTree(dir);
  ASSERT_TRUE(renamed);
  EXPECT_NE(*renamed, *chmodded);
  EXPECT_EQ(StampTree(tmp->path() / "missing").error().code(), ErrorCode::kNotFound);
}

TEST_F(InstallerTest, RecoveryRemovesAHalfStagedSlot) {
  Install("r1", r1_);
  // A Stage killed after its journal transition, with a partial staging and a renamed slot.
  ASSERT_TRUE(installer_->journal().BeginStaging({"r2", "1.1.0", 0}, now_));
  fs::create_directories(dir_ / "releases/.staging-r2/assets");
  fs::create_directories(dir_ / "releases/r2");
  fs::create_directories(dir_ / "releases/.trash-r0");
  Reopen();
  InstallStatus s = Status();
  EXPECT_EQ(s.state, InstallState::kConfirmed);
  EXPECT_EQ(s.pending_release, "");
  EXPECT_EQ(Entries(dir_ / "releases"), std::vector<std::string>{"r1"});
  ExpectCurrentIs("r1", r1_);
}

TEST_F(InstallerTest, RecoveryFinishesAnInterruptedSwitch) {
  Install("r1", r1_);
  ASSERT_TRUE(Stage("r2", r2_));
  // Killed after BeginSwitch, before `current` moved.
  ASSERT_TRUE(installer_->journal().BeginSwitch("r2", now_));
  Reopen();
  InstallStatus s = Status();
  EXPECT_EQ(s.state, InstallState::kAwaitingHealth);
  EXPECT_EQ(s.health_deadline, now_ + 30);
  ExpectCurrentIs("r2", r2_);
}

TEST_F(InstallerTest, RecoveryFinishesAnInterruptedRollback) {
  Install("r1", r1_);
  StageAndActivate("r2", r2_);
  // Killed after the rollback transition, before `current` moved back.
  ASSERT_TRUE(installer_->journal().BeginRollback(kReasonManual, "", now_));
  EXPECT_EQ(CurrentLink(installer_->layout()), "releases/r2");
  Reopen();
  EXPECT_EQ(Status().state, InstallState::kConfirmed);
  ExpectCurrentIs("r1", r1_);
  EXPECT_EQ(Entries(dir_ / "releases"), std::vector<std::string>{"r1"});
}

TEST_F(InstallerTest, RecoveryRepairsACurrentLeftPointingElsewhere) {
  Install("r1", r1_);
  ASSERT_TRUE(installer_->layout().PointCurrentAt("", {}));
  BundleFactory::Write(dir_ / kCurrentTempName, "stale");
  Reopen();
  ExpectCurrentIs("r1", r1_);
  EXPECT_FALSE(fs::exists(fs::symlink_status(dir_ / kCurrentTempName)));
}

TEST(SlotLayout, CurrentThatIsNotASymlinkIsMalformed) {
  ScopedTempDir tmp = *ScopedTempDir::Create();
  SlotLayout layout(tmp.path());
  ASSERT_TRUE(layout.Ensure());
  fs::create_directories(layout.current());
  EXPECT_EQ(layout.CurrentRelease().error().code(), ErrorCode::kMalformed);
}

}  // namespace
}  // namespace airlock::client
