// Access control: principals (people and API tokens), roles, the role -> action table, API tokens kept
// only as SHA-256 hashes, and the TOTP second factor for key-custodian operations (docs/design.md §5).
// A library: the vault and CLI use it now, the server's admin API later.
//
// Storage. Principals live in their own SQLite file beside the vault, `AccessPathForVault(vault)` =
// "<vault>.access" (mode 0600), separate from the audit log (which auditors read) and from the vault.
// TOTP secrets are sealed through AccessOptions::sealer (the file vault's SealSecret: AES-256-GCM
// under the vault key, bound to the principal's name); enrolment without a sealer is refused, so no
// secret is ever stored in plaintext. Replacing or removing an enrolled secret needs the person's
// current code or two other key custodians' codes (TotpAuthority).
//
// Error codes. There is no "permission denied" code in common/result.h yet, so every denial (unknown or
// disabled principal, role lacks the action, unknown/revoked/expired token) is kDeniedCode = kWrongKey
// ("the credential given is not one that may do this"), message starting "access denied: ". A missing TOTP
// code where one is required is kInvalidArgument (a usage error: pass --totp). A wrong TOTP code is
// kBadSignature, a replayed one kRollback, a malformed one kMalformed (see totp.h).
//
// Thread-safety: an AccessStore is not thread-safe; use one per thread. The TOTP replay check is one
// IMMEDIATE transaction, so two processes cannot both accept the same step.
#ifndef AIRLOCK_KEYS_ACCESS_H_
#define AIRLOCK_KEYS_ACCESS_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "keys/totp.h"

namespace airlock::keys {

inline constexpr ErrorCode kDeniedCode = ErrorCode::kWrongKey;

// "<vault_path>.access".
std::filesystem::path AccessPathForVault(const std::filesystem::path& vault_path);
// "file:PATH[#name]" -> AccessPathForVault(PATH); other schemes kInvalidArgument.
Result<std::filesystem::path> AccessPathForVaultUri(std::string_view uri);

enum class Role { kOwner, kAdmin, kReleaseManager, kKeyCustodian, kAuditor, kReadOnly, kDevice };
// "owner", "admin", "release-manager", "key-custodian", "auditor", "read-only", "device".
std::string_view RoleName(Role role);
Result<Role> ParseRole(std::string_view name);  // kInvalidArgument otherwise

enum class Action {
  kKeyCreate,       // key.create
  kKeyList,         // key.list
  kKeyRead,         // key.read (public key, metadata)
  kKeySign,         // key.sign
  kKeyUnwrap,       // key.unwrap (also derive)
  kKeyRotate,       // key.rotate           (custodian, TOTP)
  kKeySuspend,      // key.suspend
  kKeyResume,       // key.resume           (custodian, TOTP)
  kKeyRetire,       // key.retire
  kKeyRevoke,       // key.revoke
  kKeyCompromised,  // key.compromised      (custodian, TOTP)
  kKeyDelete,       // key.delete           (custodian, TOTP)
  kVaultInit,       // vault.init
  kVaultBackup,     // vault.backup         (custodian, TOTP)
  kVaultRestore,    // vault.restore        (custodian, TOTP)
  kAuditRead,       // audit.read (log, report)
  kAuditVerify,     // audit.verify
  kReleasePublish,  // release.publish
  kReleaseRead,     // release.read
  kPrincipalManage, // principal.manage (add/remove people, roles, TOTP enrolment)
  kTokenManage,     // token.manage
  kDeviceReport,    // device.report
  kUpdateFetch,     // update.fetch
  kKeySignRoot,     // key.sign-root        (custodian, TOTP): signing with a root-purpose key
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

// A token minted by another token (the admin API's POST /api/v1/tokens). The child never outlives
// or reaches beyond its parent: see AccessStore::CreateToken.
struct TokenLimits {
  std::optional<std::string> parent_token_id;
  std::vector<std::string> apps;  // empty = the parent's apps (all apps for an unlimited parent)
};

// How often AccessStore::RecordTokenUse writes last_used at most.
inline constexpr int64_t kTokenUseInterval = 60;

// Role check only (no second factor): {} if any role of an enabled principal allows `action`, else
// kDeniedCode.
Result<void> Authorize(const Principal& principal, Action action);

// Seals TOTP secrets at rest. `aad` binds the ciphertext to the principal's name.
struct SecretSealer {
  std::function<Result<Bytes>(ByteSpan plaintext, std::string_view aad)> seal;
  std::function<Result<Bytes>(ByteSpan sealed, std::string_view aad)> open;
};

struct AccessOptions {
  std::function<int64_t()> clock;  // unix seconds; default system clock
  std::optional<SecretSealer> sealer;
  TotpParams totp;                 // for new enrolments (stored per principal)
  std::string issuer = "Airlock";  // shown by authenticator apps
};

// A token is "alk_" followed by 64 lower-case hex characters (32 random bytes).
inline constexpr std::string_view kTokenPrefix = "alk_";
// Lower-case hex SHA-256 of the whole token text, the only form stored.
std::string TokenHash(std::string_view token);

struct TotpEnrollment {
  Bytes secret;          // show once; not retrievable later
  std::string base32;
  std::string uri;       // otpauth://...
};

// Who vouches for replacing or removing a person's enrolled TOTP secret: the person's current code,
// or (a lost device) two different key custodians or owners, other than the person, with their own
// current codes. Each code given is spent (replay protection).
struct TotpAuthority {
  std::optional<std::string> own_code;
  std::vector<std::pair<std::string, std::string>> custodians;  // (name, code)
};

struct CreatedToken {
  Principal principal;
  std::string token;     // show once; only its hash is stored
  std::string hash;      // hex
};

class AccessStore {
 public:
  // Creates the file (0600) and schema when missing. kIo / kMalformed / kUnsupported as AuditLog::Open.
  static Result<AccessStore> Open(const std::filesystem::path& path, AccessOptions options = {});
  // kNotFound when the file does not exist.
  static Result<AccessStore> OpenExisting(const std::filesystem::path& path, AccessOptions options = {});

