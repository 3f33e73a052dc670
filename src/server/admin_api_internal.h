// Internal to the admin API (admin_api.cc: authentication, audit records and the route table;
// admin_apps.cc, admin_releases.cc, admin_devices.cc, admin_tokens.cc: the handlers). Every admin
// route handler is a member of AdminApi; the helpers below are shared by those files.
//
// Why some things are the way they are:
//  * Channel changes are read-modify-write of the whole row (Store::UpdateChannel replaces every
//    field), so every channel-changing handler of this process runs under AdminApi::write_mutex;
//    otherwise a PATCH could write back a stale current_version over a concurrent publish. (Two
//    airlockd processes can still race there; admin traffic is rare and the window is one request.)
//  * A release is checked completely (Store state, targets verification, target customs, bundle
//    recipients) before anything is written; then AppRepo::AcceptTargets writes the metadata and
//    Store::PublishRelease commits the row and the channel's current version in one transaction.
//    The two stores cannot share a transaction: if the database write fails after the metadata was
//    written, the served targets list a target no channel offers yet (harmless: devices only
//    install what a channel offers), and the error is returned.
//  * App creation makes the online keys first, then the row; the contract's 409 is checked on the
//    row before any key is made.
#ifndef AIRLOCK_SERVER_ADMIN_API_INTERNAL_H_
#define AIRLOCK_SERVER_ADMIN_API_INTERNAL_H_

#include <cstddef>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "access/access_store.h"
#include "audit/audit_log.h"
#include "server/app_repo.h"
#include "server/router.h"
#include "server/server_api.h"
#include "storage/store.h"

namespace airlock::server {

namespace admin_internal {

using Json = nlohmann::json;

Json ChannelJson(const storage::Channel& c);
Json ReleaseJson(const storage::Release& r);
Json ApprovalJson(const storage::Approval& a);
Json DeviceJson(const storage::Device& d);
Json OnlineKeysJson(const OnlineKeys& keys);
Json PrincipalJson(const access::Principal& p);
Json UsageRecordJson(const audit::UsageRecord& r);
Response Ok(int status, const Json& body);
Response BadRequest(const Error& error);
// Errors of verifying uploaded metadata: a wrong version is 409 conflict, failures of ours 500,
// every other refusal (signatures, expiry, roles, unknown or mismatching blobs, no root yet) 422.
Response VerificationError(const Error& error);
// The {id} path parameter (a positive integer, at most 18 digits), or nullopt with *err the 400
// "WHAT id must be a positive integer".
std::optional<int64_t> PathId(const Request& req, std::string_view what,
                              std::optional<Response>* err);
std::optional<size_t> QueryLimit(const Request& req, size_t fallback, std::optional<Response>* err);
// The blob store as AppRepo sees it.
BlobLookup MakeBlobLookup(std::filesystem::path data_dir);
// "alb" when the file starts with the sealed-bundle magic, else "zip".
std::string BlobFormat(const std::filesystem::path& path);
const TrustedTarget* FindTarget(const std::vector<TrustedTarget>& targets, std::string_view name);
// j[key] when j is an object holding a string there, else "" (signed custom fields are free-form
// JSON: a number or an array where a name is expected must be a refusal, not an exception).
std::string SignedString(const Json& j, const char* key);
// The target must carry custom {"app_id": app, "version": version}.
Result<void> CheckTargetCustom(const TrustedTarget& target, std::string_view app,
                               std::string_view version);

}  // namespace admin_internal

struct AdminApi {
  using Json = nlohmann::json;

  ServerApiDeps deps;
  std::mutex access_mutex;  // access::AccessStore is not thread-safe
  std::mutex write_mutex;   // channel read-modify-write and publish (see the top of this file)
  std::mutex audit_mutex;   // audit_log (audit::AuditLog is not thread-safe)
  std::optional<audit::AuditLog> audit_log;  // opened on the first admin record

  using AuthedHandler = std::function<Response(const Request&, const access::Principal&)>;

  // Which apps a route touches, for tokens limited to named apps (access::Principal::apps): routes
  // with an {app} parameter are checked against it; kServerWide routes (creating apps, the audit
  // log) are refused to limited tokens; kFiltered routes (blob upload, listings) are open to them
  // and list only what the token may see.
  enum class Scope { kFiltered, kServerWide };

  // The outcome of checking a request's header: the principal, or the refusal (with the principal
  // when it was authenticated but may not do this).
  struct Admission {
    std::optional<access::Principal> principal;
    std::optional<Response> refusal;
  };

