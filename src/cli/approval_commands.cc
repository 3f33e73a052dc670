// airlock channel approval, airlock release approvals|approve|reject|stats: four-eyes approval of
// releases and rollouts, and a release's figures (docs/operations/approvals.md,
// docs/operations/statistics.md).
#include <charconv>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cli/http_client.h"
#include "cli/server_command_helpers.h"
#include "cli/table.h"

namespace airlock::cli {
namespace {

using Json = nlohmann::json;

std::string Percent(const Json& share) {
  if (!share.is_number()) return "-";
  std::ostringstream out;
  out << std::fixed << std::setprecision(1) << share.get<double>() * 100 << "%";
  return out.str();
}

std::string Describe(const Json& a) {
  const std::string kind = JsonString(a, "kind");
  if (kind == "publish") return "publish " + JsonString(a, "version");
  if (kind == "rollout") return "rollout to " + std::to_string(a.value("rollout_percent", 0)) + "%";
  return std::string("policy: approval ") +
         (a.value("approval_required", false)
              ? "required above " + std::to_string(a.value("approval_rollout_above", 100)) + "%"
              : "not required");
}

struct PolicyArgs {
  ServerArgs server;
  std::string app, channel;
  bool required = true;
  int above = 100;
  CLI::Option* above_opt = nullptr;
};

Result<void> RunPolicy(const PolicyArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_TRY(ValidateId("channel name", a.channel));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  Json body = {{"approval_required", a.required}};
  if (a.above_opt->count() > 0) body["approval_rollout_above"] = a.above;
  AIRLOCK_ASSIGN_OR_RETURN(
      Json reply, client.Json("PATCH", "/api/v1/apps/" + a.app + "/channels/" + a.channel, body));
  if (a.server.json) {
    PrintJson(reply);
  } else if (!PrintPending(reply)) {
    PrintChannel(reply);
  }
  return {};
}

struct ListArgs {
  ServerArgs server;
  std::string app, status;
};

Result<void> RunList(const ListArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  std::string path = "/api/v1/apps/" + a.app + "/approvals";
  if (!a.status.empty()) path += "?status=" + a.status;
  AIRLOCK_ASSIGN_OR_RETURN(Json j, client.Json("GET", path));
  if (a.server.json) {
    PrintJson(j);
    return {};
  }
  std::vector<TableRow> rows;
  for (const auto& x : j.value("approvals", Json::array())) {
    rows.push_back({std::to_string(x.value("id", int64_t{0})), JsonString(x, "channel"),
                    Describe(x), JsonString(x, "requested_by"),
                    FormatTime(x.value("requested_at", int64_t{0})), JsonString(x, "status"),
                    JsonString(x, "decided_by")});
  }
  PrintTable(std::cout, {"ID", "CHANNEL", "CHANGE", "REQUESTED BY", "REQUESTED", "STATUS", "BY"},
             rows);
  return {};
}

struct DecideArgs {
  ServerArgs server;
  std::string app;
  int64_t id = 0;
};

Result<void> RunDecide(const DecideArgs& a, bool approve) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  AIRLOCK_ASSIGN_OR_RETURN(
      Json j, client.Json("POST",
                          "/api/v1/apps/" + a.app + "/approvals/" + std::to_string(a.id) +
                              (approve ? "/approve" : "/reject"),
                          Json::object()));
  if (a.server.json) {
    PrintJson(j);
    return {};
  }
  std::cout << (approve ? "approved " : "rejected ") << j.value("id", int64_t{0}) << ": "
            << Describe(j) << " on channel " << JsonString(j, "channel") << " (requested by "
            << JsonString(j, "requested_by") << ")\n";
  return {};
}

struct StatsArgs {
  ServerArgs server;
  std::string app, version;
};

Result<void> RunStats(const StatsArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_TRY(ValidateVersion("version", a.version));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  AIRLOCK_ASSIGN_OR_RETURN(
      Json j, client.Json("GET", "/api/v1/apps/" + a.app + "/releases/" + a.version + "/stats"));
  if (a.server.json) {
    PrintJson(j);
    return {};
  }
  const Json& f = j["funnel"];
  std::cout << a.app << " " << a.version << " (published "
            << FormatTime(j.value("published_at", int64_t{0})) << ")\n";
  std::vector<TableRow> rows;
  for (const char* step :
       {"offered", "downloaded", "verified", "installed", "confirmed", "failed", "rolled_back"}) {
    rows.push_back({step, std::to_string(f.value(step, int64_t{0}))});
  }
  PrintTable(std::cout, {"STEP", "DEVICES"}, rows);
  for (const auto& [reason, n] : j["failed_by_reason"].items()) {
    std::cout << "  failed: " << reason << " " << n.get<int64_t>() << "\n";
  }
  const Json& ad = j["adoption"];
  std::cout << "success rate " << Percent(j["success_rate"]) << "; on it now "
            << ad.value("on_release", int64_t{0}) << " of "
            << ad.value("active_devices", int64_t{0}) << " active devices (" << Percent(ad["share"])
            << "); within 24 h " << Percent(ad["within_24h"]) << "\n";
  return {};
}

}  // namespace

