// The admin API's alert routes (docs/api/server-api.md, "Alerts") and the admin requests' entry
// into the monitor's event stream. Every alert route is server-wide (alerts span apps): tokens
// limited to apps get 403. Reading needs audit.read; acknowledging, resolving and declaring a
// compromise need key.suspend (the roles that may stop a key: owner, admin, key-custodian);
// changing a rule's settings needs principal.manage (owner, admin), since it can weaken the
// protection.
#include <charconv>
#include <string>

#include "monitor/monitor.h"
#include "server/admin_api_internal.h"
#include "server/capgo_routes.h"

namespace airlock::server {

using Json = nlohmann::json;
using namespace api_internal;    // NOLINT(google-build-using-namespace): this module's helpers
using namespace admin_internal;  // NOLINT(google-build-using-namespace)

namespace {

Response NoMonitor() { return JsonError(404, "not_found", "monitoring is not enabled"); }

// "<app>.<role>" -> "<app>".
std::string AppOfKey(std::string_view key) {
  std::string name(key.substr(0, key.find('@')));
  size_t dot = name.rfind('.');
  return dot == std::string::npos ? "" : name.substr(0, dot);
}

std::string Note(const Request& req, std::optional<Response>* err) {
  if (req.body.empty()) return "";
  ParsedBody body = ParseObjectBody(req.body);
  if (body.error) {
    *err = std::move(body.error);
    return "";
  }
  auto note = OptString(body.json, "note", 1024);
  if (!note) {
    *err = BadRequest(note.error());
    return "";
  }
  return note->value_or("");
}

}  // namespace

void AdminApi::RecordMonitorEvent(const Request& req, const access::Principal* principal,
                                  const std::string& log_action, const Response& response) {
  if (deps.monitor == nullptr) return;
  const bool refused = response.status == 401 || response.status == 403;
  if (!refused && log_action.empty()) return;  // reads are not watched
  monitor::Event e;
  const bool change = log_action.rfind("release.", 0) == 0 || log_action.rfind("channel.", 0) == 0;
  e.source = !refused && change && response.status < 400 ? "release" : "admin";
  e.operation = response.status == 401 ? "auth" : (log_action.empty() ? "request" : log_action);
  e.result = response.status < 400 ? "ok" : (refused ? "denied" : "failed");
  e.actor = principal ? principal->name : "";
  e.address = req.remote;
  e.app_id = AppForLog(req, response);
  e.detail =
      "request=" + req.method + " " + req.path + " status=" + std::to_string(response.status);
  // A rollout that took effect: its channel and percentage, for rollout_jump. A channel reply
  // (rollout, settings) or an approved rollout; 202 (pending) changed nothing.
  if (e.source == "release" && response.status == 200 &&
      (log_action == "channel.rollout" || log_action == "channel.update" ||
       log_action == "release.approve")) {
    Json body = Json::parse(response.body, nullptr, false);
    if (body.is_object() && body.value("kind", "rollout") == "rollout" &&
        body.contains("rollout_percent") && body["rollout_percent"].is_number_integer()) {
      const std::string channel =
          body.contains("channel") ? body.value("channel", "") : body.value("name", "");
      if (IsValidId(channel)) {
        e.detail += " channel=" + channel +
                    " percent=" + std::to_string(body["rollout_percent"].get<int64_t>());
      }
    }
  }
  if (auto recorded = deps.monitor->Record(std::move(e)); !recorded) {
    LogJson({{"level", "error"},
             {"msg", "cannot record an admin request for the monitor"},
             {"error", recorded.error().ToString()}});
  }
}

Response AdminApi::ListAlerts(const Request& req) {
  if (deps.monitor == nullptr) return NoMonitor();
  std::optional<Response> err;
  auto limit = QueryLimit(req, 100, &err);
  if (!limit) return std::move(*err);
  std::optional<monitor::AlertStatus> status;
  for (const auto& [key, value] : DecodeQuery(req.query)) {
    if (key != "status") continue;
    auto parsed = monitor::ParseAlertStatus(value);
    if (!parsed) return BadRequest(parsed.error());
    status = *parsed;
  }
  auto alerts = deps.monitor->store().ListAlerts(status, *limit);
  if (!alerts) return ErrorResponse(alerts.error());
  Json out = Json::array();
  for (const auto& a : *alerts) out.push_back(monitor::AlertJson(a));
  return Ok(200, {{"alerts", out}});
}

Response AdminApi::GetAlert(const Request& req) {
  if (deps.monitor == nullptr) return NoMonitor();
  std::optional<Response> err;
  auto id = PathId(req, "alert", &err);
  if (!id) return std::move(*err);
  auto alert = deps.monitor->store().GetAlert(*id);
  if (!alert) return ErrorResponse(alert.error());
  return Ok(200, monitor::AlertJson(*alert));
}

Response AdminApi::ChangeAlert(const Request& req, const access::Principal& actor, bool resolve) {
  if (deps.monitor == nullptr) return NoMonitor();
  std::optional<Response> err;
  auto id = PathId(req, "alert", &err);
  if (!id) return std::move(*err);
  std::string note = Note(req, &err);
  if (err) return std::move(*err);
  auto changed = resolve ? deps.monitor->Resolve(*id, actor.name, req.remote, note)
                         : deps.monitor->Acknowledge(*id, actor.name, req.remote, note);
  if (!changed) {
    if (changed.error().code() == ErrorCode::kAlreadyExists) {
      return JsonError(409, "conflict", changed.error().message());
    }
    return ErrorResponse(changed.error());
  }
  return Ok(200, monitor::AlertJson(*changed));
}

Response AdminApi::AlertRules(const Request&) {
  if (deps.monitor == nullptr) return NoMonitor();
  auto rules = deps.monitor->Rules();
  if (!rules) return ErrorResponse(rules.error());
  Json out = Json::array();
  for (const auto& info : monitor::AllRules()) {
    out.push_back({{"rule", info.name},
                   {"level", info.level},
                   {"action", monitor::ActionName(info.action)},
                   {"description", info.description},
                   {"settings", monitor::SettingsJson(rules->at(std::string(info.name)))}});
  }
  return Ok(200, {{"rules", out}});
}

Response AdminApi::SetAlertRule(const Request& req, const access::Principal& actor) {
  if (deps.monitor == nullptr) return NoMonitor();
  ParsedBody body = ParseObjectBody(req.body);
  if (body.error) return std::move(*body.error);
  auto set =
      deps.monitor->SetRule(std::string(req.Param("rule")), body.json, actor.name, req.remote);
  if (!set) return ErrorResponse(set.error());
  return Ok(200, {{"rule", req.Param("rule")}, {"settings", monitor::SettingsJson(*set)}});
}

Response AdminApi::DeclareCompromise(const Request& req, const access::Principal& actor) {
  if (deps.monitor == nullptr) return NoMonitor();
  std::string_view key = req.Param("key");
  if (key.empty() || key.size() > 128) return JsonError(400, "bad_request", "bad key name");
  ParsedBody body = ParseObjectBody(req.body.empty() ? std::string_view("{}") : req.body);
  if (body.error) return std::move(*body.error);
  auto reason = ReqString(body.json, "reason", 1024);
  if (!reason || reason->empty()) {
    return JsonError(400, "bad_request", "field 'reason' (why the key is compromised) is required");
  }
  monitor::Event e;
  e.source = "operator";
  e.operation = "compromise";
  e.key_name = std::string(key);
  e.app_id = AppOfKey(key);
  e.actor = actor.name;
  e.address = req.remote;
  e.detail = *reason;
  if (auto recorded = deps.monitor->Record(std::move(e)); !recorded) {
    return ErrorResponse(recorded.error());
  }
  return Ok(202, {{"key", key},
                  {"declared", true},
                  {"message",
                   "the monitor rotates the key and revokes the old one on its next "
                   "tick; follow it with `airlock alert list`"}});
}

Response AdminApi::ListReports(const Request& req) {
  if (deps.monitor == nullptr) return NoMonitor();
  std::optional<Response> err;
  auto limit = QueryLimit(req, 100, &err);
  if (!limit) return std::move(*err);
  std::string period;
  for (const auto& [key, value] : DecodeQuery(req.query)) {
    if (key != "period") continue;
    if (auto parsed = audit::ParseReportPeriod(value); !parsed) return BadRequest(parsed.error());
    period = value;
  }
  auto reports = deps.monitor->store().ListReports(period, *limit);
  if (!reports) return ErrorResponse(reports.error());
  Json out = Json::array();
  for (const auto& r : *reports) out.push_back(monitor::ReportJson(r, false));
  return Ok(200, {{"reports", out}});
}

Response AdminApi::GetReport(const Request& req) {
  if (deps.monitor == nullptr) return NoMonitor();
  std::optional<Response> err;
  auto id = PathId(req, "report", &err);
  if (!id) return std::move(*err);
  auto report = deps.monitor->store().GetReport(*id);
  if (!report) return ErrorResponse(report.error());
  return Ok(200, monitor::ReportJson(*report, true));
}

Response AdminApi::SignOffReport(const Request& req, const access::Principal& actor) {
  if (deps.monitor == nullptr) return NoMonitor();
  std::optional<Response> err;
  auto id = PathId(req, "report", &err);
  if (!id) return std::move(*err);
  std::string note = Note(req, &err);
  if (err) return std::move(*err);
  auto signed_off = deps.monitor->SignOff(*id, actor.name, req.remote, note);
  if (!signed_off) {
    if (signed_off.error().code() == ErrorCode::kAlreadyExists) {
      return JsonError(409, "conflict", signed_off.error().message());
    }
    return ErrorResponse(signed_off.error());
  }
  return Ok(200, monitor::ReportJson(*signed_off, false));
}

void AddAlertRoutes(Router* router, AdminApi* a) {
  using access::Action;
  constexpr auto kWide = AdminApi::Scope::kServerWide;
  router->Add(
      "GET", "/api/v1/alerts",
      a->Guard(
          Action::kAuditRead, "",
          [a](const Request& req, const access::Principal&) { return a->ListAlerts(req); }, kWide));
  router->Add(
      "GET", "/api/v1/alerts/{id}",
      a->Guard(
          Action::kAuditRead, "",
          [a](const Request& req, const access::Principal&) { return a->GetAlert(req); }, kWide));
  router->Add("POST", "/api/v1/alerts/{id}/ack",
              a->Guard(
                  Action::kKeySuspend, "alert.ack",
                  [a](const Request& req, const access::Principal& p) {
                    return a->ChangeAlert(req, p, false);
                  },
                  kWide));
  router->Add("POST", "/api/v1/alerts/{id}/resolve",
              a->Guard(
                  Action::kKeySuspend, "alert.resolve",
                  [a](const Request& req, const access::Principal& p) {
                    return a->ChangeAlert(req, p, true);
                  },
                  kWide));
  router->Add(
      "GET", "/api/v1/alert-rules",
      a->Guard(
          Action::kAuditRead, "",
          [a](const Request& req, const access::Principal&) { return a->AlertRules(req); }, kWide));
  router->Add(
      "PUT", "/api/v1/alert-rules/{rule}",
      a->Guard(
          Action::kPrincipalManage, "alert.rules.set",
          [a](const Request& req, const access::Principal& p) { return a->SetAlertRule(req, p); },
          kWide));
  router->Add("GET", "/api/v1/reports",
              a->Guard(
                  Action::kAuditRead, "",
                  [a](const Request& req, const access::Principal&) { return a->ListReports(req); },
                  kWide));
  router->Add(
      "GET", "/api/v1/reports/{id}",
      a->Guard(
          Action::kAuditRead, "",
          [a](const Request& req, const access::Principal&) { return a->GetReport(req); }, kWide));
  router->Add(
      "POST", "/api/v1/reports/{id}/signoff",
      a->Guard(
          Action::kAuditVerify, "report.signoff",
          [a](const Request& req, const access::Principal& p) { return a->SignOffReport(req, p); },
          kWide));
  router->Add("POST", "/api/v1/keys/{key}/compromise",
              a->Guard(
                  Action::kKeySuspend, "key.compromise",
                  [a](const Request& req, const access::Principal& p) {
                    return a->DeclareCompromise(req, p);
                  },
                  kWide));
}

}  // namespace airlock::server
