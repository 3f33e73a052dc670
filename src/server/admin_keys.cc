// GET /api/v1/keys: every key of the server's vault (the apps' online keys, their content keys and
// retired predecessors NAME@N), its state, and its last successful use (sign or unwrap) from the
// vault's usage log. Listing is not itself a key operation: nothing is appended to the log.
#include "server/admin_keys.h"

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "audit/audit_log.h"
#include "crypto/keys.h"
#include "server/admin_api_internal.h"

namespace airlock::server {

using Json = nlohmann::json;
using namespace api_internal;    // NOLINT(google-build-using-namespace): this module's helpers
using namespace admin_internal;  // NOLINT(google-build-using-namespace)

namespace {

struct LastUse {
  int64_t time = 0;
  std::string actor;
  std::string operation;
};

// The newest successful sign/unwrap per key name among the last kKeyLastUseWindow records; an
// absent log gives an empty map.
Result<std::map<std::string, LastUse>> LastUses(const std::filesystem::path& log_path) {
  std::map<std::string, LastUse> out;
  if (log_path.empty()) return out;
  auto log = audit::AuditLog::OpenExisting(log_path);
  if (!log) {
    if (log.error().code() == ErrorCode::kNotFound) return out;
    return tl::unexpected(log.error());
  }
  AIRLOCK_ASSIGN_OR_RETURN(auto head, log->Head());
  audit::AuditFilter filter;
  filter.result = audit::UsageResult::kOk;
  filter.limit = kKeyLastUseWindow;
  const int64_t first = head.first - static_cast<int64_t>(kKeyLastUseWindow);
  if (first > 0) filter.after_seq = first;
  AIRLOCK_ASSIGN_OR_RETURN(auto records, log->Query(filter));
  for (const auto& r : records) {  // oldest first: later records overwrite earlier ones
    if (r.key_name.empty() || (r.operation != "sign" && r.operation != "unwrap")) continue;
    out[r.key_name] = LastUse{r.time, r.actor, r.operation};
  }
  return out;
}

Response ListKeys(AdminApi* api) {
  if (api->deps.repo == nullptr) return JsonError(404, "not_found", "the server has no vault");
  std::vector<keys::KeyInfo> infos;
  auto listed = api->deps.repo->WithKeyManager(
      [&infos](keys::KeyManager& manager,
               const keys::OperationContext& ctx) -> Result<std::string> {
        AIRLOCK_ASSIGN_OR_RETURN(infos, manager.List(ctx));
        return std::string();
      });
  if (!listed) return ErrorResponse(listed.error());
  auto uses = LastUses(api->deps.audit_log);
  if (!uses) return ErrorResponse(uses.error());
  Json list = Json::array();
  for (const keys::KeyInfo& k : infos) {
    Json key = {{"name", k.name},
                {"key_id", k.key_id},
                {"algorithm", std::string(crypto::KeyTypeName(k.type))},
                {"purpose", std::string(keys::KeyPurposeName(k.purpose))},
                {"state", std::string(keys::KeyStateName(k.state))},
                {"origin", std::string(keys::KeyOriginName(k.origin))},
                {"created", k.created_at},
                {"state_changed", k.state_changed_at},
                {"last_used", nullptr},
                {"last_used_by", nullptr},
                {"last_operation", nullptr}};
    if (auto it = uses->find(k.name); it != uses->end()) {
      key["last_used"] = it->second.time;
      key["last_used_by"] = it->second.actor;
      key["last_operation"] = it->second.operation;
    }
    list.push_back(std::move(key));
  }
  return Ok(200, {{"keys", list}});
}

}  // namespace

void AddKeyRoutes(Router* router, AdminApi* a) {
  router->Add("GET", "/api/v1/keys",
              a->Guard(
                  access::Action::kKeyList, "",
                  [a](const Request&, const access::Principal&) { return ListKeys(a); },
                  AdminApi::Scope::kServerWide));
}

}  // namespace airlock::server
