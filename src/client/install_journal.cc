#include "client/install_journal.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <functional>
#include <utility>

#include "sqlite/sqlite_util.h"

namespace airlock::client {
namespace {

namespace fs = std::filesystem;

using sqlite::BindText;
using sqlite::DbPtr;
using sqlite::StmtPtr;

constexpr sqlite::Context kJournalDb{"install journal"};
constexpr int kSchemaVersion = 1;
constexpr int64_t kLogKeep = 1000;

void BindOptText(sqlite3_stmt* s, int i, std::string_view t) {
  if (t.empty()) {
    sqlite3_bind_null(s, i);
  } else {
    BindText(s, i, t);
  }
}

Result<void> Step(sqlite3* db, sqlite3_stmt* s) {
  int rc = sqlite3_step(s);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return tl::unexpected(kJournalDb.DbError(db, "step"));
  return {};
}

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS agent_state (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  state TEXT NOT NULL,
  target_id TEXT, target_version TEXT, target_floor INTEGER NOT NULL DEFAULT 0,
  active_id TEXT, active_version TEXT, active_floor INTEGER NOT NULL DEFAULT 0,
  last_good_id TEXT, last_good_version TEXT, last_good_floor INTEGER NOT NULL DEFAULT 0,
  health_deadline INTEGER NOT NULL DEFAULT 0,
  start_count INTEGER NOT NULL DEFAULT 0,
  highest_floor INTEGER NOT NULL DEFAULT 0,
  rollback_reason TEXT, rollback_from TEXT,
  updated_at INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS slot_manifests (
  release_id TEXT PRIMARY KEY, manifest TEXT NOT NULL, staged_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS failed_releases (
  release_id TEXT PRIMARY KEY, version TEXT NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL,
  failed_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS transitions (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, from_state TEXT NOT NULL,
  to_state TEXT NOT NULL, release_id TEXT, reason TEXT);
INSERT OR IGNORE INTO agent_state (id, state) VALUES (1, 'idle');
)sql";

constexpr std::array<std::pair<InstallState, InstallState>, 15> kEdges = {{
    {InstallState::kIdle, InstallState::kStaging},
    {InstallState::kConfirmed, InstallState::kStaging},
    {InstallState::kStaged, InstallState::kStaging},
    {InstallState::kStaging, InstallState::kStaged},
    {InstallState::kStaging, InstallState::kIdle},
    {InstallState::kStaging, InstallState::kConfirmed},
    {InstallState::kStaged, InstallState::kSwitching},
    {InstallState::kSwitching, InstallState::kAwaitingHealth},
    {InstallState::kAwaitingHealth, InstallState::kConfirmed},
    {InstallState::kAwaitingHealth, InstallState::kRollingBack},
    {InstallState::kConfirmed, InstallState::kRollingBack},
    {InstallState::kStaged, InstallState::kRollingBack},
    {InstallState::kSwitching, InstallState::kRollingBack},
    {InstallState::kRollingBack, InstallState::kConfirmed},
    {InstallState::kRollingBack, InstallState::kIdle},
}};

InstallState RestState(const JournalState& s) {
  return s.active.empty() ? InstallState::kIdle : InstallState::kConfirmed;
}

Error WrongState(ErrorCode code, std::string_view op, const JournalState& s) {
  std::string m =
      std::string(op) + ": not allowed in state " + std::string(InstallStateName(s.state));
  if (!s.target.empty()) m += " (release " + s.target.id + ")";
  if (s.state == InstallState::kAwaitingHealth) m += " (release " + s.active.id + ")";
  return Error(code, m);
}

}  // namespace

std::string_view InstallStateName(InstallState state) {
  switch (state) {
    case InstallState::kIdle:
      return "idle";
    case InstallState::kStaging:
      return "staging";
    case InstallState::kStaged:
      return "staged";
    case InstallState::kSwitching:
      return "switching";
    case InstallState::kAwaitingHealth:
      return "awaiting_health";
    case InstallState::kConfirmed:
      return "confirmed";
    case InstallState::kRollingBack:
      return "rolling_back";
  }
  return "unknown";
}

Result<InstallState> ParseInstallState(std::string_view name) {
  for (InstallState s : {InstallState::kIdle, InstallState::kStaging, InstallState::kStaged,
                         InstallState::kSwitching, InstallState::kAwaitingHealth,
                         InstallState::kConfirmed, InstallState::kRollingBack}) {
    if (InstallStateName(s) == name) return s;
  }
  return MakeError(ErrorCode::kMalformed,
                   "install journal: unknown state '" + std::string(name) + "'");
}

bool IsAllowedTransition(InstallState from, InstallState to) {
  // Staying in a state (a start counted, a repeated confirmation) is an update, not a transition.
  if (from == to) return true;
  return std::find(kEdges.begin(), kEdges.end(), std::make_pair(from, to)) != kEdges.end();
}

Result<void> ValidateReleaseId(std::string_view id) {
  if (id.empty() || id.size() > 128) {
    return MakeError(ErrorCode::kInvalidArgument, "a release id is 1..128 characters");
  }
  if (id.front() == '.') {
    return MakeError(ErrorCode::kInvalidArgument, "a release id may not start with '.'");
  }
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "a release id is made of [A-Za-z0-9._-] only (it names a directory)");
    }
  }
  return {};
}

