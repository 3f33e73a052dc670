// The monitor's tables (migration 0006, docs/operations/alerts.md) on SQLite or PostgreSQL: the
// event stream, the cursors, the alerts and the rules' settings. The schema is made by
// storage::OpenStore (airlockd opens the store first); MonitorStore opens its own connection to the
// same database.
//
// Ordering. Event and alert ids are MAX(id) + 1, taken inside a transaction that holds the
// monitor's write lock (PostgreSQL: pg_advisory_xact_lock; SQLite: BEGIN IMMEDIATE, the database's
// write lock). So ids commit in increasing order across every airlockd sharing the database, and a
// reader that has seen id N will never later see a new event with a smaller id: a cursor
// ("evaluated up to N") loses nothing.
//
// Once only. An alert is unique on (rule, subject, window_start); InsertAlert answers nullopt when
// the row exists (inserted by this or another airlockd), and only the inserter takes the action.
//
// Thread-safe: calls are serialized by an internal mutex. Times are Unix seconds from the caller.
#ifndef AIRLOCK_MONITOR_MONITOR_STORE_H_
#define AIRLOCK_MONITOR_MONITOR_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace airlock::storage {
class Connection;
}

namespace airlock::monitor {

inline constexpr size_t kMaxFieldLength = 1024;  // every text field of an event (longer: cut)
// An event's detail: as long as a device report's (storage::kMaxTextLength), so the document a
// report of unknown_signed_metadata carries reaches the rules whole.
inline constexpr size_t kMaxDetailLength = 4096;
inline constexpr size_t kMaxListLimit = 10000;

// One entry of the stream. source: "key" (a key usage record), "admin" (an admin API request),
// "release" (a release or rollout change through the admin API), "device" (a device report),
// "operator" (a declaration such as a compromise). result: "ok", "denied", "failed".
struct Event {
  int64_t id = 0;  // assigned by Append
  std::string source;
  std::string source_ref;  // unique per source; empty: made unique by Append
  int64_t time = 0;
  int64_t recorded_at = 0;  // set by Append
  std::string app_id;
  std::string key_name;
  std::string actor;
  std::string address;
  std::string operation;
  std::string result = "ok";
  std::string reason;
  std::string device_id;
  std::string version;
  std::string detail;
};

// Conditions of Count/CountDistinct/Query; empty strings and nullopt match anything.
struct EventFilter {
  std::string source;
  std::string app_id;
  std::string key_name;
  std::string actor;
  std::string address;
  std::string operation;
  std::vector<std::string> operations;  // any of
  std::vector<std::string> results;     // any of
  std::string reason;
  std::string version;
  std::optional<int64_t> since;      // time >= since
  std::optional<int64_t> until;      // time < until
  std::optional<int64_t> before_id;  // id < before_id
};

enum class AlertStatus { kOpen, kAcknowledged, kResolved };
std::string_view AlertStatusName(AlertStatus status);  // "open", "acknowledged", "resolved"
Result<AlertStatus> ParseAlertStatus(std::string_view name);

struct Alert {
  int64_t id = 0;
  std::string rule;
  std::string level;  // "low", "medium", "high", "critical"
  std::string subject;
  int64_t window_start = 0;
  std::string app_id;
  std::string key_name;
  std::string version;
  std::string summary;
  int64_t event_id = 0;
  int64_t created_at = 0;
  AlertStatus status = AlertStatus::kOpen;
  bool investigation = false;  // an investigation item (low level) waiting for a person
  std::string action;          // "none", "suspend_key", "rotate_key", "replace_app_keys", ...
  std::string action_state;    // "none", "pending", "done", "failed"
  std::string action_result;
  std::string notify_state;  // "pending", "sent", "failed", "none"
  int64_t notify_attempts = 0;
  int64_t notify_next_at = 0;
  std::optional<std::string> acked_by;
  std::optional<int64_t> acked_at;
  std::optional<std::string> resolved_by;
  std::optional<int64_t> resolved_at;
  std::optional<std::string> note;
};

// A scheduled check's stored report (monitor_reports).
struct Report {
  int64_t id = 0;
  std::string period;  // "daily", "weekly", "monthly", "quarterly"
  int64_t period_start = 0;
  int64_t period_end = 0;
  int64_t created_at = 0;
  std::string report;  // JSON text
  std::optional<std::string> signed_off_by;
  std::optional<int64_t> signed_off_at;
  std::optional<std::string> note;
};

class MonitorStore {
 public:
  // "sqlite:PATH", a plain path, or "postgresql://..." (storage::OpenConnection). The schema must
  // exist (storage::OpenStore migrates it). kInvalidArgument / kIo.
  static Result<std::unique_ptr<MonitorStore>> Open(std::string_view url);
  explicit MonitorStore(std::unique_ptr<storage::Connection> conn);
  ~MonitorStore();

