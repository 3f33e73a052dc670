// SQL here is portable between SQLite and PostgreSQL ($N placeholders, ON CONFLICT DO NOTHING,
// RETURNING), like storage/sql_store.cc.
#include "monitor/monitor_store.h"

#include <charconv>
#include <string>
#include <utility>

#include "storage/connection.h"

namespace airlock::monitor {
namespace {

using storage::Param;
using storage::Row;

// Any 64-bit key for pg_advisory_xact_lock, distinct from the migration lock's: "alrtmon" in ASCII.
constexpr int64_t kMonitorLockKey = 0x616c72746d6f6e;

constexpr std::string_view kEventColumns =
    "id, source, source_ref, time, recorded_at, app_id, key_name, actor, address, operation, "
    "result, reason, device_id, version, detail";
constexpr std::string_view kAlertColumns =
    "id, rule, level, subject, window_start, app_id, key_name, version, summary, event_id, "
    "created_at, status, investigation, action, action_state, action_result, notify_state, "
    "notify_attempts, notify_next_at, acked_by, acked_at, resolved_by, resolved_at, note";

constexpr std::string_view kReportColumns =
    "id, period, period_start, period_end, created_at, report, signed_off_by, signed_off_at, note";

std::string Cut(std::string_view s, size_t max = kMaxFieldLength) {
  return std::string(s.substr(0, max));
}

Result<int64_t> Int(const std::optional<std::string>& cell) {
  if (!cell) return MakeError(ErrorCode::kInternal, "NULL where a number was expected");
  int64_t v = 0;
  auto [p, ec] = std::from_chars(cell->data(), cell->data() + cell->size(), v);
  if (ec != std::errc() || p != cell->data() + cell->size()) {
    return MakeError(ErrorCode::kInternal, "not a number: " + *cell);
  }
  return v;
}
std::string Str(const std::optional<std::string>& cell) { return cell.value_or(""); }

Result<Event> EventFromRow(const Row& r) {
  Event e;
  AIRLOCK_ASSIGN_OR_RETURN(e.id, Int(r[0]));
  e.source = Str(r[1]);
  e.source_ref = Str(r[2]);
  AIRLOCK_ASSIGN_OR_RETURN(e.time, Int(r[3]));
  AIRLOCK_ASSIGN_OR_RETURN(e.recorded_at, Int(r[4]));
  e.app_id = Str(r[5]);
  e.key_name = Str(r[6]);
  e.actor = Str(r[7]);
  e.address = Str(r[8]);
  e.operation = Str(r[9]);
  e.result = Str(r[10]);
  e.reason = Str(r[11]);
  e.device_id = Str(r[12]);
  e.version = Str(r[13]);
  e.detail = Str(r[14]);
  return e;
}

Result<Alert> AlertFromRow(const Row& r) {
  Alert a;
  AIRLOCK_ASSIGN_OR_RETURN(a.id, Int(r[0]));
  a.rule = Str(r[1]);
  a.level = Str(r[2]);
  a.subject = Str(r[3]);
  AIRLOCK_ASSIGN_OR_RETURN(a.window_start, Int(r[4]));
  a.app_id = Str(r[5]);
  a.key_name = Str(r[6]);
  a.version = Str(r[7]);
  a.summary = Str(r[8]);
  AIRLOCK_ASSIGN_OR_RETURN(a.event_id, Int(r[9]));
  AIRLOCK_ASSIGN_OR_RETURN(a.created_at, Int(r[10]));
  AIRLOCK_ASSIGN_OR_RETURN(a.status, ParseAlertStatus(Str(r[11])));
  a.investigation = Str(r[12]) == "1";
  a.action = Str(r[13]);
  a.action_state = Str(r[14]);
  a.action_result = Str(r[15]);
  a.notify_state = Str(r[16]);
  AIRLOCK_ASSIGN_OR_RETURN(a.notify_attempts, Int(r[17]));
  AIRLOCK_ASSIGN_OR_RETURN(a.notify_next_at, Int(r[18]));
  a.acked_by = r[19];
  if (r[20]) {
    AIRLOCK_ASSIGN_OR_RETURN(a.acked_at, Int(r[20]));
  }
  a.resolved_by = r[21];
  if (r[22]) {
    AIRLOCK_ASSIGN_OR_RETURN(a.resolved_at, Int(r[22]));
  }
  a.note = r[23];
  return a;
}

Result<Report> ReportFromRow(const Row& r) {
  Report out;
  AIRLOCK_ASSIGN_OR_RETURN(out.id, Int(r[0]));
  out.period = Str(r[1]);
  AIRLOCK_ASSIGN_OR_RETURN(out.period_start, Int(r[2]));
  AIRLOCK_ASSIGN_OR_RETURN(out.period_end, Int(r[3]));
  AIRLOCK_ASSIGN_OR_RETURN(out.created_at, Int(r[4]));
  out.report = Str(r[5]);
  out.signed_off_by = r[6];
  if (r[7]) {
    AIRLOCK_ASSIGN_OR_RETURN(out.signed_off_at, Int(r[7]));
  }
  out.note = r[8];
  return out;
}

template <typename T, typename F>
Result<std::vector<T>> MapRows(const std::vector<Row>& rows, F from_row) {
  std::vector<T> out;
  out.reserve(rows.size());
  for (const Row& r : rows) {
    AIRLOCK_ASSIGN_OR_RETURN(T v, from_row(r));
    out.push_back(std::move(v));
  }
  return out;
}

// " WHERE ..." for `f`, appending its parameters to `params`.
std::string Where(const EventFilter& f, std::vector<Param>* params) {
  std::string sql;
  auto add = [&](std::string_view cond, Param value) {
    params->push_back(std::move(value));
    sql += sql.empty() ? " WHERE " : " AND ";
    std::string c(cond);
    c += "$" + std::to_string(params->size());
    sql += c;
  };
  auto any_of = [&](std::string_view column, const std::vector<std::string>& values) {
    if (values.empty()) return;
    sql += sql.empty() ? " WHERE (" : " AND (";
    for (size_t i = 0; i < values.size(); ++i) {
      params->push_back(values[i]);
      sql += (i ? " OR " : "") + std::string(column) + " = $" + std::to_string(params->size());
    }
    sql += ")";
  };
  if (!f.source.empty()) add("source = ", f.source);
  if (!f.app_id.empty()) add("app_id = ", f.app_id);
  if (!f.key_name.empty()) add("key_name = ", f.key_name);
  if (!f.actor.empty()) add("actor = ", f.actor);
  if (!f.address.empty()) add("address = ", f.address);
  if (!f.operation.empty()) add("operation = ", f.operation);
  if (!f.reason.empty()) add("reason = ", f.reason);
  if (!f.version.empty()) add("version = ", f.version);
  if (f.since) add("time >= ", *f.since);
  if (f.until) add("time < ", *f.until);
  if (f.before_id) add("id < ", *f.before_id);
  any_of("operation", f.operations);
  any_of("result", f.results);
  return sql;
}

}  // namespace

std::string_view AlertStatusName(AlertStatus status) {
  switch (status) {
    case AlertStatus::kOpen:
      return "open";
    case AlertStatus::kAcknowledged:
      return "acknowledged";
    case AlertStatus::kResolved:
      return "resolved";
  }
  return "open";
}

Result<AlertStatus> ParseAlertStatus(std::string_view name) {
  if (name == "open") return AlertStatus::kOpen;
  if (name == "acknowledged") return AlertStatus::kAcknowledged;
  if (name == "resolved") return AlertStatus::kResolved;
  return MakeError(ErrorCode::kInvalidArgument,
                   "alert status must be open, acknowledged or resolved, not '" +
                       std::string(name.substr(0, 64)) + "'");
}

Result<std::unique_ptr<MonitorStore>> MonitorStore::Open(std::string_view url) {
  AIRLOCK_ASSIGN_OR_RETURN(auto conn, storage::OpenConnection(url));
  return std::make_unique<MonitorStore>(std::move(conn));
}

MonitorStore::MonitorStore(std::unique_ptr<storage::Connection> conn) : conn_(std::move(conn)) {}
MonitorStore::~MonitorStore() = default;

// Runs `body` in a transaction holding the monitor's write lock (see the top of this file):
// committed when it succeeds, rolled back otherwise. Requires mu_.
template <typename F>
auto MonitorStore::Locked(F body) -> decltype(body()) {
  AIRLOCK_TRY(conn_->Begin());
  if (conn_->backend() == storage::Backend::kPostgres) {
    Param p[] = {kMonitorLockKey};
    if (auto locked = conn_->Exec("SELECT pg_advisory_xact_lock($1::bigint)", p); !locked) {
      (void)conn_->Rollback();
      return tl::unexpected(locked.error());
    }
  }
  auto out = body();
  if (!out) {
    (void)conn_->Rollback();
    return out;
  }
  AIRLOCK_TRY(conn_->Commit());
  return out;
}

Result<size_t> MonitorStore::Append(std::span<const Event> events, int64_t now) {
  for (const Event& e : events) {
    if (e.source.empty() || e.operation.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "an event needs a source and an operation");
    }
  }
  std::lock_guard lock(mu_);
  return Locked([&]() -> Result<size_t> {
    AIRLOCK_ASSIGN_OR_RETURN(auto rows,
                             conn_->Query("SELECT COALESCE(MAX(id), 0) FROM monitor_events", {}));
    AIRLOCK_ASSIGN_OR_RETURN(int64_t next, Int(rows.at(0)[0]));
    size_t stored = 0;
    for (const Event& e : events) {
      std::string ref = e.source_ref.empty() ? "id:" + std::to_string(next + 1) : Cut(e.source_ref);
      Param p[] = {next + 1,
                   Cut(e.source),
                   ref,
                   e.time,
                   now,
                   Cut(e.app_id),
                   Cut(e.key_name),
                   Cut(e.actor),
                   Cut(e.address),
                   Cut(e.operation),
                   Cut(e.result),
                   Cut(e.reason),
                   Cut(e.device_id),
                   Cut(e.version),
                   Cut(e.detail, kMaxDetailLength)};
      AIRLOCK_ASSIGN_OR_RETURN(
          auto inserted,
          conn_->Query(std::string("INSERT INTO monitor_events (") + std::string(kEventColumns) +
                           ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
                           "$15) ON CONFLICT (source, source_ref) DO NOTHING RETURNING id",
                       p));
      if (!inserted.empty()) {
        ++next;
        ++stored;
      }
    }
    return stored;
  });
}

