// airlock app|channel|release|rollout|device: the developer commands that talk to airlockd
// (docs/api/server-api.md). Keys stay on the developer's side: root and targets metadata are signed
// here with vault/HSM keys (cli/key_loading.h), bundles are sealed here, and the server only ever
// receives public keys, signed metadata and encrypted blobs.
//
// Local state (key records, the pinned trusted root): cli/app_config.h; what the CLI trusts:
// cli/app_trust.h.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include "bundle/archive.h"
#include "bundle/bundle.h"
#include "bundle/capgo.h"
#include "cli/app_config.h"
#include "cli/app_trust.h"
#include "cli/commands.h"
#include "cli/http_client.h"
#include "cli/key_loading.h"
#include "cli/server_command_helpers.h"
#include "common/file.h"
#include "common/json.h"
#include "common/semver.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "keys/key_store.h"
#include "keys/key_uri.h"
#include "metadata/metadata.h"
#include "metadata/release_rules.h"

namespace airlock::cli {
namespace {

// ---- devices ----

Result<void> RunDeviceList(const AppOnlyArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  AIRLOCK_ASSIGN_OR_RETURN(
      nlohmann::json j,
      client.Json("GET", "/api/v1/apps/" + a.app + "/devices?limit=" + std::to_string(a.limit)));
  if (a.server.json) {
    PrintJson(j);
    return {};
  }
  const nlohmann::json devices = j.value("devices", nlohmann::json::array());
  std::cout << std::left << std::setw(38) << "DEVICE" << std::setw(10) << "PLATFORM"
            << std::setw(16) << "CHANNEL"
            << "LAST SEEN\n";
  for (const auto& d : devices) {
    std::cout << std::left << std::setw(38) << JsonString(d, "device_id") << std::setw(10)
              << JsonString(d, "platform") << std::setw(16) << JsonString(d, "channel_override")
              << FormatTime(d.value("last_seen", int64_t{0})) << "\n";
  }
  std::cout << Plural(devices.size(), "device", "devices") << "\n";
  return {};
}

}  // namespace

void AddServerCommands(CLI::App& app, Action& action) {
  AddAppCommands(app, action);
  AddReleaseCommands(app, action);
  CLI::App* devices = app.add_subcommand("device", "An app's enrolled devices");
  devices->require_subcommand(1);

  auto dl = std::make_shared<AppOnlyArgs>();
  CLI::App* dls = devices->add_subcommand("list", "List an app's enrolled devices");
  dls->add_option("app_id", dl->app, "App id")->required();
  AddServerOptions(dls, dl->server);
  dls->add_option("--limit", dl->limit, "At most this many devices (1-10000)")
      ->check(CLI::Range(1, 10000));
  dls->callback([dl, &action] { action = [dl] { return RunDeviceList(*dl); }; });
}

}  // namespace airlock::cli
