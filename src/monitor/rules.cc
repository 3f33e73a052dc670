#include "monitor/rules.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

namespace airlock::monitor {
namespace {

using Json = nlohmann::json;

int64_t Bucket(int64_t t, int64_t window) {
  int64_t b = t / window;
  if (t % window < 0) --b;
  return b * window;
}

bool Ignored(const RuleSettings& s, const std::string& actor) {
  return std::find(s.ignore_actors.begin(), s.ignore_actors.end(), actor) != s.ignore_actors.end();
}

const RuleSettings* Enabled(const RuleSet& rules, std::string_view name) {
  auto it = rules.find(name);
  if (it == rules.end() || !it->second.enabled) return nullptr;
  return &it->second;
}

Candidate Make(std::string_view rule, std::string subject, int64_t window_start, const Event& e,
               std::string summary) {
  const RuleInfo* info = FindRule(rule);
  Candidate c;
  c.rule = std::string(rule);
  c.level = std::string(info->level);
  c.action = info->action;
  c.subject = std::move(subject);
  c.window_start = window_start;
  c.app_id = e.app_id;
  c.key_name = e.key_name;
  c.version = e.version;
  c.summary = std::move(summary);
  return c;
}

// "k=v k=v" -> value of `key`, "" when absent.
std::string DetailField(const std::string& detail, std::string_view key) {
  std::string needle = std::string(key) + "=";
  size_t pos = 0;
  while ((pos = detail.find(needle, pos)) != std::string::npos) {
    if (pos == 0 || detail[pos - 1] == ' ') {
      size_t start = pos + needle.size();
      size_t end = detail.find(' ', start);
      return detail.substr(start, end == std::string::npos ? std::string::npos : end - start);
    }
    pos += needle.size();
  }
  return "";
}

bool IsDeviceFailure(const std::string& kind) { return kind == "failed" || kind == "rolled_back"; }

// Low: new actor / new address for a key with a history.
Result<void> NewForKey(const Event& e, const RuleSet& rules, MonitorStore& store,
                       std::string_view rule, bool by_actor, std::vector<Candidate>* out) {
  const RuleSettings* s = Enabled(rules, rule);
  const std::string& who = by_actor ? e.actor : e.address;
  if (s == nullptr || e.key_name.empty() || who.empty() || Ignored(*s, e.actor)) return {};
  EventFilter history;
  history.source = "key";
  history.key_name = e.key_name;
  history.before_id = e.id;
  AIRLOCK_ASSIGN_OR_RETURN(int64_t before, store.Count(history));
  if (before < s->min_history) return {};
  if (by_actor) {
    history.actor = who;
  } else {
    history.address = who;
  }
  AIRLOCK_ASSIGN_OR_RETURN(int64_t seen, store.Count(history));
  if (seen > 0) return {};
  out->push_back(Make(rule, e.key_name + "|" + who, 0, e,
                      std::string(by_actor ? "new actor " : "new source address ") + who +
                          " used key " + e.key_name + " (" + e.operation + ")"));
  return {};
}

Result<void> KeyRules(const Event& e, const RuleSet& rules, MonitorStore& store,
                      std::vector<Candidate>* out) {
  if (e.key_name.empty()) return {};
  if (e.result != "ok") {
    if (const RuleSettings* s = Enabled(rules, "key_failures")) {
      EventFilter f;
      f.source = "key";
      f.key_name = e.key_name;
      f.results = {"denied", "failed"};
      f.since = e.time - s->window + 1;
      f.until = e.time + 1;
      AIRLOCK_ASSIGN_OR_RETURN(int64_t n, store.Count(f));
      if (n >= s->threshold) {
        out->push_back(Make("key_failures", e.key_name, Bucket(e.time, s->window), e,
                            std::to_string(n) + " failed or refused operations on key " +
                                e.key_name + " within " + std::to_string(s->window) + " s (last: " +
                                e.operation + " by " + e.actor + ": " + e.reason + ")"));
      }
    }
    return {};
  }
  AIRLOCK_TRY(NewForKey(e, rules, store, "new_actor", true, out));
  AIRLOCK_TRY(NewForKey(e, rules, store, "new_address", false, out));
  if (const RuleSettings* s = Enabled(rules, "rate_spike"); s && !Ignored(*s, e.actor)) {
    EventFilter f;
    f.source = "key";
    f.key_name = e.key_name;
    f.since = e.time - s->window + 1;
    f.until = e.time + 1;
    AIRLOCK_ASSIGN_OR_RETURN(int64_t recent, store.Count(f));
    if (recent >= s->threshold) {
      f.until = f.since;
      f.since = *f.until - s->baseline_days * 86400;
      AIRLOCK_ASSIGN_OR_RETURN(int64_t before, store.Count(f));
      double windows = static_cast<double>(s->baseline_days * 86400) / s->window;
      double baseline = static_cast<double>(before) / windows;
      if (recent > s->factor * std::max(baseline, 1.0)) {
        out->push_back(Make("rate_spike", e.key_name, Bucket(e.time, s->window), e,
                            "key " + e.key_name + " used " + std::to_string(recent) +
                                " times within " + std::to_string(s->window) + " s, baseline " +
                                std::to_string(baseline) + " per window"));
      }
    }
  }
  return {};
}

Result<void> OddHour(const Event& e, const RuleSet& rules, std::vector<Candidate>* out) {
  const RuleSettings* s = Enabled(rules, "odd_hour");
  if (s == nullptr || e.result != "ok" || e.actor.empty() || Ignored(*s, e.actor)) return {};
  bool watched = (e.source == "key" && !e.key_name.empty()) || e.source == "release";
  if (!watched) return {};
  int64_t hour = (e.time % 86400 + 86400) % 86400 / 3600;
  bool quiet = s->quiet_start_hour <= s->quiet_end_hour
                   ? hour >= s->quiet_start_hour && hour < s->quiet_end_hour
                   : hour >= s->quiet_start_hour || hour < s->quiet_end_hour;
  if (!quiet) return {};
  std::string what = e.source == "key" ? "key " + e.key_name : e.operation + " " + e.app_id;
  out->push_back(Make("odd_hour", what + "|" + e.actor, Bucket(e.time, 86400), e,
                      e.actor + " used " + what + " at " + std::to_string(hour) +
                          " h UTC, inside the quiet hours"));
  return {};
}

// Low: irregular deployment patterns, from the "release" events (successful publishes, rollout,
// channel and approval changes; docs/operations/alerts.md). Odd hours are OddHour's.
Result<void> DeployRules(const Event& e, const RuleSet& rules, MonitorStore& store,
                         std::vector<Candidate>* out) {
  if (e.result != "ok" || e.app_id.empty()) return {};
  const RuleSettings* burst = Enabled(rules, "deploy_burst");
  if (burst != nullptr && e.operation == "release.publish" && !Ignored(*burst, e.actor)) {
    EventFilter f;
    f.source = "release";
    f.app_id = e.app_id;
    f.operation = "release.publish";
    f.since = e.time - burst->window + 1;
    f.until = e.time + 1;
    AIRLOCK_ASSIGN_OR_RETURN(int64_t n, store.Count(f));
    if (n >= burst->threshold) {
      out->push_back(Make("deploy_burst", e.app_id, Bucket(e.time, burst->window), e,
                          std::to_string(n) + " releases of " + e.app_id + " published within " +
                              std::to_string(burst->window) + " s (last by " + e.actor + ")"));
    }
  }
  const RuleSettings* fresh = Enabled(rules, "deploy_new_actor");
  if (fresh != nullptr && !e.actor.empty() && !Ignored(*fresh, e.actor)) {
    EventFilter history;
    history.source = "release";
    history.app_id = e.app_id;
    history.before_id = e.id;
    history.since = e.time - fresh->baseline_days * 86400;
    AIRLOCK_ASSIGN_OR_RETURN(int64_t before, store.Count(history));
    history.actor = e.actor;
    AIRLOCK_ASSIGN_OR_RETURN(int64_t seen, store.Count(history));
    if (before >= fresh->min_history && seen == 0) {
      out->push_back(Make("deploy_new_actor", e.app_id + "|" + e.actor, 0, e,
                          e.actor + " changed releases of " + e.app_id + " (" + e.operation +
                              ") for the first time in " + std::to_string(fresh->baseline_days) +
                              " days"));
    }
  }
  const RuleSettings* jump = Enabled(rules, "rollout_jump");
  const std::string channel = DetailField(e.detail, "channel");
  const std::string percent_text = DetailField(e.detail, "percent");
  if (jump != nullptr && !channel.empty() && !percent_text.empty() &&
      std::atoll(percent_text.c_str()) >= jump->threshold) {
    EventFilter f;
    f.source = "release";
    f.app_id = e.app_id;
    f.before_id = e.id;
    f.since = e.time - jump->window + 1;
    AIRLOCK_ASSIGN_OR_RETURN(auto earlier, store.Query(f, 1000));
    for (const Event& before : earlier) {
      const std::string p = DetailField(before.detail, "percent");
      if (DetailField(before.detail, "channel") != channel || p.empty() ||
          static_cast<double>(std::atoll(p.c_str())) >= jump->factor) {
        continue;
      }
      out->push_back(Make("rollout_jump", e.app_id + "|" + channel, Bucket(e.time, jump->window), e,
                          "the rollout of " + e.app_id + " channel " + channel + " went from " + p +
                              " % to " + percent_text + " % within " +
                              std::to_string(jump->window) + " s (by " + e.actor + ")"));
      break;
    }
  }
  return {};
}

Result<void> AdminRules(const Event& e, const RuleSet& rules, MonitorStore& store,
                        std::vector<Candidate>* out) {
  if (e.result != "denied") return {};
  const RuleSettings* s = Enabled(rules, "admin_auth_failures");
  if (s == nullptr || e.address.empty()) return {};
  EventFilter f;
  f.source = "admin";
  f.address = e.address;
  f.results = {"denied"};
  f.since = e.time - s->window + 1;
  f.until = e.time + 1;
  AIRLOCK_ASSIGN_OR_RETURN(int64_t n, store.Count(f));
  if (n >= s->threshold) {
    out->push_back(Make("admin_auth_failures", e.address, Bucket(e.time, s->window), e,
                        std::to_string(n) + " refused admin API requests from " + e.address +
                            " within " + std::to_string(s->window) + " s"));
  }
  return {};
}

// `threshold` distinct devices of an app reported `reason` within the window. Acted on (the rule's
// level and action, subject the app) only when the server's own copy of the reported version fails
// its signed target, or the metadata that signs it does not verify; otherwise an investigation
// item (subject "<app> unverified", no action): then the bytes changed between the server and the
// devices, or the reports are false, and replacing the server's keys would mend neither.
Result<void> DeviceSpread(const Event& e, const RuleSet& rules, MonitorStore& store,
                          const Corroboration& corroboration, std::string_view rule,
                          std::string_view reason, std::string_view what,
                          std::vector<Candidate>* out) {
  const RuleSettings* s = Enabled(rules, rule);
  if (s == nullptr || e.reason != reason || e.app_id.empty()) return {};
  EventFilter f;
  f.source = "device";
  f.app_id = e.app_id;
  f.reason = std::string(reason);
  f.since = e.time - s->window + 1;
  f.until = e.time + 1;
  AIRLOCK_ASSIGN_OR_RETURN(int64_t devices, store.CountDevices(f));
  if (devices < s->threshold) return {};
  std::string summary = std::to_string(devices) + " devices of " + e.app_id + " reported " +
                        std::string(what) + " (" + std::string(reason) + ") within " +
                        std::to_string(s->window) + " s, the last for version " + e.version;
  ContentCheck own{ContentCheck::State::kUnknown, "the server has no check of its own copy"};
  if (corroboration.content) own = corroboration.content(e.app_id, e.version);
  Candidate c;
  if (own.state == ContentCheck::State::kDamaged) {
    c = Make(rule, e.app_id, Bucket(e.time, s->window), e,
             summary + "; the server's own copy fails its signatures or hashes: " + own.detail);
  } else {
    c = Make(rule, e.app_id + " unverified", Bucket(e.time, s->window), e,
             summary + "; no action: " +
                 (own.state == ContentCheck::State::kIntact
                      ? own.detail + ", so the bytes changed between the server and the devices, "
                                     "or the reports are false"
                      : own.detail));
    c.level = "low";
    c.action = Action::kNone;
  }
  c.key_name.clear();
  out->push_back(std::move(c));
  return {};
}

Result<void> FailureRate(const Event& e, const RuleSet& rules, MonitorStore& store,
                         std::vector<Candidate>* out) {
  const RuleSettings* s = Enabled(rules, "release_failure_rate");
  if (s == nullptr || !IsDeviceFailure(e.operation) || e.version.empty()) return {};
  EventFilter f;
  f.source = "device";
  f.app_id = e.app_id;
  f.version = e.version;
  f.since = e.time - s->window + 1;
  f.until = e.time + 1;
  f.operations = {"confirmed", "failed", "rolled_back"};
  AIRLOCK_ASSIGN_OR_RETURN(int64_t attempts, store.CountDevices(f));
  if (attempts < s->min_attempts) return {};
  f.operations = {"failed", "rolled_back"};
  AIRLOCK_ASSIGN_OR_RETURN(int64_t failures, store.CountDevices(f));
  double lower = WilsonLowerBound(failures, attempts);
  if (lower <= s->max_failure_rate) return {};
  out->push_back(
      Make("release_failure_rate", e.app_id + "/" + e.version, Bucket(e.time, s->window), e,
           std::to_string(failures) + " of " + std::to_string(attempts) +
               " devices failed release " + e.version + " of " + e.app_id + " (95 % lower bound " +
               std::to_string(lower) + " > " + std::to_string(s->max_failure_rate) + ")"));
  return {};
}

}  // namespace

std::string_view ActionName(Action action) {
  switch (action) {
    case Action::kNone:
      return "none";
    case Action::kSuspendKey:
      return "suspend_key";
    case Action::kRotateKey:
      return "rotate_key";
    case Action::kReplaceAppKeys:
      return "replace_app_keys";
    case Action::kPauseRollout:
      return "pause_rollout";
  }
  return "none";
}

const std::vector<RuleInfo>& AllRules() {
  static const std::vector<RuleInfo> kRules = {
      {"new_actor", "low", Action::kNone, "a key used by an actor it has not seen before"},
      {"new_address", "low", Action::kNone, "a key used from a source address not seen before"},
      {"odd_hour", "low", Action::kNone,
       "a key used, or a release or rollout changed, in quiet hours"},
      {"rate_spike", "low", Action::kNone, "a key used far more often than its baseline"},
      {"admin_auth_failures", "low", Action::kNone,
       "repeated refused admin API requests (bad token, forbidden) from one address"},
      {"key_failures", "medium", Action::kSuspendKey,
       "repeated failed or refused operations on a key (auth, signing, second factor)"},
      {"compromise_declared", "high", Action::kRotateKey, "an operator declared a key compromised"},
      {"foreign_signature", "high", Action::kRotateKey,
       "a device shows metadata signed by our key that the server never produced"},
      {"tampered_content", "critical", Action::kReplaceAppKeys,
       "devices report tampered content (hash_mismatch) and the server's copy fails its target"},
      {"mass_verification_failures", "critical", Action::kReplaceAppKeys,
       "signature failures (signature_invalid) on many devices; the server's copy fails too"},
      {"release_failure_rate", "medium", Action::kPauseRollout,
       "a release's update failure rate above normal (Wilson lower bound)"},
      {"deploy_burst", "low", Action::kNone,
       "more releases of an app published within the window than usual (threshold)"},
      {"deploy_new_actor", "low", Action::kNone,
       "a release or rollout changed by an actor not seen deploying the app before"},
      {"rollout_jump", "low", Action::kNone,
       "a channel's rollout raised to threshold % from below factor % within the window"},
      {"daily_usage_anomaly", "low", Action::kNone,
       "the daily key-usage analysis found failed or refused operations or new actors"},
      {"review_unsigned", "low", Action::kNone,
       "a weekly log review not signed off by an auditor within the window"},
      {"rotation_overdue", "low", Action::kNone,
       "the monthly rotation review found keys older than their purpose's maximum age"},
      {"audit_chain_broken", "high", Action::kNone,
       "the quarterly audit found the usage log's hash chain or checkpoints broken"},
  };
  return kRules;
}

const RuleInfo* FindRule(std::string_view name) {
  for (const RuleInfo& r : AllRules()) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

RuleSettings DefaultSettings(std::string_view rule) {
  RuleSettings s;
  s.ignore_actors = {"airlockd", "monitor"};  // the server's own signing and alert records
  if (rule == "key_failures") {
    s.window = 600;
    s.threshold = 5;
  } else if (rule == "rate_spike") {
    s.window = 3600;
    s.threshold = 50;
  } else if (rule == "admin_auth_failures") {
    s.window = 600;
    s.threshold = 20;
  } else if (rule == "tampered_content") {
    s.window = 3600;
    s.threshold = 3;
  } else if (rule == "mass_verification_failures") {
    s.window = 900;
    s.threshold = 10;
  } else if (rule == "release_failure_rate") {
    s.window = 86400;
  } else if (rule == "foreign_signature") {
    s.window = 86400;
  } else if (rule == "deploy_burst") {
    s.window = 3600;
    s.threshold = 5;
  } else if (rule == "deploy_new_actor") {
    s.min_history = 3;  // deployments of the app before an actor can be "new"
    s.baseline_days = 90;
  } else if (rule == "rollout_jump") {
    s.window = 86400;
    s.threshold = 100;  // percent reached
    s.factor = 50;      // from below this percent
  } else if (rule == "review_unsigned") {
    s.window = 3 * 86400;  // days an auditor has to sign a weekly review off
  }
  return s;
}

Json SettingsJson(const RuleSettings& s) {
  return {{"enabled", s.enabled},
          {"window", s.window},
          {"threshold", s.threshold},
          {"min_history", s.min_history},
          {"quiet_start_hour", s.quiet_start_hour},
          {"quiet_end_hour", s.quiet_end_hour},
          {"factor", s.factor},
          {"baseline_days", s.baseline_days},
          {"max_failure_rate", s.max_failure_rate},
          {"min_attempts", s.min_attempts},
          {"ignore_actors", s.ignore_actors}};
}

Result<void> ApplySettings(const Json& patch, RuleSettings* s) {
  if (!patch.is_object())
    return MakeError(ErrorCode::kInvalidArgument, "settings must be an object");
  auto integer = [](const Json& v, std::string_view key, int64_t min, int64_t max,
                    int64_t* out) -> Result<void> {
    if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > max) {
      return MakeError(ErrorCode::kInvalidArgument, std::string(key) + " must be an integer " +
                                                        std::to_string(min) + " to " +
                                                        std::to_string(max));
    }
    *out = v.get<int64_t>();
    return {};
  };
  auto real = [](const Json& v, std::string_view key, double min, double max,
                 double* out) -> Result<void> {
    if (!v.is_number() || v.get<double>() < min || v.get<double>() > max) {
      return MakeError(ErrorCode::kInvalidArgument, std::string(key) + " must be a number " +
                                                        std::to_string(min) + " to " +
                                                        std::to_string(max));
    }
    *out = v.get<double>();
    return {};
  };
  RuleSettings next = *s;
  for (const auto& [key, v] : patch.items()) {
    if (key == "enabled") {
      if (!v.is_boolean())
        return MakeError(ErrorCode::kInvalidArgument, "enabled must be a boolean");
      next.enabled = v.get<bool>();
    } else if (key == "window") {
      AIRLOCK_TRY(integer(v, key, 1, 90 * 86400, &next.window));
    } else if (key == "threshold") {
      AIRLOCK_TRY(integer(v, key, 1, 1000000, &next.threshold));
    } else if (key == "min_history") {
      AIRLOCK_TRY(integer(v, key, 0, 1000000, &next.min_history));
    } else if (key == "quiet_start_hour") {
      AIRLOCK_TRY(integer(v, key, 0, 24, &next.quiet_start_hour));
    } else if (key == "quiet_end_hour") {
      AIRLOCK_TRY(integer(v, key, 0, 24, &next.quiet_end_hour));
    } else if (key == "factor") {
      AIRLOCK_TRY(real(v, key, 1, 1000000, &next.factor));
    } else if (key == "baseline_days") {
      AIRLOCK_TRY(integer(v, key, 1, 90, &next.baseline_days));
    } else if (key == "max_failure_rate") {
      AIRLOCK_TRY(real(v, key, 0, 1, &next.max_failure_rate));
    } else if (key == "min_attempts") {
      AIRLOCK_TRY(integer(v, key, 1, 1000000, &next.min_attempts));
    } else if (key == "ignore_actors") {
      if (!v.is_array() || v.size() > 100) {
        return MakeError(ErrorCode::kInvalidArgument, "ignore_actors must be a list of names");
      }
      next.ignore_actors.clear();
      for (const Json& a : v) {
        if (!a.is_string() || a.get<std::string>().empty() || a.get<std::string>().size() > 128) {
          return MakeError(ErrorCode::kInvalidArgument, "ignore_actors must be a list of names");
        }
        next.ignore_actors.push_back(a.get<std::string>());
      }
    } else {
      return MakeError(ErrorCode::kInvalidArgument, "unknown setting '" + key.substr(0, 64) + "'");
    }
  }
  *s = std::move(next);
  return {};
}

Result<RuleSet> LoadRules(const std::map<std::string, std::string>& stored) {
  RuleSet out;
  for (const RuleInfo& r : AllRules()) out[std::string(r.name)] = DefaultSettings(r.name);
  for (const auto& [rule, text] : stored) {
    auto it = out.find(rule);
    if (it == out.end()) continue;  // a rule this binary does not know (a newer airlockd's)
    Json patch = Json::parse(text, nullptr, false);
    if (patch.is_discarded()) {
      return MakeError(ErrorCode::kMalformed, "stored settings of rule " + rule + " do not parse");
    }
    AIRLOCK_TRY_CTX(ApplySettings(patch, &it->second), "stored settings of rule " + rule);
  }
  return out;
}

double WilsonLowerBound(int64_t failures, int64_t n, double z) {
  if (n <= 0) return 0;
  double p = static_cast<double>(failures) / static_cast<double>(n);
  double nn = static_cast<double>(n);
  double z2 = z * z;
  double centre = p + z2 / (2 * nn);
  double margin = z * std::sqrt((p * (1 - p) + z2 / (4 * nn)) / nn);
  return std::max(0.0, (centre - margin) / (1 + z2 / nn));
}

Result<std::vector<Candidate>> Evaluate(const Event& e, const RuleSet& rules, MonitorStore& store,
                                        const Corroboration& corroboration) {
  std::vector<Candidate> out;
  if (e.source == "key") {
    AIRLOCK_TRY(KeyRules(e, rules, store, &out));
    AIRLOCK_TRY(OddHour(e, rules, &out));
  } else if (e.source == "release") {
    AIRLOCK_TRY(OddHour(e, rules, &out));
    AIRLOCK_TRY(DeployRules(e, rules, store, &out));
  } else if (e.source == "admin") {
    AIRLOCK_TRY(AdminRules(e, rules, store, &out));
  } else if (e.source == "operator") {
    if (e.operation == "compromise" && !e.key_name.empty() &&
        Enabled(rules, "compromise_declared")) {
      out.push_back(Make("compromise_declared", e.key_name, e.id, e,
                         e.actor + " declared key " + e.key_name + " compromised: " + e.detail));
    }
  } else if (e.source == "device") {
    const RuleSettings* s = Enabled(rules, "foreign_signature");
    std::string document = DetailField(e.detail, "metadata");
    if (e.reason == "unknown_signed_metadata" && s != nullptr && !document.empty() &&
        corroboration.foreign_metadata) {
      if (auto proof = corroboration.foreign_metadata(e.app_id, document)) {
        Candidate c = Make("foreign_signature", proof->key_name, Bucket(e.time, s->window), e,
                           "device " + e.device_id + " of " + e.app_id + " holds " + proof->role +
                               " v" + std::to_string(proof->version) + " (sha256 " +
                               proof->sha256 + ") signed by key " + proof->key_name +
                               " that the server never produced");
        c.key_name = proof->key_name;
        out.push_back(std::move(c));
      }
    }
    AIRLOCK_TRY(DeviceSpread(e, rules, store, corroboration, "tampered_content", "hash_mismatch",
                             "validly signed but tampered content", &out));
    AIRLOCK_TRY(DeviceSpread(e, rules, store, corroboration, "mass_verification_failures",
                             "signature_invalid", "signature verification failures", &out));
    AIRLOCK_TRY(FailureRate(e, rules, store, &out));
  }
  return out;
}

}  // namespace airlock::monitor