Result<std::vector<Event>> MonitorStore::EventsAfter(int64_t after_id, size_t limit) {
  std::lock_guard lock(mu_);
  Param p[] = {after_id, static_cast<int64_t>(std::min(limit, kMaxListLimit))};
  AIRLOCK_ASSIGN_OR_RETURN(
      auto rows, conn_->Query(std::string("SELECT ") + std::string(kEventColumns) +
                                  " FROM monitor_events WHERE id > $1 ORDER BY id LIMIT $2",
                              p));
  return MapRows<Event>(rows, EventFromRow);
}

Result<std::vector<Event>> MonitorStore::Query(const EventFilter& filter, size_t limit) {
  std::lock_guard lock(mu_);
  std::vector<Param> p;
  std::string where = Where(filter, &p);
  p.push_back(static_cast<int64_t>(std::min(limit, kMaxListLimit)));
  AIRLOCK_ASSIGN_OR_RETURN(
      auto rows,
      conn_->Query(std::string("SELECT ") + std::string(kEventColumns) + " FROM monitor_events" +
                       where + " ORDER BY id LIMIT $" + std::to_string(p.size()),
                   p));
  return MapRows<Event>(rows, EventFromRow);
}

Result<int64_t> MonitorStore::Count(const EventFilter& filter) {
  std::lock_guard lock(mu_);
  std::vector<Param> p;
  std::string where = Where(filter, &p);
  AIRLOCK_ASSIGN_OR_RETURN(auto rows,
                           conn_->Query("SELECT COUNT(*) FROM monitor_events" + where, p));
  return Int(rows.at(0)[0]);
}

