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
#include "cli/table.h"
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
  std::vector<TableRow> rows;
  for (const auto& d : devices) {
    rows.push_back({JsonString(d, "device_id"), JsonString(d, "platform"),
                    JsonString(d, "status"), JsonString(d, "channel_override"),
                    FormatTime(d.value("last_seen", int64_t{0}))});
  }
  PrintTable(std::cout, {"DEVICE", "PLATFORM", "STATUS", "CHANNEL", "LAST SEEN"}, rows);
  std::cout << Plural(devices.size(), "device", "devices") << "\n";
  return {};
}

struct DeviceArgs {
  ServerArgs server;
  std::string app;
  std::string device;
};

// `device approve` (pending -> active) and `device revoke` (for good: 403 on every device route).
Result<void> RunDeviceStatus(const DeviceArgs& a, const char* action) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_TRY(ValidateId("device id", a.device));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  AIRLOCK_ASSIGN_OR_RETURN(
      nlohmann::json j,
      client.Json("POST", "/api/v1/apps/" + a.app + "/devices/" + a.device + "/" + action,
                  nlohmann::json::object()));
  if (a.server.json) {
    PrintJson(j);
  } else {
    std::cout << "device " << a.device << " of " << a.app << ": " << JsonString(j, "status")
              << "\n";
  }
  return {};
}

struct DevicePolicyArgs {
  ServerArgs server;
  std::string app;
  std::string policy;  // empty: show
};

Result<void> RunDevicePolicy(const DevicePolicyArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  const std::string path = "/api/v1/apps/" + a.app + "/enrollment-policy";
  nlohmann::json j;
  if (a.policy.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(j, client.Json("GET", path));
  } else {
    AIRLOCK_ASSIGN_OR_RETURN(j, client.Json("PUT", path, nlohmann::json{{"policy", a.policy}}));
  }
  if (a.server.json) {
    PrintJson(j);
  } else {
    std::cout << "enrollment policy of " << a.app << ": " << JsonString(j, "policy") << "\n";
  }
  return {};
}

struct DevicePreauthArgs {
  ServerArgs server;
  std::string app;
  std::string keys_file;
};

// The factory list: a JSON array of {"signing_key", "device_id"?} objects, or one such object per
// line (JSON lines). Read whole (bounded), checked by the server; sent in batches of 1000.
Result<void> RunDevicePreauthorize(const DevicePreauthArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  constexpr uint64_t kMaxListBytes = 64ull * 1024 * 1024;
  AIRLOCK_ASSIGN_OR_RETURN(std::string text, ReadTextFile(a.keys_file, kMaxListBytes));
  nlohmann::json keys = nlohmann::json::array();
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {
    AIRLOCK_ASSIGN_OR_RETURN(keys, ParseJson(text, kMaxListBytes));
    if (!keys.is_array()) {
      return MakeError(ErrorCode::kMalformed, a.keys_file + ": not a JSON array");
    }
  } else {
    std::istringstream lines(text);
    std::string line;
    for (size_t n = 1; std::getline(lines, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto entry = ParseJson(line, kMaxListBytes);
      if (!entry) {
        return MakeError(ErrorCode::kMalformed,
                         a.keys_file + ":" + std::to_string(n) + ": " + entry.error().message());
      }
      keys.push_back(std::move(*entry));
    }
  }
  if (keys.empty()) return MakeError(ErrorCode::kMalformed, a.keys_file + ": no keys");
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  constexpr size_t kBatch = 1000;
  uint64_t added = 0;
  for (size_t at = 0; at < keys.size(); at += kBatch) {
    nlohmann::json batch = nlohmann::json::array();
    for (size_t i = at; i < std::min(keys.size(), at + kBatch); ++i) batch.push_back(keys[i]);
    AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json j,
                             client.Json("POST", "/api/v1/apps/" + a.app + "/preauthorized-keys",
                                         nlohmann::json{{"keys", std::move(batch)}}));
    added += j.value("added", uint64_t{0});
  }
  if (a.server.json) {
    PrintJson({{"app_id", a.app}, {"added", added}, {"keys", keys.size()}});
  } else {
    std::cout << "preauthorized " << Plural(added, "new key", "new keys") << " of " << keys.size()
              << " for " << a.app << "\n";
  }
  return {};
}

}  // namespace

void AddServerCommands(CLI::App& app, Action& action) {
  AddAppCommands(app, action);
  AddReleaseCommands(app, action);
  AddTokenCommands(app, action);
  AddAlertCommands(app, action);
  AddApprovalCommands(app, action);
  CLI::App* devices = app.add_subcommand("device", "An app's enrolled devices");
  devices->require_subcommand(1);

  auto dl = std::make_shared<AppOnlyArgs>();
  CLI::App* dls = devices->add_subcommand("list", "List an app's enrolled devices");
  dls->add_option("app_id", dl->app, "App id")->required();
  AddServerOptions(dls, dl->server);
  dls->add_option("--limit", dl->limit, "At most this many devices (1-10000)")
      ->check(CLI::Range(1, 10000));
  dls->callback([dl, &action] { action = [dl] { return RunDeviceList(*dl); }; });

  for (const char* verb : {"approve", "revoke"}) {
    auto args = std::make_shared<DeviceArgs>();
    CLI::App* c = devices->add_subcommand(
        verb, std::string(verb) == "approve"
                  ? "Let a device waiting under the `approve` policy in"
                  : "Revoke a device for good: 403 on every device route, no further keys");
    c->add_option("app_id", args->app, "App id")->required();
    c->add_option("device_id", args->device, "Device id")->required();
    AddServerOptions(c, args->server);
    c->callback(
        [args, verb, &action] { action = [args, verb] { return RunDeviceStatus(*args, verb); }; });
  }
  auto policy = std::make_shared<DevicePolicyArgs>();
  CLI::App* dp = devices->add_subcommand(
      "policy", "Show or set how devices enroll: token, approve or preauth");
  dp->add_option("app_id", policy->app, "App id")->required();
  dp->add_option("policy", policy->policy, "New policy (default: show the current one)")
      ->check(CLI::IsMember({"token", "approve", "preauth"}));
  AddServerOptions(dp, policy->server);
  dp->callback([policy, &action] { action = [policy] { return RunDevicePolicy(*policy); }; });
  auto preauth = std::make_shared<DevicePreauthArgs>();
  CLI::App* dpa = devices->add_subcommand(
      "preauthorize", "Register device signing keys that may enroll under the preauth policy");
  dpa->add_option("app_id", preauth->app, "App id")->required();
  dpa->add_option("--keys", preauth->keys_file,
                  "JSON array or JSON lines of {\"signing_key\": HEX, \"device_id\": ID}")
      ->required();
  AddServerOptions(dpa, preauth->server);
  dpa->callback(
      [preauth, &action] { action = [preauth] { return RunDevicePreauthorize(*preauth); }; });
}

}  // namespace airlock::cli
