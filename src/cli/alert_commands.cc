// airlock alert list|show|ack|resolve|rules|rules set|declare-compromise: the monitor's alerts over
// the admin API (GET /api/v1/alerts, /api/v1/alerts/{id}, POST .../ack and .../resolve,
// GET /api/v1/alert-rules, PUT /api/v1/alert-rules/{rule}, POST /api/v1/keys/{key}/compromise;
// docs/api/server-api.md, docs/operations/alerts.md).
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/http_client.h"
#include "cli/server_command_helpers.h"
#include "cli/table.h"

namespace airlock::cli {
namespace {

using Json = nlohmann::json;

struct AlertListArgs {
  ServerArgs server;
  std::string status;  // "" = any
  int limit = 100;
};

struct AlertIdArgs {
  ServerArgs server;
  int64_t id = 0;
  std::string note;
};

struct RuleSetArgs {
  ServerArgs server;
  std::string rule;
  std::vector<std::string> settings;  // KEY=VALUE
};

struct CompromiseArgs {
  ServerArgs server;
  std::string key;
  std::string reason;
};

std::string Field(const Json& j, const char* field) {
  if (!j.contains(field) || j[field].is_null()) return "-";
  if (j[field].is_string()) return j[field].get<std::string>();
  return j[field].dump();
}

Result<void> RunList(const AlertListArgs& a) {
  if (a.limit < 1 || a.limit > 10000) {
    return MakeError(ErrorCode::kInvalidArgument, "--limit must be 1 to 10000");
  }
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  std::string path = "/api/v1/alerts?limit=" + std::to_string(a.limit);
  if (!a.status.empty()) path += "&status=" + a.status;
  AIRLOCK_ASSIGN_OR_RETURN(Json j, client.Json("GET", path));
  if (a.server.json) {
    PrintJson(j);
    return {};
  }
  std::vector<TableRow> rows;
  for (const auto& alert : j.value("alerts", Json::array())) {
    rows.push_back({Field(alert, "id"), Field(alert, "level"), Field(alert, "rule"),
                    Field(alert, "subject"), Field(alert, "status"),
                    Field(alert, "action") + "/" + Field(alert, "action_state"),
                    alert.contains("created_at") && alert["created_at"].is_number_integer()
                        ? FormatTime(alert["created_at"].get<int64_t>())
                        : "-"});
  }
  PrintTable(std::cout, {"ID", "LEVEL", "RULE", "SUBJECT", "STATUS", "ACTION", "RAISED"}, rows);
  return {};
}

void PrintAlert(const Json& a) {
  for (const char* field : {"id", "level", "rule", "subject", "summary", "app_id", "key_name",
                            "version", "status", "investigation", "action", "action_state",
                            "action_result", "notify_state", "acked_by", "resolved_by", "note"}) {
    std::cout << field << ": " << Field(a, field) << "\n";
  }
  if (a.contains("created_at") && a["created_at"].is_number_integer()) {
    std::cout << "raised: " << FormatTime(a["created_at"].get<int64_t>()) << "\n";
  }
}

Result<void> RunShow(const AlertIdArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  AIRLOCK_ASSIGN_OR_RETURN(Json j, client.Json("GET", "/api/v1/alerts/" + std::to_string(a.id)));
  if (a.server.json) {
    PrintJson(j);
  } else {
    PrintAlert(j);
  }
  return {};
}

Result<void> RunChange(const AlertIdArgs& a, bool resolve) {
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  Json body = Json::object();
  if (!a.note.empty()) body["note"] = a.note;
  AIRLOCK_ASSIGN_OR_RETURN(Json j, client.Json("POST",
                                               "/api/v1/alerts/" + std::to_string(a.id) +
                                                   (resolve ? "/resolve" : "/ack"),
                                               body));
  if (a.server.json) {
    PrintJson(j);
    return {};
  }
  std::cout << "alert " << Field(j, "id") << " " << Field(j, "status") << "\n";
  return {};
}

Result<void> RunRules(const ServerArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a));
  AIRLOCK_ASSIGN_OR_RETURN(Json j, client.Json("GET", "/api/v1/alert-rules"));
  if (a.json) {
    PrintJson(j);
    return {};
  }
  std::vector<TableRow> rows;
  for (const auto& r : j.value("rules", Json::array())) {
    const Json s = r.value("settings", Json::object());
    rows.push_back({Field(r, "rule"), Field(r, "level"), Field(r, "action"),
                    s.value("enabled", true) ? "on" : "off", Field(s, "window"),
                    Field(s, "threshold"), Field(r, "description")});
  }
  PrintTable(std::cout, {"RULE", "LEVEL", "ACTION", "ENABLED", "WINDOW", "THRESHOLD", "WATCHES"},
             rows);
  std::cout << "(every setting of a rule: airlock alert rules --json)\n";
  return {};
}