  // Authenticates the bearer token and checks `action` and the app scope, from the header alone.
  // Records the token's use (at most once a minute).
  Admission Admit(const Request& req, access::Action action, Scope scope);
  static std::string AppList(const access::Principal& p);

  // The route's handler and its pre-body check. The check (run by HttpServer after the header,
  // before the body) admits the request and leaves the principal in Request::context; the handler
  // uses it, or admits the request itself when called without the check (tests calling handlers
  // directly). Mutating routes (`log_action` set) log one JSON line and append one record to the
  // server's audit log (Record) with the outcome.
  RouteHandlers Guard(access::Action action, std::string log_action, AuthedHandler handler,
                      Scope scope = Scope::kFiltered);

  // The outcome of a mutating request (`log_action` non-empty): one JSON line on stderr, and for an
  // authenticated principal one record in the server's key usage log (deps.audit_log): actor = the
  // token's name, source = the TCP peer address (X-Forwarded-For is never trusted), operation =
  // `log_action`, details = token id, request, app and status.
  void Record(const Request& req, const access::Principal* principal, const std::string& log_action,
              const Response& response);

  // {app} of the path, else the app_id of a created app's reply.
  static std::string AppForLog(const Request& req, const Response& response);
  void Invalidate(std::string_view app);
  Response CreateApp(const Request& req);

  // A device enrollment token ("enr_" + 64 hex) and the SHA-256 hex stored for it.
  static Result<std::pair<std::string, std::string>> NewEnrollmentToken();

  // POST /api/v1/apps/{app}/enrollment-token: a new token replaces the old one (a leaked token, or
  // an `app create` that failed before its token was shown). Devices already enrolled stay
  // enrolled.
  Response RotateEnrollmentToken(const Request& req);

  // Only the apps `actor` may see (access::Principal::apps).
  Response ListApps(const access::Principal& actor);

  // The app named by {app}, or the 400/404 reply.
  Result<storage::App> LoadApp(const Request& req, std::optional<Response>* err);
  Response GetApp(const Request& req);
  Response PutRoot(const Request& req);
  Response PutTargets(const Request& req);
  Response UploadBlob(const Request& req);

  // Applies the settable fields present in `body` to `c`.
  static Result<void> ApplyChannelFields(const Json& body, storage::Channel* c, bool allow_paused);
  Response CreateChannel(const Request& req);
  Response ListChannels(const Request& req);

  // The channel named by {app}/{name}, or the 400/404 reply.
  Result<storage::Channel> LoadChannel(const Request& req, std::optional<Response>* err);
  Response GetChannel(const Request& req);

  // Read-modify-write of a channel under write_mutex.
  Response ChangeChannel(const Request& req,
                         const std::function<std::optional<Response>(storage::Channel*)>& change);
  Response PatchChannel(const Request& req, const access::Principal& actor);
  Response PutRollout(const Request& req, const access::Principal& actor);
  Response SetPaused(const Request& req, bool paused);

  // POST .../rollback {"to": V[, "targets_metadata": {...}]}: the targets metadata, when given (the
  // CLI signs V as a rollback target), is verified first and the rollback checked against it; it is
  // accepted only if the rollback is allowed, so a refused rollback changes nothing.
  Response Rollback(const Request& req);
  Response Publish(const Request& req, const access::Principal& actor);
  // GET .../releases/check?version=V&channel=C: what Publish would refuse before any blob is
  // uploaded (app, channel, version new; the route's guard checks the caller may publish).
  // 200 {"version", "channel"} or Publish's own 400/404/409; changes nothing.
  Response CheckPublish(const Request& req);
  // The 404/409 reply if `version` cannot be published to channel `channel` of `app_id`.
  std::optional<Response> RefusePublish(const std::string& app_id, const std::string& version,
                                        const std::string& channel);
  Response ListReleases(const Request& req);

