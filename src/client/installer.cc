#include "client/installer.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <optional>
#include <system_error>
#include <utility>

#include "bundle/bundle.h"
#include "bundle/delta.h"
#include "common/fd.h"

namespace airlock::client {
namespace {

namespace fs = std::filesystem;

// An exclusive flock on INSTALL_DIR/.lock for the length of one operation: two agents (the daemon
// and a `rollback` command) never move slots or `current` at the same time.
Result<UniqueFd> LockDir(const fs::path& lock_file, bool wait) {
  UniqueFd fd(::open(lock_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd.valid()) {
    return MakeError(ErrorCode::kIo,
                     "cannot open " + lock_file.string() + ": " + std::strerror(errno));
  }
  while (::flock(fd.get(), LOCK_EX | (wait ? 0 : LOCK_NB)) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) return UniqueFd();
    return MakeError(ErrorCode::kIo,
                     "cannot lock " + lock_file.string() + ": " + std::strerror(errno));
  }
  return fd;
}

std::vector<std::string> KeptSlots(const JournalState& s) {
  std::vector<std::string> keep;
  for (const ReleaseRef* r : {&s.active, &s.last_good, &s.target}) {
    if (!r->empty()) keep.push_back(r->id);
  }
  return keep;
}

}  // namespace

// How long after Stage verified a slot Activate may switch to it without hashing its files again.
constexpr std::chrono::seconds kFreshSlotWindow{60};

struct Installer::Impl {
  SlotLayout layout;
  InstallerOptions options;
  InstallJournal journal;
  // The slot this object staged last, with its files' stamp taken right after they were verified
  // and renamed into place (see Activate).
  struct FreshSlot {
    std::string id;
    TreeStamp stamp;
    std::chrono::steady_clock::time_point verified_at;
  };
  std::optional<FreshSlot> fresh;

  std::time_t Now() const { return options.clock(); }

  InstallStatus ToStatus(const JournalState& s, std::vector<FailedRelease> failed) const {
    InstallStatus st;
    st.state = s.state;
    st.release = s.active.id;
    st.version = s.active.version;
    st.last_good_release = s.last_good.id;
    st.last_good_version = s.last_good.version;
    st.pending_release = s.target.id;
    st.health_deadline = s.health_deadline;
    st.start_count = s.start_count;
    st.highest_floor = s.highest_floor;
    st.last_rollback_reason = s.rollback_reason;
    st.last_rollback_from = s.rollback_from;
    st.failed = std::move(failed);
    return st;
  }

  Result<InstallStatus> Status() {
    AIRLOCK_ASSIGN_OR_RETURN(JournalState s, journal.Load());
    AIRLOCK_ASSIGN_OR_RETURN(auto failed, journal.FailedReleases());
    return ToStatus(s, std::move(failed));
  }

  // Removes every slot and staging the state does not name, and their manifests.
  Result<void> Clean(const JournalState& s) {
    std::vector<std::string> keep = KeptSlots(s);
    AIRLOCK_TRY(layout.Clean(keep).map([](size_t) {}));
    return journal.ForgetManifestsExcept(keep);
  }

  // `current` as the state says it must be: the active slot, or the built-in / nothing.
  Result<void> EnsureCurrent(const JournalState& s) {
    AIRLOCK_ASSIGN_OR_RETURN(std::string now_at, layout.CurrentRelease());
    bool right = now_at == s.active.id;
    if (right && s.active.empty()) {
      std::error_code ec;
      bool exists = fs::exists(fs::symlink_status(layout.current(), ec));
      right = options.builtin_dir.empty()
                  ? !exists
                  : exists && fs::read_symlink(layout.current(), ec) == options.builtin_dir;
    }
    if (right) return {};
    return layout.PointCurrentAt(s.active.id, options.builtin_dir);
  }

