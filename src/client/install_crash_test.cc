// Crash consistency of the install engine: a child process installs, confirms and rolls back small
// sealed releases in a loop while the parent SIGKILLs it at random points; after every kill the
// parent opens the install directory (recovery) and checks that `current` resolves to a complete
// release whose files match that release's signed hashes, byte for byte, and that no staging
// survived. AIRLOCK_CRASH_ITERATIONS sets the number of kills (default 200; the long run,
// scripts/install-crash-test.sh, uses 1000); AIRLOCK_CRASH_SEED replays a run.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <random>
#include <set>

#include "client/install_test_util.h"
#include "client/installer.h"

namespace airlock::client {
namespace {

namespace fs = std::filesystem;
using testing::BundleFactory;
using testing::SealedRelease;

constexpr int kReleases = 4;
constexpr int64_t kCrashLoopLimit = 2;

size_t EnvNumber(const char* name, size_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return static_cast<size_t>(std::strtoull(v, nullptr, 10));
}

InstallerOptions Options() {
  InstallerOptions o;
  o.health_timeout_seconds = 60;
  o.crash_loop_limit = kCrashLoopLimit;
  o.app_id = testing::kTestApp;
  return o;
}

// Release ids are "b<j>-<pid>-<n>": bundle j, unique per child and step.
int BundleOf(const std::string& id) { return id.size() > 1 ? id[1] - '0' : -1; }

// The child: installs forever (until killed), writing one byte to `progress` after every
// operation, or 'E' and a message on stderr when an operation fails (a bug).
[[noreturn]] void RunChild(const fs::path& dir, const std::vector<SealedRelease>& releases,
                           const crypto::PublicKey& verify_key, int progress, uint64_t seed) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  std::mt19937_64 rng(seed);
  auto fail = [&](const std::string& what, const Error& e) {
    std::fprintf(stderr, "child: %s: %s\n", what.c_str(), e.ToString().c_str());
    (void)!::write(progress, "E", 1);
    ::_exit(2);
  };
  auto tick = [&] { (void)!::write(progress, ".", 1); };
  auto opened = Installer::Open(dir, Options());
  if (!opened) fail("open", opened.error());
  Installer& inst = *opened;
  tick();
  // Ends one way or another the release that awaits confirmation.
  auto settle = [&](const std::string& id) {
    int choice = static_cast<int>(rng() % 10);
    if (choice < 6) {
      auto c = inst.Confirm(id);
      if (!c) fail("confirm " + id, c.error());
    } else if (choice < 8) {
      auto t = inst.Tick(std::time(nullptr) + 3600);
      if (!t || !*t) fail("tick " + id, t ? Error(ErrorCode::kInternal, "no rollback") : t.error());
    } else {
      for (int64_t i = 0; i < kCrashLoopLimit; ++i) {
        auto s = inst.RecordStart();
        if (!s) fail("start " + id, s.error());
      }
    }
    tick();
  };
  for (uint64_t n = 0; n < 100000; ++n) {
    auto status = inst.Status();
    if (!status) fail("status", status.error());
    if (status->state == InstallState::kAwaitingHealth) settle(status->release);
    if (status->state == InstallState::kConfirmed && rng() % 10 == 0) {
      auto r = inst.Rollback(kReasonManual);
      if (!r) fail("rollback", r.error());
      tick();
    }
    int j = static_cast<int>(rng() % kReleases);
    std::string id =
        "b" + std::to_string(j) + "-" + std::to_string(::getpid()) + "-" + std::to_string(n);
    const SealedRelease& r = releases[static_cast<size_t>(j)];
    auto staged = inst.Stage(id, r.version, 0, r.bundle, verify_key, r.content_key);
    if (!staged) fail("stage " + id, staged.error());
    tick();
    auto active = inst.Activate(id);
    if (!active) fail("activate " + id, active.error());
    tick();
    settle(id);
  }
  ::_exit(0);
}

class InstallCrash : public ::testing::Test {
 protected:
  void SetUp() override {
    // tmpfs when there is one: a SIGKILL leaves the page cache as it is, so what is checked here
    // does not depend on the disk, and 200 runs stay within the test time.
    fs::path parent = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::path();
    tmp_ = std::make_unique<ScopedTempDir>(*ScopedTempDir::Create(parent, "airlock-crash-"));
    factory_ = std::make_unique<BundleFactory>(tmp_->path());
    for (int j = 0; j < kReleases; ++j) {
      releases_.push_back(factory_->Make("2." + std::to_string(j) + ".0", 64 + 64 * j));
    }
    dir_ = tmp_->path() / "install";
  }

