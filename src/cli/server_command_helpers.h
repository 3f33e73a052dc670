// Internal to the server commands (server_commands.cc, app_commands.cc, release_commands.cc): the
// options every command shares, argument checks, output helpers, key loading for app keys, the TUF
// helpers and the per-group registration. Not for use outside src/cli.
#ifndef AIRLOCK_CLI_SERVER_COMMAND_HELPERS_H_
#define AIRLOCK_CLI_SERVER_COMMAND_HELPERS_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/http_client.h"
#include "cli/key_loading.h"
#include "cli/table.h"
#include "common/result.h"
#include "crypto/keys.h"
#include "crypto/signer.h"
#include "keys/key_store.h"
#include "metadata/metadata.h"

namespace airlock::cli {

inline constexpr int64_t kYear = 365 * 24 * 3600;

// ---- options shared by every command ----

struct ServerArgs {
  std::string server;
  std::string token;
  std::string cacert;  // --cacert: CA certificates for an https:// server with a private CA
  bool json = false;
};

struct AppOnlyArgs {
  ServerArgs server;
  std::string app;
  int limit = 100;
};

void AddServerOptions(CLI::App* c, ServerArgs& a, bool with_json = true);

// --trusted-root for the commands that start from the app's trusted root (cli/app_trust.h).
void AddTrustedRootOption(CLI::App* c, std::string& trusted_root);

Result<HttpClient> Connect(const ServerArgs& a);

// Identifiers as the API takes them: 1..128 bytes of [A-Za-z0-9._-]. Checked here so that they can
// be put in URL paths as they are, and so that a typo is a usage error (exit 2).
Result<void> ValidateId(std::string_view what, const std::string& id);

Result<void> ValidateVersion(std::string_view what, const std::string& version);

std::string Plural(uint64_t n, const char* one, const char* many);

std::string FormatTime(int64_t t);

std::string JsonString(const nlohmann::json& j, const char* field, std::string fallback = "-");

// ---- keys ----

// A key in the session's store for `purpose`: reused when it exists with that purpose (a rerun of
// `app create` after a failure), created otherwise.
Result<std::string> EnsureVaultKey(KeySession& s, const std::string& name, crypto::KeyType type,
                                   keys::KeyPurpose purpose, bool* created);

// The default vault's session, created (with its folder, 0700) when it is the default file vault
// and does not exist yet.
Result<std::shared_ptr<KeySession>> OpenDefaultVault(const std::string& passphrase_file,
                                                     std::string* uri_out, bool* created);

using SignerPtr = std::unique_ptr<crypto::Signer>;

Result<SignerPtr> LoadTufSigner(KeyLoader& loader, const std::string& spec, const char* role);

// ---- TUF helpers ----

Result<metadata::Key> OnlineKey(const nlohmann::json& online_keys, const std::string& role);

// Streams `file`, returning its TUF target entry (length and sha256).
Result<metadata::TargetFile> TargetFor(const std::filesystem::path& file, nlohmann::json custom);

Result<nlohmann::json> UploadBlob(HttpClient& client, const std::filesystem::path& file,
                                  const metadata::TargetFile& t, const std::string& label);

// ---- output ----

// One line per channel: current version, rollout, flags, platforms.
void PrintChannel(const nlohmann::json& c);

// `channel list`: the same fields as PrintChannel, as a table (cli/table.h).
const TableRow& ChannelTableHeader();
TableRow ChannelTableRow(const nlohmann::json& c);

// ---- registration ----

// airlock app ..., airlock channel ... (app_commands.cc).
void AddAppCommands(CLI::App& app, Action& action);
// airlock release ..., airlock rollout ... (release_commands.cc).
void AddReleaseCommands(CLI::App& app, Action& action);
// airlock token ... (token_commands.cc).
void AddTokenCommands(CLI::App& app, Action& action);
// airlock alert ... (alert_commands.cc).
void AddAlertCommands(CLI::App& app, Action& action);
// airlock channel approval, airlock release approvals|approve|reject|stats (after the app and
// release commands: it adds to their groups).
void AddApprovalCommands(CLI::App& app, Action& action);
// For a 202 {"status": "pending_approval", "approval"} reply: prints what waits and who may
// approve it, and returns true; false for any other reply.
bool PrintPending(const nlohmann::json& reply);

}  // namespace airlock::cli

#endif  // AIRLOCK_CLI_SERVER_COMMAND_HELPERS_H_