Result<int64_t> MonitorStore::CountDevices(const EventFilter& filter) {
  std::lock_guard lock(mu_);
  std::vector<Param> p;
  std::string where = Where(filter, &p);
  where += where.empty() ? " WHERE " : " AND ";
  where += "device_id <> ''";
  AIRLOCK_ASSIGN_OR_RETURN(
      auto rows, conn_->Query("SELECT COUNT(DISTINCT device_id) FROM monitor_events" + where, p));
  return Int(rows.at(0)[0]);
}

Result<int64_t> MonitorStore::MaxEventId() {
  std::lock_guard lock(mu_);
  AIRLOCK_ASSIGN_OR_RETURN(auto rows,
                           conn_->Query("SELECT COALESCE(MAX(id), 0) FROM monitor_events", {}));
  return Int(rows.at(0)[0]);
}

Result<int64_t> MonitorStore::Cursor(std::string_view name) {
  std::lock_guard lock(mu_);
  Param p[] = {std::string(name)};
  AIRLOCK_ASSIGN_OR_RETURN(auto rows,
                           conn_->Query("SELECT position FROM monitor_cursors WHERE name = $1", p));
  if (rows.empty()) return int64_t{0};
  return Int(rows[0][0]);
}

Result<void> MonitorStore::AdvanceCursor(std::string_view name, int64_t position) {
  std::lock_guard lock(mu_);
  Param p[] = {std::string(name), position};
  AIRLOCK_TRY(conn_->Exec(
      "INSERT INTO monitor_cursors (name, position) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
      p));
  return conn_->Exec("UPDATE monitor_cursors SET position = $2 WHERE name = $1 AND position < $2",
                     p);
}

