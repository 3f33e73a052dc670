#include "keys/vault_paths.h"

#include <string>

#include "access/access_store.h"
#include "audit/audit_log.h"
#include "keys/key_uri.h"

namespace airlock::keys {

Result<std::filesystem::path> AuditPathForVaultUri(std::string_view uri) {
  AIRLOCK_ASSIGN_OR_RETURN(KeyUri parsed, ParseKeyUri(uri));
  if (parsed.scheme != KeyUriScheme::kFile) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "a " + std::string(uri.substr(0, uri.find(':'))) +
                         " store has no vault file: name the audit log with --audit PATH");
  }
  return audit::AuditPathForVault(parsed.path);
}

Result<std::filesystem::path> AccessPathForVaultUri(std::string_view uri) {
  AIRLOCK_ASSIGN_OR_RETURN(KeyUri parsed, ParseKeyUri(uri));
  if (parsed.scheme != KeyUriScheme::kFile) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "a pkcs11 store has no vault file: name the access store with --access PATH");
  }
  return access::AccessPathForVault(parsed.path);
}

}  // namespace airlock::keys
