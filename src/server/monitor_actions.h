// airlockd's side of the monitor (monitor/monitor.h): the automatic actions on the server's own
// vault and store (the checks of device reports are server/corroboration.h).
//
// What each action does (docs/operations/alerts.md):
//  * suspend_key: KeyManager::Suspend of the alert's key in the server vault.
//  * rotate_key: KeyManager::Rotate (the old key becomes NAME@N, retired), then Revoke of NAME@N.
//  * replace_app_keys: first pauses every channel of the app (no device is offered anything
//    while keys change), then rotates and revokes each of the app's keys the server holds
//    (snapshot, timestamp, content). Devices update again once an operator has signed a root
//    that names the new online keys (PUT .../root) and resumed the channels.
//  * pause_rollout: pauses every channel of the app whose current release is the alert's version.
// Keys the server does not hold (a developer's root or targets key) cannot be acted on here: the
// action fails with kNotFound and the alert stays open for a person.
#ifndef AIRLOCK_SERVER_MONITOR_ACTIONS_H_
#define AIRLOCK_SERVER_MONITOR_ACTIONS_H_

#include <filesystem>
#include <string>

#include "monitor/monitor.h"
#include "server/app_repo.h"
#include "storage/store.h"

namespace airlock::server {

class ChannelCache;

class ServerResponder final : public monitor::Responder {
 public:
  // Every pointer must outlive the responder; `cache` may be null.
  ServerResponder(storage::Store* store, AppRepo* repo, ChannelCache* cache)
      : store_(store), repo_(repo), cache_(cache) {}

  Result<std::string> SuspendKey(const monitor::Alert& alert) override;
  Result<std::string> RotateKey(const monitor::Alert& alert) override;
  Result<std::string> ReplaceAppKeys(const monitor::Alert& alert) override;
  Result<std::string> PauseRollout(const monitor::Alert& alert) override;

 private:
  Result<std::string> RotateAndRevoke(const std::string& key_name);
  // Pauses the app's channels (all, or those offering `version`); returns their names.
  Result<std::string> PauseChannels(const std::string& app_id, const std::string* version);

  storage::Store* store_;
  AppRepo* repo_;
  ChannelCache* cache_;
};

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_MONITOR_ACTIONS_H_