  // --- approvals and statistics (admin_approvals.cc) ---
  // `p`'s token id, then the ids of the tokens that minted it up to the first ("principal:NAME"
  // for a person). An approver that is in the requester's lineage, or has the requester in its
  // own, is refused.
  std::vector<std::string> Lineage(const access::Principal& p);
  storage::Approval NewApproval(const storage::Channel& c, std::string kind,
                                const access::Principal& requester);
  // 202 {"status": "pending_approval", "approval": {...}, "message", ...extra}.
  Response Pending(const storage::Approval& approval, Json extra);
  // The approval_required / approval_rollout_above fields of a PATCH: a tightening is applied to
  // the store and to *c; a loosening of a channel that requires approval becomes a pending
  // approval (*pending set, the 202 returned). Errors are returned as the reply.
  std::optional<Response> ApplyApprovalPolicy(const Json& body, storage::Channel* c,
                                              const access::Principal& actor, bool* pending);
  Response ListApprovals(const Request& req);
  Response DecideApproval(const Request& req, const access::Principal& actor, bool approve);
  Response ReleaseStats(const Request& req);
  Response ListDevices(const Request& req);

  // POST .../devices/{device}/approve (pending -> active) and .../revoke (any -> revoked). A
  // revoked device stays revoked (approve answers 409): it gets 403 device_revoked on every device
  // route and no further wrapped key. Seen at once by this process, by others within the device
  // cache TTL.
  Response SetDeviceStatus(const Request& req, storage::DeviceStatus status);

  // GET/PUT .../enrollment-policy {"policy": "token" | "approve" | "preauth"}.
  Response EnrollmentPolicy(const Request& req);

  // POST .../preauthorized-keys {"keys": [{"signing_key": HEX, "device_id": ID?}, ...]} (1 to
  // 1000): Ed25519 keys that may enroll under the `preauth` policy. GET lists them.
  Response AddPreauthorizedKeys(const Request& req);
  Response ListPreauthorizedKeys(const Request& req);

  // PUT .../devices/{device}/channel {"channel": NAME | null}: the device's channel override (null
  // clears it). The device must be enrolled and the channel must exist.
  Response SetDeviceChannel(const Request& req);
  Response ListEvents(const Request& req);

  // POST /api/v1/tokens: a token minted by `actor` never out-ranks it (every action of the roles
  // asked for is one `actor` holds, else 403), never outlives it (expires_in beyond the actor's
  // expiry: 403; absent: the actor's expiry), never reaches apps outside the actor's (403; absent:
  // the actor's apps), and stops working when the actor is revoked (its parent is recorded).
  Response CreateToken(const Request& req, const access::Principal& actor);
  static Json TokenJson(const access::Principal& p);

  // GET /api/v1/tokens: every principal (tokens with id, parent, apps and last use); a token
  // limited to apps sees only the tokens limited to some of its apps.
  Response ListTokens(const access::Principal& actor);

  // True when `p`'s reach lies within `actor`'s apps (always for an unlimited actor).
  static bool WithinApps(const access::Principal& actor, const access::Principal& p);

  // DELETE /api/v1/tokens/{id}: revokes the token (its requests get 401 from now on, and so do the
  // tokens it minted). 404 for an unknown id, or one outside a limited actor's apps.
  Response RevokeToken(const Request& req, const access::Principal& actor);

  Response Audit(const Request& req);

  // --- alerts (admin_alerts.cc; docs/api/server-api.md "Alerts") ---
  // The request into the monitor's stream: refused requests (401/403, any route) as source "admin";
  // successful release and channel changes as "release"; other mutating requests as "admin".
  void RecordMonitorEvent(const Request& req, const access::Principal* principal,
                          const std::string& log_action, const Response& response);
  Response ListAlerts(const Request& req);
  Response GetAlert(const Request& req);
  // POST .../ack and .../resolve {"note"?}: 404 unknown id, 409 conflict when already so.
  Response ChangeAlert(const Request& req, const access::Principal& actor, bool resolve);
  Response AlertRules(const Request& req);
  // PUT /api/v1/alert-rules/{rule}: a JSON object of settings to change (rules.h ApplySettings).
  Response SetAlertRule(const Request& req, const access::Principal& actor);
  // POST /api/v1/keys/{key}/compromise {"reason"}: an operator's declaration; the monitor rotates
  // the key and revokes the old one on its next tick (202).
  Response DeclareCompromise(const Request& req, const access::Principal& actor);
  // The scheduled checks' reports (GET /api/v1/reports[/{id}], POST .../{id}/signoff).
  Response ListReports(const Request& req);
  Response GetReport(const Request& req);
  Response SignOffReport(const Request& req, const access::Principal& actor);
};

// Registers the /api/v1/alerts, /api/v1/alert-rules and /api/v1/keys/{key}/compromise routes.
void AddAlertRoutes(Router* router, AdminApi* api);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_ADMIN_API_INTERNAL_H_
