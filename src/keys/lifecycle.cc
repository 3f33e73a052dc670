#include "keys/lifecycle.h"

#include <algorithm>
#include <ctime>
#include <utility>

#include "common/bytes.h"
#include "crypto/hash.h"

namespace airlock::keys {
namespace {

constexpr int64_t kDay = 24 * 60 * 60;

std::string BaseName(std::string_view name) {
  return std::string(name.substr(0, name.find('@')));
}

}  // namespace

int64_t DefaultMaxAge(KeyPurpose purpose) {
  switch (purpose) {
    case KeyPurpose::kRoot: return 730 * kDay;
    case KeyPurpose::kTargets: return 365 * kDay;
    case KeyPurpose::kSnapshot: return 90 * kDay;
    case KeyPurpose::kTimestamp: return 30 * kDay;
    case KeyPurpose::kContentWrap: return 365 * kDay;
    case KeyPurpose::kCapgo: return 365 * kDay;
    case KeyPurpose::kAudit: return 365 * kDay;
  }
  return 365 * kDay;
}

KeyManager::KeyManager(KeyStore& store, UsageSink& sink, Gate& gate, KeyManagerOptions options)
    : store_(store), sink_(sink), gate_(gate), options_(std::move(options)) {}

int64_t KeyManager::Now() const {
  return options_.now ? options_.now() : static_cast<int64_t>(std::time(nullptr));
}

int64_t KeyManager::MaxAge(KeyPurpose purpose) const {
  auto it = options_.max_age.find(purpose);
  return it != options_.max_age.end() ? it->second : DefaultMaxAge(purpose);
}

Result<void> KeyManager::Authorize(const OperationContext& ctx, access::Action action) {
  std::optional<std::string_view> code;
  if (ctx.totp_code) code = *ctx.totp_code;
  return gate_.Authorize(ctx.actor, action, code);
}

Result<void> KeyManager::Record(const OperationContext& ctx, std::string_view operation,
                                const KeyInfo* key, const Result<void>& outcome,
                                std::string_view details) {
  audit::UsageRecord r;
  r.time = Now();
  r.actor = ctx.actor.empty() ? "unknown" : ctx.actor;
  r.operation = std::string(operation);
  r.source = ctx.source;
  r.reason = ctx.reason;
  if (key != nullptr) {
    r.key_id = key->key_id;
    r.key_name = key->name;
    r.purpose = std::string(KeyPurposeName(key->purpose));
  }
  std::string d(details);
  if (!options_.details.empty()) d += (d.empty() ? "" : "; ") + options_.details;
  r.details = std::move(d);
  if (!outcome) {
    r.result = outcome.error().message().starts_with("access denied") ||
                       outcome.error().code() == access::kDeniedCode
                   ? audit::UsageResult::kDenied
                   : audit::UsageResult::kFailed;
    r.result_reason = outcome.error().ToString();
    if (r.result_reason.size() > audit::kMaxAuditFieldSize)
      r.result_reason.resize(audit::kMaxAuditFieldSize);
  }
  auto appended = sink_.Append(r);
  if (!appended) {
    return MakeError(ErrorCode::kIo,
                     "cannot write the usage record: " + appended.error().ToString());
  }
  return {};
}

namespace {

// Runs `op` behind the gate and records the outcome. `key_name` is looked up first (best effort) so
// even a refused attempt names the key's id and purpose.
template <typename T, typename F>
Result<T> Guarded(KeyManager& m, const OperationContext& ctx, access::Action action,
                  std::string_view operation, std::string_view key_name, F&& op,
                  std::function<std::string(const T&)> details = {}) {
  std::optional<KeyInfo> info;
  if (!key_name.empty()) {
    if (auto got = m.store().Get(key_name)) info = std::move(*got);
  }
  Result<T> result = [&]() -> Result<T> {
    AIRLOCK_TRY(m.Authorize(ctx, action));
    return op();
  }();
  Result<void> outcome;
  std::string extra;
  if (!result) {
    outcome = tl::unexpected(result.error());
  } else if (details) {
    extra = details(*result);
  }
  AIRLOCK_TRY(m.Record(ctx, operation, info ? &*info : nullptr, outcome, extra));
  return result;
}

}  // namespace

Result<KeyInfo> KeyManager::Create(const OperationContext& ctx, std::string_view name,
                                   crypto::KeyType type, KeyPurpose purpose) {
  std::optional<KeyInfo> made;
  auto result = [&]() -> Result<KeyInfo> {
    AIRLOCK_TRY(Authorize(ctx, access::Action::kKeyCreate));
    if (!IsValidKeyName(name)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "invalid key name '" + std::string(name) +
                           "' (1..64 of A-Z a-z 0-9 . _ -, not starting with . or -)");
    }
    return store_.Create(name, type, purpose);
  }();
  KeyInfo attempted;
  attempted.name = std::string(name);
  attempted.type = type;
  attempted.purpose = purpose;
  Result<void> outcome;
  if (!result) outcome = tl::unexpected(result.error());
  AIRLOCK_TRY(Record(ctx, "create", result ? &*result : &attempted, outcome,
                     "type=" + std::string(crypto::KeyTypeName(type))));
  return result;
}

