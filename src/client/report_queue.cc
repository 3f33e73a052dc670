#include "client/report_queue.h"

#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>

#include "common/semver.h"
#include "sqlite/sqlite_util.h"

namespace airlock::client {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxDetail = 1024;
constexpr size_t kMaxServerBatch = 1000;
constexpr std::array<std::string_view, 8> kKinds = {
    "offered",   "downloaded", "verified",    "installed",
    "confirmed", "failed",     "rolled_back", "delta_refused"};

// Version 1 of the queue's schema. meta holds next_seq (the counter, never reset) and dropped.
constexpr const char* kQueueSchema = R"SQL(
CREATE TABLE IF NOT EXISTS events (
  seq         INTEGER PRIMARY KEY,
  version     TEXT NOT NULL,
  kind        TEXT NOT NULL,
  reason_code TEXT NOT NULL,
  detail      TEXT NOT NULL,
  occurred_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('next_seq', 1), ('dropped', 0), ('rejected', 0);
PRAGMA user_version = 1;
)SQL";

constexpr sqlite::Context kQueueDb{"report queue"};
using sqlite::BindText;
using sqlite::ColumnText;
using sqlite::StmtPtr;

bool IsReasonCode(std::string_view code) {
  if (code.size() > 64) return false;
  for (char c : code) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

Result<void> StepDone(sqlite3* db, sqlite3_stmt* s, std::string_view what) {
  if (sqlite3_step(s) != SQLITE_DONE) return tl::unexpected(kQueueDb.DbError(db, what));
  return {};
}

}  // namespace

void ReportQueue::DbClose::operator()(sqlite3* db) const { sqlite3_close_v2(db); }

Result<ReportQueue> ReportQueue::Open(const fs::path& path, ReportQueueOptions options) {
  if (options.max_events == 0 || options.batch_size == 0 || options.batch_size > kMaxServerBatch) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "report queue: max_events must be > 0 and batch_size 1..1000");
  }
  AIRLOCK_ASSIGN_OR_RETURN(sqlite::DbPtr private_db,
                           sqlite::OpenPrivateDb(path, /*create=*/true, kQueueDb.name));
  DbPtr db(private_db.release());
  AIRLOCK_TRY(kQueueDb.Exec(db.get(), "PRAGMA journal_mode = WAL"));
  AIRLOCK_TRY(kQueueDb.Exec(db.get(), "PRAGMA synchronous = FULL"));
  {
    AIRLOCK_ASSIGN_OR_RETURN(sqlite::Transaction tx,
                             sqlite::Transaction::Begin(db.get(), kQueueDb.name));
    AIRLOCK_TRY(kQueueDb.Exec(db.get(), kQueueSchema));
    AIRLOCK_TRY(tx.Commit());
  }
  return ReportQueue(std::move(db), options);
}

Result<uint64_t> ReportQueue::ReadMeta(const char* key) const {
  AIRLOCK_ASSIGN_OR_RETURN(StmtPtr s,
                           kQueueDb.Prepare(db_.get(), "SELECT value FROM meta WHERE key = ?"));
  BindText(s.get(), 1, key);
  if (sqlite3_step(s.get()) != SQLITE_ROW) {
    return tl::unexpected(kQueueDb.DbError(db_.get(), std::string("read ") + key));
  }
  return static_cast<uint64_t>(sqlite3_column_int64(s.get(), 0));
}

Result<uint64_t> ReportQueue::Enqueue(const NewReportEvent& event) {
  if (std::find(kKinds.begin(), kKinds.end(), event.kind) == kKinds.end()) {
    return MakeError(ErrorCode::kInvalidArgument, "report queue: unknown event kind " + event.kind);
  }
  // The server's own checks (docs/api/server-api.md, POST /v1/report), so a queued event is one it
  // accepts: a refused one would hold up every event after it.
  if (auto v = Semver::Parse(event.version); !v) {
    return MakeError(ErrorCode::kInvalidArgument, "report queue: version: " + v.error().message());
  }
  if (!IsReasonCode(event.reason_code)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "report queue: a reason code is at most 64 bytes of [A-Za-z0-9._-]");
  }
  const std::string_view detail =
      std::string_view(event.detail).substr(0, std::min(event.detail.size(), kMaxDetail));
  AIRLOCK_ASSIGN_OR_RETURN(sqlite::Transaction tx,
                           sqlite::Transaction::Begin(db_.get(), kQueueDb.name));
  AIRLOCK_ASSIGN_OR_RETURN(const uint64_t seq, ReadMeta("next_seq"));
  {
    AIRLOCK_ASSIGN_OR_RETURN(
        StmtPtr s, kQueueDb.Prepare(db_.get(),
                                    "INSERT INTO events (seq, version, kind, reason_code, detail, "
                                    "occurred_at) VALUES (?, ?, ?, ?, ?, ?)"));
    sqlite3_bind_int64(s.get(), 1, static_cast<sqlite3_int64>(seq));
    BindText(s.get(), 2, event.version);
    BindText(s.get(), 3, event.kind);
    BindText(s.get(), 4, event.reason_code);
    BindText(s.get(), 5, detail);
    sqlite3_bind_int64(s.get(), 6, event.occurred_at);
    AIRLOCK_TRY(StepDone(db_.get(), s.get(), "insert event"));
  }
  AIRLOCK_TRY(kQueueDb.Exec(db_.get(), "UPDATE meta SET value = value + 1 WHERE key = 'next_seq'"));
  // Drop the oldest beyond the bound, counting them.
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr over,
      kQueueDb.Prepare(db_.get(), "SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?"));
  sqlite3_bind_int64(over.get(), 1, static_cast<sqlite3_int64>(options_.max_events - 1));
  const int step = sqlite3_step(over.get());
  if (step == SQLITE_ROW) {
    const sqlite3_int64 oldest_kept = sqlite3_column_int64(over.get(), 0);
    AIRLOCK_ASSIGN_OR_RETURN(StmtPtr del,
                             kQueueDb.Prepare(db_.get(), "DELETE FROM events WHERE seq < ?"));
    sqlite3_bind_int64(del.get(), 1, oldest_kept);
    AIRLOCK_TRY(StepDone(db_.get(), del.get(), "drop oldest events"));
    const int dropped = sqlite3_changes(db_.get());
    AIRLOCK_ASSIGN_OR_RETURN(
        StmtPtr count,
        kQueueDb.Prepare(db_.get(), "UPDATE meta SET value = value + ? WHERE key = 'dropped'"));
    sqlite3_bind_int64(count.get(), 1, dropped);
    AIRLOCK_TRY(StepDone(db_.get(), count.get(), "count dropped events"));
  } else if (step != SQLITE_DONE) {
    return tl::unexpected(kQueueDb.DbError(db_.get(), "count events"));
  }
  AIRLOCK_TRY(tx.Commit());
  return seq;
}

