// The file vault: a KeyStore in one SQLite file (`file:PATH`).
//
// Layout (schema version 1):
//   vault_header(name TEXT PRIMARY KEY, value BLOB)  format, kdf ("argon2id"), kdf_t, kdf_m_kib,
//   kdf_p,
//                                                    salt (16 random bytes), check (the key-check
//                                                    value)
//   vault_keys(name TEXT PRIMARY KEY, key_id, type, purpose, state, created_at, state_changed_at,
//              public_pem, sealed, origin)
//   origin ("generated" | "imported", default "generated") was added with ImportPrivateKey: vaults
//   made before it lack the column until their first import adds it (ALTER TABLE, in the import's
//   transaction); without it every key reads as generated. "imported" is also bound into the
//   record's associated data; a generated key's associated data is unchanged, so older vaults and
//   older programs keep working with generated keys.
//   vault_header also holds `state`: AES-256-GCM(KEK) of the VaultState (vault_state.h: access
//   control on/off, the checkpoint key's name, audit heads) with "airlock/vault/v1/state" and the
//   salt as associated data. Vaults made with it seal their key-check value under a second
//   associated data ("airlock/vault/v2/check"), so a v2 vault whose state row is deleted or edited
//   does not open (kDecryptFailed, "vault state ... missing/does not authenticate"), and the row
//   cannot be passed off as absent. A vault made before (v1 check) gets both on its first open
//   (state: access control off), in one transaction.
// The key-encryption key (KEK) is Argon2id(passphrase, salt) with the stored parameters (default
// t=3, m=64 MiB, p=1). `check` is AES-256-GCM(KEK) of a fixed string with the KDF parameters and
// salt as associated data, so a wrong passphrase (or edited parameters) is reported as kWrongKey at
// open, before anything is written. Each key's `sealed` column is AES-256-GCM(KEK) of its PKCS#8
// PEM, with every other column of the row (name, key id, type, purpose, state, times, public key)
// as associated data: editing any of them in the file makes that key fail with kDecryptFailed on
// use, others stay usable. Metadata changes (state, rename) re-seal the record inside one
// transaction.
//
// The file is created with mode 0600 and uses SQLite's rollback journal (synchronous=FULL), so it
// stays a single file at rest and every operation is one atomic transaction. Private keys exist in
// plaintext only in memory, during one operation, and are wiped afterwards.
#ifndef AIRLOCK_KEYS_FILE_VAULT_H_
#define AIRLOCK_KEYS_FILE_VAULT_H_

#include <filesystem>
#include <memory>

#include "keys/key_store.h"
#include "keys/secret_box.h"
#include "keys/vault_state.h"

namespace airlock::keys {

// The passphrase environment variable read when KeyStoreOptions::secret is empty.
inline constexpr const char* kVaultPassphraseEnv = "AIRLOCK_VAULT_PASSPHRASE";

// create=false: kNotFound if `path` does not exist, kMalformed if it is not a vault, kWrongKey for a
// wrong passphrase. create=true: kAlreadyExists if `path` exists; makes a new vault with options.kdf.
// The associated data ExportSealed binds to a sealed key (its KeyInfo; the domain differs from the
// vault's own records, so a record cannot be passed off as an export or vice versa). For tests and tools.
Bytes SealedExportAad(const KeyInfo& info);

// What the file vault has: its sealed state (VaultStateStore: ReadState gives kDecryptFailed if the
// row does not authenticate; UpdateState is one transaction), and, only the file vault, sealing of
// small secrets (TOTP secrets) under its key. A KeyStore opened from a file: URI is one
// (AsFileVault).
class FileVaultStore : public KeyStore, public VaultStateStore {
 public:
  // AES-256-GCM under the vault key with associated data bound to `purpose` (e.g.
  // "airlock-totp:alice"); OpenSecret gives kDecryptFailed for another purpose or a changed byte.
  [[nodiscard]] virtual Result<Bytes> SealSecret(ByteSpan plaintext, std::string_view purpose) = 0;
  [[nodiscard]] virtual Result<SecretBytes> OpenSecret(ByteSpan sealed,
                                                       std::string_view purpose) = 0;
};

// The file vault behind `store`, or nullptr for another backend.
FileVaultStore* AsFileVault(KeyStore* store);

[[nodiscard]] Result<std::unique_ptr<KeyStore>> OpenFileVault(const std::filesystem::path& path,
                                                              const KeyStoreOptions& options,
                                                              bool create);

}  // namespace airlock::keys

#endif  // AIRLOCK_KEYS_FILE_VAULT_H_
