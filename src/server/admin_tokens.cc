// The admin API's handlers for API tokens and the audit log (server/admin_api_internal.h;
// docs/api/server-api.md is the contract).
#include <algorithm>
#include <mutex>
#include <optional>
#include <string>

#include "audit/audit_log.h"
#include "server/admin_api_internal.h"
#include "server/server_api.h"

namespace airlock::server {

using Json = nlohmann::json;
using namespace api_internal;    // NOLINT(google-build-using-namespace): this module's own helpers
using namespace admin_internal;  // NOLINT(google-build-using-namespace)

Response AdminApi::CreateToken(const Request& req, const access::Principal& actor) {
  auto parsed = ParseObjectBody(req.body);
  if (parsed.error) return *parsed.error;
  const Json& body = parsed.json;
  auto name = ReqString(body, "name", access::kMaxPrincipalNameSize);
  if (!name) return BadRequest(name.error());
  auto roles_it = body.find("roles");
  if (roles_it == body.end() || !roles_it->is_array() || roles_it->empty() ||
      roles_it->size() > 16) {
    return JsonError(400, "bad_request", "field 'roles' must be an array of 1 to 16 role names");
  }
  std::vector<access::Role> roles;
  for (const auto& r : *roles_it) {
    if (!r.is_string()) return JsonError(400, "bad_request", "roles must be strings");
    auto role = access::ParseRole(r.get<std::string>());
    if (!role) return BadRequest(role.error());
    roles.push_back(*role);
  }
  auto expires_in = OptInt(body, "expires_in", 1, int64_t{10} * 366 * 86400);
  if (!expires_in) return BadRequest(expires_in.error());
  access::TokenLimits limits;
  limits.parent_token_id = actor.token_id;
  if (auto apps_it = body.find("apps"); apps_it != body.end() && !apps_it->is_null()) {
    if (!apps_it->is_array() || apps_it->empty() || apps_it->size() > 64) {
      return JsonError(400, "bad_request", "field 'apps' must be an array of 1 to 64 app ids");
    }
    for (const auto& app : *apps_it) {
      if (!app.is_string() || !IsValidId(app.get<std::string>())) {
        return JsonError(400, "bad_request", "apps must be 1 to 128 bytes of [A-Za-z0-9._-]");
      }
      limits.apps.push_back(app.get<std::string>());
    }
  }
  // No escalation: a token may not be given an action its creator lacks.
  for (access::Role role : roles) {
    for (access::Action action : access::AllActions()) {
      if (access::RoleAllows(role, action) && !access::Authorize(actor, action)) {
        return JsonError(403, "forbidden",
                         "role " + std::string(access::RoleName(role)) + " allows " +
                             std::string(access::ActionName(action)) +
                             ", which this token may not");
      }
    }
  }
  Result<access::CreatedToken> created = [&] {
    std::lock_guard lock(access_mutex);
    return deps.access->CreateToken(*name, roles, expires_in->value_or(0), limits);
  }();
  if (!created) {
    if (created.error().code() == access::kDeniedCode) {
      return JsonError(403, "forbidden", created.error().message());
    }
    return ErrorResponse(created.error());
  }
  Json reply = TokenJson(created->principal);
  reply["token"] = created->token;
  return Ok(201, reply);
}

Json AdminApi::TokenJson(const access::Principal& p) {
  Json json = PrincipalJson(p);
  if (p.kind != access::PrincipalKind::kToken) return json;
  json["id"] = p.token_id;
  json["parent"] = p.parent_token_id ? Json(*p.parent_token_id) : Json(nullptr);
  json["apps"] = p.apps.empty() ? Json(nullptr) : Json(p.apps);
  json["last_used"] = p.last_used ? Json(*p.last_used) : Json(nullptr);
  return json;
}

Response AdminApi::ListTokens(const access::Principal& actor) {
  Result<std::vector<access::Principal>> principals = [&] {
    std::lock_guard lock(access_mutex);
    return deps.access->List();
  }();
  if (!principals) return ErrorResponse(principals.error());
  Json list = Json::array();
  for (const auto& p : *principals) {
    if (WithinApps(actor, p)) list.push_back(TokenJson(p));
  }
  return Ok(200, {{"principals", list}});
}

bool AdminApi::WithinApps(const access::Principal& actor, const access::Principal& p) {
  if (actor.apps.empty()) return true;
  if (p.kind != access::PrincipalKind::kToken || p.apps.empty()) return false;
  return std::all_of(p.apps.begin(), p.apps.end(),
                     [&](const std::string& app) { return access::AllowsApp(actor, app); });
}

Response AdminApi::RevokeToken(const Request& req, const access::Principal& actor) {
  std::string id(req.Param("id"));
  Result<access::Principal> revoked = [&]() -> Result<access::Principal> {
    std::lock_guard lock(access_mutex);
    auto found = deps.access->FindTokenById(id);
    if (!found) return found;
    if (!WithinApps(actor, *found)) {
      return MakeError(ErrorCode::kNotFound, "no token with id " + id.substr(0, 64));
    }
    return deps.access->RevokeToken(id);
  }();
  if (!revoked) return ErrorResponse(revoked.error());
  return Ok(200, TokenJson(*revoked));
}

Response AdminApi::Audit(const Request& req) {
  std::optional<Response> err;
  auto limit = QueryLimit(req, 1000, &err);
  if (!limit) return *err;
  if (deps.audit_log.empty()) return JsonError(404, "not_found", "no audit log configured");
  // Opened per request: an AuditLog is not thread-safe, and this is a rare admin read.
  auto log = audit::AuditLog::OpenExisting(deps.audit_log);
  if (!log) {
    if (log.error().code() == ErrorCode::kNotFound) return Ok(200, {{"records", Json::array()}});
    return ErrorResponse(log.error());
  }
  auto head = log->Head();
  if (!head) return ErrorResponse(head.error());
  audit::AuditFilter filter;
  filter.limit = *limit;
  int64_t first = head->first - static_cast<int64_t>(*limit);
  if (first > 0) filter.after_seq = first;
  auto records = log->Query(filter);
  if (!records) return ErrorResponse(records.error());
  Json list = Json::array();
  for (const auto& r : *records) list.push_back(UsageRecordJson(r));
  return Ok(200, {{"records", list}});
}

}  // namespace airlock::server