Result<std::vector<ReportEvent>> ReportQueue::Pending(size_t limit) const {
  AIRLOCK_ASSIGN_OR_RETURN(
      StmtPtr s,
      kQueueDb.Prepare(db_.get(),
                       "SELECT seq, version, kind, reason_code, detail, occurred_at FROM events "
                       "ORDER BY seq LIMIT ?"));
  sqlite3_bind_int64(s.get(), 1, static_cast<sqlite3_int64>(limit));
  std::vector<ReportEvent> out;
  int rc = SQLITE_ROW;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    ReportEvent e;
    e.seq = static_cast<uint64_t>(sqlite3_column_int64(s.get(), 0));
    e.version = ColumnText(s.get(), 1);
    e.kind = ColumnText(s.get(), 2);
    e.reason_code = ColumnText(s.get(), 3);
    e.detail = ColumnText(s.get(), 4);
    e.occurred_at = sqlite3_column_int64(s.get(), 5);
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return tl::unexpected(kQueueDb.DbError(db_.get(), "read events"));
  return out;
}

Result<uint64_t> ReportQueue::PendingCount() const {
  AIRLOCK_ASSIGN_OR_RETURN(StmtPtr s, kQueueDb.Prepare(db_.get(), "SELECT COUNT(*) FROM events"));
  if (sqlite3_step(s.get()) != SQLITE_ROW) {
    return tl::unexpected(kQueueDb.DbError(db_.get(), "count"));
  }
  return static_cast<uint64_t>(sqlite3_column_int64(s.get(), 0));
}

Result<uint64_t> ReportQueue::DroppedCount() const { return ReadMeta("dropped"); }
Result<uint64_t> ReportQueue::RejectedCount() const { return ReadMeta("rejected"); }

Result<void> ReportQueue::DeleteThrough(uint64_t seq, bool rejected) {
  AIRLOCK_ASSIGN_OR_RETURN(sqlite::Transaction tx,
                           sqlite::Transaction::Begin(db_.get(), kQueueDb.name));
  AIRLOCK_ASSIGN_OR_RETURN(StmtPtr del,
                           kQueueDb.Prepare(db_.get(), "DELETE FROM events WHERE seq <= ?"));
  sqlite3_bind_int64(del.get(), 1, static_cast<sqlite3_int64>(seq));
  AIRLOCK_TRY(StepDone(db_.get(), del.get(), "delete sent events"));
  if (rejected) {
    AIRLOCK_TRY(
        kQueueDb.Exec(db_.get(), "UPDATE meta SET value = value + 1 WHERE key = 'rejected'"));
  }
  return tx.Commit();
}

Result<uint64_t> ReportQueue::Flush(DeviceApiClient& client) {
  uint64_t acknowledged = 0;
  // After a 400 on a batch, events go one at a time until the refused one is found and dropped.
  bool isolating = false;
  for (;;) {
    AIRLOCK_ASSIGN_OR_RETURN(std::vector<ReportEvent> batch,
                             Pending(isolating ? 1 : options_.batch_size));
    if (batch.empty()) return acknowledged;
    auto sent = client.Report(batch);
    if (!sent) {
      // Only a 400 that names an event ("events[i]: ...", docs/api/server-api.md) is about the
      // events; any other refusal (a bad app id, 401, 429, offline) keeps everything for later.
      const auto& err = client.last_error();
      const bool event_refused = err && err->http_status == 400 &&
                                 err->error_code == "bad_request" &&
                                 err->message.rfind("events[", 0) == 0;
      if (!event_refused) return tl::unexpected(sent.error());
      if (batch.size() > 1) {
        isolating = true;
        continue;
      }
      // The server will never take this event: drop it (counted) rather than block the queue.
      AIRLOCK_TRY(DeleteThrough(batch.back().seq, /*rejected=*/true));
      isolating = false;
      continue;
    }
    AIRLOCK_TRY(DeleteThrough(batch.back().seq, /*rejected=*/false));
    acknowledged += batch.size();
  }
}

}  // namespace airlock::client