  // rolling_back -> rest: `current` to the last good release, then the failed slot goes.
  Result<JournalState> FinishRollback() {
    AIRLOCK_ASSIGN_OR_RETURN(JournalState s, journal.Load());
    AIRLOCK_TRY(layout.PointCurrentAt(s.active.id, options.builtin_dir));
    AIRLOCK_ASSIGN_OR_RETURN(s, journal.FinishRollback(Now()));
    AIRLOCK_TRY(Clean(s));
    return s;
  }

  // The signed manifest recorded when a slot was staged.
  Result<bundle::Manifest> SlotManifest(std::string_view id) {
    AIRLOCK_ASSIGN_OR_RETURN(std::string text, journal.Manifest(id));
    auto json = nlohmann::json::parse(text, nullptr, false);
    if (json.is_discarded()) {
      return MakeError(ErrorCode::kMalformed,
                       "the journal's manifest of " + std::string(id) + " is not JSON");
    }
    return bundle::ManifestFromJson(json, options.limits);
  }

  // A slot's files against the signed manifest recorded when it was staged.
  Result<void> VerifySlot(std::string_view id) {
    AIRLOCK_ASSIGN_OR_RETURN(bundle::Manifest manifest, SlotManifest(id));
    AIRLOCK_TRY_CTX(VerifyTree(layout.Slot(id), manifest), "release " + std::string(id));
    return {};
  }

  // What opening a bundle or applying a delta produced in the staging slot (all verified).
  struct Opened {
    std::string app_id;
    std::string version;
    bundle::Manifest files;
    std::string what;  // "bundle" / "delta", for messages
  };
  using Opener = std::function<Result<Opened>(const JournalState&, const fs::path& out)>;

  // Stage's body: journal, leftovers, `open` into the staging slot, checks, promotion.
  Result<InstallStatus> StageWith(std::string_view release_id, std::string_view version,
                                  uint64_t security_floor, const Opener& open) {
    AIRLOCK_TRY(ValidateReleaseId(release_id));
    fresh.reset();
    AIRLOCK_ASSIGN_OR_RETURN(UniqueFd lock, Begin());
    std::string id(release_id);
    AIRLOCK_ASSIGN_OR_RETURN(JournalState before, journal.Load());
    AIRLOCK_TRY(journal.BeginStaging({id, std::string(version), security_floor}, Now()));
    // Left by an earlier attempt (the state never named them): not a release.
    for (const std::string& name : {kStagingSlotPrefix + id, id}) {
      auto removed = layout.Remove(name);
      if (!removed) return tl::unexpected(AbandonStage(id, removed.error()));
    }
    auto opened = open(before, layout.Staging(id));
    if (!opened) {
      return tl::unexpected(AbandonStage(id, opened.error().WithContext("release " + id)));
    }
    if (opened->version != version) {
      return tl::unexpected(AbandonStage(
          id, Error(ErrorCode::kHashMismatch, "release " + id + ": the " + opened->what +
                                                  " is signed for version " + opened->version +
                                                  ", the release names " + std::string(version))));
    }
    if (!options.app_id.empty() && opened->app_id != options.app_id) {
      return tl::unexpected(AbandonStage(
          id, Error(ErrorCode::kHashMismatch, "release " + id + ": the " + opened->what +
                                                  " is for app " + opened->app_id + ", not " +
                                                  options.app_id)));
    }
    auto promoted = layout.Promote(id);
    if (!promoted) return tl::unexpected(AbandonStage(id, promoted.error()));
    // Every file was hashed against the manifest moments ago, as it was written.
    auto stamp = StampTree(layout.Slot(id));
    if (!stamp) return tl::unexpected(AbandonStage(id, stamp.error()));
    AIRLOCK_ASSIGN_OR_RETURN(
        JournalState s,
        journal.FinishStaging(id, bundle::ManifestToJson(opened->files).dump(), Now()));
    AIRLOCK_TRY(Clean(s));
    fresh = FreshSlot{id, std::move(*stamp), std::chrono::steady_clock::now()};
    return Status();
  }