  // Appends events in one transaction; those whose (source, source_ref) is stored already are
  // skipped. Returns how many were new. kInvalidArgument for an empty source or operation.
  [[nodiscard]] Result<size_t> Append(std::span<const Event> events, int64_t now);
  // Events with id > after_id, oldest first, at most `limit`.
  [[nodiscard]] Result<std::vector<Event>> EventsAfter(int64_t after_id, size_t limit);
  [[nodiscard]] Result<std::vector<Event>> Query(const EventFilter& filter, size_t limit);
  [[nodiscard]] Result<int64_t> Count(const EventFilter& filter);
  // Distinct non-empty device ids among the matching events.
  [[nodiscard]] Result<int64_t> CountDevices(const EventFilter& filter);
  [[nodiscard]] Result<int64_t> MaxEventId();

  // 0 for a cursor never set. AdvanceCursor never moves one backwards.
  [[nodiscard]] Result<int64_t> Cursor(std::string_view name);
  [[nodiscard]] Result<void> AdvanceCursor(std::string_view name, int64_t position);

  // Inserts the alert (id, created_at and the states as given) unless (rule, subject,
  // window_start) exists: the new id, or nullopt.
  [[nodiscard]] Result<std::optional<int64_t>> InsertAlert(const Alert& alert);
  [[nodiscard]] Result<Alert> GetAlert(int64_t id);  // kNotFound
  // Newest first; `status` nullopt = any.
  [[nodiscard]] Result<std::vector<Alert>> ListAlerts(std::optional<AlertStatus> status,
                                                      size_t limit);
  [[nodiscard]] Result<std::vector<Alert>> PendingActions();
  // Alerts whose notification is pending and due at `now`.
  [[nodiscard]] Result<std::vector<Alert>> DueNotifications(int64_t now);
  [[nodiscard]] Result<void> SetAction(int64_t id, std::string_view state, std::string_view result);
  // Claims a pending action for this process (pending -> running); false when another has it.
  [[nodiscard]] Result<bool> ClaimAction(int64_t id);
  [[nodiscard]] Result<void> SetNotify(int64_t id, std::string_view state, int64_t attempts,
                                       int64_t next_at);
  // open -> acknowledged (kAlreadyExists when not open); open/acknowledged -> resolved
  // (kAlreadyExists when resolved). kNotFound for an unknown id.
  [[nodiscard]] Result<Alert> Acknowledge(int64_t id, std::string_view who, int64_t now,
                                          std::string_view note);
  [[nodiscard]] Result<Alert> Resolve(int64_t id, std::string_view who, int64_t now,
                                      std::string_view note);

  // Inserts unless (period, period_start) exists: the new id, or nullopt.
  [[nodiscard]] Result<std::optional<int64_t>> InsertReport(const Report& report);
  [[nodiscard]] Result<Report> GetReport(int64_t id);  // kNotFound
  // Newest first; `period` "" = any.
  [[nodiscard]] Result<std::vector<Report>> ListReports(std::string_view period, size_t limit);
  [[nodiscard]] Result<bool> HasReport(std::string_view period, int64_t period_start);
  // Records the sign-off; kAlreadyExists when signed already, kNotFound for an unknown id.
  [[nodiscard]] Result<Report> SignOff(int64_t id, std::string_view who, int64_t now,
                                       std::string_view note);

  // rule -> settings JSON text.
  [[nodiscard]] Result<std::map<std::string, std::string>> RuleSettings();
  [[nodiscard]] Result<void> PutRuleSettings(std::string_view rule, std::string_view json,
                                             int64_t now, std::string_view who);

 private:
  template <typename F>
  auto Locked(F body) -> decltype(body());
  Result<Alert> Transition(int64_t id, bool resolve, std::string_view who, int64_t now,
                           std::string_view note);

  std::mutex mu_;
  std::unique_ptr<storage::Connection> conn_;
};

}  // namespace airlock::monitor

#endif  // AIRLOCK_MONITOR_MONITOR_STORE_H_
