// The device-side install engine: stages a sealed bundle into a slot, switches `current` to it,
// waits for the app's health confirmation, and rolls back to the last good release (or the
// built-in) when it does not come or the app keeps crashing. The state machine and its table are in
// client/install_journal.h (docs/formats/agent-state.md); the directory layout in client/slots.h.
//
// Crash safety: every public operation first takes an exclusive flock on INSTALL_DIR/.lock and
// resumes or cleans up whatever a killed run left (Open does so too, unless wait_on_open is false
// and another process holds the lock; RecordStart only when a release awaits confirmation), so
// `current` always names a complete release that was verified when it was staged (or the built-in /
// nothing when none was ever installed), and no staging survives. Confirm takes only a journal
// transaction (the app's confirmation must not wait behind a long staging) and removes old slots
// only if the lock is free. Rollback never needs the network. Several processes may use one install
// directory (the agent's daemon and its `confirm` command); one Installer object is not
// thread-safe.
//
// Error codes. A refusal changes nothing; a system error in the middle of an operation leaves a
// journaled state that the next operation (or Open) resumes or cleans up.
//   kInvalidArgument  a malformed release id (release ids become directory names), bad options, a
//                     content key that is not 32 bytes
//   kAlreadyExists    Stage: the release failed before (never retried), is already installed
//                     (active or last good), or another install is in progress (switching,
//                     awaiting_health, rolling_back)
//   kRollback         Stage: the release's security floor is below the highest floor seen
//   kNotFound         Activate: the release is not the staged one; Confirm: the release is not the
//                     one awaiting confirmation (e.g. the old version's confirmation after the
//                     switch: ignored); Rollback: nothing is active; VerifyActive: nothing
//                     installed
//   kHashMismatch     Stage: the bundle is for another version or app than the release named;
//                     Activate, VerifyActive: a file in the slot differs from its signed hash
//   bundle errors     Stage: those of bundle::OpenBundleWithContentKey (kBadSignature, kWrongKey,
//                     kHashMismatch, kDecryptFailed, kTruncated, kUnsafePath, kLimitExceeded, ...)
//   kIo, kMalformed   the file system or the journal failed
#ifndef AIRLOCK_CLIENT_INSTALLER_H_
#define AIRLOCK_CLIENT_INSTALLER_H_

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bundle/manifest.h"
#include "client/install_journal.h"
#include "client/slots.h"
#include "client/updater.h"
#include "common/bytes.h"
#include "common/result.h"
#include "crypto/keys.h"

namespace airlock::client {

struct InstallerOptions {
  int64_t health_timeout_seconds = 30;  // Activate -> deadline for Confirm
  int64_t crash_loop_limit = 3;         // starts of an unconfirmed release before it is rolled back
  Clock clock = SystemTime;
  // The release shipped with the app: `current` points here when no release is active (none ever
  // installed, or rolled back past the first). Empty: `current` is then absent.
  std::filesystem::path builtin_dir;
  // When set, Stage refuses a bundle of another app (kHashMismatch).
  std::string app_id;
  bundle::Limits limits;
  // false: Open does not wait while another process holds the directory's lock (e.g. the daemon
  // staging a large release) and leaves recovery to that process, which recovers first itself.
  // For short commands on the app's start path (`airlock-agent started`).
  bool wait_on_open = true;
};

struct InstallStatus {
  InstallState state = InstallState::kIdle;
  std::string release;  // the active release's id; empty: the built-in
  std::string version;
  std::string last_good_release;
  std::string last_good_version;
  std::string pending_release;  // staging / staged
  std::time_t health_deadline = 0;
  int64_t start_count = 0;
  uint64_t highest_floor = 0;
  std::string last_rollback_reason;
  std::string last_rollback_from;
  std::vector<FailedRelease> failed;
};

class Installer {
 public:
  // Creates INSTALL_DIR (and releases/, agent.db) if needed, then recovers (see above).
  [[nodiscard]] static Result<Installer> Open(const std::filesystem::path& install_dir,
                                              InstallerOptions options = {});
  Installer(Installer&&) noexcept;
  Installer& operator=(Installer&&) noexcept;
  ~Installer();