struct InstallJournal::Impl {
  DbPtr db;

  Result<JournalState> LoadState() {
    AIRLOCK_ASSIGN_OR_RETURN(
        StmtPtr s,
        kJournalDb.Prepare(
            db.get(),
            "SELECT state, target_id, target_version, target_floor, active_id, active_version, "
            "active_floor, last_good_id, last_good_version, last_good_floor, health_deadline, "
            "start_count, highest_floor, rollback_reason, rollback_from FROM agent_state "
            "WHERE id = 1"));
    if (sqlite3_step(s.get()) != SQLITE_ROW) {
      return MakeError(ErrorCode::kMalformed, "install journal: the state row is missing");
    }
    JournalState st;
    AIRLOCK_ASSIGN_OR_RETURN(st.state, ParseInstallState(sqlite::ColumnText(s.get(), 0)));
    auto ref = [&](int col) {
      return ReleaseRef{sqlite::ColumnText(s.get(), col), sqlite::ColumnText(s.get(), col + 1),
                        static_cast<uint64_t>(sqlite3_column_int64(s.get(), col + 2))};
    };
    st.target = ref(1);
    st.active = ref(4);
    st.last_good = ref(7);
    st.health_deadline = static_cast<std::time_t>(sqlite3_column_int64(s.get(), 10));
    st.start_count = sqlite3_column_int64(s.get(), 11);
    st.highest_floor = static_cast<uint64_t>(sqlite3_column_int64(s.get(), 12));
    st.rollback_reason = sqlite::ColumnText(s.get(), 13);
    st.rollback_from = sqlite::ColumnText(s.get(), 14);
    return st;
  }

  Result<void> SaveState(const JournalState& st, std::time_t now) {
    AIRLOCK_ASSIGN_OR_RETURN(
        StmtPtr s,
        kJournalDb.Prepare(
            db.get(),
            "UPDATE agent_state SET state = ?1, target_id = ?2, target_version = ?3, "
            "target_floor = ?4, active_id = ?5, active_version = ?6, active_floor = ?7, "
            "last_good_id = ?8, last_good_version = ?9, last_good_floor = ?10, "
            "health_deadline = ?11, start_count = ?12, highest_floor = ?13, "
            "rollback_reason = ?14, rollback_from = ?15, updated_at = ?16 WHERE id = 1"));
    BindText(s.get(), 1, InstallStateName(st.state));
    auto ref = [&](int col, const ReleaseRef& r) {
      BindOptText(s.get(), col, r.id);
      BindOptText(s.get(), col + 1, r.version);
      sqlite3_bind_int64(s.get(), col + 2, static_cast<int64_t>(r.security_floor));
    };
    ref(2, st.target);
    ref(5, st.active);
    ref(8, st.last_good);
    sqlite3_bind_int64(s.get(), 11, static_cast<int64_t>(st.health_deadline));
    sqlite3_bind_int64(s.get(), 12, st.start_count);
    sqlite3_bind_int64(s.get(), 13, static_cast<int64_t>(st.highest_floor));
    BindOptText(s.get(), 14, st.rollback_reason);
    BindOptText(s.get(), 15, st.rollback_from);
    sqlite3_bind_int64(s.get(), 16, static_cast<int64_t>(now));
    return Step(db.get(), s.get());
  }

