// Where a key store's audit log and access store live when it is a file vault: the sibling files
// audit::AuditPathForVault and access::AccessPathForVault name, reached from a key or vault URI.
#ifndef AIRLOCK_KEYS_VAULT_PATHS_H_
#define AIRLOCK_KEYS_VAULT_PATHS_H_

#include <filesystem>
#include <string_view>

#include "common/result.h"

namespace airlock::keys {

// For a key/vault URI: "file:PATH" or "file:PATH#name" -> audit::AuditPathForVault(PATH). Other
// schemes (pkcs11:) have no vault file: kInvalidArgument ("name the audit log with --audit").
Result<std::filesystem::path> AuditPathForVaultUri(std::string_view uri);
// "file:PATH[#name]" -> access::AccessPathForVault(PATH); other schemes kInvalidArgument.
Result<std::filesystem::path> AccessPathForVaultUri(std::string_view uri);

}  // namespace airlock::keys

#endif  // AIRLOCK_KEYS_VAULT_PATHS_H_
