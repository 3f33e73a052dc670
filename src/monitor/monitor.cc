#include "monitor/monitor.h"

#include <chrono>
#include <cstdio>
#include <string>
#include <utility>

namespace airlock::monitor {
namespace {

using Json = nlohmann::json;

int64_t SystemNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void Log(const Json& line) {
  std::string text = line.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
  std::fwrite(text.data(), 1, text.size(), stderr);
}

// "<app>.<role>" (or "<app>.<role>@N") -> "<app>"; "" for names without a dot.
std::string AppOfKey(const std::string& key_name) {
  std::string name = key_name.substr(0, key_name.find('@'));
  size_t dot = name.rfind('.');
  return dot == std::string::npos ? "" : name.substr(0, dot);
}

// Records of the usage log the monitor watches as key events: the vault's own operations. Admin
// requests arrive through Record (with the unauthenticated ones the log leaves out) and the
// monitor's own records are its output.
bool IsKeyRecord(const audit::UsageRecord& r) {
  return r.purpose != "admin" && r.purpose != "monitor";
}

}  // namespace

Json AlertJson(const Alert& a) {
  auto opt = [](const auto& v) { return v ? Json(*v) : Json(nullptr); };
  return {{"id", a.id},
          {"rule", a.rule},
          {"level", a.level},
          {"subject", a.subject},
          {"window_start", a.window_start},
          {"app_id", a.app_id},
          {"key_name", a.key_name},
          {"version", a.version},
          {"summary", a.summary},
          {"event_id", a.event_id},
          {"created_at", a.created_at},
          {"status", std::string(AlertStatusName(a.status))},
          {"investigation", a.investigation},
          {"action", a.action},
          {"action_state", a.action_state},
          {"action_result", a.action_result},
          {"notify_state", a.notify_state},
          {"notify_attempts", a.notify_attempts},
          {"acked_by", opt(a.acked_by)},
          {"acked_at", opt(a.acked_at)},
          {"resolved_by", opt(a.resolved_by)},
          {"resolved_at", opt(a.resolved_at)},
          {"note", opt(a.note)}};
}

Monitor::Monitor(std::unique_ptr<MonitorStore> store, MonitorOptions options)
    : store_(std::move(store)), options_(std::move(options)) {
  if (!options_.clock) options_.clock = SystemNow;
}
Monitor::~Monitor() = default;

int64_t Monitor::Now() const { return options_.clock(); }

Result<void> Monitor::Record(Event event) {
  if (event.time == 0) event.time = Now();
  AIRLOCK_TRY(store_->Append({&event, 1}, Now()));
  return {};
}

Result<size_t> Monitor::IngestUsageLog() {
  if (options_.usage_log.empty()) return size_t{0};
  if (!usage_log_) {
    auto log = audit::AuditLog::OpenExisting(options_.usage_log);
    if (!log) {
      if (log.error().code() == ErrorCode::kNotFound) return size_t{0};  // nothing logged yet
      return tl::unexpected(log.error());
    }
    usage_log_.emplace(std::move(*log));
  }
  AIRLOCK_ASSIGN_OR_RETURN(std::string log_id, usage_log_->LogId());
  const std::string cursor = "usage:" + log_id;
  AIRLOCK_ASSIGN_OR_RETURN(int64_t after, store_->Cursor(cursor));
  audit::AuditFilter filter;
  filter.after_seq = after;
  filter.limit = options_.batch;
  AIRLOCK_ASSIGN_OR_RETURN(auto records, usage_log_->Query(filter));
  if (records.empty()) return size_t{0};
  std::vector<Event> events;
  for (const audit::UsageRecord& r : records) {
    if (!IsKeyRecord(r)) continue;
    Event e;
    e.source = "key";
    e.source_ref = log_id + ":" + std::to_string(r.seq);
    e.time = r.time;
    e.app_id = AppOfKey(r.key_name);
    e.key_name = r.key_name;
    e.actor = r.actor;
    e.address = r.source;
    e.operation = r.operation;
    e.result = std::string(audit::UsageResultName(r.result));
    e.reason = r.result_reason;
    e.detail = r.details;
    events.push_back(std::move(e));
  }
  AIRLOCK_ASSIGN_OR_RETURN(size_t stored, store_->Append(events, Now()));
  AIRLOCK_TRY(store_->AdvanceCursor(cursor, records.back().seq));
  return stored;
}

void Monitor::AuditRecord(const std::string& actor, const std::string& address,
                          const std::string& operation, const Alert& alert,
                          audit::UsageResult result, const std::string& details) {
  audit::UsageRecord r;
  r.actor = actor;
  r.source = address;
  r.operation = operation;
  r.purpose = "monitor";
  r.key_name = alert.key_name;
  r.result = result;
  r.reason = "alert " + std::to_string(alert.id) + " " + alert.rule;
  r.details = ("level=" + alert.level + " subject=" + alert.subject + " " + details)
                  .substr(0, audit::kMaxAuditDetailsSize);
  if (result != audit::UsageResult::kOk) r.result_reason = details.substr(0, 1024);
  if (auto ok = options_.audit(r); !ok) {
    Log({{"level", "error"},
         {"msg", "cannot append a monitor audit record"},
         {"error", ok.error().ToString()}});
  }
}

Result<void> Monitor::Raise(const Event& event, const Candidate& c, TickReport* report) {
  Alert a;
  a.rule = c.rule;
  a.level = c.level;
  a.subject = c.subject;
  a.window_start = c.window_start;
  a.app_id = c.app_id;
  a.key_name = c.key_name;
  a.version = c.version;
  a.summary = c.summary;
  a.event_id = event.id;
  a.created_at = Now();
  a.investigation = c.level == "low";
  a.action = std::string(ActionName(c.action));
  a.action_state = c.action == Action::kNone ? "none" : "pending";
  a.notify_state = options_.notifier ? "pending" : "none";
  a.notify_next_at = a.created_at;
  AIRLOCK_ASSIGN_OR_RETURN(std::optional<int64_t> id, store_->InsertAlert(a));
  if (!id) return {};  // raised already (by us earlier, or by another airlockd)
  a.id = *id;
  report->raised.push_back(a.id);
  Log({{"level", "warning"}, {"msg", "alert"}, {"alert", AlertJson(a)}});
  AuditRecord("monitor", "airlockd", "alert.raise", a, audit::UsageResult::kOk,
              "action=" + a.action + " summary=" + a.summary);
  if (c.action != Action::kNone) {
    AIRLOCK_TRY(TakeAction(std::move(a)));
    ++report->actions;
  }
  return {};
}

Result<void> Monitor::TakeAction(Alert a) {
  AIRLOCK_ASSIGN_OR_RETURN(bool mine, store_->ClaimAction(a.id));
  if (!mine) return {};
  Result<std::string> done = MakeError(ErrorCode::kInternal, "no responder");
  if (options_.responder != nullptr) {
    if (a.action == ActionName(Action::kSuspendKey)) {
      done = options_.responder->SuspendKey(a);
    } else if (a.action == ActionName(Action::kRotateKey)) {
      done = options_.responder->RotateKey(a);
    } else if (a.action == ActionName(Action::kReplaceAppKeys)) {
      done = options_.responder->ReplaceAppKeys(a);
    } else if (a.action == ActionName(Action::kPauseRollout)) {
      done = options_.responder->PauseRollout(a);
    } else {
      done = MakeError(ErrorCode::kInternal, "unknown action " + a.action);
    }
  }
  std::string result = done ? *done : done.error().ToString();
  AIRLOCK_TRY(store_->SetAction(a.id, done ? "done" : "failed", result));
  Log({{"level", done ? "warning" : "error"},
       {"msg", "alert action"},
       {"alert", a.id},
       {"action", a.action},
       {"state", done ? "done" : "failed"},
       {"result", result}});
  AuditRecord("monitor", "airlockd", "alert.action", a,
              done ? audit::UsageResult::kOk : audit::UsageResult::kFailed,
              "action=" + a.action + " result=" + result);
  return {};
}

Result<size_t> Monitor::Notify() {
  if (options_.notifier == nullptr) return size_t{0};
  const int64_t now = Now();
  AIRLOCK_ASSIGN_OR_RETURN(auto due, store_->DueNotifications(now));
  size_t sent = 0;
  for (Alert& a : due) {
    // The current state (the action's outcome included) is what the receiver sees.
    AIRLOCK_ASSIGN_OR_RETURN(a, store_->GetAlert(a.id));
    Json body = {{"type", "alert"}, {"alert", AlertJson(a)}};
    auto delivered = options_.notifier->Send(body.dump(), now);
    int64_t attempts = a.notify_attempts + 1;
    if (delivered) {
      AIRLOCK_TRY(store_->SetNotify(a.id, "sent", attempts, now));
      AuditRecord("monitor", "airlockd", "alert.notify", a, audit::UsageResult::kOk,
                  "attempts=" + std::to_string(attempts));
      ++sent;
      continue;
    }
    Log({{"level", "error"},
         {"msg", "alert notification failed"},
         {"alert", a.id},
         {"attempt", attempts},
         {"error", delivered.error().ToString()}});
    if (attempts >= options_.notify_max_attempts) {
      AIRLOCK_TRY(store_->SetNotify(a.id, "failed", attempts, now));
      AuditRecord("monitor", "airlockd", "alert.notify", a, audit::UsageResult::kFailed,
                  "gave up after " + std::to_string(attempts) +
                      " attempts: " + delivered.error().message());
    } else {
      int64_t delay = options_.notify_base_delay << std::min<int64_t>(attempts - 1, 20);
      AIRLOCK_TRY(store_->SetNotify(a.id, "pending", attempts, now + delay));
    }
  }
  return sent;
}

Result<RuleSet> Monitor::Rules() {
  AIRLOCK_ASSIGN_OR_RETURN(auto stored, store_->RuleSettings());
  return LoadRules(stored);
}

Result<TickReport> Monitor::Tick() {
  TickReport report;
  AIRLOCK_ASSIGN_OR_RETURN(report.ingested, IngestUsageLog());
  AIRLOCK_ASSIGN_OR_RETURN(RuleSet rules, Rules());
  AIRLOCK_ASSIGN_OR_RETURN(int64_t cursor, store_->Cursor("rules"));
  AIRLOCK_ASSIGN_OR_RETURN(auto events, store_->EventsAfter(cursor, options_.batch));
  for (const Event& e : events) {
    AIRLOCK_ASSIGN_OR_RETURN(auto candidates,
                             Evaluate(e, rules, *store_, options_.corroboration));
    for (const Candidate& c : candidates) AIRLOCK_TRY(Raise(e, c, &report));
    AIRLOCK_TRY(store_->AdvanceCursor("rules", e.id));
    ++report.evaluated;
  }
  // Actions of alerts raised before a crash (or by an airlockd that stopped before acting).
  AIRLOCK_ASSIGN_OR_RETURN(auto pending, store_->PendingActions());
  for (Alert& a : pending) {
    AIRLOCK_TRY(TakeAction(std::move(a)));
    ++report.actions;
  }
  AIRLOCK_ASSIGN_OR_RETURN(report.notified, Notify());
  if (options_.scheduled_checks) AIRLOCK_TRY(RunScheduledChecks(rules, &report));
  return report;
}

Result<Alert> Monitor::Acknowledge(int64_t id, const std::string& who, const std::string& address,
                                   const std::string& note) {
  AIRLOCK_ASSIGN_OR_RETURN(Alert a, store_->Acknowledge(id, who, Now(), note));
  AuditRecord(who, address, "alert.ack", a, audit::UsageResult::kOk, "note=" + note);
  return a;
}

Result<Alert> Monitor::Resolve(int64_t id, const std::string& who, const std::string& address,
                               const std::string& note) {
  AIRLOCK_ASSIGN_OR_RETURN(Alert a, store_->Resolve(id, who, Now(), note));
  AuditRecord(who, address, "alert.resolve", a, audit::UsageResult::kOk, "note=" + note);
  return a;
}

Result<RuleSettings> Monitor::SetRule(const std::string& rule, const Json& patch,
                                      const std::string& who, const std::string& address) {
  if (FindRule(rule) == nullptr)
    return MakeError(ErrorCode::kNotFound, "no rule " + rule.substr(0, 64));
  AIRLOCK_ASSIGN_OR_RETURN(RuleSet rules, Rules());
  RuleSettings settings = rules[rule];
  AIRLOCK_TRY(ApplySettings(patch, &settings));
  std::string text = SettingsJson(settings).dump();
  AIRLOCK_TRY(store_->PutRuleSettings(rule, text, Now(), who));
  Alert none;
  none.rule = rule;
  AuditRecord(who, address, "alert.rules.set", none, audit::UsageResult::kOk, "settings=" + text);
  return settings;
}

}  // namespace airlock::monitor
