// clang-format off
// The device agent's install state, journaled in SQLite (INSTALL_DIR/agent.db, WAL,
// synchronous=FULL): an explicit state machine whose every transition is one SQLite transaction,
// so a power cut at any instant leaves exactly one of the states below on disk, and the installer
// (client/installer.h) resumes or cleans up from it. docs/formats/agent-state.md has the same
// tables and the schema.
//
//   state            `current` points at          after a crash, recovery (every operation)
//   ---------------  ---------------------------  --------------------------------------------
//   idle             nothing or the built-in      nothing to do
//   staging(T)       the active release           drop .staging-T and slot T; back to rest
//   staged(T)        the active release           nothing (T may be activated)
//   switching(T)     old active or T (both whole) point `current` at T; awaiting_health
//   awaiting_health  T                            stays (the deadline still runs)
//   confirmed        the active release           nothing (old slots removed)
//   rolling_back(T)  T or the last good (whole)   point `current` at the last good; rest
//
//   transition        from                              to
//   ----------------  --------------------------------  -------------------------------------------
//   BeginStaging(T)   idle, confirmed, staged(S)        staging(T)        (S dropped)
//   FinishStaging(T)  staging(T)                        staged(T)         (highest floor raised)
//   AbandonStaging    staging(T)                        rest
//   BeginSwitch(T)    staged(T)                         switching(T)      (active=T, last good=old)
//   FinishSwitch      switching(T)                      awaiting_health   (deadline, starts=0)
//   Confirm(T)        awaiting_health(T)                confirmed
//   ExpireHealth      awaiting_health(T), deadline due  rolling_back      (health_timeout)
//   RecordStart       awaiting_health(T)                awaiting_health   (starts+1), or at the
//                                                       rolling_back      limit (crash_loop)
//   BeginRollback     awaiting_health, confirmed,       rolling_back      (reason given)
//                     staged, switching
//   FinishRollback    rolling_back                      rest
//
// "rest" is confirmed when a release is active, else idle. Entering rolling_back marks the release
// rolled back from as failed (same transaction); the active release becomes the last good one and
// the last good one becomes none. `active` is the release `current` points at (not yet confirmed in
// switching and awaiting_health); `last_good` is the confirmed release before it, where a rollback
// goes (none: the built-in, or `current` removed). Failed releases are kept forever with their
// reason code and never staged again. The highest security floor only rises. Not thread-safe;
// several processes may use the database (SQLite locking, busy timeout 5 s).
// clang-format on
#ifndef AIRLOCK_CLIENT_INSTALL_JOURNAL_H_
#define AIRLOCK_CLIENT_INSTALL_JOURNAL_H_

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

struct sqlite3;

namespace airlock::client {

enum class InstallState {
  kIdle,
  kStaging,
  kStaged,
  kSwitching,
  kAwaitingHealth,
  kConfirmed,
  kRollingBack,
};

std::string_view InstallStateName(InstallState state);  // "idle", "staging", ..., "rolling_back"
[[nodiscard]] Result<InstallState> ParseInstallState(std::string_view name);  // kMalformed
// Whether the table above has the edge from -> to.
bool IsAllowedTransition(InstallState from, InstallState to);

// Rollback and failure reason codes (the report reason codes of the issue).
inline constexpr std::string_view kReasonHealthTimeout = "health_timeout";
inline constexpr std::string_view kReasonCrashLoop = "crash_loop";
inline constexpr std::string_view kReasonManual = "manual_rollback";
// The channel was rolled back (a signed rollback target) to the release in the last-good slot.
inline constexpr std::string_view kReasonServerRollback = "server_rollback";
inline constexpr std::string_view kReasonSlotMissing = "slot_missing";

struct ReleaseRef {
  std::string id;  // empty: none (the built-in)
  std::string version;
  uint64_t security_floor = 0;
  bool empty() const { return id.empty(); }
};

struct FailedRelease {
  std::string id;
  std::string version;
  std::string reason;  // a reason code above
  std::string detail;
  std::time_t failed_at = 0;
};

struct JournalState {
  InstallState state = InstallState::kIdle;
  ReleaseRef target;                // staging, staged: the release being installed
  ReleaseRef active;                // what `current` points at (or will, in switching)
  ReleaseRef last_good;             // where a rollback goes; empty: the built-in
  std::time_t health_deadline = 0;  // awaiting_health
  int64_t start_count = 0;          // awaiting_health: starts without a confirmation
  uint64_t highest_floor = 0;
  std::string rollback_reason;  // rolling_back (and kept after, for status)
  std::string rollback_from;    // the release rolled back from
};

class InstallJournal {
 public:
  // Opens (creating, mode 0600) the journal at `path`. kMalformed for a file that is not a journal
  // of this format, kIo otherwise.
  [[nodiscard]] static Result<InstallJournal> Open(const std::filesystem::path& path);
  InstallJournal(InstallJournal&&) noexcept;
  InstallJournal& operator=(InstallJournal&&) noexcept;
  ~InstallJournal();