Result<std::optional<int64_t>> MonitorStore::InsertAlert(const Alert& a) {
  std::lock_guard lock(mu_);
  return Locked([&]() -> Result<std::optional<int64_t>> {
    AIRLOCK_ASSIGN_OR_RETURN(auto rows,
                             conn_->Query("SELECT COALESCE(MAX(id), 0) FROM monitor_alerts", {}));
    AIRLOCK_ASSIGN_OR_RETURN(int64_t id, Int(rows.at(0)[0]));
    ++id;
    Param p[] = {id,
                 Cut(a.rule),
                 Cut(a.level),
                 Cut(a.subject),
                 a.window_start,
                 Cut(a.app_id),
                 Cut(a.key_name),
                 Cut(a.version),
                 Cut(a.summary),
                 a.event_id,
                 a.created_at,
                 std::string(AlertStatusName(a.status)),
                 int64_t{a.investigation ? 1 : 0},
                 Cut(a.action),
                 Cut(a.action_state),
                 Cut(a.action_result),
                 Cut(a.notify_state),
                 a.notify_attempts,
                 a.notify_next_at};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto inserted,
        conn_->Query("INSERT INTO monitor_alerts (id, rule, level, subject, window_start, app_id, "
                     "key_name, version, summary, event_id, created_at, status, investigation, "
                     "action, action_state, action_result, notify_state, notify_attempts, "
                     "notify_next_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
                     "$13, $14, $15, $16, $17, $18, $19) "
                     "ON CONFLICT (rule, subject, window_start) DO NOTHING RETURNING id",
                     p));
    if (inserted.empty()) return std::optional<int64_t>();
    return std::optional<int64_t>(id);
  });
}

Result<Alert> MonitorStore::GetAlert(int64_t id) {
  std::lock_guard lock(mu_);
  Param p[] = {id};
  AIRLOCK_ASSIGN_OR_RETURN(auto rows,
                           conn_->Query(std::string("SELECT ") + std::string(kAlertColumns) +
                                            " FROM monitor_alerts WHERE id = $1",
                                        p));
  if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no alert " + std::to_string(id));
  return AlertFromRow(rows[0]);
}

Result<std::vector<Alert>> MonitorStore::ListAlerts(std::optional<AlertStatus> status,
                                                    size_t limit) {
  std::lock_guard lock(mu_);
  std::vector<Param> p;
  std::string where;
  if (status) {
    p.push_back(std::string(AlertStatusName(*status)));
    where = " WHERE status = $1";
  }
  p.push_back(static_cast<int64_t>(std::min(limit, kMaxListLimit)));
  AIRLOCK_ASSIGN_OR_RETURN(
      auto rows,
      conn_->Query(std::string("SELECT ") + std::string(kAlertColumns) + " FROM monitor_alerts" +
                       where + " ORDER BY id DESC LIMIT $" + std::to_string(p.size()),
                   p));
  return MapRows<Alert>(rows, AlertFromRow);
}