  bool SlotExists(std::string_view id) const {
    std::error_code ec;
    return fs::is_directory(fs::symlink_status(layout.Slot(id), ec));
  }

  // Resumes or cleans up what an interrupted operation left (under the lock).
  Result<JournalState> Recover() {
    AIRLOCK_ASSIGN_OR_RETURN(JournalState s, journal.Load());
    switch (s.state) {
      case InstallState::kStaging: {
        // The slot may or may not have been renamed into place; it was never named staged, so
        // Clean below removes it with the staging.
        AIRLOCK_ASSIGN_OR_RETURN(s, journal.AbandonStaging(Now()));
        break;
      }
      case InstallState::kSwitching: {
        if (SlotExists(s.active.id)) {
          AIRLOCK_TRY(layout.PointCurrentAt(s.active.id, options.builtin_dir));
          AIRLOCK_ASSIGN_OR_RETURN(
              s, journal.FinishSwitch(Now() + options.health_timeout_seconds, Now()));
        } else {
          AIRLOCK_TRY(journal.BeginRollback(kReasonSlotMissing, "the slot vanished", Now()));
          AIRLOCK_ASSIGN_OR_RETURN(s, FinishRollback());
        }
        break;
      }
      case InstallState::kRollingBack: {
        AIRLOCK_ASSIGN_OR_RETURN(s, FinishRollback());
        break;
      }
      case InstallState::kAwaitingHealth:
      case InstallState::kConfirmed: {
        if (!SlotExists(s.active.id)) {
          AIRLOCK_TRY(journal.BeginRollback(kReasonSlotMissing,
                                            "the active slot " + s.active.id + " vanished", Now()));
          AIRLOCK_ASSIGN_OR_RETURN(s, FinishRollback());
        }
        break;
      }
      case InstallState::kIdle:
      case InstallState::kStaged:
        break;
    }
    AIRLOCK_TRY(EnsureCurrent(s));
    AIRLOCK_TRY(Clean(s));
    return s;
  }

  // Locks the directory and recovers; the lock is held while the returned fd lives.
  Result<UniqueFd> Begin() {
    AIRLOCK_ASSIGN_OR_RETURN(UniqueFd lock, LockDir(layout.lock_file(), true));
    AIRLOCK_TRY(Recover());
    return lock;
  }

  // Undoes a failed Stage: no slot, state as before.
  Error AbandonStage(std::string_view id, Error error) {
    (void)layout.Remove(kStagingSlotPrefix + std::string(id));
    (void)layout.Remove(id);
    auto r = journal.AbandonStaging(Now());
    if (!r) return r.error().WithContext("after " + error.ToString());
    return error;
  }
};

Installer::Installer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Installer::Installer(Installer&&) noexcept = default;
Installer& Installer::operator=(Installer&&) noexcept = default;
Installer::~Installer() = default;

Result<Installer> Installer::Open(const fs::path& install_dir, InstallerOptions options) {
  if (options.health_timeout_seconds <= 0 || options.crash_loop_limit <= 0 || !options.clock) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "installer: the health timeout and crash-loop limit must be positive and a "
                     "clock given");
  }
  if (!options.builtin_dir.empty() && !options.builtin_dir.is_absolute()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "installer: the built-in folder must be absolute");
  }
  SlotLayout layout(install_dir);
  AIRLOCK_TRY(layout.Ensure());
  const bool wait = options.wait_on_open;
  AIRLOCK_ASSIGN_OR_RETURN(UniqueFd lock, LockDir(layout.lock_file(), wait));
  AIRLOCK_ASSIGN_OR_RETURN(InstallJournal journal, InstallJournal::Open(layout.journal()));
  auto impl =
      std::unique_ptr<Impl>(new Impl{std::move(layout), std::move(options), std::move(journal)});
  // Not locked (busy, wait_on_open false): the holder recovered before its operation.
  if (lock.valid()) AIRLOCK_TRY_CTX(impl->Recover(), "recovering " + install_dir.string());
  return Installer(std::move(impl));
}

