// Access control policy: roles, actions, the role -> action table, principals (people and API
// tokens) and the role check (docs/design.md §5). Pure functions; the principals themselves are
// kept by AccessStore (access_store.h).
//
// Error codes. There is no "permission denied" code in common/result.h yet, so every denial
// (unknown or disabled principal, role lacks the action, unknown/revoked/expired token) is
// kDeniedCode = kWrongKey
// ("the credential given is not one that may do this"), message starting "access denied: ".
#ifndef AIRLOCK_ACCESS_ROLES_H_
#define AIRLOCK_ACCESS_ROLES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace airlock::access {

inline constexpr ErrorCode kDeniedCode = ErrorCode::kWrongKey;

enum class Role { kOwner, kAdmin, kReleaseManager, kKeyCustodian, kAuditor, kReadOnly, kDevice };
// "owner", "admin", "release-manager", "key-custodian", "auditor", "read-only", "device".
std::string_view RoleName(Role role);
Result<Role> ParseRole(std::string_view name);  // kInvalidArgument otherwise

enum class Action {
  kKeyCreate,        // key.create
  kKeyList,          // key.list
  kKeyRead,          // key.read (public key, metadata)
  kKeySign,          // key.sign
  kKeyUnwrap,        // key.unwrap (also derive)
  kKeyRotate,        // key.rotate           (custodian, TOTP)
  kKeySuspend,       // key.suspend
  kKeyResume,        // key.resume           (custodian, TOTP)
  kKeyRetire,        // key.retire
  kKeyRevoke,        // key.revoke
  kKeyCompromised,   // key.compromised      (custodian, TOTP)
  kKeyDelete,        // key.delete           (custodian, TOTP)
  kVaultInit,        // vault.init
  kVaultBackup,      // vault.backup         (custodian, TOTP)
  kVaultRestore,     // vault.restore        (custodian, TOTP)
  kAuditRead,        // audit.read (log, report)
  kAuditVerify,      // audit.verify
  kReleasePublish,   // release.publish
  kReleaseRead,      // release.read
  kPrincipalManage,  // principal.manage (add/remove people, roles, TOTP enrolment)
  kTokenManage,      // token.manage
  kDeviceReport,     // device.report
  kUpdateFetch,      // update.fetch
  kKeySignRoot,      // key.sign-root        (custodian, TOTP): signing with a root-purpose key
};
std::string_view ActionName(Action action);
Result<Action> ParseAction(std::string_view name);  // kInvalidArgument otherwise
std::vector<Action> AllActions();

// The role table (docs/operations/audit.md prints it). Custodian actions (RequiresSecondFactor) are
// allowed only to key-custodian and owner.
bool RoleAllows(Role role, Action action);
// rotate, compromised, resume, delete, vault backup and restore, and signing with a root key.
bool RequiresSecondFactor(Action action);

enum class PrincipalKind { kPerson, kToken };
std::string_view PrincipalKindName(PrincipalKind kind);  // "person", "token"

inline constexpr size_t kMaxPrincipalNameSize = 128;

struct Principal {
  std::string name;  // 1..128 of [A-Za-z0-9._@+-]
  PrincipalKind kind = PrincipalKind::kPerson;
  std::vector<Role> roles;
  bool disabled = false;
  int64_t created = 0;
  bool has_totp = false;           // people only
  std::optional<int64_t> expires;  // tokens only: unix seconds
  // Tokens only. The id is "tok_" + the first 16 hex digits of the token's SHA-256 (safe to show;
  // the token cannot be computed from it).
  std::string token_id;
  std::optional<std::string> parent_token_id;  // the token that minted this one (admin API)
  std::vector<std::string> apps;               // role grants limited to these apps; empty = all
  std::optional<int64_t> last_used;            // unix seconds, refreshed at most once a minute
};

// True when `principal` is not limited to named apps or `app` is one of them.
bool AllowsApp(const Principal& principal, std::string_view app);

// Role check only (no second factor): {} if any role of an enabled principal allows `action`, else
// kDeniedCode.
Result<void> Authorize(const Principal& principal, Action action);

// A denial: kDeniedCode, "access denied: " + message.
tl::unexpected<Error> Denied(std::string message);

// Roles as stored and shown: "owner,key-custodian"; ParseRolesText reverses it (kInvalidArgument
// for an unknown role).
std::string RolesText(const std::vector<Role>& roles);
Result<std::vector<Role>> ParseRolesText(std::string_view text);

}  // namespace airlock::access

#endif  // AIRLOCK_ACCESS_ROLES_H_
