// The authorization matrix: every route airlockd serves, read from the router AddAirlockdRoutes
// builds (the one main.cc serves), so a route added there cannot be missed. Each admin route is
// called with a token of every role, tokens limited to this app and to another app, an expired, a
// revoked, an unknown and a malformed token, another scheme and no token at all; the set of callers
// let through must be exactly the one the table below allows: no unexpected success, no unexpected
// refusal. The table is written from docs/operations/audit.md ("Access control"), not from
// roles.cc, so a change of the role table or of a route's guard fails here until both agree.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "server/server_api_test_fixture.h"

namespace airlock::server {
namespace {

using namespace testing_fixture;  // NOLINT(build/namespaces)

// What an admin route needs.
enum class Need { kRead, kPublish, kTokens, kAudit, kSuspend, kVerify, kKeyList };

struct RouteRule {
  Need need;
  bool server_wide = false;  // refused to tokens limited to apps
};

// docs/operations/audit.md: release.read, release.publish, token.manage (and principal.manage),
// audit.read, key.suspend, audit.verify, key.list.
const std::map<Need, std::set<std::string>>& AllowedRoles() {
  static const auto* table = new std::map<Need, std::set<std::string>>{
      {Need::kRead, {"owner", "admin", "release-manager", "auditor", "read-only"}},
      {Need::kPublish, {"owner", "admin", "release-manager"}},
      {Need::kTokens, {"owner", "admin"}},
      {Need::kAudit, {"owner", "admin", "key-custodian", "auditor"}},
      {Need::kSuspend, {"owner", "admin", "key-custodian"}},
      {Need::kVerify, {"owner", "admin", "key-custodian", "auditor"}},
      {Need::kKeyList,
       {"owner", "admin", "release-manager", "key-custodian", "auditor", "read-only"}},
  };
  return *table;
}

// Every admin route (docs/api/server-api.md) and what it needs.
const std::map<std::string, RouteRule>& AdminRoutes() {
  static const auto* table = new std::map<std::string, RouteRule>{
      {"POST /api/v1/apps", {Need::kPublish, true}},
      {"GET /api/v1/apps", {Need::kRead}},
      {"GET /api/v1/apps/{app}", {Need::kRead}},
      {"POST /api/v1/apps/{app}/enrollment-token", {Need::kPublish}},
      {"PUT /api/v1/apps/{app}/root", {Need::kPublish}},
      {"PUT /api/v1/apps/{app}/targets", {Need::kPublish}},
      {"POST /api/v1/blobs", {Need::kPublish}},
      {"POST /api/v1/apps/{app}/channels", {Need::kPublish}},
      {"GET /api/v1/apps/{app}/channels", {Need::kRead}},
      {"GET /api/v1/apps/{app}/channels/{name}", {Need::kRead}},
      {"PATCH /api/v1/apps/{app}/channels/{name}", {Need::kPublish}},
      {"PUT /api/v1/apps/{app}/channels/{name}/rollout", {Need::kPublish}},
      {"POST /api/v1/apps/{app}/channels/{name}/pause", {Need::kPublish}},
      {"POST /api/v1/apps/{app}/channels/{name}/resume", {Need::kPublish}},
      {"POST /api/v1/apps/{app}/channels/{name}/rollback", {Need::kPublish}},
      {"POST /api/v1/apps/{app}/releases", {Need::kPublish}},
      {"GET /api/v1/apps/{app}/releases/check", {Need::kPublish}},
      {"GET /api/v1/apps/{app}/releases", {Need::kRead}},
      {"GET /api/v1/apps/{app}/releases/{version}/stats", {Need::kRead}},
      {"GET /api/v1/apps/{app}/approvals", {Need::kRead}},
      {"POST /api/v1/apps/{app}/approvals/{id}/approve", {Need::kPublish}},
      {"POST /api/v1/apps/{app}/approvals/{id}/reject", {Need::kPublish}},
      {"GET /api/v1/apps/{app}/devices", {Need::kRead}},
      {"GET /api/v1/apps/{app}/devices/{device}/events", {Need::kRead}},
      {"PUT /api/v1/apps/{app}/devices/{device}/channel", {Need::kPublish}},
      {"POST /api/v1/apps/{app}/devices/{device}/approve", {Need::kPublish}},
      {"POST /api/v1/apps/{app}/devices/{device}/revoke", {Need::kPublish}},
      {"GET /api/v1/apps/{app}/enrollment-policy", {Need::kRead}},
      {"PUT /api/v1/apps/{app}/enrollment-policy", {Need::kTokens}},
      {"POST /api/v1/apps/{app}/preauthorized-keys", {Need::kTokens}},
      {"GET /api/v1/apps/{app}/preauthorized-keys", {Need::kRead}},
      {"POST /api/v1/tokens", {Need::kTokens}},
      {"GET /api/v1/tokens", {Need::kTokens}},
      {"DELETE /api/v1/tokens/{id}", {Need::kTokens}},
      {"GET /api/v1/audit", {Need::kAudit, true}},
      {"GET /api/v1/alerts", {Need::kAudit, true}},
      {"GET /api/v1/alerts/{id}", {Need::kAudit, true}},
      {"POST /api/v1/alerts/{id}/ack", {Need::kSuspend, true}},
      {"POST /api/v1/alerts/{id}/resolve", {Need::kSuspend, true}},
      {"GET /api/v1/alert-rules", {Need::kAudit, true}},
      {"PUT /api/v1/alert-rules/{rule}", {Need::kTokens, true}},
      {"POST /api/v1/keys/{key}/compromise", {Need::kSuspend, true}},
      {"GET /api/v1/reports", {Need::kAudit, true}},
      {"GET /api/v1/reports/{id}", {Need::kAudit, true}},
      {"POST /api/v1/reports/{id}/signoff", {Need::kVerify, true}},
      {"GET /api/v1/keys", {Need::kKeyList, true}},
  };
  return *table;
}

// Routes without a token: health, metrics, the signed TUF files and sealed blobs, the dashboard's
// static files (they hold no data: the pages call the admin API with the user's token), and the
// device protocols (a device proves itself with its request signature or is a plain Capgo client).
const std::set<std::string>& UnguardedRoutes() {
  static const auto* routes = new std::set<std::string>{
      "GET /healthz",      "GET /metrics",           "GET /tuf/{app}/targets/*",
      "GET /tuf/{app}/*",  "GET /v1/blobs/{sha256}", "POST /v1/enroll",
      "POST /v1/check",    "POST /v1/report",        "POST /updates",
      "POST /stats",       "POST /channel_self",     "PUT /channel_self",
      "GET /channel_self", "DELETE /channel_self",   "GET /dashboard",
      "GET /dashboard/*",
  };
  return *routes;
}

constexpr char kOtherApp[] = "org.other.app";

class AuthzMatrixTest : public ServerApiTest {
 protected:
  // One caller: the Authorization header it sends and the roles it would have if authenticated.
  struct Caller {
    std::string name;
    std::optional<std::string> authorization;  // header value; nullopt = none
    std::string role;                          // empty: never authenticated
    std::vector<std::string> apps;             // empty = all apps
  };