  Result<void> AppendLog(std::time_t now, InstallState from, InstallState to,
                         std::string_view release, std::string_view reason) {
    AIRLOCK_ASSIGN_OR_RETURN(
        StmtPtr s,
        kJournalDb.Prepare(db.get(),
                           "INSERT INTO transitions (at, from_state, to_state, release_id, reason) "
                           "VALUES (?1, ?2, ?3, ?4, ?5)"));
    sqlite3_bind_int64(s.get(), 1, static_cast<int64_t>(now));
    BindText(s.get(), 2, InstallStateName(from));
    BindText(s.get(), 3, InstallStateName(to));
    BindOptText(s.get(), 4, release);
    BindOptText(s.get(), 5, reason);
    AIRLOCK_TRY(Step(db.get(), s.get()));
    AIRLOCK_ASSIGN_OR_RETURN(StmtPtr d,
                             kJournalDb.Prepare(db.get(),
                                                "DELETE FROM transitions WHERE seq <= "
                                                "(SELECT MAX(seq) FROM transitions) - ?1"));
    sqlite3_bind_int64(d.get(), 1, kLogKeep);
    return Step(db.get(), d.get());
  }

  Result<std::optional<FailedRelease>> FindFailed(std::string_view id) {
    AIRLOCK_ASSIGN_OR_RETURN(
        StmtPtr s, kJournalDb.Prepare(db.get(),
                                      "SELECT release_id, version, reason, detail, failed_at FROM "
                                      "failed_releases WHERE release_id = ?1"));
    BindText(s.get(), 1, id);
    int rc = sqlite3_step(s.get());
    if (rc == SQLITE_DONE) return std::optional<FailedRelease>();
    if (rc != SQLITE_ROW) {
      return tl::unexpected(kJournalDb.DbError(db.get(), "read failed releases"));
    }
    return std::optional<FailedRelease>(
        FailedRelease{sqlite::ColumnText(s.get(), 0), sqlite::ColumnText(s.get(), 1),
                      sqlite::ColumnText(s.get(), 2), sqlite::ColumnText(s.get(), 3),
                      static_cast<std::time_t>(sqlite3_column_int64(s.get(), 4))});
  }

  Result<void> InsertFailed(const ReleaseRef& r, std::string_view reason, std::string_view detail,
                            std::time_t now) {
    AIRLOCK_ASSIGN_OR_RETURN(
        StmtPtr s,
        kJournalDb.Prepare(db.get(),
                           "INSERT OR IGNORE INTO failed_releases (release_id, version, reason, "
                           "detail, failed_at) VALUES (?1, ?2, ?3, ?4, ?5)"));
    BindText(s.get(), 1, r.id);
    BindText(s.get(), 2, r.version);
    BindText(s.get(), 3, reason);
    BindText(s.get(), 4, detail);
    sqlite3_bind_int64(s.get(), 5, static_cast<int64_t>(now));
    return Step(db.get(), s.get());
  }

  // Marks the active release failed and heads for the last good one (inside a transition).
  Result<void> StartRollback(JournalState& s, std::string_view reason, std::string_view detail,
                             std::time_t now) {
    AIRLOCK_TRY(InsertFailed(s.active, reason, detail, now));
    s.rollback_reason = std::string(reason);
    s.rollback_from = s.active.id;
    s.active = s.last_good;
    s.last_good = {};
    s.target = {};
    s.health_deadline = 0;
    s.start_count = 0;
    s.state = InstallState::kRollingBack;
    return {};
  }

  // One transition: BEGIN IMMEDIATE, read, `edit` (which checks the from-state and changes the
  // copy, or fails: then nothing is written), check the edge against the table, write, log, COMMIT.
  using Edit = std::function<Result<void>(JournalState&)>;
  Result<JournalState> Transition(std::time_t now, std::string_view reason_for_log,
                                  const Edit& edit) {
    AIRLOCK_TRY(kJournalDb.Exec(db.get(), "BEGIN IMMEDIATE"));
    auto result = [&]() -> Result<JournalState> {
      AIRLOCK_ASSIGN_OR_RETURN(JournalState before, LoadState());
      JournalState after = before;
      AIRLOCK_TRY(edit(after));
      if (!IsAllowedTransition(before.state, after.state)) {
        return MakeError(ErrorCode::kInternal,
                         "install journal: transition " +
                             std::string(InstallStateName(before.state)) + " -> " +
                             std::string(InstallStateName(after.state)) + " is not in the table");
      }
      AIRLOCK_TRY(SaveState(after, now));
      std::string release = !after.target.empty() ? after.target.id : after.active.id;
      std::string reason(reason_for_log);
      if (after.state == InstallState::kRollingBack && before.state != after.state) {
        release = after.rollback_from;
        reason = after.rollback_reason;
      }
      if (before.state != after.state || !reason.empty()) {
        AIRLOCK_TRY(AppendLog(now, before.state, after.state, release, reason));
      }
      return after;
    }();
    if (!result) {
      (void)kJournalDb.Exec(db.get(), "ROLLBACK");
      return result;
    }
    AIRLOCK_TRY(kJournalDb.Exec(db.get(), "COMMIT"));
    return result;
  }
};

