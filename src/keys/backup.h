// Encrypted key backups and Shamir custody of root keys (docs/operations/keys.md, "Backups").
//
// Backup file (JSON, format "airlock-key-backup-1"):
//   kdf        Argon2id parameters and a 16-byte salt; KEK = Argon2id(backup passphrase, salt)
//   dek        a fresh random 32-byte data key, AES-256-GCM-sealed under the KEK (associated data: the
//              format name, KDF parameters and salt). A wrong passphrase fails here: kWrongKey.
//   keys[]     each key's KeyInfo and KeyStore::ExportSealed(name, dek) (its metadata is the associated
//              data, so an edited entry fails with kDecryptFailed on restore); "origin": "imported" only
//              for imported keys (absent: generated, as in backups made before imports existed)
// Shares (with ShareSpec K/N): for every root-purpose current key a second random data key seals the key
// again, and that data key is split into N Shamir shares. Share file i (format "airlock-key-share-1",
// OUT.NAME.share-I-of-N.json) holds the key's KeyInfo, the sealed key, the set id, K, N and share i.
// Any K share files restore the key without the backup passphrase; K-1 cannot (kInvalidArgument: fewer
// than K shares given; a forged share yields a data key that does not open the box: kDecryptFailed).
#ifndef AIRLOCK_KEYS_BACKUP_H_
#define AIRLOCK_KEYS_BACKUP_H_

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keys/key_store.h"

namespace airlock::keys {

struct ShareSpec {
  int k = 0;
  int n = 0;
};
// "K/N", "K-of-N" or "KofN" with 2 <= K <= N <= 255; kInvalidArgument otherwise.
[[nodiscard]] Result<ShareSpec> ParseShareSpec(std::string_view text);

struct BackupResult {
  size_t keys = 0;
  std::vector<std::string> share_files;
};

// Exports every key of `store` into `out` (mode 0600, written atomically; kAlreadyExists if it exists).
// kUnsupported if a key cannot be exported (a non-extractable HSM key): nothing is written.
[[nodiscard]] Result<BackupResult> WriteBackup(KeyStore& store, std::string_view passphrase,
                                               const std::filesystem::path& out,
                                               std::optional<ShareSpec> shares,
                                               const KdfParams& kdf = KdfParams{});

// Imports every key of the backup into `store`. kWrongKey for a wrong passphrase, kMalformed for a file
// that is not a backup, kAlreadyExists if a key name is taken (checked for all keys before importing
// any), kDecryptFailed for a tampered entry (keys imported before it are removed again).
[[nodiscard]] Result<std::vector<KeyInfo>> RestoreBackup(KeyStore& store,
                                                         std::string_view passphrase,
                                                         const std::filesystem::path& in);

// Recombines share files (all of one key's set) and imports the key.
[[nodiscard]] Result<std::vector<KeyInfo>> RestoreFromShares(
    KeyStore& store, const std::vector<std::filesystem::path>& share_files);

}  // namespace airlock::keys

#endif  // AIRLOCK_KEYS_BACKUP_H_
