// Key policy above a KeyStore: usage records for every operation (failed attempts included), access
// control with the TOTP second factor for custodian operations, rotation (by hand, by schedule, in
// emergency) and maximum ages per purpose.
//
// Rotation naming. The current key of a name is always NAME; rotating it renames the old key to
// NAME@N (N = 1, 2, ... the first unused version), marks it retired (verify only; its public key
// stays available) and creates a new NAME of the same type and purpose. `key list` therefore shows
// the history as NAME@1, NAME@2, ... beside the current NAME.
//
// Access control. KeyManager talks to access control through Gate (access/access_store.h's
// AccessStore behind it in the CLI). Custodian operations (rotate, compromised, resume, delete,
// backup, restore) need a TOTP code, and so does signing with a root-purpose key (key.sign-root:
// custodian or owner, never a release manager); without one the gate answers kInvalidArgument, with
// a wrong one kBadSignature, a replayed one kRollback, and a principal without the role kWrongKey
// (access/roles.h's kDeniedCode).
//
// Logging. Every operation appends one UsageRecord (audit/audit_log.h) through UsageSink, after the
// operation, with result ok / denied (the gate refused) / failed (anything else). If the record
// cannot be written the operation reports kIo; a signature or unwrapped key is then not returned.
#ifndef AIRLOCK_KEYS_LIFECYCLE_H_
#define AIRLOCK_KEYS_LIFECYCLE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "access/roles.h"
#include "audit/audit_log.h"
#include "keys/key_store.h"

namespace airlock::keys {

// Default maximum ages (seconds) per purpose: root 730 days, targets 365, snapshot 90, timestamp 30,
// content-wrap 365, capgo 365, audit 365.
int64_t DefaultMaxAge(KeyPurpose purpose);

// Who is acting, from where and why; the TOTP code for custodian operations.
struct OperationContext {
  std::string actor;             // principal name (CLI: --actor, $AIRLOCK_ACTOR, else $USER)
  std::string source = "local";  // "local" for the CLI, the peer address in the server
  std::string reason;            // free text (ticket number)
  std::optional<std::string> totp_code;
};

// Receives usage records. AuditLog in production (AuditSink), a vector in tests.
class UsageSink {
 public:
  virtual ~UsageSink() = default;
  [[nodiscard]] virtual Result<void> Append(const audit::UsageRecord& record) = 0;
};

// Decides whether `actor` may do `action`; checks the TOTP code for custodian actions.
class Gate {
 public:
  virtual ~Gate() = default;
  [[nodiscard]] virtual Result<void> Authorize(std::string_view actor, access::Action action,
                                               std::optional<std::string_view> totp_code) = 0;
};

// Allows everything: only for a vault with no principals enrolled yet (the CLI uses it then and says so
// in each record's details) and for tests of the mechanics below the gate.
class OpenGate final : public Gate {
 public:
  Result<void> Authorize(std::string_view, access::Action,
                         std::optional<std::string_view>) override {
    return {};
  }
};

// The result of a rotation: the retired predecessor (now NAME@N) and the new key NAME.
struct Rotation {
  KeyInfo old_key;
  KeyInfo new_key;
};

// Runs inside a rotation after the new key NAME exists and before the old key (already renamed NAME@N,
// still in its previous state) is retired: the moment to sign a hand-over with both keys, e.g. new TUF
// root metadata signed by the old and the new root keys (retired keys must not sign). An error undoes
// the rotation (the new key is destroyed, NAME@N renamed back to NAME in its previous state).
using RotationHook = std::function<Result<void>(const Rotation& rotation)>;

struct KeyManagerOptions {
  std::map<KeyPurpose, int64_t> max_age;  // overrides DefaultMaxAge
  std::function<int64_t()> now;           // unix seconds; default the system clock
  // Added to every record's details (e.g. "access-control=off").
  std::string details;
};

// Not thread-safe (neither is the KeyStore). The store, sink and gate must outlive the manager.
class KeyManager {
 public:
  KeyManager(KeyStore& store, UsageSink& sink, Gate& gate, KeyManagerOptions options = {});