  // Opens the sealed bundle (signature under `verify_key`, every file hash) into
  // releases/.staging-<id>, checks its version (and app) against the release, then renames it to
  // releases/<id>. `current` is not touched. A staged release not yet activated is replaced.
  // On any error nothing is installed and the state is as before.
  [[nodiscard]] Result<InstallStatus> Stage(std::string_view release_id, std::string_view version,
                                            uint64_t security_floor,
                                            const std::filesystem::path& bundle_path,
                                            const crypto::PublicKey& verify_key,
                                            ByteSpan content_key);
  // Stage from a delta (bundle/delta.h) against the active release instead of a whole bundle:
  // the delta's signature under `verify_key`, the base it names (the active release's signed
  // manifest), the active slot's files against that manifest, and every file of the result
  // against the delta's signed manifest. kNotFound when no release is active; otherwise the
  // errors of bundle::ApplyDelta and those of Stage. On any error nothing is installed.
  [[nodiscard]] Result<InstallStatus> StageDelta(std::string_view release_id,
                                                 std::string_view version, uint64_t security_floor,
                                                 const std::filesystem::path& delta_path,
                                                 const crypto::PublicKey& verify_key,
                                                 ByteSpan content_key);
  // Re-checks the staged slot's files against their signed hashes (kHashMismatch: stage it again),
  // then switches `current` to it and waits for its confirmation until now + timeout.
  [[nodiscard]] Result<InstallStatus> Activate(std::string_view release_id);
  // Counts only for the release awaiting confirmation; then removes old slots (all but the active
  // and the last good release). Confirming the confirmed active release again succeeds.
  [[nodiscard]] Result<InstallStatus> Confirm(std::string_view release_id);
  // Rolls back (reason health_timeout, the release remembered as failed) when the release awaiting
  // confirmation is past its deadline at `now`. Returns whether it rolled back.
  [[nodiscard]] Result<bool> Tick(std::time_t now);
  // Tick(clock()).
  [[nodiscard]] Result<bool> CheckHealth();
  // The app (re)starts: counts a start of the release awaiting confirmation; the
  // crash_loop_limit-th start rolls back (reason crash_loop). Returns whether it rolled back.
  // When no release awaits confirmation it changes nothing and does not wait for the lock (the
  // app's start must not wait behind a staging).
  [[nodiscard]] Result<bool> RecordStart();
  // Rolls the active release back to the last good release (or the built-in) and remembers it as
  // failed with `reason` (e.g. kReasonManual). Rollbacks (also those of Tick and RecordStart) go
  // to the release that ran before whatever its security floor: it was verified when installed,
  // and the alternative is a device left on a release that did not come up. The floor gates Stage.
  [[nodiscard]] Result<InstallStatus> Rollback(std::string_view reason);
  [[nodiscard]] Result<InstallStatus> Status();
  // Re-checks the active release's files on disk against the signed manifest of its bundle:
  // kHashMismatch naming the first file that was changed, removed or added.
  [[nodiscard]] Result<void> VerifyActive();

  // Remembers a release as failed (e.g. its bundle failed verification) so it is never staged.
  [[nodiscard]] Result<void> MarkFailed(std::string_view release_id, std::string_view version,
                                        std::string_view reason, std::string_view detail);
  // Raises the highest security floor seen (signed metadata named it); never lowers it.
  [[nodiscard]] Result<void> ObserveSecurityFloor(uint64_t floor);

  const SlotLayout& layout() const;
  InstallJournal& journal();

 private:
  struct Impl;
  explicit Installer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The report reason code for an error of Stage (signature_invalid, hash_mismatch,
// decrypt_failed, unpack_failed, downgrade_refused, ...).
std::string_view StageFailureReason(const Error& error);

}  // namespace airlock::client

#endif  // AIRLOCK_CLIENT_INSTALLER_H_
