// The monitor's rules (docs/operations/alerts.md has the table): each reads one new event and the
// stored stream around it (windows), and names the alerts it raises. Pure apart from reading the
// MonitorStore; the actions are taken by Monitor (monitor.h) through a Responder.
//
// Windows. A count rule counts the matching events in (t - window, t] at each new event (a sliding
// window); the alert it raises is keyed by the tumbling bucket floor(t / window) * window, so one
// subject raises at most one alert per rule and bucket, whichever airlockd evaluates it.
#ifndef AIRLOCK_MONITOR_RULES_H_
#define AIRLOCK_MONITOR_RULES_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "monitor/monitor_store.h"

namespace airlock::monitor {

// Every setting any rule reads; each rule uses the ones docs/operations/alerts.md lists for it.
struct RuleSettings {
  bool enabled = true;
  int64_t window = 3600;         // seconds
  int64_t threshold = 5;         // events (or distinct devices) within the window
  int64_t min_history = 20;      // new_actor/new_address: events of the key before one is "new"
  int64_t quiet_start_hour = 0;  // odd_hour: [start, end) in UTC hours
  int64_t quiet_end_hour = 5;
  double factor = 10;  // rate_spike: this many times the key's hourly baseline
  int64_t baseline_days = 7;
  double max_failure_rate = 0.05;  // release_failure_rate: Wilson lower bound above this pauses
  int64_t min_attempts = 20;
  std::vector<std::string> ignore_actors;  // low rules: actors never flagged (the server itself)
};

enum class Action { kNone, kSuspendKey, kRotateKey, kReplaceAppKeys, kPauseRollout };
std::string_view ActionName(Action action);  // "none", "suspend_key", "rotate_key", ...

struct RuleInfo {
  std::string_view name;
  std::string_view level;  // "low", "medium", "high", "critical"
  Action action;
  std::string_view description;
};
// The rules in a fixed order.
const std::vector<RuleInfo>& AllRules();
const RuleInfo* FindRule(std::string_view name);
RuleSettings DefaultSettings(std::string_view rule);

using RuleSet = std::map<std::string, RuleSettings, std::less<>>;
// Defaults overlaid with the stored settings (rule -> JSON object text). kMalformed for a stored
// row that does not parse.
Result<RuleSet> LoadRules(const std::map<std::string, std::string>& stored);
nlohmann::json SettingsJson(const RuleSettings& settings);
// Applies the fields of `patch` to `settings`. kInvalidArgument for an unknown field, a wrong type
// or a value out of range (window 1 s..90 days, threshold 1..1000000, hours 0..24, rate 0..1, ...).
Result<void> ApplySettings(const nlohmann::json& patch, RuleSettings* settings);

// Wilson score interval lower bound for `failures` out of `n` at z (1.96: 95 %). 0 when n is 0.
double WilsonLowerBound(int64_t failures, int64_t n, double z = 1.96);

// An alert a rule wants raised for one event.
struct Candidate {
  std::string rule;
  std::string level;
  Action action = Action::kNone;
  std::string subject;
  int64_t window_start = 0;
  std::string app_id;
  std::string key_name;
  std::string version;
  std::string summary;
};

// What the rules cannot read from the stream, answered by the server (server/corroboration.h).
// A device report is a claim by whoever holds an enrolled device, and anyone holding the app can
// enroll one (under the `token` enrollment policy): no device report alone moves a key. These
// checks turn a claim into evidence the server verified itself; without them (unset)
// foreign_signature, tampered_content and mass_verification_failures never act.
// (release_failure_rate pauses a release on device reports alone, by design:
// docs/operations/alerts.md.)
struct ForeignMetadata {
  std::string key_name;  // the vault name of the online key that signed it
  std::string role;      // "snapshot" or "timestamp"
  uint64_t version = 0;
  std::string sha256;    // of its signed part (canonical JSON, as signatures cover it)
};
struct ContentCheck {
  enum class State { kIntact, kDamaged, kUnknown };
  State state = State::kUnknown;
  std::string detail;  // what was compared, or why it could not be
};
struct Corroboration {
  // A device's report "unknown_signed_metadata" carries the document itself (detail field
  // `metadata=<base64 of its bytes>`). Returns what it proves only when a signature by the online
  // key the server holds now verifies over it and the server never produced it; nullopt for no
  // document, a bad or foreign signature, the server's own file, or one it cannot tell.
  std::function<std::optional<ForeignMetadata>(const std::string& app_id,
                                                const std::string& document_base64)>
      foreign_metadata;
  // Whether the server's own copy of release `version` of `app_id` (every target of that version)
  // and the metadata that signs it are what the signatures and hashes say.
  std::function<ContentCheck(const std::string& app_id, const std::string& version)> content;
};

// The alerts `event` raises under `rules`. Errors only from the store.
Result<std::vector<Candidate>> Evaluate(const Event& event, const RuleSet& rules,
                                        MonitorStore& store, const Corroboration& corroboration);

}  // namespace airlock::monitor

#endif  // AIRLOCK_MONITOR_RULES_H_