Result<KeyInfo> KeyManager::Import(const OperationContext& ctx, std::string_view name,
                                   const crypto::PrivateKey& key, KeyPurpose purpose) {
  auto result = [&]() -> Result<KeyInfo> {
    AIRLOCK_TRY(Authorize(ctx, access::Action::kKeyCreate));
    if (!IsValidKeyName(name)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "invalid key name '" + std::string(name) +
                           "' (1..64 of A-Z a-z 0-9 . _ -, not starting with . or -)");
    }
    return store_.ImportPrivateKey(name, key, purpose);
  }();
  // The attempted key is named by its id even when refused, so the log says which key was offered.
  KeyInfo attempted;
  attempted.name = std::string(name);
  attempted.key_id = key.KeyId();
  attempted.type = key.type();
  attempted.purpose = purpose;
  Result<void> outcome;
  if (!result) outcome = tl::unexpected(result.error());
  AIRLOCK_TRY(Record(ctx, "import", result ? &*result : &attempted, outcome,
                     "type=" + std::string(crypto::KeyTypeName(key.type())) +
                         " bits=" + std::to_string(key.bits()) + " origin=imported"));
  return result;
}

Result<std::vector<KeyInfo>> KeyManager::List(const OperationContext& ctx) {
  AIRLOCK_TRY(Authorize(ctx, access::Action::kKeyList));
  return store_.List();
}

Result<crypto::PublicKey> KeyManager::PublicKey(const OperationContext& ctx, std::string_view name) {
  AIRLOCK_TRY(Authorize(ctx, access::Action::kKeyRead));
  return store_.PublicKey(name);
}

Result<Bytes> KeyManager::Sign(const OperationContext& ctx, std::string_view name, ByteSpan message) {
  // A root key signs the app's trust itself: a custodian operation with its second factor.
  auto info = store_.Get(name);
  const access::Action action = info && info->purpose == KeyPurpose::kRoot
                                    ? access::Action::kKeySignRoot
                                    : access::Action::kKeySign;
  // The digest of what was signed, so the log can later answer "did this key sign that?" (the
  // monitor's foreign_signature check, server/corroboration.h).
  return Guarded<Bytes>(
      *this, ctx, action, "sign", name, [&]() { return store_.Sign(name, message); },
      [&](const Bytes&) { return "sha256=" + HexEncode(crypto::Sha256(message)); });
}

Result<Bytes> KeyManager::Unwrap(const OperationContext& ctx, std::string_view name,
                                 ByteSpan wrapped, ByteSpan aad) {
  return Guarded<Bytes>(*this, ctx, access::Action::kKeyUnwrap, "unwrap", name,
                        [&]() { return store_.Unwrap(name, wrapped, aad); });
}

Result<Bytes> KeyManager::PrivateEncryptPkcs1(const OperationContext& ctx, std::string_view name,
                                              ByteSpan data) {
  // Recorded as a signature (it is one, of a caller-chosen value without DigestInfo), told apart
  // from TUF signatures by its details.
  return Guarded<Bytes>(
      *this, ctx, access::Action::kKeySign, "sign", name,
      [&]() { return store_.PrivateEncryptPkcs1(name, data); },
      [](const Bytes&) { return std::string("pkcs1-type1"); });
}

Result<KeyInfo> KeyManager::ChangeState(const OperationContext& ctx, std::string_view name,
                                        KeyState state, access::Action action,
                                        std::string_view operation) {
  return Guarded<KeyInfo>(*this, ctx, action, operation, name, [&]() -> Result<KeyInfo> {
    AIRLOCK_TRY(store_.SetState(name, state));
    return store_.Get(name);
  });
}

Result<KeyInfo> KeyManager::Suspend(const OperationContext& ctx, std::string_view name) {
  return ChangeState(ctx, name, KeyState::kSuspended, access::Action::kKeySuspend, "suspend");
}
Result<KeyInfo> KeyManager::Resume(const OperationContext& ctx, std::string_view name) {
  return ChangeState(ctx, name, KeyState::kActive, access::Action::kKeyResume, "resume");
}
Result<KeyInfo> KeyManager::Retire(const OperationContext& ctx, std::string_view name) {
  return ChangeState(ctx, name, KeyState::kRetired, access::Action::kKeyRetire, "retire");
}
Result<KeyInfo> KeyManager::Revoke(const OperationContext& ctx, std::string_view name) {
  return ChangeState(ctx, name, KeyState::kRevoked, access::Action::kKeyRevoke, "revoke");
}

Result<void> KeyManager::Delete(const OperationContext& ctx, std::string_view name) {
  auto r =
      Guarded<bool>(*this, ctx, access::Action::kKeyDelete, "delete", name, [&]() -> Result<bool> {
        AIRLOCK_TRY(store_.Delete(name));
        return true;
      });
  if (!r) return tl::unexpected(r.error());
  return {};
}