  void SetUp() override {
    ServerApiTest::SetUp();
    ASSERT_NO_FATAL_FAILURE(CreateApp());
    ASSERT_NO_FATAL_FAILURE(CreateChannel("production", true));
    for (std::string_view role_name :
         {"owner", "admin", "release-manager", "key-custodian", "auditor", "read-only", "device"}) {
      auto role = access::ParseRole(role_name);
      ASSERT_TRUE(role);
      auto made = access_->CreateToken("matrix-" + std::string(role_name), {*role});
      ASSERT_TRUE(made) << made.error().ToString();
      callers_.push_back({std::string(role_name), "Bearer " + made->token, std::string(role_name)});
    }
    auto owner = access_->AuthenticateToken(owner_token_);
    ASSERT_TRUE(owner);
    for (const std::string& app : {std::string(kApp), std::string(kOtherApp)}) {
      access::TokenLimits limits;
      limits.parent_token_id = owner->token_id;
      limits.apps = {app};
      auto made = access_->CreateToken("matrix-owner-" + app, {access::Role::kOwner}, 0, limits);
      ASSERT_TRUE(made) << made.error().ToString();
      callers_.push_back({"owner limited to " + app, "Bearer " + made->token, "owner", {app}});
    }
    auto expiring = access_->CreateToken("matrix-expired", {access::Role::kOwner}, 60);
    ASSERT_TRUE(expiring);
    callers_.push_back({"expired owner", "Bearer " + expiring->token, ""});
    auto revoked = access_->CreateToken("matrix-revoked", {access::Role::kOwner});
    ASSERT_TRUE(revoked);
    ASSERT_TRUE(access_->RevokeToken(revoked->principal.token_id));
    callers_.push_back({"revoked owner", "Bearer " + revoked->token, ""});
    callers_.push_back({"unknown token", "Bearer alk_" + std::string(64, '0'), ""});
    callers_.push_back({"malformed token", "Bearer not-a-token", ""});
    callers_.push_back({"basic scheme", "Basic b3duZXI6cGFzc3dvcmQ=", ""});
    callers_.push_back({"no token", std::nullopt, ""});
    now_ += 120;  // the expiring token is now expired
  }

