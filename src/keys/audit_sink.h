// Usage sinks (lifecycle.h) that write to an audit::AuditLog, shared by the CLI's key sessions
// (cli/key_loading.h).
//
// AuditLogSink appends records and nothing more. StateAuditSink serves a store that keeps a
// VaultState (vault_state.h: the file vault, a PKCS#11 store): checkpoints signed by the store's
// checkpoint key (an audit-purpose key `audit-checkpoint-XXXXXXXX` made in the store on first need,
// ed25519, else ECDSA P-256 where the store cannot make ed25519; its name in the state, its
// creation a record), one every AuditOptions::checkpoint_interval records and one on Close(); and
// after every record the log's head (seq, hash, highest checkpoint number) written into the state
// under the log's id, only ever moving forward (AdvanceAnchor). Someone who can write the log but
// not the store (no passphrase, no PIN) then cannot cut records off its end unnoticed: `airlock
// audit verify --vault` checks the log against that head.
#ifndef AIRLOCK_KEYS_AUDIT_SINK_H_
#define AIRLOCK_KEYS_AUDIT_SINK_H_

#include <string>

#include "audit/audit_log.h"
#include "common/result.h"
#include "keys/key_store.h"
#include "keys/lifecycle.h"
#include "keys/vault_state.h"

namespace airlock::keys {

class AuditLogSink : public UsageSink {
 public:
  explicit AuditLogSink(audit::AuditLog log) : log_(std::move(log)) {}
  Result<void> Append(const audit::UsageRecord& record) override;
  // Called once when the session ends.
  [[nodiscard]] virtual Result<void> Close() { return {}; }

 protected:
  audit::AuditLog log_;
};

class StateAuditSink final : public AuditLogSink {
 public:
  // `store` and `state` (usually the same object) must outlive the sink.
  StateAuditSink(audit::AuditLog log, KeyStore* store, VaultStateStore* state)
      : AuditLogSink(std::move(log)), store_(store), state_(state) {}

  // Appends the record (making and recording the checkpoint key first if needed), then writes the
  // head into the state.
  Result<void> Append(const audit::UsageRecord& record) override;
  // Signs a checkpoint over records not yet covered by one, and writes the head.
  Result<void> Close() override;

 private:
  Result<void> Anchor();
  Result<KeyInfo> CreateCheckpointKey(const std::string& name);
  Result<void> EnsureSigner();

  KeyStore* store_;
  VaultStateStore* state_;
  bool signer_set_ = false;
};

}  // namespace airlock::keys

#endif  // AIRLOCK_KEYS_AUDIT_SINK_H_
