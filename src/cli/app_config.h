// What the server commands keep on the developer's machine, under $XDG_CONFIG_HOME/airlock (else
// ~/.config/airlock), folders mode 0700:
//   vault.db                 the default file vault (unless $AIRLOCK_VAULT names another store)
//   apps/APP.json            which key URIs an app uses (root keys and threshold, targets, capgo)
//                            and their key ids, so `release publish` needs no key options
//   apps/APP.root.json       the app's trusted root: pinned by `app create`, moved forward only
//                            along the signed root chain (cli/app_trust.h)
//   apps/APP.state.json      the highest targets version this machine verified for the app
//   apps/APP.capgo.pub.pem   the Capgo public key (PKCS#1 PEM), for the plugin's `publicKey`
#ifndef AIRLOCK_CLI_APP_CONFIG_H_
#define AIRLOCK_CLI_APP_CONFIG_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace airlock::cli {

inline constexpr uint64_t kMaxConfigFile = 1 << 20;

// $XDG_CONFIG_HOME/airlock, else $HOME/.config/airlock; kNotFound when neither is set.
[[nodiscard]] Result<std::filesystem::path> ConfigDir();

// mkdir -p with mode 0700 for what is created.
[[nodiscard]] Result<void> MakePrivateDirs(const std::filesystem::path& dir);

// $AIRLOCK_VAULT, else "file:" + ConfigDir()/vault.db (then *is_default is true).
[[nodiscard]] Result<std::string> DefaultVaultUri(bool* is_default);

// What `app create` recorded about an app's keys.
struct AppConfig {
  std::string app_id;
  std::vector<std::string> root_keys;
  std::vector<std::string> root_keyids;
  uint64_t root_threshold = 1;
  std::string targets_key;
  std::string targets_keyid;
  std::string capgo_key;
  std::string capgo_public_key;  // file
  std::string app_key_pem;       // the --app-key public key (PEM) `--encrypt app` seals to
  std::string content_key_pem;   // the server's device-mode content key, as `app create` got it

  nlohmann::json ToJson() const;
};

// ConfigDir()/apps/APP + suffix (".json", ".root.json", ...).
[[nodiscard]] Result<std::filesystem::path> AppFilePath(const std::string& app_id,
                                                        const std::string& suffix);

// nullopt when there is no record of the app on this machine; kMalformed for a broken record.
[[nodiscard]] Result<std::optional<AppConfig>> LoadAppConfig(const std::string& app_id);

// Writes apps/APP.json (0600, atomically) and returns its path.
[[nodiscard]] Result<std::filesystem::path> SaveAppConfig(const AppConfig& c);

}  // namespace airlock::cli

#endif  // AIRLOCK_CLI_APP_CONFIG_H_
