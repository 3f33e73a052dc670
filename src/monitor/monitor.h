// The monitor inside airlockd (docs/operations/alerts.md): it gathers one event stream, runs the
// rules over it, raises each alert once, takes the alert's automatic action, records alert and
// action in the audit chain and notifies.
//
// Sources. Key operations come from the server vault's key usage log (audit/audit_log.h), read by
// seq behind the cursor "usage:<log id>"; admin API requests, release and rollout changes and
// device reports are recorded by the server as they happen (Record); an operator's declaration of a
// compromise is recorded through the admin API.
//
// One Tick: ingest the usage log, evaluate every event after the cursor "rules" (moving it after
// each event, so a crash re-evaluates at most one event, and the alert's uniqueness keeps that
// harmless), take the actions of newly raised alerts and of alerts whose action is still pending
// (raised before a crash), and send due notifications (with back-off). Several airlockd sharing one
// database may tick at the same time: MonitorStore's (rule, subject, window_start) uniqueness and
// ClaimAction make each alert and each action happen once.
//
// Thread-safety: Record may be called from any thread; Tick from one thread at a time.
#ifndef AIRLOCK_MONITOR_MONITOR_H_
#define AIRLOCK_MONITOR_MONITOR_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "audit/audit_log.h"
#include "common/result.h"
#include "monitor/monitor_store.h"
#include "monitor/notifier.h"
#include "monitor/rules.h"

namespace airlock::monitor {

// Takes the automatic actions. Each returns a one-line description of what was done; an error
// leaves the alert's action "failed" with the error text (the alert stays open for a person).
class Responder {
 public:
  virtual ~Responder() = default;
  // medium: suspend alert.key_name.
  [[nodiscard]] virtual Result<std::string> SuspendKey(const Alert& alert) = 0;
  // high: rotate alert.key_name now and revoke the old key.
  [[nodiscard]] virtual Result<std::string> RotateKey(const Alert& alert) = 0;
  // critical: replace every key of alert.app_id the server holds and pause every channel.
  [[nodiscard]] virtual Result<std::string> ReplaceAppKeys(const Alert& alert) = 0;
  // pause every channel of alert.app_id offering alert.version.
  [[nodiscard]] virtual Result<std::string> PauseRollout(const Alert& alert) = 0;
};

// The server's keys for the scheduled reports: their ages (vault state) and each purpose's maximum.
struct KeyInventory {
  std::vector<audit::KeyAge> ages;
  std::map<std::string, int64_t> max_age;  // purpose -> seconds
};

struct MonitorOptions {
  std::function<int64_t()> clock;  // Unix seconds; default the system clock
  // The key usage log to ingest (the server vault's). Empty: none.
  std::filesystem::path usage_log;
  // Appends a record to the audit chain (every alert raised, every action, acks, resolutions,
  // notification outcomes). Required.
  std::function<Result<void>(const audit::UsageRecord&)> audit;
  Responder* responder = nullptr;  // required
  Notifier* notifier = nullptr;    // optional: without one, alerts are only logged
  // The server's checks of what devices report (rules.h): unset, the device rules that replace or
  // rotate keys raise investigation items at most.
  Corroboration corroboration;
  int64_t notify_max_attempts = 8;
  int64_t notify_base_delay = 30;  // seconds; doubled after every failed attempt
  size_t batch = 1000;             // events evaluated per Tick at most
  // The scheduled checks (schedule.cc): daily, weekly, monthly and quarterly reports over the usage
  // log, made once per period by whichever airlockd ticks first after the period ends.
  bool scheduled_checks = true;
  // Unset: ages come from the log's create/rotate records and no purpose has a maximum age.
  std::function<Result<KeyInventory>()> key_inventory;
};

struct TickReport {
  size_t ingested = 0;
  size_t evaluated = 0;
  std::vector<int64_t> raised;  // alert ids this process inserted
  size_t actions = 0;
  size_t notified = 0;
  std::vector<int64_t> reports;  // report ids this process made
};

class Monitor {
 public:
  Monitor(std::unique_ptr<MonitorStore> store, MonitorOptions options);
  ~Monitor();

  // Stores one event (source_ref de-duplicates; time 0 = now).
  [[nodiscard]] Result<void> Record(Event event);
  [[nodiscard]] Result<TickReport> Tick();

  // The person-facing operations of the admin API; each also lands in the audit chain.
  [[nodiscard]] Result<Alert> Acknowledge(int64_t id, const std::string& who,
                                          const std::string& address, const std::string& note);
  [[nodiscard]] Result<Alert> Resolve(int64_t id, const std::string& who,
                                      const std::string& address, const std::string& note);
  // Validates `patch` (rules.h ApplySettings) over the current settings of `rule` and stores the
  // result. kNotFound for an unknown rule.
  [[nodiscard]] Result<RuleSettings> SetRule(const std::string& rule, const nlohmann::json& patch,
                                             const std::string& who, const std::string& address);
  [[nodiscard]] Result<RuleSet> Rules();
  // An auditor signs off a report (the weekly review); recorded in the audit chain.
  [[nodiscard]] Result<Report> SignOff(int64_t id, const std::string& who,
                                       const std::string& address, const std::string& note);

  MonitorStore& store() { return *store_; }
  int64_t Now() const;

 private:
  Result<size_t> IngestUsageLog();
  Result<void> Raise(const Event& event, const Candidate& c, TickReport* report);
  Result<void> TakeAction(Alert alert);
  Result<size_t> Notify();
  Result<void> RunScheduledChecks(const RuleSet& rules, TickReport* report);
  Result<void> MakeReport(std::string_view period_name, int64_t start, int64_t end,
                          const RuleSet& rules, TickReport* report);
  void AuditRecord(const std::string& actor, const std::string& address,
                   const std::string& operation, const Alert& alert, audit::UsageResult result,
                   const std::string& details);

  std::unique_ptr<MonitorStore> store_;
  MonitorOptions options_;
  std::optional<audit::AuditLog> usage_log_;
};

// The alert as JSON (the admin API's and the webhook's form).
nlohmann::json AlertJson(const Alert& alert);
// The report as JSON: its fields, and the stored report itself under "report" when `full`.
nlohmann::json ReportJson(const Report& report, bool full);

}  // namespace airlock::monitor

#endif  // AIRLOCK_MONITOR_MONITOR_H_
