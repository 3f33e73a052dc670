// Access control storage: principals (people and API tokens, roles.h), API tokens kept only as
// SHA-256 hashes, and the TOTP second factor for key-custodian operations (docs/design.md §5).
// A library: the vault and CLI use it now, the server's admin API later.
//
// Storage. Principals live in their own SQLite file beside the vault, `AccessPathForVault(vault)` =
// "<vault>.access" (mode 0600), separate from the audit log (which auditors read) and from the
// vault. TOTP secrets are sealed through AccessOptions::sealer (the file vault's SealSecret:
// AES-256-GCM under the vault key, bound to the principal's name); enrolment without a sealer is
// refused, so no secret is ever stored in plaintext. Replacing or removing an enrolled secret needs
// the person's current code or two other key custodians' codes (TotpAuthority).
//
// Error codes: denials are kDeniedCode (roles.h). A missing TOTP code where one is required is
// kInvalidArgument (a usage error: pass --totp). A wrong TOTP code is kBadSignature, a replayed one
// kRollback, a malformed one kMalformed (see totp.h).
//
// Thread-safety: an AccessStore is not thread-safe; use one per thread. The TOTP replay check is
// one IMMEDIATE transaction, so two processes cannot both accept the same step.
#ifndef AIRLOCK_ACCESS_ACCESS_STORE_H_
#define AIRLOCK_ACCESS_ACCESS_STORE_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "access/roles.h"
#include "access/totp.h"
#include "common/bytes.h"
#include "common/result.h"

namespace airlock::access {

// "<vault_path>.access". (keys::AccessPathForVaultUri does the same for a key/vault URI.)
std::filesystem::path AccessPathForVault(const std::filesystem::path& vault_path);

// A token minted by another token (the admin API's POST /api/v1/tokens). The child never outlives
// or reaches beyond its parent: see AccessStore::CreateToken.
struct TokenLimits {
  std::optional<std::string> parent_token_id;
  std::vector<std::string> apps;  // empty = the parent's apps (all apps for an unlimited parent)
};

// How often AccessStore::RecordTokenUse writes last_used at most.
inline constexpr int64_t kTokenUseInterval = 60;

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
  Bytes secret;  // show once; not retrievable later
  std::string base32;
  std::string uri;  // otpauth://...
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
  std::string token;  // show once; only its hash is stored
  std::string hash;   // hex
};

class AccessStore {
 public:
  // Creates the file (0600) and schema when missing. kIo / kMalformed / kUnsupported as
  // AuditLog::Open.
  static Result<AccessStore> Open(const std::filesystem::path& path, AccessOptions options = {});
  // kNotFound when the file does not exist.
  static Result<AccessStore> OpenExisting(const std::filesystem::path& path,
                                          AccessOptions options = {});

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
  // Checks `code` for `name` at the clock's time and records the step, so the same step is never
  // accepted twice. kDeniedCode for an unknown/disabled principal or one without TOTP; see totp.h
  // for the rest.
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

  // The whole gate for `actor` doing `action`: the principal exists and is enabled, a role allows
  // the action, and, for RequiresSecondFactor actions, `totp_code` is given (else kInvalidArgument)
  // and valid. Returns the principal. `verified` (optional) makes one code serve one session (a
  // command that signs several times): when it holds the actor's name the TOTP check is skipped
  // (the role check is not), and a successful check stores the name there.
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

}  // namespace airlock::access

#endif  // AIRLOCK_ACCESS_ACCESS_STORE_H_