InstallJournal::InstallJournal(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
InstallJournal::InstallJournal(InstallJournal&&) noexcept = default;
InstallJournal& InstallJournal::operator=(InstallJournal&&) noexcept = default;
InstallJournal::~InstallJournal() = default;

Result<InstallJournal> InstallJournal::Open(const fs::path& path) {
  AIRLOCK_ASSIGN_OR_RETURN(DbPtr db, sqlite::OpenPrivateDb(path, /*create=*/true, kJournalDb.name));
  AIRLOCK_TRY(kJournalDb.Exec(db.get(), "PRAGMA journal_mode=WAL"));
  AIRLOCK_TRY(kJournalDb.Exec(db.get(), "PRAGMA synchronous=FULL"));
  AIRLOCK_TRY(kJournalDb.Exec(db.get(), "BEGIN IMMEDIATE"));
  AIRLOCK_ASSIGN_OR_RETURN(StmtPtr v, kJournalDb.Prepare(db.get(), "PRAGMA user_version"));
  int version = sqlite3_step(v.get()) == SQLITE_ROW ? sqlite3_column_int(v.get(), 0) : -1;
  v.reset();
  if (version != 0 && version != kSchemaVersion) {
    (void)kJournalDb.Exec(db.get(), "ROLLBACK");
    return MakeError(ErrorCode::kMalformed, "install journal: " + path.string() +
                                                " has schema version " + std::to_string(version) +
                                                ", this agent reads " +
                                                std::to_string(kSchemaVersion));
  }
  auto created = kJournalDb.Exec(db.get(), kSchema);
  if (!created) {
    (void)kJournalDb.Exec(db.get(), "ROLLBACK");
    return tl::unexpected(created.error());
  }
  AIRLOCK_TRY(kJournalDb.Exec(db.get(), "PRAGMA user_version = 1"));
  AIRLOCK_TRY(kJournalDb.Exec(db.get(), "COMMIT"));
  auto impl = std::make_unique<Impl>();
  impl->db = std::move(db);
  return InstallJournal(std::move(impl));
}

Result<JournalState> InstallJournal::Load() { return impl_->LoadState(); }

Result<JournalState> InstallJournal::BeginStaging(const ReleaseRef& release, std::time_t now) {
  AIRLOCK_TRY(ValidateReleaseId(release.id));
  return impl_->Transition(now, {}, [&](JournalState& s) -> Result<void> {
    if (s.state != InstallState::kIdle && s.state != InstallState::kConfirmed &&
        s.state != InstallState::kStaged) {
      return tl::unexpected(WrongState(ErrorCode::kAlreadyExists,
                                       "cannot stage " + release.id + ": an install is in progress",
                                       s));
    }
    AIRLOCK_ASSIGN_OR_RETURN(auto failed, impl_->FindFailed(release.id));
    if (failed) {
      return MakeError(ErrorCode::kAlreadyExists, "release " + release.id + " failed before (" +
                                                      failed->reason + ") and is never retried");
    }
    if (release.id == s.active.id || release.id == s.last_good.id) {
      return MakeError(ErrorCode::kAlreadyExists,
                       "release " + release.id + " is already installed (" +
                           (release.id == s.active.id ? "active" : "last good") + ")");
    }
    if (release.security_floor < s.highest_floor) {
      return MakeError(ErrorCode::kRollback, "release " + release.id + " has security floor " +
                                                 std::to_string(release.security_floor) +
                                                 ", below the highest seen (" +
                                                 std::to_string(s.highest_floor) + ")");
    }
    s.state = InstallState::kStaging;
    s.target = release;
    return {};
  });
}

Result<JournalState> InstallJournal::FinishStaging(std::string_view release_id,
                                                   std::string_view manifest_json,
                                                   std::time_t now) {
  return impl_->Transition(now, {}, [&](JournalState& s) -> Result<void> {
    if (s.state != InstallState::kStaging || s.target.id != release_id) {
      return tl::unexpected(WrongState(ErrorCode::kNotFound, "finish staging", s));
    }
    AIRLOCK_ASSIGN_OR_RETURN(
        StmtPtr m, kJournalDb.Prepare(
                       impl_->db.get(),
                       "INSERT OR REPLACE INTO slot_manifests (release_id, manifest, staged_at) "
                       "VALUES (?1, ?2, ?3)"));
    BindText(m.get(), 1, release_id);
    BindText(m.get(), 2, manifest_json);
    sqlite3_bind_int64(m.get(), 3, static_cast<int64_t>(now));
    AIRLOCK_TRY(Step(impl_->db.get(), m.get()));
    s.state = InstallState::kStaged;
    s.highest_floor = std::max(s.highest_floor, s.target.security_floor);
    return {};
  });
}

Result<JournalState> InstallJournal::AbandonStaging(std::time_t now) {
  return impl_->Transition(now, "staging_abandoned", [&](JournalState& s) -> Result<void> {
    if (s.state != InstallState::kStaging) {
      return tl::unexpected(WrongState(ErrorCode::kNotFound, "abandon staging", s));
    }
    s.target = {};
    s.state = RestState(s);
    return {};
  });
}

Result<JournalState> InstallJournal::BeginSwitch(std::string_view release_id, std::time_t now) {
  return impl_->Transition(now, {}, [&](JournalState& s) -> Result<void> {
    if (s.state != InstallState::kStaged || s.target.id != release_id) {
      return MakeError(ErrorCode::kNotFound,
                       "cannot activate " + std::string(release_id) +
                           ": it is not the staged release" + " (state " +
                           std::string(InstallStateName(s.state)) +
                           (s.target.empty() ? "" : ", staged " + s.target.id) + ")");
    }
    // The confirmed release now active becomes the rollback target; from idle (the built-in)
    // the rollback target stays the built-in.
    if (!s.active.empty()) s.last_good = s.active;
    s.active = s.target;
    s.target = {};
    s.state = InstallState::kSwitching;
    s.rollback_reason.clear();
    s.rollback_from.clear();
    return {};
  });
}

Result<JournalState> InstallJournal::FinishSwitch(std::time_t deadline, std::time_t now) {
  return impl_->Transition(now, {}, [&](JournalState& s) -> Result<void> {
    if (s.state != InstallState::kSwitching) {
      return tl::unexpected(WrongState(ErrorCode::kNotFound, "finish switch", s));
    }
    s.state = InstallState::kAwaitingHealth;
    s.health_deadline = deadline;
    s.start_count = 0;
    return {};
  });
}

Result<JournalState> InstallJournal::Confirm(std::string_view release_id, std::time_t now) {
  return impl_->Transition(now, {}, [&](JournalState& s) -> Result<void> {
    if (s.state == InstallState::kConfirmed && s.active.id == release_id) return {};
    if (s.state != InstallState::kAwaitingHealth || s.active.id != release_id) {
      std::string awaited = s.state == InstallState::kAwaitingHealth
                                ? "release " + s.active.id + " does"
                                : "none does";
      return MakeError(ErrorCode::kNotFound, "confirmation for release " + std::string(release_id) +
                                                 " ignored: it is not awaiting confirmation (" +
                                                 awaited + ", state " +
                                                 std::string(InstallStateName(s.state)) + ")");
    }
    s.state = InstallState::kConfirmed;
    s.health_deadline = 0;
    s.start_count = 0;
    return {};
  });
}

Result<JournalState> InstallJournal::RecordStart(int64_t limit, std::time_t now) {
  return impl_->Transition(now, {}, [&](JournalState& s) -> Result<void> {
    if (s.state != InstallState::kAwaitingHealth) return {};
    ++s.start_count;
    if (s.start_count < limit) return {};
    return impl_->StartRollback(
        s, kReasonCrashLoop,
        std::to_string(s.start_count) + " starts without a health confirmation", now);
  });
}

Result<JournalState> InstallJournal::ExpireHealth(std::time_t now) {
  return impl_->Transition(now, {}, [&](JournalState& s) -> Result<void> {
    if (s.state != InstallState::kAwaitingHealth || now < s.health_deadline) return {};
    return impl_->StartRollback(s, kReasonHealthTimeout,
                                "no health confirmation within the timeout", now);
  });
}

Result<JournalState> InstallJournal::BeginRollback(std::string_view reason, std::string_view detail,
                                                   std::time_t now) {
  return impl_->Transition(now, {}, [&](JournalState& s) -> Result<void> {
    bool ok = s.state == InstallState::kAwaitingHealth || s.state == InstallState::kConfirmed ||
              s.state == InstallState::kSwitching ||
              (s.state == InstallState::kStaged && !s.active.empty());
    if (!ok || s.active.empty()) {
      return tl::unexpected(WrongState(ErrorCode::kNotFound, "nothing to roll back", s));
    }
    return impl_->StartRollback(s, reason, detail, now);
  });
}

Result<JournalState> InstallJournal::FinishRollback(std::time_t now) {
  return impl_->Transition(now, {}, [&](JournalState& s) -> Result<void> {
    if (s.state != InstallState::kRollingBack) {
      return tl::unexpected(WrongState(ErrorCode::kNotFound, "finish rollback", s));
    }
    s.state = RestState(s);
    return {};
  });
}

Result<void> InstallJournal::MarkFailed(const ReleaseRef& release, std::string_view reason,
                                        std::string_view detail, std::time_t now) {
  AIRLOCK_TRY(ValidateReleaseId(release.id));
  return impl_->InsertFailed(release, reason, detail, now);
}

Result<void> InstallJournal::RaiseFloor(uint64_t floor) {
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr s, kJournalDb.Prepare(
                     impl_->db.get(),
                     "UPDATE agent_state SET highest_floor = MAX(highest_floor, ?1) WHERE id = 1"));
  sqlite3_bind_int64(s.get(), 1, static_cast<int64_t>(floor));
  return Step(impl_->db.get(), s.get());
}

