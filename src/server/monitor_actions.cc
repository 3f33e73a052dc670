#include "server/monitor_actions.h"

#include "server/channel_cache.h"

namespace airlock::server {

Result<std::string> ServerResponder::SuspendKey(const monitor::Alert& alert) {
  const std::string name = alert.key_name;
  return repo_->WithKeyManager(
      [&](keys::KeyManager& m, const keys::OperationContext& ctx) -> Result<std::string> {
        keys::OperationContext why = ctx;
        why.reason = "alert " + std::to_string(alert.id) + " " + alert.rule;
        AIRLOCK_TRY(m.Suspend(why, name));
        return "suspended key " + name;
      });
}

Result<std::string> ServerResponder::RotateAndRevoke(const std::string& key_name) {
  return repo_->WithKeyManager(
      [&](keys::KeyManager& m, const keys::OperationContext& ctx) -> Result<std::string> {
        AIRLOCK_ASSIGN_OR_RETURN(keys::Rotation rotation, m.Rotate(ctx, key_name));
        AIRLOCK_TRY_CTX(m.Revoke(ctx, rotation.old_key.name),
                        "rotated " + key_name + " but could not revoke " + rotation.old_key.name);
        return "rotated " + key_name + " (new key id " + rotation.new_key.key_id + "), revoked " +
               rotation.old_key.name;
      });
}

Result<std::string> ServerResponder::RotateKey(const monitor::Alert& alert) {
  return RotateAndRevoke(alert.key_name);
}

Result<std::string> ServerResponder::PauseChannels(const std::string& app_id,
                                                   const std::string* version) {
  AIRLOCK_ASSIGN_OR_RETURN(auto channels, store_->ListChannels(app_id));
  std::string paused;
  for (storage::Channel& c : channels) {
    if (version != nullptr && c.current_version != *version) continue;
    if (!c.paused) {
      c.paused = true;
      AIRLOCK_TRY(store_->UpdateChannel(c));
    }
    paused += (paused.empty() ? "" : ",") + c.name;
  }
  if (cache_ != nullptr) cache_->Invalidate(app_id);
  return paused;
}

Result<std::string> ServerResponder::ReplaceAppKeys(const monitor::Alert& alert) {
  // Halt first: if a rotation fails, nothing is offered with keys in an unknown state.
  AIRLOCK_ASSIGN_OR_RETURN(std::string paused, PauseChannels(alert.app_id, nullptr));
  std::string out = "paused channels [" + paused + "]";
  for (const std::string& name : AppRepo::OnlineKeyNames(alert.app_id)) {
    AIRLOCK_ASSIGN_OR_RETURN(std::string done, RotateAndRevoke(name));
    out += "; " + done;
  }
  return out + "; sign a root naming the new online keys, then resume";
}

Result<std::string> ServerResponder::PauseRollout(const monitor::Alert& alert) {
  AIRLOCK_ASSIGN_OR_RETURN(std::string paused, PauseChannels(alert.app_id, &alert.version));
  if (paused.empty()) return "no channel offers " + alert.version + " any more";
  return "paused channels [" + paused + "] offering " + alert.version;
}

}  // namespace airlock::server
