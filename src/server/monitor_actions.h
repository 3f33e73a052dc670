// airlockd's side of the monitor (monitor/monitor.h): the automatic actions on the server's own
// vault and store, and the checks that turn a device's report into evidence.
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

// The server's checks of what devices report (monitor::Corroboration), over DATA/tuf/<app>/ and
// DATA/blobs/:
//  * foreign_metadata: the base64 document must decode (at most 64 KiB) to a snapshot or timestamp
//    envelope of which a signature verifies under the app's online key of that role as the vault
//    holds it now (AppRepo::GetOnlineKeys), and it must be a file the server never wrote: a
//    snapshot version without N.snapshot.json or with another SHA-256, or a timestamp newer than
//    the served one or of its version with another SHA-256. Older timestamps are not kept and prove
//    nothing. The answer names the vault key of that role.
//  * content: every target of the current signed targets whose custom `version` is the reported
//    version is compared with its blob (length, then SHA-256): kDamaged for a missing, shorter,
//    longer or different blob, kIntact when all match, kUnknown when no target has that version.
//    Answers are kept for 60 s per (app, version), so a flood of reports hashes a release once a
//    minute at most.
monitor::Corroboration ServerCorroboration(AppRepo* repo, std::filesystem::path data_dir);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_MONITOR_ACTIONS_H_
