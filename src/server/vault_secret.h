// Where airlockd's online key store gets its secret (the file vault's passphrase, or a PKCS#11 PIN
// file), and the one log line that says so.
//
// airlockd never reads the airlock CLI's $AIRLOCK_VAULT_PASSPHRASE: a shell set up for the CLI
// would otherwise seal the server's vault with the developer's passphrase, and a restart from
// another shell would fail. The sources, in order:
//   1. `--vault-passphrase-file FILE` / `vault_passphrase_file` (any store; for pkcs11: the PIN);
//   2. $AIRLOCKD_VAULT_PASSPHRASE (file vaults);
//   3. pkcs11 stores: the backend's own default (the URI's pin-source, else $AIRLOCK_PKCS11_PIN);
//   4. the default vault file:DATA/vault.db only: DATA/vault.pass. It is generated (32 random
//   bytes,
//      hex, mode 0600, created exclusively and never through a symbolic link) only when neither it
//      nor the vault exists; a vault without its passphrase file is an error, never a new
//      passphrase. A DATA/vault.pass that is a symbolic link or not a regular file is refused.
// Any other file vault with neither 1 nor 2 is kInvalidArgument naming both.
#ifndef AIRLOCK_SERVER_VAULT_SECRET_H_
#define AIRLOCK_SERVER_VAULT_SECRET_H_

#include <functional>
#include <string>

#include "common/result.h"
#include "server/config.h"

namespace airlock::server {

inline constexpr const char* kServerVaultPassphraseEnv = "AIRLOCKD_VAULT_PASSPHRASE";

struct VaultSecret {
  // Empty: the backend's default (pkcs11 only). Otherwise reads the secret (lazily, once per open).
  std::function<Result<std::string>()> secret;
  // Where the secret comes from, for the log line ("vault passphrase from ...").
  std::string source;
};

// The key store URI the settings name: config.vault, else file:DATA/vault.db.
std::string ServerVaultUri(const ServerConfig& config);

// Chooses the source as above; may create DATA/vault.pass (see the top of this file). Errors:
// kInvalidArgument (a file vault with no passphrase source; DATA/vault.pass a symbolic link or not
// a regular file), kNotFound (the default vault exists but DATA/vault.pass does not; nothing is
// written), kIo (vault.pass cannot be written).
[[nodiscard]] Result<VaultSecret> ChooseVaultSecret(const ServerConfig& config);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_VAULT_SECRET_H_