  [[nodiscard]] Result<JournalState> Load();

  // The transitions of the table. Each is one IMMEDIATE transaction that reads the state, checks
  // the from-state (kNotFound / kAlreadyExists with the state in the message, nothing changed),
  // writes the new state and a row of the transition log, and returns the new state.
  //
  // kInvalidArgument for a bad release id; kAlreadyExists when T is marked failed ("never
  // retried"), is the active or last good release, or another install is in progress (switching,
  // awaiting_health, rolling_back); kRollback when T's floor is below the highest seen.
  [[nodiscard]] Result<JournalState> BeginStaging(const ReleaseRef& release, std::time_t now);
  // staging(T) -> staged(T); remembers T's manifest (JSON text of bundle::ManifestToJson).
  [[nodiscard]] Result<JournalState> FinishStaging(std::string_view release_id,
                                                   std::string_view manifest_json, std::time_t now);
  [[nodiscard]] Result<JournalState> AbandonStaging(std::time_t now);
  // kNotFound unless `release_id` is the staged release.
  [[nodiscard]] Result<JournalState> BeginSwitch(std::string_view release_id, std::time_t now);
  [[nodiscard]] Result<JournalState> FinishSwitch(std::time_t deadline, std::time_t now);
  // kNotFound (nothing changed) unless `release_id` is the release awaiting confirmation; a
  // confirmation of the already confirmed active release succeeds and changes nothing.
  [[nodiscard]] Result<JournalState> Confirm(std::string_view release_id, std::time_t now);
  // awaiting_health: starts+1, and when they reach `limit`, rolling_back with reason crash_loop
  // (one transaction). Other states: no change.
  [[nodiscard]] Result<JournalState> RecordStart(int64_t limit, std::time_t now);
  // Marks the active release failed with `reason` and heads for the last good one. kNotFound when
  // nothing is active or when the active release is the only one known and there is no
  // installation to undo (idle).
  // awaiting_health with the deadline at or before `now`: rolling_back with reason health_timeout
  // (the release marked failed), in one transaction. Other states, or not yet due: no change.
  [[nodiscard]] Result<JournalState> ExpireHealth(std::time_t now);
  [[nodiscard]] Result<JournalState> BeginRollback(std::string_view reason, std::string_view detail,
                                                   std::time_t now);
  [[nodiscard]] Result<JournalState> FinishRollback(std::time_t now);

  // Outside the state machine: remembers a release as failed (e.g. its bundle failed
  // verification), raises the highest floor seen (never lowers it).
  [[nodiscard]] Result<void> MarkFailed(const ReleaseRef& release, std::string_view reason,
                                        std::string_view detail, std::time_t now);
  [[nodiscard]] Result<void> RaiseFloor(uint64_t floor);

  [[nodiscard]] Result<std::vector<FailedRelease>> FailedReleases();
  [[nodiscard]] Result<std::optional<FailedRelease>> FindFailed(std::string_view release_id);
  // The manifest JSON text remembered for a staged release; kNotFound if none.
  [[nodiscard]] Result<std::string> Manifest(std::string_view release_id);
  // Forgets manifests of releases other than `keep`.
  [[nodiscard]] Result<void> ForgetManifestsExcept(const std::vector<std::string>& keep);

  struct LogEntry {
    int64_t seq = 0;
    std::time_t at = 0;
    std::string from, to, release, reason;
  };
  // The newest `limit` transitions, oldest first (the last 1000 are kept).
  [[nodiscard]] Result<std::vector<LogEntry>> Log(size_t limit);

 private:
  struct Impl;
  explicit InstallJournal(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// kInvalidArgument unless 1..128 bytes of [A-Za-z0-9._-] not starting with '.': release ids become
// directory names.
[[nodiscard]] Result<void> ValidateReleaseId(std::string_view id);

}  // namespace airlock::client

#endif  // AIRLOCK_CLIENT_INSTALL_JOURNAL_H_