Result<std::string> KeyManager::NextVersionName(std::string_view name) {
  AIRLOCK_ASSIGN_OR_RETURN(std::vector<KeyInfo> all, store_.List());
  int64_t max_version = 0;
  const std::string prefix = std::string(name) + "@";
  for (const auto& k : all) {
    if (k.name.starts_with(prefix)) {
      max_version = std::max<int64_t>(max_version, std::stoll(k.name.substr(prefix.size())));
    }
  }
  return prefix + std::to_string(max_version + 1);
}

// Order matters for crash safety: the old key is renamed first (so NAME is free), then the new key is
// made; if that fails the rename is undone. Only then is the old key retired.
Result<Rotation> KeyManager::RotateUnchecked(std::string_view name,
                                             const RotationHook& before_retire) {
  AIRLOCK_ASSIGN_OR_RETURN(KeyInfo old_key, store_.Get(name));
  AIRLOCK_ASSIGN_OR_RETURN(std::string versioned, NextVersionName(name));
  AIRLOCK_TRY(store_.Rename(name, versioned));
  auto made = store_.Create(name, old_key.type, old_key.purpose);
  if (!made) {
    (void)store_.Rename(versioned, name);
    return tl::unexpected(made.error().WithContext("cannot create the new key"));
  }
  if (before_retire) {
    AIRLOCK_ASSIGN_OR_RETURN(KeyInfo renamed, store_.Get(versioned));
    auto done = before_retire(Rotation{std::move(renamed), *made});
    if (!done) {
      // Undo, best effort: the old key keeps its name and state, the new one is destroyed.
      (void)store_.Delete(name);
      (void)store_.Rename(versioned, name);
      return tl::unexpected(done.error().WithContext("rotation undone"));
    }
  }
  if (old_key.state == KeyState::kActive || old_key.state == KeyState::kSuspended) {
    AIRLOCK_TRY(store_.SetState(versioned, KeyState::kRetired));
  }
  AIRLOCK_ASSIGN_OR_RETURN(KeyInfo retired, store_.Get(versioned));
  return Rotation{std::move(retired), std::move(*made)};
}

namespace {
std::string RotationDetails(const Rotation& r) {
  std::string d = "old=" + r.old_key.name + " old_key_id=" + r.old_key.key_id;
  if (!r.new_key.name.empty()) d += " new_key_id=" + r.new_key.key_id;
  return d;
}
}  // namespace

Result<Rotation> KeyManager::Rotate(const OperationContext& ctx, std::string_view name) {
  return Rotate(ctx, name, RotationHook{});
}

Result<Rotation> KeyManager::Rotate(const OperationContext& ctx, std::string_view name,
                                    const RotationHook& before_retire) {
  return Guarded<Rotation>(
      *this, ctx, access::Action::kKeyRotate, "rotate", name,
      [&]() -> Result<Rotation> {
        if (name.find('@') != std::string_view::npos) {
          return MakeError(ErrorCode::kInvalidArgument,
                           "rotate the current key " + BaseName(name) + ", not a version");
        }
        AIRLOCK_ASSIGN_OR_RETURN(KeyInfo info, store_.Get(name));
        if (info.state != KeyState::kActive && info.state != KeyState::kSuspended) {
          return MakeError(ErrorCode::kKeyUnusable,
                           "key " + info.name + " is " + std::string(KeyStateName(info.state)) +
                               " and cannot be rotated");
        }
        return RotateUnchecked(name, before_retire);
      },
      std::function<std::string(const Rotation&)>(RotationDetails));
}

Result<Rotation> KeyManager::Compromised(const OperationContext& ctx, std::string_view name) {
  return Guarded<Rotation>(
      *this, ctx, access::Action::kKeyCompromised, "compromised", name,
      [&]() -> Result<Rotation> {
        AIRLOCK_TRY(store_.SetState(name, KeyState::kCompromised));
        if (name.find('@') != std::string_view::npos) {
          AIRLOCK_ASSIGN_OR_RETURN(KeyInfo info, store_.Get(name));
          return Rotation{std::move(info), KeyInfo{}};
        }
        return RotateUnchecked(name);
      },
      std::function<std::string(const Rotation&)>(RotationDetails));
}

Result<std::vector<KeyInfo>> KeyManager::Due() {
  AIRLOCK_ASSIGN_OR_RETURN(std::vector<KeyInfo> all, store_.List());
  std::vector<KeyInfo> due;
  const int64_t now = Now();
  for (auto& k : all) {
    if (k.name.find('@') != std::string::npos) continue;
    if (k.state != KeyState::kActive && k.state != KeyState::kSuspended) continue;
    if (now - k.created_at >= MaxAge(k.purpose)) due.push_back(std::move(k));
  }
  return due;
}

Result<std::vector<Rotation>> KeyManager::RotateDue(const OperationContext& ctx) {
  AIRLOCK_ASSIGN_OR_RETURN(std::vector<KeyInfo> due, Due());
  std::vector<Rotation> done;
  for (const auto& k : due) {
    AIRLOCK_ASSIGN_OR_RETURN(Rotation r, Rotate(ctx, k.name));
    done.push_back(std::move(r));
  }
  return done;
}

}  // namespace airlock::keys
