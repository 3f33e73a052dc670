// airlock token create|list|revoke: airlockd's API tokens over the admin API (POST/GET
// /api/v1/tokens, DELETE /api/v1/tokens/{id}; docs/api/server-api.md). The token that runs the
// command needs token.manage; a new token is its child and never reaches beyond it (the server
// checks). What a CI machine needs to publish: docs/operations/server.md#publishing-from-ci.
//
// Not to be confused with `airlock access token-create`, which adds a token principal to a file
// vault's own access file (VAULT.access, for key operations on that vault), not to airlockd.
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/http_client.h"
#include "cli/server_command_helpers.h"
#include "cli/table.h"

namespace airlock::cli {
namespace {

struct TokenCreateArgs {
  ServerArgs server;
  std::string name;
  std::vector<std::string> roles;
  std::vector<std::string> apps;
  int64_t expires_in = 0;  // seconds; 0: the caller's expiry (the server's default)
};

struct TokenIdArgs {
  ServerArgs server;
  std::string id;
};

std::string Joined(const nlohmann::json& list) {
  if (!list.is_array()) return "-";
  std::string out;
  for (const auto& item : list) {
    if (item.is_string()) out += (out.empty() ? "" : ",") + item.get<std::string>();
  }
  return out.empty() ? "-" : out;
}

std::string TimeField(const nlohmann::json& j, const char* field) {
  if (!j.is_object() || !j.contains(field) || !j[field].is_number_integer()) return "-";
  return FormatTime(j[field].get<int64_t>());
}

Result<void> RunTokenCreate(const TokenCreateArgs& a) {
  AIRLOCK_TRY(ValidateId("token name", a.name));
  for (const std::string& app : a.apps) AIRLOCK_TRY(ValidateId("app id", app));
  if (a.roles.empty()) return MakeError(ErrorCode::kInvalidArgument, "--role is required");
  if (a.expires_in < 0) {
    return MakeError(ErrorCode::kInvalidArgument, "--expires-in must be positive");
  }
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  nlohmann::json body = {{"name", a.name}, {"roles", a.roles}};
  if (a.expires_in > 0) body["expires_in"] = a.expires_in;
  if (!a.apps.empty()) body["apps"] = a.apps;
  AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json j, client.Json("POST", "/api/v1/tokens", body));
  if (a.server.json) {
    PrintJson(j);
    return {};
  }
  std::cout << "created token " << JsonString(j, "name") << " (" << JsonString(j, "id")
            << ", roles " << Joined(j.value("roles", nlohmann::json())) << ", apps "
            << (j.contains("apps") && j["apps"].is_array() ? Joined(j["apps"]) : "all")
            << ", expires " << TimeField(j, "expires")
            << "); store it now, it is not shown again:\n"
            << JsonString(j, "token") << "\n";
  return {};
}

Result<void> RunTokenList(const ServerArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a));
  AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json j, client.Json("GET", "/api/v1/tokens"));
  if (a.json) {
    PrintJson(j);
    return {};
  }
  std::vector<TableRow> rows;
  for (const auto& p : j.value("principals", nlohmann::json::array())) {
    const bool token = JsonString(p, "kind") == "token";
    rows.push_back({JsonString(p, "id"), JsonString(p, "name"), JsonString(p, "kind"),
                    Joined(p.value("roles", nlohmann::json())),
                    token && !(p.contains("apps") && p["apps"].is_array())
                        ? "all"
                        : Joined(p.value("apps", nlohmann::json())),
                    TimeField(p, "expires"), TimeField(p, "last_used"),
                    p.value("disabled", false) ? "revoked" : "active"});
  }
  PrintTable(std::cout, {"ID", "NAME", "KIND", "ROLES", "APPS", "EXPIRES", "LAST USED", "STATE"},
             rows);
  return {};
}

Result<void> RunTokenRevoke(const TokenIdArgs& a) {
  AIRLOCK_TRY(ValidateId("token id", a.id));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json j, client.Json("DELETE", "/api/v1/tokens/" + a.id));
  if (a.server.json) {
    PrintJson(j);
    return {};
  }
  std::cout << "revoked token " << JsonString(j, "name") << " (" << JsonString(j, "id")
            << "); tokens it minted are revoked with it\n";
  return {};
}

}  // namespace

void AddTokenCommands(CLI::App& app, Action& action) {
  CLI::App* tokens = app.add_subcommand(
      "token", "airlockd's API tokens: create (e.g. for CI), list and revoke (needs token.manage)");
  tokens->require_subcommand(1);

  auto create = std::make_shared<TokenCreateArgs>();
  CLI::App* tc = tokens->add_subcommand(
      "create",
      "Create an API token (printed once), a child of --token that never reaches beyond it");
  tc->add_option("name", create->name, "Token name, e.g. ci-publisher")->required();
  tc->add_option("--role", create->roles, "Role (repeatable; docs/operations/audit.md)")
      ->required()
      ->check(CLI::IsMember(
          {"owner", "admin", "release-manager", "key-custodian", "auditor", "read-only"}));
  tc->add_option("--app", create->apps,
                 "Limit the token to this app (repeatable; default: the "
                 "apps of --token)");
  tc->add_option("--expires-in", create->expires_in,
                 "Lifetime: a number with s, m, h or d (e.g. 90d; default: the expiry of --token)")
      ->transform(CLI::AsNumberWithUnit(
          std::map<std::string, int64_t>{{"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}},
          CLI::AsNumberWithUnit::UNIT_REQUIRED))
      ->check(CLI::PositiveNumber);
  AddServerOptions(tc, create->server);
  tc->callback([create, &action] { action = [create] { return RunTokenCreate(*create); }; });

  auto list = std::make_shared<ServerArgs>();
  CLI::App* tl = tokens->add_subcommand("list", "List the tokens (and people) --token may see");
  AddServerOptions(tl, *list);
  tl->callback([list, &action] { action = [list] { return RunTokenList(*list); }; });

  auto revoke = std::make_shared<TokenIdArgs>();
  CLI::App* tr = tokens->add_subcommand(
      "revoke", "Revoke a token by id (tok_...); every token it minted stops working too");
  tr->add_option("id", revoke->id, "Token id, as `token list` shows it")->required();
  AddServerOptions(tr, revoke->server);
  tr->callback([revoke, &action] { action = [revoke] { return RunTokenRevoke(*revoke); }; });
}

}  // namespace airlock::cli
