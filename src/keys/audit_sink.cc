#include "keys/audit_sink.h"

#include <utility>
#include <vector>

#include "crypto/random.h"

namespace airlock::keys {

Result<void> AuditLogSink::Append(const audit::UsageRecord& record) {
  AIRLOCK_TRY(log_.Append(record));
  return {};
}

Result<void> StateAuditSink::Append(const audit::UsageRecord& record) {
  AIRLOCK_TRY(EnsureSigner());
  auto appended = log_.Append(record);
  if (!appended) return tl::unexpected(appended.error());
  return Anchor();
}

Result<void> StateAuditSink::Close() {
  AIRLOCK_ASSIGN_OR_RETURN(auto head, log_.Head());
  AIRLOCK_ASSIGN_OR_RETURN(std::vector<audit::Checkpoint> cps, log_.Checkpoints());
  const int64_t covered = cps.empty() ? 0 : cps.back().seq;
  if (head.first == 0 || covered >= head.first) return {};
  AIRLOCK_TRY(EnsureSigner());
  AIRLOCK_TRY(log_.WriteCheckpoint());
  return Anchor();
}

Result<void> StateAuditSink::Anchor() {
  AIRLOCK_ASSIGN_OR_RETURN(std::string id, log_.LogId());
  AIRLOCK_ASSIGN_OR_RETURN(auto head, log_.Head());
  AIRLOCK_ASSIGN_OR_RETURN(int64_t numbered, log_.CheckpointNumber());
  AuditAnchor next{head.first, head.second, numbered};
  AIRLOCK_TRY(state_->UpdateState([&](VaultState& state) -> Result<void> {
    AdvanceAnchor(state.audit_heads[id], next);
    return {};
  }));
  return {};
}

// Ed25519 where the store can make it, else ECDSA P-256 (PKCS#11 tokens without EdDSA).
Result<KeyInfo> StateAuditSink::CreateCheckpointKey(const std::string& name) {
  auto made = store_->Create(name, crypto::KeyType::kEd25519, KeyPurpose::kAudit);
  if (made || made.error().code() != ErrorCode::kUnsupported) return made;
  return store_->Create(name, crypto::KeyType::kEcdsaP256, KeyPurpose::kAudit);
}

Result<void> StateAuditSink::EnsureSigner() {
  if (signer_set_) return {};
  AIRLOCK_ASSIGN_OR_RETURN(VaultState state, state_->ReadState());
  std::string name = state.checkpoint_key;
  if (name.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(Bytes suffix, crypto::RandomBytes(4));
    // A name of its own per store, so restoring another vault's backup cannot collide with it.
    name = "audit-checkpoint-" + HexEncode(suffix);
    AIRLOCK_ASSIGN_OR_RETURN(KeyInfo made, CreateCheckpointKey(name));
    AIRLOCK_ASSIGN_OR_RETURN(VaultState written,
                             state_->UpdateState([&](VaultState& s) -> Result<void> {
                               if (s.checkpoint_key.empty()) s.checkpoint_key = name;
                               return {};
                             }));
    if (written.checkpoint_key != name) {  // another process made one first: use that one
      (void)store_->Delete(name);
      name = written.checkpoint_key;
    } else {
      audit::UsageRecord r;
      r.actor = "airlock";
      r.operation = "create";
      r.key_id = made.key_id;
      r.key_name = made.name;
      r.purpose = "audit";
      r.details = "type=" + std::string(crypto::KeyTypeName(made.type)) +
                  "; the store's audit checkpoint key, made on first need";
      AIRLOCK_TRY(log_.Append(r));
    }
  }
  AIRLOCK_ASSIGN_OR_RETURN(crypto::PublicKey pub, store_->PublicKey(name));
  KeyStore* store = store_;
  AIRLOCK_TRY(log_.SetSigner(audit::CheckpointSigner{
      std::move(pub), [store, name](ByteSpan message) { return store->Sign(name, message); }}));
  signer_set_ = true;
  return {};
}

}  // namespace airlock::keys