bool PrintPending(const Json& reply) {
  if (reply.value("status", "") != "pending_approval" || !reply.contains("approval")) return false;
  const Json& a = reply["approval"];
  const int64_t id = a.value("id", int64_t{0});
  std::cout << "waiting for approval " << id << ": " << Describe(a) << " on channel "
            << JsonString(a, "channel") << "; a second principal runs `airlock release approve "
            << JsonString(a, "app") << " " << id << "`\n";
  return true;
}

void AddApprovalCommands(CLI::App& app, Action& action) {
  CLI::App* releases = app.get_subcommand("release");
  CLI::App* channels = app.get_subcommand("channel");

  auto policy = std::make_shared<PolicyArgs>();
  CLI::App* cp = channels->add_subcommand(
      "approval", "Require (or stop requiring) a second principal for publishes and rollouts");
  cp->add_option("app_id", policy->app, "App id")->required();
  cp->add_option("channel", policy->channel, "Channel name")->required();
  AddServerOptions(cp, policy->server);
  cp->add_flag("--required,!--not-required", policy->required,
               "Publishes and large rollouts wait for approval (loosening waits too)");
  policy->above_opt = cp->add_option("--rollout-above", policy->above,
                                     "Rollouts above this percentage need approval (default 100)")
                          ->check(CLI::Range(0, 100));
  cp->callback([policy, &action] { action = [policy] { return RunPolicy(*policy); }; });

  auto list = std::make_shared<ListArgs>();
  CLI::App* rl = releases->add_subcommand("approvals", "List an app's approval requests");
  rl->add_option("app_id", list->app, "App id")->required();
  AddServerOptions(rl, list->server);
  rl->add_option("--status", list->status, "pending, approved or rejected (default: all)")
      ->check(CLI::IsMember({"pending", "approved", "rejected"}));
  rl->callback([list, &action] { action = [list] { return RunList(*list); }; });

  for (const bool approve : {true, false}) {
    auto args = std::make_shared<DecideArgs>();
    CLI::App* c = releases->add_subcommand(
        approve ? "approve" : "reject",
        approve ? "Approve another principal's pending publish, rollout or policy change"
                : "Reject a pending change (the requester may withdraw its own)");
    c->add_option("app_id", args->app, "App id")->required();
    c->add_option("id", args->id, "Approval id (airlock release approvals)")
        ->required()
        ->check(CLI::PositiveNumber);
    AddServerOptions(c, args->server);
    c->callback([args, approve, &action] {
      action = [args, approve] { return RunDecide(*args, approve); };
    });
  }

  auto stats = std::make_shared<StatsArgs>();
  CLI::App* rs = releases->add_subcommand(
      "stats", "A release's funnel, failure reasons, success rate and adoption");
  rs->add_option("app_id", stats->app, "App id")->required();
  rs->add_option("version", stats->version, "Release version")->required();
  AddServerOptions(rs, stats->server);
  rs->callback([stats, &action] { action = [stats] { return RunStats(*stats); }; });
}

}  // namespace airlock::cli