  AccessStore(AccessStore&& other) noexcept;
  AccessStore& operator=(AccessStore&& other) noexcept;
  AccessStore(const AccessStore&) = delete;
  AccessStore& operator=(const AccessStore&) = delete;
  ~AccessStore();

  // True when no principal exists yet (a fresh vault: the first one is enrolled as owner).
  Result<bool> Empty() const;

  // kAlreadyExists, kInvalidArgument for a bad name or no roles.
  Result<Principal> AddPerson(std::string_view name, const std::vector<Role>& roles);
  Result<Principal> Get(std::string_view name) const;  // kNotFound
  Result<std::vector<Principal>> List() const;
  Result<void> SetRoles(std::string_view name, const std::vector<Role>& roles);
  Result<void> SetDisabled(std::string_view name, bool disabled);
  Result<void> Remove(std::string_view name);  // kNotFound

  // (Re)enrols a person's TOTP secret, sealed by the sealer; the old one stops working. A first
  // enrolment needs no authority; replacing one needs `authority` (else kInvalidArgument naming
  // what to give; a wrong or replayed code as CheckTotp; custodians that are not two different
  // enabled key custodians/owners other than `name`: kDeniedCode). kNotFound, kInvalidArgument for
  // tokens or without a sealer.
  Result<TotpEnrollment> EnrollTotp(std::string_view name, const TotpAuthority& authority = {});
  // Removes a person's TOTP secret; `authority` as for a re-enrolment. kNotFound if none.
  Result<void> RemoveTotp(std::string_view name, const TotpAuthority& authority);
  // Checks `code` for `name` at the clock's time and records the step, so the same step is never accepted
  // twice. kDeniedCode for an unknown/disabled principal or one without TOTP; see totp.h for the rest.
  Result<void> CheckTotp(std::string_view name, std::string_view code);

  // A new API token principal with `roles`; `ttl_seconds` 0 = no expiry. kAlreadyExists.
  Result<CreatedToken> CreateToken(std::string_view name, const std::vector<Role>& roles,
                                   int64_t ttl_seconds = 0);
  // The same, minted by the token `limits.parent_token_id` (which must be active: kDeniedCode
  // otherwise). The child never outlives its parent: with ttl_seconds 0 it gets the parent's
  // expiry, and a ttl ending after the parent's expiry is refused (kDeniedCode, the message says
  // when the parent expires). Its apps must lie within the parent's (kDeniedCode); empty = the
  // parent's. App names are 1..128 of [A-Za-z0-9._-] (kInvalidArgument). Roles are the caller's to
  // check.
  Result<CreatedToken> CreateToken(std::string_view name, const std::vector<Role>& roles,
                                   int64_t ttl_seconds, const TokenLimits& limits);
  // Hashes `token`, finds it by hash and compares the stored hash in constant time. kDeniedCode if
  // unknown, disabled (revoked) or expired, or if any token up its parent chain is revoked, expired
  // or gone; kMalformed if not "alk_" + 64 hex.
  Result<Principal> AuthenticateToken(std::string_view token) const;
  Result<Principal> FindTokenByHash(std::string_view hash_hex) const;  // kNotFound
  Result<Principal> FindTokenById(std::string_view token_id) const;    // kNotFound
  // Revokes (disables) the token; its children stop authenticating with it. kNotFound for an
  // unknown id. Revoking a revoked token succeeds.
  Result<Principal> RevokeToken(std::string_view token_id);
  // Writes `token`'s last_used = now when it is unset or older than kTokenUseInterval (otherwise no
  // write, so the per-request cost is a comparison).
  Result<void> RecordTokenUse(const Principal& token);

  // The whole gate for `actor` doing `action`: the principal exists and is enabled, a role allows the
  // action, and, for RequiresSecondFactor actions, `totp_code` is given (else kInvalidArgument) and valid.
  // Returns the principal.
  // `verified` (optional) makes one code serve one session (a command that signs several times):
  // when it holds the actor's name the TOTP check is skipped (the role check is not), and a
  // successful check stores the name there.
  Result<Principal> AuthorizeActor(std::string_view actor, Action action,
                                   std::optional<std::string_view> totp_code,
                                   std::optional<std::string>* verified = nullptr);

  int64_t Now() const;

 private:
  Result<void> CheckTotpAuthority(const Principal& subject, const TotpAuthority& authority);
  struct Impl;
  explicit AccessStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace airlock::keys

#endif  // AIRLOCK_KEYS_ACCESS_H_