  // Opens (recovers) and checks the install directory; returns the active release id.
  std::string RecoverAndCheck(size_t iteration) {
    auto opened = Installer::Open(dir_, Options());
    EXPECT_TRUE(opened) << "iteration " << iteration << ": " << opened.error().ToString();
    if (!opened) return "";
    InstallStatus s = *opened->Status();
    EXPECT_TRUE(s.state == InstallState::kIdle || s.state == InstallState::kConfirmed ||
                s.state == InstallState::kStaged || s.state == InstallState::kAwaitingHealth)
        << "iteration " << iteration << ": left in " << InstallStateName(s.state);
    const SlotLayout& layout = opened->layout();
    std::string link = testing::CurrentLink(layout);
    if (s.release.empty()) {
      EXPECT_EQ(link, "") << "iteration " << iteration;
    } else {
      EXPECT_EQ(link, "releases/" + s.release) << "iteration " << iteration;
      int j = BundleOf(s.release);
      EXPECT_TRUE(j >= 0 && j < kReleases) << s.release;
      if (j >= 0 && j < kReleases) {
        // Through `current`, the bytes on disk against the signed manifest of that release.
        auto v = VerifyTree(layout.current(), releases_[static_cast<size_t>(j)].manifest);
        EXPECT_TRUE(v) << "iteration " << iteration << ": " << v.error().ToString();
      }
      auto again = opened->VerifyActive();
      EXPECT_TRUE(again) << again.error().ToString();
    }
    for (const std::string& kept : {s.last_good_release, s.pending_release}) {
      if (kept.empty()) continue;
      int j = BundleOf(kept);
      auto v = VerifyTree(layout.Slot(kept), releases_[static_cast<size_t>(j)].manifest);
      EXPECT_TRUE(v) << "iteration " << iteration << ": " << kept << ": " << v.error().ToString();
    }
    std::set<std::string> expected;
    for (const std::string& id : {s.release, s.last_good_release, s.pending_release}) {
      if (!id.empty()) expected.insert(id);
    }
    std::vector<std::string> names = testing::Entries(layout.releases());
    EXPECT_EQ(std::set<std::string>(names.begin(), names.end()), expected)
        << "iteration " << iteration << ": a staging, trash or stray slot survived recovery";
    EXPECT_FALSE(fs::exists(fs::symlink_status(dir_ / kCurrentTempName)));
    return s.release;
  }

  std::unique_ptr<ScopedTempDir> tmp_;
  std::unique_ptr<BundleFactory> factory_;
  std::vector<SealedRelease> releases_;
  fs::path dir_;
};

TEST_F(InstallCrash, EveryKillLeavesACompleteVerifiedReleaseAndNoStaging) {
  size_t iterations = EnvNumber("AIRLOCK_CRASH_ITERATIONS", 200);
  uint64_t seed = EnvNumber("AIRLOCK_CRASH_SEED", static_cast<size_t>(std::random_device{}()));
  std::printf("InstallCrash: %zu kills, AIRLOCK_CRASH_SEED=%llu\n", iterations,
              static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  crypto::PublicKey verify_key = factory_->verify_key();
  std::set<std::string> actives;
  size_t mid_operation = 0;
  size_t leftovers = 0;
  std::map<std::string, size_t> found;
  for (size_t i = 0; i < iterations; ++i) {
    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    uint64_t child_seed = rng();
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(pipe_fds[0]);
      RunChild(dir_, releases_, verify_key, pipe_fds[1], child_seed);
    }
    ::close(pipe_fds[1]);
    // Let the child get through a random number of operations (reading its progress, no
    // guessing), then kill it at a random instant of the next one: the busy wait below is the
    // random kill point, nothing waits on it for something to happen.
    int steps = static_cast<int>(rng() % 6);
    bool child_failed = false;
    for (int k = 0; k < steps; ++k) {
      char c = 0;
      ssize_t got = ::read(pipe_fds[0], &c, 1);
      if (got != 1 || c == 'E') {
        child_failed = true;
        break;
      }
    }
    // Half of the kills within 300 us of a finished operation, to land in the short steps
    // (switching, rolling back, the journal transactions) as well as in the long staging.
    uint64_t window_us = rng() % 2 == 0 ? 300 : 20000;
    auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(rng() % window_us);
    while (std::chrono::steady_clock::now() < until) {
    }
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ::close(pipe_fds[0]);
    ASSERT_FALSE(child_failed) << "iteration " << i << ": the child failed (see its stderr)";
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "iteration " << i << ": the child ended on its own, status " << status;
    if (steps > 0) ++mid_operation;
    if (!fs::exists(dir_ / "agent.db")) {
      ++found["(no journal yet)"];
    } else {
      // What the kill left, before recovery (reported, to show where the kills landed).
      auto j = InstallJournal::Open(dir_ / "agent.db");
      ASSERT_TRUE(j) << j.error().ToString();
      ++found[std::string(InstallStateName(j->Load()->state))];
      for (const std::string& name : testing::Entries(dir_ / "releases")) {
        if (name[0] == '.') ++leftovers;
      }
    }
    actives.insert(RecoverAndCheck(i));
    if (::testing::Test::HasFailure()) {
      FAIL() << "stopped at iteration " << i << " (AIRLOCK_CRASH_SEED=" << seed << ")";
    }
  }
  // The loop made progress: several releases were active at one kill or another.
  EXPECT_GE(actives.size(), std::min<size_t>(iterations / 20, 5u));
  std::printf(
      "InstallCrash: %zu distinct active releases seen, %zu kills after progress, %zu "
      "staging/trash entries left by kills; states left:",
      actives.size(), mid_operation, leftovers);
  for (const auto& [state, n] : found) std::printf(" %s=%zu", state.c_str(), n);
  std::printf("\n");
}

}  // namespace
}  // namespace airlock::client
