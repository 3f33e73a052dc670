// AuditLog::Report and the report periods (audit/audit_log.h): the key-usage summaries built from
// the log.
#include <sqlite3.h>

#include <set>
#include <tuple>

#include "audit/audit_log.h"
#include "audit/audit_sqlite.h"
#include "sqlite/sqlite_util.h"

namespace airlock::audit {

namespace {

constexpr size_t kMaxFailuresPerKey = 100;

using internal::kAuditDb;
using sqlite::BindText;
using sqlite::ColumnText;
using sqlite::StmtPtr;

bool IsLifecycleOperation(std::string_view op) {
  static const std::set<std::string_view> kOps = {
      "create", "rotate", "suspend", "resume", "retire", "revoke", "compromised",
      "delete", "backup", "restore", "export", "import", "rename"};
  return kOps.count(op) > 0;
}

}  // namespace

std::string_view ReportPeriodName(ReportPeriod period) {
  switch (period) {
    case ReportPeriod::kDaily:
      return "daily";
    case ReportPeriod::kWeekly:
      return "weekly";
    case ReportPeriod::kMonthly:
      return "monthly";
    case ReportPeriod::kQuarterly:
      return "quarterly";
  }
  return "daily";
}

Result<ReportPeriod> ParseReportPeriod(std::string_view name) {
  for (ReportPeriod p : {ReportPeriod::kDaily, ReportPeriod::kWeekly, ReportPeriod::kMonthly,
                         ReportPeriod::kQuarterly}) {
    if (ReportPeriodName(p) == name) return p;
  }
  return MakeError(ErrorCode::kInvalidArgument,
                   "period must be daily, weekly, monthly or quarterly, not '" +
                       std::string(name.substr(0, 32)) + "'");
}

int64_t ReportPeriodSeconds(ReportPeriod period) {
  constexpr int64_t kDay = 86400;
  switch (period) {
    case ReportPeriod::kDaily:
      return kDay;
    case ReportPeriod::kWeekly:
      return 7 * kDay;
    case ReportPeriod::kMonthly:
      return 30 * kDay;
    case ReportPeriod::kQuarterly:
      return 91 * kDay;
  }
  return kDay;
}

Result<UsageReport> AuditLog::Report(const ReportOptions& options) const {
  sqlite3* db = this->db();
  UsageReport report;
  report.period = options.period;
  // By default the window ends just after now, so records made this second are included.
  report.end = options.end.value_or(Now() + 1);
  report.start = report.end - ReportPeriodSeconds(options.period);

  AuditFilter window;
  window.since = report.start;
  window.until = report.end;
  window.limit = 10'000'000;
  AIRLOCK_ASSIGN_OR_RETURN(std::vector<UsageRecord> records, Query(window));

  std::map<std::pair<std::string, std::string>, KeyUsageSummary> by_key;
  std::set<std::string> actors, sources;
  for (UsageRecord& r : records) {
    ++report.total;
    KeyUsageSummary& k = by_key[{r.key_name, r.key_name.empty() ? r.key_id : std::string()}];
    if (k.key_name.empty()) k.key_name = r.key_name;
    if (!r.key_id.empty()) k.key_id = r.key_id;  // the latest id (rotation changes it)
    if (!r.purpose.empty()) k.purpose = r.purpose;
    ++k.operations[r.operation];
    ++k.actors[r.actor];
    ++k.sources[r.source];
    actors.insert(r.actor);
    sources.insert(r.source);
    switch (r.result) {
      case UsageResult::kOk:
        ++k.ok;
        ++report.ok;
        break;
      case UsageResult::kDenied:
        ++k.denied;
        ++report.denied;
        break;
      case UsageResult::kFailed:
        ++k.failed;
        ++report.failed;
        break;
    }
    if (r.result != UsageResult::kOk && k.failures.size() < kMaxFailuresPerKey)
      k.failures.push_back(r);
    if (IsLifecycleOperation(r.operation)) k.lifecycle_events.push_back(r);
  }
  for (auto& [id, summary] : by_key) report.keys.push_back(std::move(summary));

  // New actors and sources: seen in the window but never before it.
  for (const auto& [column, seen, out] : {std::tuple{"actor", &actors, &report.new_actors},
                                          std::tuple{"source", &sources, &report.new_sources}}) {
    std::string sql =
        std::string("SELECT 1 FROM records WHERE ") + column + " = ? AND time < ? LIMIT 1";
    AIRLOCK_ASSIGN_OR_RETURN(StmtPtr s, kAuditDb.Prepare(db, sql));
    for (const std::string& value : *seen) {
      sqlite3_reset(s.get());
      BindText(s.get(), 1, value);
      sqlite3_bind_int64(s.get(), 2, report.start);
      int rc = sqlite3_step(s.get());
      if (rc == SQLITE_DONE)
        out->push_back(value);
      else if (rc != SQLITE_ROW)
        return tl::unexpected(kAuditDb.DbError(db, "report"));
    }
  }

  // Keys due for rotation.
  std::vector<KeyAge> ages = options.key_ages;
  if (ages.empty()) {
    // From the log: the latest successful lifecycle record per key name decides.
    AIRLOCK_ASSIGN_OR_RETURN(
        StmtPtr s,
        kAuditDb.Prepare(
            db,
            "SELECT key_name, key_id, purpose, operation, time FROM records WHERE result = 0 AND "
            "key_name != '' AND time < ? AND operation IN ('create', 'rotate', 'compromised', "
            "'retire', 'revoke', 'delete') ORDER BY seq"));
    sqlite3_bind_int64(s.get(), 1, report.end);
    std::map<std::string, KeyAge> latest;
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      std::string name = ColumnText(s.get(), 0);
      if (name.find('@') != std::string::npos) continue;  // a retired rotation version, NAME@N
      std::string op = ColumnText(s.get(), 3);
      KeyAge& a = latest[name];
      a.key_name = name;
      std::string key_id = ColumnText(s.get(), 1);
      std::string purpose = ColumnText(s.get(), 2);
      if (!purpose.empty()) a.purpose = purpose;
      if (op == "create" || op == "rotate" || op == "compromised") {
        // A rotation's record may carry the old or the new key id; either way the name's material
        // is new.
        if (!key_id.empty()) a.key_id = key_id;
        a.created = sqlite3_column_int64(s.get(), 4);
        a.active = true;
      } else {
        a.active = false;
      }
    }
    if (rc != SQLITE_DONE) return tl::unexpected(kAuditDb.DbError(db, "report"));
    for (auto& [name, a] : latest) ages.push_back(std::move(a));
  }
  for (const KeyAge& a : ages) {
    if (!a.active) continue;
    auto max = options.max_age.find(a.purpose);
    if (max == options.max_age.end() || max->second <= 0) continue;
    int64_t age = report.end - a.created;
    if (age >= max->second) {
      report.rotation_due.push_back({a.key_id, a.key_name, a.purpose, a.created, age, max->second});
    }
  }
  return report;
}

}  // namespace airlock::audit