Result<void> RunRuleSet(const RuleSetArgs& a) {
  AIRLOCK_TRY(ValidateId("rule", a.rule));
  if (a.settings.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "give at least one KEY=VALUE setting");
  }
  Json patch = Json::object();
  for (const std::string& kv : a.settings) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return MakeError(ErrorCode::kInvalidArgument, "settings are KEY=VALUE, not '" + kv + "'");
    }
    std::string value = kv.substr(eq + 1);
    // Numbers, true/false and lists (ignore_actors=["a","b"]) as JSON; anything else as text.
    Json parsed = Json::parse(value, nullptr, false);
    patch[kv.substr(0, eq)] = parsed.is_discarded() ? Json(value) : parsed;
  }
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  AIRLOCK_ASSIGN_OR_RETURN(Json j, client.Json("PUT", "/api/v1/alert-rules/" + a.rule, patch));
  if (a.server.json) {
    PrintJson(j);
    return {};
  }
  std::cout << "rule " << Field(j, "rule") << ": " << j.value("settings", Json::object()).dump()
            << "\n";
  return {};
}

Result<void> RunDeclare(const CompromiseArgs& a) {
  AIRLOCK_TRY(ValidateId("key name", a.key));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  AIRLOCK_ASSIGN_OR_RETURN(Json j, client.Json("POST", "/api/v1/keys/" + a.key + "/compromise",
                                               Json{{"reason", a.reason}}));
  if (a.server.json) {
    PrintJson(j);
    return {};
  }
  std::cout << "declared key " << a.key << " compromised; " << Field(j, "message") << "\n";
  return {};
}

struct ReportListArgs {
  ServerArgs server;
  std::string period;
  int limit = 100;
};

Result<void> RunReports(const ReportListArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  std::string path = "/api/v1/reports?limit=" + std::to_string(a.limit);
  if (!a.period.empty()) path += "&period=" + a.period;
  AIRLOCK_ASSIGN_OR_RETURN(Json j, client.Json("GET", path));
  if (a.server.json) {
    PrintJson(j);
    return {};
  }
  std::vector<TableRow> rows;
  for (const auto& r : j.value("reports", Json::array())) {
    rows.push_back({std::to_string(r.value("id", int64_t{0})), Field(r, "period"),
                    FormatTime(r.value("period_start", int64_t{0})),
                    FormatTime(r.value("period_end", int64_t{0})), Field(r, "signed_off_by")});
  }
  PrintTable(std::cout, {"ID", "PERIOD", "FROM", "TO", "SIGNED OFF BY"}, rows);
  return {};
}

Result<void> RunReport(const AlertIdArgs& a, bool sign_off) {
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  const std::string path = "/api/v1/reports/" + std::to_string(a.id);
  AIRLOCK_ASSIGN_OR_RETURN(Json j,
                           sign_off ? client.Json("POST", path + "/signoff", Json{{"note", a.note}})
                                    : client.Json("GET", path));
  if (a.server.json || !sign_off) {
    PrintJson(j);
    return {};
  }
  std::cout << "signed off report " << a.id << " (" << Field(j, "period") << " from "
            << FormatTime(j.value("period_start", int64_t{0})) << ") as "
            << Field(j, "signed_off_by") << "\n";
  return {};
}

}  // namespace