Result<std::vector<Alert>> MonitorStore::PendingActions() {
  std::lock_guard lock(mu_);
  AIRLOCK_ASSIGN_OR_RETURN(
      auto rows, conn_->Query(std::string("SELECT ") + std::string(kAlertColumns) +
                                  " FROM monitor_alerts WHERE action_state = 'pending' ORDER BY id",
                              {}));
  return MapRows<Alert>(rows, AlertFromRow);
}

Result<std::vector<Alert>> MonitorStore::DueNotifications(int64_t now) {
  std::lock_guard lock(mu_);
  Param p[] = {now};
  AIRLOCK_ASSIGN_OR_RETURN(
      auto rows,
      conn_->Query(std::string("SELECT ") + std::string(kAlertColumns) +
                       " FROM monitor_alerts WHERE notify_state = 'pending' AND notify_next_at <= "
                       "$1 ORDER BY id LIMIT 100",
                   p));
  return MapRows<Alert>(rows, AlertFromRow);
}

Result<void> MonitorStore::SetAction(int64_t id, std::string_view state, std::string_view result) {
  std::lock_guard lock(mu_);
  Param p[] = {id, std::string(state), Cut(result)};
  return conn_->Exec(
      "UPDATE monitor_alerts SET action_state = $2, action_result = $3 WHERE id = $1", p);
}

Result<bool> MonitorStore::ClaimAction(int64_t id) {
  std::lock_guard lock(mu_);
  Param p[] = {id};
  AIRLOCK_ASSIGN_OR_RETURN(
      auto rows, conn_->Query("UPDATE monitor_alerts SET action_state = 'running' WHERE id = $1 "
                              "AND action_state = 'pending' RETURNING id",
                              p));
  return !rows.empty();
}

Result<void> MonitorStore::SetNotify(int64_t id, std::string_view state, int64_t attempts,
                                     int64_t next_at) {
  std::lock_guard lock(mu_);
  Param p[] = {id, std::string(state), attempts, next_at};
  return conn_->Exec(
      "UPDATE monitor_alerts SET notify_state = $2, notify_attempts = $3, notify_next_at = $4 "
      "WHERE id = $1",
      p);
}

Result<Alert> MonitorStore::Transition(int64_t id, bool resolve, std::string_view who, int64_t now,
                                       std::string_view note) {
  {
    std::lock_guard lock(mu_);
    Param p[] = {id, Cut(who), now, note.empty() ? Param() : Param(Cut(note))};
    std::string sql =
        resolve
            ? "UPDATE monitor_alerts SET status = 'resolved', resolved_by = $2, resolved_at = "
              "$3, note = COALESCE($4, note) WHERE id = $1 AND status <> 'resolved' "
              "RETURNING id"
            : "UPDATE monitor_alerts SET status = 'acknowledged', acked_by = $2, acked_at = $3, "
              "note = COALESCE($4, note) WHERE id = $1 AND status = 'open' RETURNING id";
    AIRLOCK_ASSIGN_OR_RETURN(auto rows, conn_->Query(sql, p));
    if (rows.empty()) {
      Param q[] = {id};
      AIRLOCK_ASSIGN_OR_RETURN(auto exists,
                               conn_->Query("SELECT status FROM monitor_alerts WHERE id = $1", q));
      if (exists.empty()) return MakeError(ErrorCode::kNotFound, "no alert " + std::to_string(id));
      return MakeError(ErrorCode::kAlreadyExists,
                       "alert " + std::to_string(id) + " is " + Str(exists[0][0]));
    }
  }
  return GetAlert(id);
}

Result<Alert> MonitorStore::Acknowledge(int64_t id, std::string_view who, int64_t now,
                                        std::string_view note) {
  return Transition(id, false, who, now, note);
}

Result<Alert> MonitorStore::Resolve(int64_t id, std::string_view who, int64_t now,
                                    std::string_view note) {
  return Transition(id, true, who, now, note);
}