Result<InstallStatus> Installer::Stage(std::string_view release_id, std::string_view version,
                                       uint64_t security_floor, const fs::path& bundle_path,
                                       const crypto::PublicKey& verify_key, ByteSpan content_key) {
  return impl_->StageWith(
      release_id, version, security_floor,
      [&](const JournalState&, const fs::path& out) -> Result<Impl::Opened> {
        AIRLOCK_ASSIGN_OR_RETURN(
            bundle::BundleHeader header,
            bundle::OpenBundleWithContentKey(bundle_path, verify_key, content_key, out,
                                             impl_->options.limits));
        return Impl::Opened{header.app_id, header.version, std::move(header.files), "bundle"};
      });
}

Result<InstallStatus> Installer::StageDelta(std::string_view release_id, std::string_view version,
                                            uint64_t security_floor, const fs::path& delta_path,
                                            const crypto::PublicKey& verify_key,
                                            ByteSpan content_key) {
  return impl_->StageWith(
      release_id, version, security_floor,
      [&](const JournalState& s, const fs::path& out) -> Result<Impl::Opened> {
        if (s.active.empty()) {
          return MakeError(ErrorCode::kNotFound, "no installed release to apply a delta to");
        }
        AIRLOCK_ASSIGN_OR_RETURN(bundle::Manifest manifest, impl_->SlotManifest(s.active.id));
        const bundle::ReleaseFiles base{s.active.version, std::move(manifest),
                                        impl_->layout.Slot(s.active.id)};
        AIRLOCK_ASSIGN_OR_RETURN(bundle::AppliedDelta applied,
                                 bundle::ApplyDelta(delta_path, verify_key, content_key, base, out,
                                                    impl_->options.limits));
        return Impl::Opened{applied.header.app_id, applied.header.version, std::move(applied.files),
                            "delta"};
      });
}

Result<InstallStatus> Installer::Activate(std::string_view release_id) {
  AIRLOCK_TRY(ValidateReleaseId(release_id));
  std::optional<Impl::FreshSlot> fresh = std::exchange(impl_->fresh, std::nullopt);
  AIRLOCK_ASSIGN_OR_RETURN(UniqueFd lock, impl_->Begin());
  // The slot may have waited a while since it was verified: `current` only ever points at files
  // that match their signed hashes now. The files are hashed again unless this object staged the
  // slot within kFreshSlotWindow and the kernel's stamp of the slot (inodes, sizes, modification
  // and change times of every entry) is exactly as it was right after Stage verified it: then no
  // byte, name or mode under it changed since (a write, rename or chmod moves the change time,
  // which no process can set back), and hashing again would read what was just verified.
  AIRLOCK_ASSIGN_OR_RETURN(JournalState before, impl_->journal.Load());
  if (before.state == InstallState::kStaged && before.target.id == release_id) {
    bool unchanged = false;
    if (fresh && fresh->id == release_id &&
        std::chrono::steady_clock::now() - fresh->verified_at < kFreshSlotWindow) {
      auto now = StampTree(impl_->layout.Slot(release_id));
      unchanged = now && *now == fresh->stamp;
    }
    if (!unchanged) {
      AIRLOCK_TRY_CTX(impl_->VerifySlot(release_id),
                      "not activating release " + std::string(release_id) + " (stage it again)");
    }
  }
  AIRLOCK_TRY(impl_->journal.BeginSwitch(release_id, impl_->Now()));
  AIRLOCK_TRY(impl_->layout.PointCurrentAt(release_id, impl_->options.builtin_dir));
  AIRLOCK_TRY(impl_->journal.FinishSwitch(impl_->Now() + impl_->options.health_timeout_seconds,
                                          impl_->Now()));
  return impl_->Status();
}

