// The scheduled checks of the security brief, run by airlockd itself (docs/operations/alerts.md,
// "Scheduled checks"): a daily key-usage analysis, a weekly log review an auditor signs off, a
// monthly key-rotation review and a quarterly audit, each a report stored once per period (the
// period windows are aligned to multiples of their length since the Unix epoch, so every airlockd
// computes the same window, and monitor_reports' (period, period_start) key makes one of them its
// author). Findings raise alerts through the same path as the event rules.
#include <algorithm>
#include <string>
#include <vector>

#include "monitor/monitor.h"

namespace airlock::monitor {
namespace {

using Json = nlohmann::json;

constexpr audit::ReportPeriod kPeriods[] = {
    audit::ReportPeriod::kDaily, audit::ReportPeriod::kWeekly, audit::ReportPeriod::kMonthly,
    audit::ReportPeriod::kQuarterly};

Json SummaryJson(const audit::UsageReport& r) {
  Json keys = Json::array();
  for (const auto& k : r.keys) {
    keys.push_back({{"key_name", k.key_name},
                    {"key_id", k.key_id},
                    {"purpose", k.purpose},
                    {"operations", k.operations},
                    {"actors", k.actors},
                    {"sources", k.sources},
                    {"ok", k.ok},
                    {"denied", k.denied},
                    {"failed", k.failed},
                    {"lifecycle_events", k.lifecycle_events.size()}});
  }
  Json due = Json::array();
  for (const auto& d : r.rotation_due) {
    due.push_back({{"key_name", d.key_name},
                   {"key_id", d.key_id},
                   {"purpose", d.purpose},
                   {"created", d.created},
                   {"age_days", d.age / 86400},
                   {"max_age_days", d.max_age / 86400}});
  }
  return {{"period", std::string(audit::ReportPeriodName(r.period))},
          {"start", r.start},
          {"end", r.end},
          {"total", r.total},
          {"ok", r.ok},
          {"denied", r.denied},
          {"failed", r.failed},
          {"new_actors", r.new_actors},
          {"new_sources", r.new_sources},
          {"keys", keys},
          {"rotation_due", due}};
}

}  // namespace

Json ReportJson(const Report& r, bool full) {
  auto opt = [](const auto& v) { return v ? Json(*v) : Json(nullptr); };
  Json out = {{"id", r.id},
              {"period", r.period},
              {"period_start", r.period_start},
              {"period_end", r.period_end},
              {"created_at", r.created_at},
              {"signed_off_by", opt(r.signed_off_by)},
              {"signed_off_at", opt(r.signed_off_at)},
              {"note", opt(r.note)}};
  if (full) {
    Json body = Json::parse(r.report, nullptr, false);
    out["report"] = body.is_discarded() ? Json(nullptr) : body;
  }
  return out;
}

Result<void> Monitor::MakeReport(std::string_view period_name, int64_t start, int64_t end,
                                 const RuleSet& rules, TickReport* tick) {
  AIRLOCK_ASSIGN_OR_RETURN(audit::ReportPeriod period, audit::ParseReportPeriod(period_name));
  audit::ReportOptions options;
  options.period = period;
  options.end = end;
  if (options_.key_inventory) {
    AIRLOCK_ASSIGN_OR_RETURN(KeyInventory inventory, options_.key_inventory());
    options.key_ages = std::move(inventory.ages);
    options.max_age = std::move(inventory.max_age);
  }
  AIRLOCK_ASSIGN_OR_RETURN(audit::UsageReport usage, usage_log_->Report(options));
  Json body = SummaryJson(usage);
  std::optional<audit::VerifyReport> chain;
  if (period == audit::ReportPeriod::kQuarterly) {
    // The full audit: every key's state and age, and the whole chain verified.
    Json inventory = Json::array();
    for (const auto& k : options.key_ages) {
      inventory.push_back({{"key_name", k.key_name},
                           {"key_id", k.key_id},
                           {"purpose", k.purpose},
                           {"created", k.created},
                           {"active", k.active}});
    }
    body["key_inventory"] = inventory;
    AIRLOCK_ASSIGN_OR_RETURN(chain, usage_log_->Verify());
    body["chain"] = {{"ok", chain->ok},
                     {"records", chain->records},
                     {"checkpoints", chain->checkpoints},
                     {"first_bad_seq", chain->first_bad_seq},
                     {"error", chain->error ? Json(chain->error->ToString()) : Json(nullptr)}};
  }
  Report stored;
  stored.period = std::string(period_name);
  stored.period_start = start;
  stored.period_end = end;
  stored.created_at = Now();
  stored.report = body.dump();
  AIRLOCK_ASSIGN_OR_RETURN(std::optional<int64_t> id, store_->InsertReport(stored));
  if (!id) return {};  // another airlockd made it
  tick->reports.push_back(*id);
  Alert as_alert;  // the audit record's fields
  as_alert.id = 0;
  as_alert.rule = "report." + stored.period;
  as_alert.level = "none";
  as_alert.subject = std::to_string(*id);
  AuditRecord("monitor", "airlockd", "report." + stored.period, as_alert, audit::UsageResult::kOk,
              "report=" + std::to_string(*id) + " start=" + std::to_string(start) +
                  " end=" + std::to_string(end) + " total=" + std::to_string(usage.total) +
                  " denied=" + std::to_string(usage.denied) +
                  " failed=" + std::to_string(usage.failed));

  // Findings.
  Event none;  // report findings name no event
  none.time = end;
  auto raise = [&](std::string_view rule, std::string summary) -> Result<void> {
    auto it = rules.find(rule);
    if (it == rules.end() || !it->second.enabled) return {};
    const RuleInfo* info = FindRule(rule);
    Candidate c;
    c.rule = std::string(rule);
    c.level = std::string(info->level);
    c.action = info->action;
    c.subject = stored.period + ":" + std::to_string(start);
    c.window_start = start;
    c.summary = "report " + std::to_string(*id) + ": " + summary;
    return Raise(none, c, tick);
  };
  if (period == audit::ReportPeriod::kDaily) {
    const RuleSettings& s = rules.at("daily_usage_anomaly");
    std::vector<std::string> actors;
    for (const auto& a : usage.new_actors) {
      if (std::find(s.ignore_actors.begin(), s.ignore_actors.end(), a) == s.ignore_actors.end()) {
        actors.push_back(a);
      }
    }
    // On the log's first day every actor is new: only failures count then.
    audit::AuditFilter first;
    first.limit = 1;
    AIRLOCK_ASSIGN_OR_RETURN(auto head, usage_log_->Query(first));
    if (head.empty() || head[0].time >= start) actors.clear();
    if (usage.denied + usage.failed > 0 || !actors.empty()) {
      std::string who;
      for (const auto& a : actors) who += (who.empty() ? "" : ",") + a;
      AIRLOCK_TRY(raise("daily_usage_anomaly", std::to_string(usage.denied) + " refused and " +
                                                   std::to_string(usage.failed) +
                                                   " failed key operations, new actors [" + who +
                                                   "]"));
    }
  }
  if (period == audit::ReportPeriod::kMonthly && !usage.rotation_due.empty()) {
    std::string keys;
    for (const auto& d : usage.rotation_due) keys += (keys.empty() ? "" : ",") + d.key_name;
    AIRLOCK_TRY(raise("rotation_overdue", "keys past their maximum age: " + keys));
  }
  if (chain && !chain->ok) {
    AIRLOCK_TRY(raise("audit_chain_broken",
                      "the usage log does not verify at seq " +
                          std::to_string(chain->first_bad_seq) + ": " +
                          (chain->error ? chain->error->ToString() : std::string("?"))));
  }
  return {};
}

Result<void> Monitor::RunScheduledChecks(const RuleSet& rules, TickReport* tick) {
  if (!usage_log_) return {};  // no usage log yet: nothing to report on
  const int64_t now = Now();
  for (audit::ReportPeriod period : kPeriods) {
    const int64_t length = audit::ReportPeriodSeconds(period);
    const int64_t end = now / length * length;
    const int64_t start = end - length;
    if (start < 0) continue;
    const std::string name(audit::ReportPeriodName(period));
    AIRLOCK_ASSIGN_OR_RETURN(bool made, store_->HasReport(name, start));
    if (!made) AIRLOCK_TRY(MakeReport(name, start, end, rules, tick));
  }
  // Weekly reviews nobody signed off within the rule's window.
  const RuleSettings& s = rules.at("review_unsigned");
  if (!s.enabled) return {};
  AIRLOCK_ASSIGN_OR_RETURN(auto weekly, store_->ListReports("weekly", 8));
  for (const Report& r : weekly) {
    if (r.signed_off_by || r.created_at + s.window > now) continue;
    Event none;
    none.time = now;
    Candidate c;
    c.rule = "review_unsigned";
    c.level = "low";
    c.subject = "weekly:" + std::to_string(r.period_start);
    c.window_start = r.period_start;
    c.summary = "the weekly log review (report " + std::to_string(r.id) +
                ") has not been signed off " + std::to_string(s.window / 86400) +
                " days after it was made";
    AIRLOCK_TRY(Raise(none, c, tick));
  }
  return {};
}

Result<Report> Monitor::SignOff(int64_t id, const std::string& who, const std::string& address,
                                const std::string& note) {
  AIRLOCK_ASSIGN_OR_RETURN(Report r, store_->SignOff(id, who, Now(), note));
  Alert as_alert;
  as_alert.rule = "report." + r.period;
  as_alert.subject = std::to_string(r.id);
  as_alert.level = "none";
  AuditRecord(who, address, "report.signoff", as_alert, audit::UsageResult::kOk,
              "report=" + std::to_string(r.id) + " period=" + r.period +
                  " start=" + std::to_string(r.period_start) + " note=" + note);
  return r;
}

}  // namespace airlock::monitor