Result<std::vector<FailedRelease>> InstallJournal::FailedReleases() {
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr s, kJournalDb.Prepare(impl_->db.get(),
                                    "SELECT release_id, version, reason, detail, failed_at FROM "
                                    "failed_releases ORDER BY failed_at, release_id"));
  std::vector<FailedRelease> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    out.push_back({sqlite::ColumnText(s.get(), 0), sqlite::ColumnText(s.get(), 1),
                   sqlite::ColumnText(s.get(), 2), sqlite::ColumnText(s.get(), 3),
                   static_cast<std::time_t>(sqlite3_column_int64(s.get(), 4))});
  }
  if (rc != SQLITE_DONE) {
    return tl::unexpected(kJournalDb.DbError(impl_->db.get(), "read failed releases"));
  }
  return out;
}

Result<std::optional<FailedRelease>> InstallJournal::FindFailed(std::string_view release_id) {
  return impl_->FindFailed(release_id);
}

Result<std::string> InstallJournal::Manifest(std::string_view release_id) {
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr s, kJournalDb.Prepare(impl_->db.get(),
                                    "SELECT manifest FROM slot_manifests WHERE release_id = ?1"));
  BindText(s.get(), 1, release_id);
  if (sqlite3_step(s.get()) != SQLITE_ROW) {
    return MakeError(ErrorCode::kNotFound,
                     "no manifest is recorded for release " + std::string(release_id));
  }
  return sqlite::ColumnText(s.get(), 0);
}