  // A concrete target for a route pattern: this app, its channel, an unknown device and token id
  // (so an allowed call changes nothing it would matter to undo).
  static std::string Target(const std::string& pattern) {
    std::string out = pattern;
    const std::vector<std::pair<std::string, std::string>> fill = {
        {"{app}", kApp},
        {"{name}", "production"},
        {"{device}", "matrix-device"},
        {"{id}", "tok_0000000000000000"}};
    for (const auto& [from, to] : fill) {
      for (size_t at = out.find(from); at != std::string::npos; at = out.find(from)) {
        out.replace(at, from.size(), to);
      }
    }
    return out;
  }

  Reply CallAs(const Caller& caller, const std::string& method, const std::string& pattern) {
    std::map<std::string, std::string> headers;
    if (caller.authorization) headers["Authorization"] = *caller.authorization;
    std::optional<UploadedFile> upload;
    if (upload_route_expected(pattern)) {
      fs::path file = dir_->path() / ("matrix-upload-" + std::to_string(uploads_++));
      EXPECT_TRUE(WriteFileAtomic(file, AsBytes("matrix")));
      upload = UploadedFile{file, 6, HexEncode(crypto::Sha256(AsBytes("matrix")))};
    }
    return Call(method, Target(pattern), "", std::nullopt, std::move(headers), std::move(upload));
  }

  static bool Expected(const Caller& caller, const RouteRule& rule, const std::string& pattern) {
    if (caller.role.empty()) return false;
    if (AllowedRoles().at(rule.need).count(caller.role) == 0) return false;
    if (caller.apps.empty()) return true;
    if (rule.server_wide) return false;
    // A token limited to apps may use a route for one of its apps, and the routes that name no app.
    return pattern.find("{app}") == std::string::npos ||
           std::find(caller.apps.begin(), caller.apps.end(), kApp) != caller.apps.end();
  }

  std::vector<Caller> callers_;
  int uploads_ = 0;
};

TEST_F(AuthzMatrixTest, EveryRouteIsInTheMatrixAndEveryMatrixRouteIsServed) {
  std::set<std::string> served;
  for (const std::string& label : router_.Labels()) {
    served.insert(label);
    EXPECT_TRUE(AdminRoutes().count(label) + UnguardedRoutes().count(label) == 1)
        << label << " is served but not in the authorization matrix (or in both of its lists)";
  }
  for (const auto& [label, rule] : AdminRoutes()) EXPECT_TRUE(served.count(label)) << label;
  for (const auto& label : UnguardedRoutes()) EXPECT_TRUE(served.count(label)) << label;
}

TEST_F(AuthzMatrixTest, EachCallerReachesExactlyTheAdminRoutesItsRolesAndAppsAllow) {
  int allowed = 0;
  int refused = 0;
  for (const auto& [label, rule] : AdminRoutes()) {
    const std::string method = label.substr(0, label.find(' '));
    const std::string pattern = label.substr(label.find(' ') + 1);
    for (const Caller& caller : callers_) {
      Reply reply = CallAs(caller, method, pattern);
      const bool expected = Expected(caller, rule, pattern);
      const std::string what = caller.name + " -> " + label + ": " + std::to_string(reply.status) +
                               " " + reply.raw.substr(0, 200);
      if (expected) {
        ++allowed;
        EXPECT_NE(reply.status, 401) << what;
        EXPECT_NE(reply.status, 403) << what;
      } else {
        ++refused;
        if (caller.role.empty()) {
          EXPECT_EQ(reply.status, 401) << what;
          EXPECT_EQ(reply.error(), "unauthorized") << what;
        } else {
          EXPECT_EQ(reply.status, 403) << what;
          EXPECT_EQ(reply.error(), "forbidden") << what;
        }
      }
    }
  }
  // The matrix is not empty on either side (a guard that let everyone through, or no one, fails
  // above; these say the walk happened).
  EXPECT_GT(allowed, 100);
  EXPECT_GT(refused, 200);
  RecordProperty("allowed", allowed);
  RecordProperty("refused", refused);
}

}  // namespace
}  // namespace airlock::server