Result<InstallStatus> Installer::Confirm(std::string_view release_id) {
  AIRLOCK_TRY(ValidateReleaseId(release_id));
  AIRLOCK_TRY(impl_->journal.Confirm(release_id, impl_->Now()));
  // Old slots go now if no other operation is running; otherwise the next one removes them. The
  // confirmation is committed either way, so a failure here is not the caller's: the next
  // operation's recovery does the same work.
  auto lock = LockDir(impl_->layout.lock_file(), false);
  if (lock && lock->valid()) (void)impl_->Recover();
  return impl_->Status();
}

Result<bool> Installer::Tick(std::time_t now) {
  AIRLOCK_ASSIGN_OR_RETURN(UniqueFd lock, impl_->Begin());
  AIRLOCK_ASSIGN_OR_RETURN(JournalState s, impl_->journal.ExpireHealth(now));
  if (s.state != InstallState::kRollingBack) return false;
  AIRLOCK_TRY(impl_->FinishRollback());
  return true;
}

Result<bool> Installer::CheckHealth() { return Tick(impl_->Now()); }

Result<bool> Installer::RecordStart() {
  // Only awaiting_health counts a start, and no long operation holds the lock in that state.
  AIRLOCK_ASSIGN_OR_RETURN(JournalState now, impl_->journal.Load());
  if (now.state != InstallState::kAwaitingHealth) return false;
  AIRLOCK_ASSIGN_OR_RETURN(UniqueFd lock, impl_->Begin());
  AIRLOCK_ASSIGN_OR_RETURN(
      JournalState s, impl_->journal.RecordStart(impl_->options.crash_loop_limit, impl_->Now()));
  if (s.state != InstallState::kRollingBack) return false;
  AIRLOCK_TRY(impl_->FinishRollback());
  return true;
}

Result<InstallStatus> Installer::Rollback(std::string_view reason) {
  if (reason.empty())
    return MakeError(ErrorCode::kInvalidArgument, "a rollback needs a reason code");
  AIRLOCK_ASSIGN_OR_RETURN(UniqueFd lock, impl_->Begin());
  AIRLOCK_TRY(impl_->journal.BeginRollback(reason, "rollback requested", impl_->Now()));
  AIRLOCK_TRY(impl_->FinishRollback());
  return impl_->Status();
}

Result<InstallStatus> Installer::Status() { return impl_->Status(); }

Result<void> Installer::VerifyActive() {
  AIRLOCK_ASSIGN_OR_RETURN(JournalState s, impl_->journal.Load());
  if (s.active.empty()) return MakeError(ErrorCode::kNotFound, "no release is installed");
  return impl_->VerifySlot(s.active.id);
}

Result<void> Installer::MarkFailed(std::string_view release_id, std::string_view version,
                                   std::string_view reason, std::string_view detail) {
  return impl_->journal.MarkFailed({std::string(release_id), std::string(version), 0}, reason,
                                   detail, impl_->Now());
}

Result<void> Installer::ObserveSecurityFloor(uint64_t floor) {
  return impl_->journal.RaiseFloor(floor);
}

const SlotLayout& Installer::layout() const { return impl_->layout; }
InstallJournal& Installer::journal() { return impl_->journal; }

std::string_view StageFailureReason(const Error& error) {
  switch (error.code()) {
    case ErrorCode::kBadSignature:
    case ErrorCode::kWrongKey:
      return "signature_invalid";
    case ErrorCode::kHashMismatch:
    case ErrorCode::kTruncated:
    case ErrorCode::kTrailingData:
      return "hash_mismatch";
    case ErrorCode::kDecryptFailed:
      return "decrypt_failed";
    case ErrorCode::kRollback:
      return "downgrade_refused";
    case ErrorCode::kAlreadyExists:
      return "release_refused";
    case ErrorCode::kMalformed:
    case ErrorCode::kUnsafePath:
    case ErrorCode::kLimitExceeded:
    case ErrorCode::kUnsupported:
      return "unpack_failed";
    default:
      return "install_failed";
  }
}

}  // namespace airlock::client
