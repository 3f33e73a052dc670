// Vault-wide state the file vault keeps sealed under its key (file_vault.h): whether the vault has
// access control, which key signs audit checkpoints, and the newest audit-log head it has seen.
// Kept in the vault file because it must not be changeable by someone who can only write the files
// beside it (the access file, the audit log): the sealed row authenticates under the vault key.
#ifndef AIRLOCK_KEYS_VAULT_STATE_H_
#define AIRLOCK_KEYS_VAULT_STATE_H_

#include <cstdint>
#include <map>
#include <string>

#include "common/bytes.h"
#include "common/result.h"

namespace airlock::keys {

// The newest head of one audit log the vault has anchored: record `seq` has hash `hash` (hex), and
// the log held at least `checkpoints` numbered checkpoints.
struct AuditAnchor {
  int64_t seq = 0;
  std::string hash;
  int64_t checkpoints = 0;
};

struct VaultState {
  // Set when the first principal is enrolled; never cleared. While set, a missing, unreadable or
  // empty access file refuses every operation.
  bool access_control = false;
  // Name of the audit-purpose key that signs this vault's audit checkpoints ("" until first need).
  std::string checkpoint_key;
  // By audit log id (AuditLog::LogId()).
  std::map<std::string, AuditAnchor> audit_heads;
};

// JSON text; DecodeVaultState gives kMalformed for anything it does not understand.
Bytes EncodeVaultState(const VaultState& state);
Result<VaultState> DecodeVaultState(ByteSpan bytes);

// Moves `anchor` forward to `next` when `next` is newer (a higher seq, or the same seq with more
// checkpoints); never backwards, so two processes anchoring out of order cannot lose a head.
// Returns whether it changed.
bool AdvanceAnchor(AuditAnchor& anchor, const AuditAnchor& next);

}  // namespace airlock::keys

#endif  // AIRLOCK_KEYS_VAULT_STATE_H_