void AddAlertCommands(CLI::App& app, Action& action) {
  CLI::App* alert = app.add_subcommand(
      "alert", "The monitor's alerts on airlockd: list, show, ack, resolve, rules");
  alert->require_subcommand(1);

  auto list = std::make_shared<AlertListArgs>();
  CLI::App* l = alert->add_subcommand("list", "List alerts, newest first (needs audit.read)");
  l->add_option("--status", list->status, "Only alerts in this state")
      ->check(CLI::IsMember({"open", "acknowledged", "resolved"}));
  l->add_option("--limit", list->limit, "At most this many (default 100)");
  AddServerOptions(l, list->server);
  l->callback([list, &action] { action = [list] { return RunList(*list); }; });

  auto show = std::make_shared<AlertIdArgs>();
  CLI::App* s = alert->add_subcommand("show", "Show one alert with its action and notification");
  s->add_option("id", show->id, "Alert id")->required()->check(CLI::PositiveNumber);
  AddServerOptions(s, show->server);
  s->callback([show, &action] { action = [show] { return RunShow(*show); }; });

  for (bool resolve : {false, true}) {
    auto args = std::make_shared<AlertIdArgs>();
    CLI::App* c = alert->add_subcommand(
        resolve ? "resolve" : "ack",
        resolve ? "Resolve an alert (needs key.suspend: owner, admin, key-custodian)"
                : "Acknowledge an open alert: someone is on it (needs key.suspend)");
    c->add_option("id", args->id, "Alert id")->required()->check(CLI::PositiveNumber);
    c->add_option("--note", args->note, "Why, what was done (kept with the alert and audited)");
    AddServerOptions(c, args->server);
    c->callback([args, resolve, &action] {
      action = [args, resolve] { return RunChange(*args, resolve); };
    });
  }

  auto rules = std::make_shared<ServerArgs>();
  CLI::App* r = alert->add_subcommand("rules", "Show the rules with their thresholds and windows");
  AddServerOptions(r, *rules);
  auto set = std::make_shared<RuleSetArgs>();
  CLI::App* rs = r->add_subcommand(
      "set",
      "Change a rule's settings, e.g. `alert rules set key_failures threshold=3 window=300` "
      "(needs principal.manage: owner, admin)");
  rs->add_option("rule", set->rule, "Rule name, as `alert rules` lists it")->required();
  rs->add_option("settings", set->settings, "KEY=VALUE (enabled, window, threshold, ...)")
      ->required();
  AddServerOptions(rs, set->server);
  rs->callback([set, &action] { action = [set] { return RunRuleSet(*set); }; });
  r->callback([rules, rs, &action] {
    if (rs->parsed()) return;
    action = [rules] { return RunRules(*rules); };
  });

  auto reports = std::make_shared<ReportListArgs>();
  CLI::App* rl = alert->add_subcommand(
      "reports", "The scheduled checks' reports (daily, weekly, monthly, quarterly; audit.read)");
  rl->add_option("--period", reports->period, "Only this period")
      ->check(CLI::IsMember({"daily", "weekly", "monthly", "quarterly"}));
  rl->add_option("--limit", reports->limit, "At most this many (default 100)");
  AddServerOptions(rl, reports->server);
  rl->callback([reports, &action] { action = [reports] { return RunReports(*reports); }; });
  for (bool sign_off : {false, true}) {
    auto args = std::make_shared<AlertIdArgs>();
    CLI::App* c = alert->add_subcommand(
        sign_off ? "sign-off" : "report",
        sign_off ? "Sign a report off as reviewed (the weekly log review; needs audit.verify)"
                 : "Show one report in full (JSON)");
    c->add_option("id", args->id, "Report id")->required()->check(CLI::PositiveNumber);
    if (sign_off) c->add_option("--note", args->note, "What the review found (audited)");
    AddServerOptions(c, args->server, sign_off);
    c->callback([args, sign_off, &action] {
      action = [args, sign_off] { return RunReport(*args, sign_off); };
    });
  }

  auto declare = std::make_shared<CompromiseArgs>();
  CLI::App* d = alert->add_subcommand("declare-compromise",
                                      "Declare a key of airlockd's vault compromised: the monitor "
                                      "rotates it now and revokes the old "
                                      "key (needs key.suspend)");
  d->add_option("key", declare->key, "Vault key name, e.g. com.example.app.timestamp")->required();
  d->add_option("--reason", declare->reason, "What happened (required, audited)")->required();
  AddServerOptions(d, declare->server);
  d->callback([declare, &action] { action = [declare] { return RunDeclare(*declare); }; });
}

}  // namespace airlock::cli