Result<std::optional<int64_t>> MonitorStore::InsertReport(const Report& report) {
  std::lock_guard lock(mu_);
  return Locked([&]() -> Result<std::optional<int64_t>> {
    AIRLOCK_ASSIGN_OR_RETURN(auto rows,
                             conn_->Query("SELECT COALESCE(MAX(id), 0) FROM monitor_reports", {}));
    AIRLOCK_ASSIGN_OR_RETURN(int64_t id, Int(rows.at(0)[0]));
    ++id;
    Param p[] = {
        id,           report.period, report.period_start, report.period_end, report.created_at,
        report.report};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto inserted,
        conn_->Query("INSERT INTO monitor_reports (id, period, period_start, period_end, "
                     "created_at, report) VALUES ($1, $2, $3, $4, $5, $6) "
                     "ON CONFLICT (period, period_start) DO NOTHING RETURNING id",
                     p));
    if (inserted.empty()) return std::optional<int64_t>();
    return std::optional<int64_t>(id);
  });
}

Result<Report> MonitorStore::GetReport(int64_t id) {
  std::lock_guard lock(mu_);
  Param p[] = {id};
  AIRLOCK_ASSIGN_OR_RETURN(auto rows,
                           conn_->Query(std::string("SELECT ") + std::string(kReportColumns) +
                                            " FROM monitor_reports WHERE id = $1",
                                        p));
  if (rows.empty()) return MakeError(ErrorCode::kNotFound, "no report " + std::to_string(id));
  return ReportFromRow(rows[0]);
}

Result<std::vector<Report>> MonitorStore::ListReports(std::string_view period, size_t limit) {
  std::lock_guard lock(mu_);
  std::vector<Param> p;
  std::string where;
  if (!period.empty()) {
    p.push_back(std::string(period));
    where = " WHERE period = $1";
  }
  p.push_back(static_cast<int64_t>(std::min(limit, kMaxListLimit)));
  AIRLOCK_ASSIGN_OR_RETURN(
      auto rows,
      conn_->Query(std::string("SELECT ") + std::string(kReportColumns) + " FROM monitor_reports" +
                       where + " ORDER BY id DESC LIMIT $" + std::to_string(p.size()),
                   p));
  return MapRows<Report>(rows, ReportFromRow);
}

Result<bool> MonitorStore::HasReport(std::string_view period, int64_t period_start) {
  std::lock_guard lock(mu_);
  Param p[] = {std::string(period), period_start};
  AIRLOCK_ASSIGN_OR_RETURN(
      auto rows,
      conn_->Query("SELECT id FROM monitor_reports WHERE period = $1 AND period_start = $2", p));
  return !rows.empty();
}

Result<Report> MonitorStore::SignOff(int64_t id, std::string_view who, int64_t now,
                                     std::string_view note) {
  {
    std::lock_guard lock(mu_);
    Param p[] = {id, Cut(who), now, note.empty() ? Param() : Param(Cut(note))};
    AIRLOCK_ASSIGN_OR_RETURN(
        auto rows,
        conn_->Query("UPDATE monitor_reports SET signed_off_by = $2, signed_off_at = $3, note = $4 "
                     "WHERE id = $1 AND signed_off_by IS NULL RETURNING id",
                     p));
    if (rows.empty()) {
      Param q[] = {id};
      AIRLOCK_ASSIGN_OR_RETURN(
          auto exists, conn_->Query("SELECT signed_off_by FROM monitor_reports WHERE id = $1", q));
      if (exists.empty()) return MakeError(ErrorCode::kNotFound, "no report " + std::to_string(id));
      return MakeError(ErrorCode::kAlreadyExists,
                       "report " + std::to_string(id) + " was signed off by " + Str(exists[0][0]));
    }
  }
  return GetReport(id);
}

Result<std::map<std::string, std::string>> MonitorStore::RuleSettings() {
  std::lock_guard lock(mu_);
  AIRLOCK_ASSIGN_OR_RETURN(auto rows, conn_->Query("SELECT rule, settings FROM monitor_rules", {}));
  std::map<std::string, std::string> out;
  for (const Row& r : rows) out[Str(r[0])] = Str(r[1]);
  return out;
}

Result<void> MonitorStore::PutRuleSettings(std::string_view rule, std::string_view json,
                                           int64_t now, std::string_view who) {
  std::lock_guard lock(mu_);
  Param p[] = {std::string(rule), std::string(json), now, Cut(who)};
  return conn_->Exec(
      "INSERT INTO monitor_rules (rule, settings, updated_at, updated_by) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (rule) DO UPDATE SET settings = excluded.settings, updated_at = "
      "excluded.updated_at, updated_by = excluded.updated_by",
      p);
}

}  // namespace airlock::monitor
