// Store-wide state a key store keeps where only the holder of its secret can change it: whether the
// store has access control, which key signs audit checkpoints, and the newest audit-log head it has
// seen. It must not be changeable by someone who can only write the files beside the store (the
// access file, the audit log). The file vault seals it under the vault key into the vault file
// (file_vault.h); a PKCS#11 store keeps it on the token in a private data object, readable and
// writable only after login with the user PIN (pkcs11_store.h).
#ifndef AIRLOCK_KEYS_VAULT_STATE_H_
#define AIRLOCK_KEYS_VAULT_STATE_H_

#include <cstdint>
#include <functional>
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

class KeyStore;

// A key store that keeps a VaultState (the file vault; a PKCS#11 store). The audit sink and
// `airlock audit verify` use only this seam, whatever the backend.
class VaultStateStore {
 public:
  virtual ~VaultStateStore() = default;
  // The state (kDecryptFailed if the file vault's row does not authenticate; a PKCS#11 token
  // without a state object yet: the empty state).
  [[nodiscard]] virtual Result<VaultState> ReadState() = 0;
  // Reads the state, applies `change` and writes it back; `change`'s error aborts without writing.
  // Returns the state written. The file vault does this in one transaction; a PKCS#11 token has no
  // transactions (see pkcs11_store.h for what that means for two processes at once).
  [[nodiscard]] virtual Result<VaultState> UpdateState(
      const std::function<Result<void>(VaultState&)>& change) = 0;
};

// The state of `store`, or nullptr for a backend that keeps none.
VaultStateStore* AsVaultStateStore(KeyStore* store);

}  // namespace airlock::keys

#endif  // AIRLOCK_KEYS_VAULT_STATE_H_