  [[nodiscard]] Result<KeyInfo> Create(const OperationContext& ctx, std::string_view name,
                                       crypto::KeyType type, KeyPurpose purpose);
  // KeyStore::ImportPrivateKey (an existing Capgo RSA key), authorized as key.create (the right to
  // put a new capgo key in the store) and recorded as operation "import" with details
  // "type=rsa bits=N origin=imported", failed and refused attempts included.
  [[nodiscard]] Result<KeyInfo> Import(const OperationContext& ctx, std::string_view name,
                                       const crypto::PrivateKey& key, KeyPurpose purpose);
  [[nodiscard]] Result<std::vector<KeyInfo>> List(const OperationContext& ctx);
  [[nodiscard]] Result<crypto::PublicKey> PublicKey(const OperationContext& ctx, std::string_view name);
  [[nodiscard]] Result<Bytes> Sign(const OperationContext& ctx, std::string_view name,
                                   ByteSpan message);
  [[nodiscard]] Result<Bytes> Unwrap(const OperationContext& ctx, std::string_view name,
                                     ByteSpan wrapped, ByteSpan aad);
  // KeyStore::PrivateEncryptPkcs1 (Capgo's session key and checksum blocks), authorized as key.sign
  // and recorded like Sign (operation "sign", details "pkcs1-type1").
  [[nodiscard]] Result<Bytes> PrivateEncryptPkcs1(const OperationContext& ctx,
                                                  std::string_view name, ByteSpan data);

  [[nodiscard]] Result<KeyInfo> Suspend(const OperationContext& ctx, std::string_view name);
  [[nodiscard]] Result<KeyInfo> Resume(const OperationContext& ctx, std::string_view name);
  [[nodiscard]] Result<KeyInfo> Retire(const OperationContext& ctx, std::string_view name);
  [[nodiscard]] Result<KeyInfo> Revoke(const OperationContext& ctx, std::string_view name);
  [[nodiscard]] Result<void> Delete(const OperationContext& ctx, std::string_view name);

  // NAME must be a current key (no @N) that is active or suspended; kKeyUnusable otherwise.
  [[nodiscard]] Result<Rotation> Rotate(const OperationContext& ctx, std::string_view name);
  // The same with `before_retire` run as RotationHook describes; its error is the rotation's.
  [[nodiscard]] Result<Rotation> Rotate(const OperationContext& ctx, std::string_view name,
                                        const RotationHook& before_retire);
  // Marks the key compromised and, if it is a current key (no @N), rotates it: the result's old_key is
  // the compromised NAME@N. For a historic NAME@N only the state changes (new_key is empty).
  [[nodiscard]] Result<Rotation> Compromised(const OperationContext& ctx, std::string_view name);

  // Current keys (no @N), active or suspended, older than their purpose's maximum age.
  [[nodiscard]] Result<std::vector<KeyInfo>> Due();
  // Rotates every Due() key; stops at the first failure (earlier rotations stay done).
  [[nodiscard]] Result<std::vector<Rotation>> RotateDue(const OperationContext& ctx);

  int64_t MaxAge(KeyPurpose purpose) const;
  int64_t Now() const;

  // Appends a record for an operation done outside the manager (backup, restore, export, init).
  [[nodiscard]] Result<void> Record(const OperationContext& ctx, std::string_view operation,
                                    const KeyInfo* key, const Result<void>& outcome,
                                    std::string_view details = {});
  // The gate, for operations done outside the manager.
  [[nodiscard]] Result<void> Authorize(const OperationContext& ctx, access::Action action);

  KeyStore& store() { return store_; }

 private:
  Result<KeyInfo> ChangeState(const OperationContext& ctx, std::string_view name, KeyState state,
                              access::Action action, std::string_view operation);
  Result<Rotation> RotateUnchecked(std::string_view name, const RotationHook& before_retire = {});
  Result<std::string> NextVersionName(std::string_view name);

  KeyStore& store_;
  UsageSink& sink_;
  Gate& gate_;
  KeyManagerOptions options_;
};

}  // namespace airlock::keys

#endif  // AIRLOCK_KEYS_LIFECYCLE_H_
