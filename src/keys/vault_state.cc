#include "keys/vault_state.h"

#include <nlohmann/json.hpp>

#include "keys/key_store.h"

namespace airlock::keys {

Bytes EncodeVaultState(const VaultState& state) {
  nlohmann::json heads = nlohmann::json::object();
  for (const auto& [id, a] : state.audit_heads) {
    heads[id] = {{"seq", a.seq}, {"hash", a.hash}, {"checkpoints", a.checkpoints}};
  }
  nlohmann::json j = {{"version", 1},
                      {"access_control", state.access_control},
                      {"checkpoint_key", state.checkpoint_key},
                      {"audit_heads", heads}};
  std::string text = j.dump();
  return Bytes(text.begin(), text.end());
}

Result<VaultState> DecodeVaultState(ByteSpan bytes) {
  auto j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  auto bad = [] { return MakeError(ErrorCode::kMalformed, "vault state record is malformed"); };
  if (!j.is_object() || !j.contains("version") || j["version"] != 1) return bad();
  VaultState s;
  const auto& ac = j.value("access_control", nlohmann::json());
  const auto& ck = j.value("checkpoint_key", nlohmann::json());
  const auto& heads = j.value("audit_heads", nlohmann::json());
  if (!ac.is_boolean() || !ck.is_string() || !heads.is_object()) return bad();
  s.access_control = ac.get<bool>();
  s.checkpoint_key = ck.get<std::string>();
  for (const auto& [id, h] : heads.items()) {
    if (!h.is_object() || !h.contains("seq") || !h["seq"].is_number_integer() ||
        !h.contains("hash") || !h["hash"].is_string() || !h.contains("checkpoints") ||
        !h["checkpoints"].is_number_integer()) {
      return bad();
    }
    s.audit_heads[id] = AuditAnchor{h["seq"].get<int64_t>(), h["hash"].get<std::string>(),
                                    h["checkpoints"].get<int64_t>()};
  }
  return s;
}

bool AdvanceAnchor(AuditAnchor& anchor, const AuditAnchor& next) {
  bool newer =
      next.seq > anchor.seq || (next.seq == anchor.seq && next.checkpoints > anchor.checkpoints);
  if (newer) anchor = next;
  return newer;
}

VaultStateStore* AsVaultStateStore(KeyStore* store) {
  return dynamic_cast<VaultStateStore*>(store);
}

}  // namespace airlock::keys
