#include "access/roles.h"

#include <algorithm>
#include <array>

namespace airlock::access {

namespace {

constexpr std::array<std::pair<Role, std::string_view>, 7> kRoleNames = {{
    {Role::kOwner, "owner"},
    {Role::kAdmin, "admin"},
    {Role::kReleaseManager, "release-manager"},
    {Role::kKeyCustodian, "key-custodian"},
    {Role::kAuditor, "auditor"},
    {Role::kReadOnly, "read-only"},
    {Role::kDevice, "device"},
}};

constexpr std::array<std::pair<Action, std::string_view>, 24> kActionNames = {{
    {Action::kKeyCreate, "key.create"},
    {Action::kKeyList, "key.list"},
    {Action::kKeyRead, "key.read"},
    {Action::kKeySign, "key.sign"},
    {Action::kKeyUnwrap, "key.unwrap"},
    {Action::kKeyRotate, "key.rotate"},
    {Action::kKeySuspend, "key.suspend"},
    {Action::kKeyResume, "key.resume"},
    {Action::kKeyRetire, "key.retire"},
    {Action::kKeyRevoke, "key.revoke"},
    {Action::kKeyCompromised, "key.compromised"},
    {Action::kKeyDelete, "key.delete"},
    {Action::kVaultInit, "vault.init"},
    {Action::kVaultBackup, "vault.backup"},
    {Action::kVaultRestore, "vault.restore"},
    {Action::kAuditRead, "audit.read"},
    {Action::kAuditVerify, "audit.verify"},
    {Action::kReleasePublish, "release.publish"},
    {Action::kReleaseRead, "release.read"},
    {Action::kPrincipalManage, "principal.manage"},
    {Action::kTokenManage, "token.manage"},
    {Action::kDeviceReport, "device.report"},
    {Action::kUpdateFetch, "update.fetch"},
    {Action::kKeySignRoot, "key.sign-root"},
}};

}  // namespace

tl::unexpected<Error> Denied(std::string message) {
  return MakeError(kDeniedCode, "access denied: " + std::move(message));
}

std::string RolesText(const std::vector<Role>& roles) {
  std::string out;
  for (Role r : roles) {
    if (!out.empty()) out += ",";
    out += RoleName(r);
  }
  return out;
}

Result<std::vector<Role>> ParseRolesText(std::string_view text) {
  std::vector<Role> roles;
  while (!text.empty()) {
    size_t comma = text.find(',');
    AIRLOCK_ASSIGN_OR_RETURN(Role r, ParseRole(text.substr(0, comma)));
    roles.push_back(r);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return roles;
}

std::string_view RoleName(Role role) {
  for (const auto& [r, name] : kRoleNames) {
    if (r == role) return name;
  }
  return "read-only";
}

Result<Role> ParseRole(std::string_view name) {
  for (const auto& [r, n] : kRoleNames) {
    if (n == name) return r;
  }
  return MakeError(
      ErrorCode::kInvalidArgument,
      "unknown role '" + std::string(name.substr(0, 32)) +
          "' (owner, admin, release-manager, key-custodian, auditor, read-only, device)");
}

std::string_view ActionName(Action action) {
  for (const auto& [a, name] : kActionNames) {
    if (a == action) return name;
  }
  return "unknown";
}

Result<Action> ParseAction(std::string_view name) {
  for (const auto& [a, n] : kActionNames) {
    if (n == name) return a;
  }
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown action '" + std::string(name.substr(0, 32)) + "'");
}

std::vector<Action> AllActions() {
  std::vector<Action> out;
  for (const auto& [a, name] : kActionNames) out.push_back(a);
  return out;
}

bool RequiresSecondFactor(Action action) {
  switch (action) {
    case Action::kKeyRotate:
    case Action::kKeyCompromised:
    case Action::kKeyResume:
    case Action::kKeyDelete:
    case Action::kVaultBackup:
    case Action::kVaultRestore:
    case Action::kKeySignRoot:
      return true;
    default:
      return false;
  }
}

bool RoleAllows(Role role, Action action) {
  // Least privilege: each role gets what its job needs. The custodian actions (those that need a
  // second factor) are for key-custodian and owner only, as the design asks; admin manages people
  // and can stop a key (suspend, retire, revoke) but cannot bring one back, rotate it, or move key
  // material.
  using A = Action;
  switch (role) {
    case Role::kOwner:
      return true;
    case Role::kAdmin:
      switch (action) {
        case A::kKeyCreate:
        case A::kKeyList:
        case A::kKeyRead:
        case A::kKeySuspend:
        case A::kKeyRetire:
        case A::kKeyRevoke:
        case A::kVaultInit:
        case A::kAuditRead:
        case A::kAuditVerify:
        case A::kReleasePublish:
        case A::kReleaseRead:
        case A::kPrincipalManage:
        case A::kTokenManage:
          return true;
        default:
          return false;
      }
    case Role::kReleaseManager:
      switch (action) {
        case A::kKeyList:
        case A::kKeyRead:
        case A::kKeySign:
        case A::kKeyUnwrap:
        case A::kReleasePublish:
        case A::kReleaseRead:
          return true;
        default:
          return false;
      }
    case Role::kKeyCustodian:
      switch (action) {
        case A::kKeyCreate:
        case A::kKeyList:
        case A::kKeyRead:
        case A::kKeyRotate:
        case A::kKeySuspend:
        case A::kKeyResume:
        case A::kKeyRetire:
        case A::kKeyRevoke:
        case A::kKeyCompromised:
        case A::kKeyDelete:
        case A::kVaultInit:
        case A::kVaultBackup:
        case A::kVaultRestore:
        case A::kAuditRead:
        case A::kAuditVerify:
        case A::kKeySignRoot:
          return true;
        default:
          return false;
      }
    case Role::kAuditor:
      switch (action) {
        case A::kKeyList:
        case A::kKeyRead:
        case A::kAuditRead:
        case A::kAuditVerify:
        case A::kReleaseRead:
          return true;
        default:
          return false;
      }
    case Role::kReadOnly:
      return action == A::kKeyList || action == A::kKeyRead || action == A::kReleaseRead;
    case Role::kDevice:
      return action == A::kDeviceReport || action == A::kUpdateFetch;
  }
  return false;
}

std::string_view PrincipalKindName(PrincipalKind kind) {
  return kind == PrincipalKind::kToken ? "token" : "person";
}

Result<void> Authorize(const Principal& principal, Action action) {
  if (principal.disabled) return Denied(principal.name + " is disabled");
  for (Role r : principal.roles) {
    if (RoleAllows(r, action)) return {};
  }
  return Denied(principal.name + " (" + RolesText(principal.roles) + ") may not " +
                std::string(ActionName(action)));
}

bool AllowsApp(const Principal& principal, std::string_view app) {
  return principal.apps.empty() ||
         std::find(principal.apps.begin(), principal.apps.end(), app) != principal.apps.end();
}

}  // namespace airlock::access