Result<void> InstallJournal::ForgetManifestsExcept(const std::vector<std::string>& keep) {
  std::string sql = "DELETE FROM slot_manifests WHERE release_id NOT IN (''";
  for (size_t i = 0; i < keep.size(); ++i) sql += ", ?" + std::to_string(i + 1);
  sql += ")";
  AIRLOCK_ASSIGN_OR_RETURN(StmtPtr s, kJournalDb.Prepare(impl_->db.get(), sql));
  for (size_t i = 0; i < keep.size(); ++i) BindText(s.get(), static_cast<int>(i + 1), keep[i]);
  return Step(impl_->db.get(), s.get());
}

Result<std::vector<InstallJournal::LogEntry>> InstallJournal::Log(size_t limit) {
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr s,
      kJournalDb.Prepare(impl_->db.get(),
                         "SELECT seq, at, from_state, to_state, release_id, reason FROM "
                         "(SELECT * FROM transitions ORDER BY seq DESC LIMIT ?1) ORDER BY seq"));
  sqlite3_bind_int64(s.get(), 1, static_cast<int64_t>(limit));
  std::vector<LogEntry> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    out.push_back({sqlite3_column_int64(s.get(), 0),
                   static_cast<std::time_t>(sqlite3_column_int64(s.get(), 1)),
                   sqlite::ColumnText(s.get(), 2), sqlite::ColumnText(s.get(), 3),
                   sqlite::ColumnText(s.get(), 4), sqlite::ColumnText(s.get(), 5)});
  }
  if (rc != SQLITE_DONE) {
    return tl::unexpected(kJournalDb.DbError(impl_->db.get(), "read transitions"));
  }
  return out;
}

}  // namespace airlock::client
