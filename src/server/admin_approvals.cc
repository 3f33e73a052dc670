// The admin API's four-eyes approvals and release statistics (docs/operations/approvals.md,
// docs/operations/statistics.md; docs/api/server-api.md is the contract).
//
// A channel with approval_required holds three kinds of change until a second principal approves:
// a publish (the release is stored, the channel keeps offering the previous one), a rollout above
// approval_rollout_above percent, and any loosening of the policy itself (so one stolen token
// cannot switch the guard off and then publish). The requester may withdraw (reject) but never
// approve: the approver must differ by name, and neither token may have minted the other (directly
// or through tokens in between). Tokens minted side by side by a third are two principals: a token
// that may mint tokens (token.manage) can always make a second principal, so four-eyes guards
// against a stolen publishing token (a CI's release-manager token), not a stolen token manager.
// Deciding is one transaction in the store, so
// two approvers, here or on another airlockd, apply a change once.
#include <algorithm>
#include <charconv>
#include <string>

#include "common/semver.h"
#include "server/admin_api_internal.h"
#include "server/capgo_routes.h"
#include "server/server_api.h"

namespace airlock::server {

using Json = nlohmann::json;
using namespace api_internal;    // NOLINT(google-build-using-namespace): this module's own helpers
using namespace admin_internal;  // NOLINT(google-build-using-namespace)

namespace {

constexpr int64_t kDay = 86400;
constexpr int64_t kHour = 3600;
constexpr size_t kMaxSeriesPoints = 200;

Json OptJson(const std::optional<std::string>& v) { return v ? Json(*v) : Json(nullptr); }
Json OptJson(const std::optional<int64_t>& v) { return v ? Json(*v) : Json(nullptr); }

}  // namespace

namespace admin_internal {

Json ApprovalJson(const storage::Approval& a) {
  return {{"id", a.id},
          {"app", a.app_id},
          {"channel", a.channel},
          {"kind", a.kind},
          {"version", OptJson(a.version)},
          {"rollout_percent", OptJson(a.rollout_percent)},
          {"approval_required", a.policy_required ? Json(*a.policy_required) : Json(nullptr)},
          {"approval_rollout_above", OptJson(a.policy_rollout_above)},
          {"requested_by", a.requested_by},
          {"requested_at", a.requested_at},
          {"status", a.status},
          {"decided_by", OptJson(a.decided_by)},
          {"decided_at", OptJson(a.decided_at)}};
}

}  // namespace admin_internal

std::vector<std::string> AdminApi::Lineage(const access::Principal& p) {
  if (p.token_id.empty()) return {"principal:" + p.name};
  std::vector<std::string> chain = {p.token_id};
  std::optional<std::string> parent = p.parent_token_id;
  std::lock_guard lock(access_mutex);
  // A chain is at most as long as the tokens minted; the bound only stops a corrupt cycle.
  while (parent && chain.size() < 1000) {
    chain.push_back(*parent);
    auto token = deps.access->FindTokenById(*parent);
    if (!token) break;  // removed: its id still names the lineage
    parent = token->parent_token_id;
  }
  return chain;
}

storage::Approval AdminApi::NewApproval(const storage::Channel& c, std::string kind,
                                        const access::Principal& requester) {
  storage::Approval a;
  a.app_id = c.app_id;
  a.channel = c.name;
  a.kind = std::move(kind);
  a.requested_by = requester.name;
  for (const std::string& id : Lineage(requester)) {
    a.requester_lineage += (a.requester_lineage.empty() ? "" : " ") + id;
  }
  a.requested_at = Now(deps);
  return a;
}

Response AdminApi::Pending(const storage::Approval& approval, Json extra) {
  extra["status"] = "pending_approval";
  extra["approval"] = ApprovalJson(approval);
  extra["message"] = "channel " + approval.channel + " needs a second principal to approve this (" +
                     "airlock release approve " + std::to_string(approval.id) + ")";
  return Ok(202, extra);
}

std::optional<Response> AdminApi::ApplyApprovalPolicy(const Json& body, storage::Channel* c,
                                                      const access::Principal& actor,
                                                      bool* pending) {
  *pending = false;
  auto required = OptBool(body, "approval_required");
  if (!required) return BadRequest(required.error());
  auto above = OptInt(body, "approval_rollout_above", 0, 100);
  if (!above) return BadRequest(above.error());
  if (!*required && !*above) return std::nullopt;
  const bool new_required = required->value_or(c->approval_required);
  const int new_above = above->has_value() ? static_cast<int>(**above) : c->approval_rollout_above;
  if (new_required == c->approval_required && new_above == c->approval_rollout_above) {
    return std::nullopt;
  }
  const bool loosens =
      c->approval_required && (!new_required || new_above > c->approval_rollout_above);
  if (!loosens) {
    if (auto set = deps.store->SetChannelApproval(c->app_id, c->name, new_required, new_above);
        !set) {
      return ErrorResponse(set.error());
    }
    c->approval_required = new_required;
    c->approval_rollout_above = new_above;
    return std::nullopt;
  }
  for (const auto& [key, value] : body.items()) {
    if (key != "approval_required" && key != "approval_rollout_above") {
      return JsonError(400, "bad_request",
                       "a change that loosens the approval policy waits for approval: send it "
                       "without other fields (found '" +
                           key + "')");
    }
  }
  storage::Approval a = NewApproval(*c, "policy", actor);
  a.policy_required = new_required;
  a.policy_rollout_above = new_above;
  auto made = deps.store->CreateApproval(a);
  if (!made) return ErrorResponse(made.error());
  *pending = true;
  return Pending(*made, {{"channel", ChannelJson(*c)}});
}

Response AdminApi::ListApprovals(const Request& req) {
  std::optional<Response> err;
  auto app = LoadApp(req, &err);
  if (!app) return *err;
  std::string status;
  for (const auto& [key, value] : DecodeQuery(req.query)) {
    if (key == "status") status = value;
  }
  auto limit = QueryLimit(req, 100, &err);
  if (!limit) return *err;
  auto list = deps.store->ListApprovals(app->app_id, status, *limit);
  if (!list) return ErrorResponse(list.error());
  Json out = Json::array();
  for (const auto& a : *list) out.push_back(ApprovalJson(a));
  return Ok(200, {{"approvals", out}});
}

Response AdminApi::DecideApproval(const Request& req, const access::Principal& actor,
                                  bool approve) {
  std::optional<Response> err;
  auto app = LoadApp(req, &err);
  if (!app) return *err;
  auto id = PathId(req, "approval", &err);
  if (!id) return *err;
  std::lock_guard lock(write_mutex);
  auto approval = deps.store->GetApproval(app->app_id, *id);
  if (!approval) return ErrorResponse(approval.error());
  // The requester, a token it minted (at any depth) or one that minted it: one principal.
  bool same = actor.name == approval->requested_by;
  const std::vector<std::string> mine = Lineage(actor);
  std::vector<std::string> theirs;
  for (size_t start = 0; start < approval->requester_lineage.size();) {
    size_t end = approval->requester_lineage.find(' ', start);
    if (end == std::string::npos) end = approval->requester_lineage.size();
    theirs.push_back(approval->requester_lineage.substr(start, end - start));
    start = end + 1;
  }
  if (!theirs.empty() && std::find(mine.begin(), mine.end(), theirs.front()) != mine.end()) {
    same = true;  // the approver descends from the requester
  }
  if (std::find(theirs.begin(), theirs.end(), mine.front()) != theirs.end()) {
    same = true;  // the requester descends from the approver
  }
  if (approve && same) {
    return JsonError(403, "self_approval",
                     "approval " + std::to_string(*id) + " was requested by " +
                         approval->requested_by +
                         "; a second principal must approve it (the requester may only reject)");
  }
  auto decided = deps.store->DecideApproval(app->app_id, *id, approve, actor.name, Now(deps));
  if (!decided) {
    if (decided.error().code() == ErrorCode::kRollback) {
      return JsonError(409, "conflict", decided.error().message());
    }
    return ErrorResponse(decided.error());
  }
  Invalidate(app->app_id);
  return Ok(200, ApprovalJson(*decided));
}

Response AdminApi::ReleaseStats(const Request& req) {
  std::optional<Response> err;
  auto app = LoadApp(req, &err);
  if (!app) return *err;
  std::string version(req.Param("version"));
  if (auto v = Semver::Parse(version); !v) {
    return JsonError(400, "bad_request", "version: " + v.error().message());
  }
  auto release = deps.store->GetRelease(app->app_id, version);
  if (!release) return ErrorResponse(release.error());
  const int64_t now = Now(deps);
  int64_t active_days = 30;
  for (const auto& [key, value] : DecodeQuery(req.query)) {
    if (key != "active_days") continue;
    const auto* end = value.data() + value.size();
    if (std::from_chars(value.data(), end, active_days).ptr != end || active_days < 1 ||
        active_days > 365) {
      return JsonError(400, "bad_request", "active_days must be 1 to 365");
    }
  }
  const int64_t from = release->created_at;
  auto stats =
      deps.store->GetReleaseStats(app->app_id, version, now - active_days * kDay, from, kHour);
  if (!stats) return ErrorResponse(stats.error());
  auto channels = deps.store->ListChannels(app->app_id);
  if (!channels) return ErrorResponse(channels.error());
  Json offering = Json::array();
  for (const auto& c : *channels) {
    if (c.current_version == version) offering.push_back(c.name);
  }
  Json funnel = Json::object();
  for (std::string_view step : storage::ReleaseStats::kSteps) {
    funnel[std::string(step)] = stats->Devices(step);
  }
  const std::optional<double> success = stats->SuccessRate();
  const double active = static_cast<double>(stats->active_devices);
  auto share = [&](int64_t n) { return active > 0 ? Json(n / active) : Json(nullptr); };
  // Confirmations up to an offset after publishing (the buckets are hours).
  auto confirmed_by = [&](int64_t offset) {
    int64_t n = 0;
    for (const auto& [start, count] : stats->confirmed_by_bucket) {
      if (start < offset) n += count;
    }
    return n;
  };
  Json series = Json::array();
  const int64_t elapsed = std::max<int64_t>(0, now - from);
  for (int64_t offset = kHour; series.size() < kMaxSeriesPoints;) {
    const int64_t at = std::min(offset, elapsed);
    series.push_back(
        {{"t", from + at}, {"confirmed", confirmed_by(at)}, {"share", share(confirmed_by(at))}});
    if (at >= elapsed) break;
    offset += offset < 2 * kDay ? kHour : kDay;  // hourly for two days, then daily
  }
  Json reasons = Json::object();
  for (const auto& [reason, n] : stats->failed_by_reason) reasons[reason] = n;
  return Ok(200, {{"app", app->app_id},
                  {"version", version},
                  {"published_at", from},
                  {"channels", offering},
                  {"funnel", funnel},
                  {"failed_by_reason", reasons},
                  {"success_rate", success ? Json(*success) : Json(nullptr)},
                  {"adoption",
                   {{"active_devices", stats->active_devices},
                    {"active_days", active_days},
                    {"on_release", stats->on_release},
                    {"share", share(stats->on_release)},
                    {"within_24h", elapsed >= kDay ? share(confirmed_by(kDay)) : Json(nullptr)}}},
                  {"adoption_series", series}});
}

}  // namespace airlock::server
