// The admin API (/api/v1/...): docs/api/server-api.md is the contract. This file: the shared
// helpers, authentication (Admit, Guard), the audit record of every mutating request, and the
// route table; the handlers are in admin_apps.cc, admin_releases.cc, admin_devices.cc and
// admin_tokens.cc (server/admin_api_internal.h).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <any>
#include <cctype>
#include <charconv>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "audit/audit_log.h"
#include "common/fd.h"
#include "common/json.h"
#include "server/admin_api_internal.h"
#include "server/capgo_routes.h"
#include "server/channel_cache.h"
#include "server/server_api.h"

namespace airlock::server {

using Json = nlohmann::json;

// ---------------------------------------------------------------------------------------------------
// Shared helpers

namespace api_internal {

Response ErrorResponse(const Error& error) {
  switch (error.code()) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kMalformed:
    case ErrorCode::kLimitExceeded:
    case ErrorCode::kUnsafePath:
      return JsonError(400, "bad_request", error.message());
    case ErrorCode::kNotFound:
      return JsonError(404, "not_found", error.message());
    case ErrorCode::kAlreadyExists:
      return JsonError(409, "already_exists", error.message());
    case ErrorCode::kRollback:
      return JsonError(409, "conflict", error.message());
    case ErrorCode::kBadSignature:
    case ErrorCode::kExpired:
    case ErrorCode::kHashMismatch:
    case ErrorCode::kUnsupported:
    case ErrorCode::kWrongKey:
    case ErrorCode::kDecryptFailed:
    case ErrorCode::kTruncated:
    case ErrorCode::kTrailingData:
      return JsonError(422, "verification_failed", error.message());
    default:
      LogJson({{"level", "error"}, {"msg", "internal error"}, {"error", error.ToString()}});
      return JsonError(500, "internal", "internal error");
  }
}

ParsedBody ParseObjectBody(std::string_view body) {
  ParsedBody out;
  if (body.size() > kMaxJsonBody) {
    out.error = JsonError(413, "body_too_large", "JSON bodies are at most 1 MiB");
    return out;
  }
  auto parsed = ParseJson(body, kMaxJsonBody, kDefaultMaxJsonDepth);
  if (!parsed) {
    out.error = JsonError(400, "bad_request", "body: " + parsed.error().message());
    return out;
  }
  if (!parsed->is_object()) {
    out.error = JsonError(400, "bad_request", "body must be a JSON object");
    return out;
  }
  out.json = std::move(*parsed);
  return out;
}

bool IsValidId(std::string_view id) {
  if (id.empty() || id.size() > storage::kMaxIdLength) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

int64_t Now(const ServerApiDeps& deps) {
  if (deps.clock) return deps.clock();
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::filesystem::path BlobPath(const std::filesystem::path& data_dir, std::string_view sha256_hex) {
  return data_dir / "blobs" / std::string(sha256_hex.substr(0, 2)) / std::string(sha256_hex);
}

void LogJson(const Json& line) {
  std::string text = line.dump(-1, ' ', false, Json::error_handler_t::replace);
  text += '\n';
  std::fwrite(text.data(), 1, text.size(), stderr);
}

Result<std::optional<bool>> OptBool(const Json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean()) {
    return MakeError(ErrorCode::kMalformed, "field '" + std::string(key) + "' must be a boolean");
  }
  return std::optional<bool>(it->get<bool>());
}

Result<std::optional<int64_t>> OptInt(const Json& obj, std::string_view key, int64_t min,
                                      int64_t max) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<int64_t>();
  if (!it->is_number_integer()) {
    return MakeError(ErrorCode::kMalformed, "field '" + std::string(key) + "' must be an integer");
  }
  int64_t value = 0;
  if (it->is_number_unsigned()) {
    uint64_t u = it->get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "field '" + std::string(key) + "' out of range");
    }
    value = static_cast<int64_t>(u);
  } else {
    value = it->get<int64_t>();
  }
  if (value < min || value > max) {
    return MakeError(ErrorCode::kInvalidArgument, "field '" + std::string(key) + "' must be " +
                                                      std::to_string(min) + " to " +
                                                      std::to_string(max));
  }
  return std::optional<int64_t>(value);
}

}  // namespace api_internal

using namespace api_internal;  // NOLINT(google-build-using-namespace): this file's own helpers

namespace admin_internal {

Json ChannelJson(const storage::Channel& c) {
  return {
      {"name", c.name},
      {"default", c.is_default},
      {"allow_self_assign", c.allow_self_assign},
      {"ios", c.ios},
      {"android", c.android},
      {"electron", c.electron},
      {"min_native_version", c.min_native_version ? Json(*c.min_native_version) : Json(nullptr)},
      {"rollout_percent", c.rollout_percent},
      {"paused", c.paused},
      {"current_version", c.current_version ? Json(*c.current_version) : Json(nullptr)},
      {"rolled_back", c.rolled_back},
      {"approval_required", c.approval_required},
      {"approval_rollout_above", c.approval_rollout_above}};
}

Json ReleaseJson(const storage::Release& r) {
  Json capgo = nullptr;
  if (r.capgo_sha256 && r.capgo_length) {
    capgo = {{"target", r.capgo_target.value_or("")},
             {"sha256", *r.capgo_sha256},
             {"length", *r.capgo_length}};
  }
  return {{"version", r.version},
          {"target", r.target_name},
          {"sha256", r.sha256},
          {"length", r.length},
          {"encryption", std::string(storage::EncryptionModeName(r.encryption))},
          {"format", r.format ? Json(*r.format) : Json(nullptr)},
          {"capgo", capgo},
          {"created_at", r.created_at}};
}

Json DeviceJson(const storage::Device& d) {
  return {{"device_id", d.device_id},
          {"platform", d.platform},
          {"public_key", d.public_key},
          {"channel_override", d.channel_override ? Json(*d.channel_override) : Json(nullptr)},
          {"last_seen", d.last_seen},
          {"signing_key", d.signing_key ? Json(*d.signing_key) : Json(nullptr)},
          {"status", storage::DeviceStatusName(d.status)}};
}

Json OnlineKeysJson(const OnlineKeys& keys) {
  return {{"snapshot", keys.snapshot_key},
          {"timestamp", keys.timestamp_key},
          {"snapshot_keyid", keys.snapshot_keyid},
          {"timestamp_keyid", keys.timestamp_keyid}};
}

Json PrincipalJson(const access::Principal& p) {
  Json roles = Json::array();
  for (auto role : p.roles) roles.push_back(std::string(access::RoleName(role)));
  return {{"name", p.name},       {"kind", std::string(access::PrincipalKindName(p.kind))},
          {"roles", roles},       {"disabled", p.disabled},
          {"created", p.created}, {"expires", p.expires ? Json(*p.expires) : Json(nullptr)}};
}

Json UsageRecordJson(const audit::UsageRecord& r) {
  return {{"seq", r.seq},
          {"time", r.time},
          {"actor", r.actor},
          {"key_id", r.key_id},
          {"key_name", r.key_name},
          {"operation", r.operation},
          {"purpose", r.purpose},
          {"result", std::string(audit::UsageResultName(r.result))},
          {"result_reason", r.result_reason},
          {"source", r.source},
          {"reason", r.reason},
          {"details", r.details},
          {"hash", r.hash}};
}

Response Ok(int status, const Json& body) {
  return JsonResponse(status, body.dump(-1, ' ', false, Json::error_handler_t::replace));
}

Response BadRequest(const Error& error) { return JsonError(400, "bad_request", error.message()); }

// Errors of verifying uploaded metadata: a wrong version is 409 conflict, failures of ours 500,
// every other refusal (signatures, expiry, roles, unknown or mismatching blobs, no root yet) 422.
Response VerificationError(const Error& error) {
  switch (error.code()) {
    case ErrorCode::kRollback:
      return JsonError(409, "conflict", error.message());
    case ErrorCode::kIo:
    case ErrorCode::kInternal:
    case ErrorCode::kCrypto:
    case ErrorCode::kKeyUnusable:
      return ErrorResponse(error);
    default:
      return JsonError(422, "verification_failed", error.message());
  }
}

std::optional<int64_t> PathId(const Request& req, std::string_view what,
                              std::optional<Response>* err) {
  std::string_view text = req.Param("id");
  int64_t id = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (text.empty() || text.size() > 18 || ec != std::errc() || p != text.data() + text.size() ||
      id <= 0) {
    *err = JsonError(400, "bad_request", std::string(what) + " id must be a positive integer");
    return std::nullopt;
  }
  return id;
}

std::optional<size_t> QueryLimit(const Request& req, size_t fallback,
                                 std::optional<Response>* err) {
  for (const auto& [key, value] : DecodeQuery(req.query)) {
    if (key != "limit") continue;
    size_t n = 0;
    bool ok = !value.empty() && value.size() <= 6;
    for (char c : value) {
      ok = ok && c >= '0' && c <= '9';
      if (ok) n = n * 10 + static_cast<size_t>(c - '0');
    }
    if (!ok || n == 0 || n > storage::kMaxListLimit) {
      *err = JsonError(400, "bad_request", "limit must be 1 to 10000");
      return std::nullopt;
    }
    return n;
  }
  return fallback;
}

// The blob store as AppRepo sees it.
BlobLookup MakeBlobLookup(std::filesystem::path data_dir) {
  return [data_dir = std::move(data_dir)](std::string_view sha) -> std::optional<uint64_t> {
    if (!IsLowerHex(sha, 64)) return std::nullopt;
    std::error_code ec;
    auto path = BlobPath(data_dir, sha);
    if (!std::filesystem::is_regular_file(path, ec)) return std::nullopt;
    auto size = std::filesystem::file_size(path, ec);
    if (ec) return std::nullopt;
    return static_cast<uint64_t>(size);
  };
}

// "alb" when the file starts with the sealed-bundle magic, else "zip".
std::string BlobFormat(const std::filesystem::path& path) {
  static constexpr uint8_t kMagic[8] = {'A', 'L', 'B', '1', '\r', '\n', 0x1a, '\n'};
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  uint8_t head[8] = {};
  if (fd.valid() && ::read(fd.get(), head, sizeof(head)) == static_cast<ssize_t>(sizeof(head)) &&
      std::equal(std::begin(head), std::end(head), std::begin(kMagic))) {
    return "alb";
  }
  return "zip";
}

const TrustedTarget* FindTarget(const std::vector<TrustedTarget>& targets, std::string_view name) {
  for (const auto& t : targets) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::string SignedString(const Json& j, const char* key) {
  if (!j.is_object()) return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The target must carry custom {"app_id": app, "version": version} (both non-empty: an app id and
// a parsed semver).
Result<void> CheckTargetCustom(const TrustedTarget& target, std::string_view app,
                               std::string_view version) {
  const Json& c = target.custom;
  bool ok = !app.empty() && !version.empty() && SignedString(c, "app_id") == app &&
            SignedString(c, "version") == version;
  if (!ok) {
    return MakeError(ErrorCode::kBadSignature,
                     "target " + target.name + " is not signed with custom {\"app_id\": \"" +
                         std::string(app) + "\", \"version\": \"" + std::string(version) + "\"}");
  }
  return {};
}

}  // namespace admin_internal

using namespace admin_internal;  // NOLINT(google-build-using-namespace): this module's own helpers

AdminApi::Admission AdminApi::Admit(const Request& req, access::Action action,
                                    AdminApi::Scope scope) {
  Admission out;
  std::string_view auth = req.Header("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (auth.size() < kBearer.size() || auth.size() > 512 ||
      !std::equal(kBearer.begin(), kBearer.end(), auth.begin(),
                  [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
    out.refusal = JsonError(401, "unauthorized", "missing bearer token");
    return out;
  }
  std::string_view token = auth.substr(kBearer.size());
  Result<access::Principal> principal = [&] {
    std::lock_guard lock(access_mutex);
    return deps.access->AuthenticateToken(token);
  }();
  if (!principal) {
    if (principal.error().code() == access::kDeniedCode ||
        principal.error().code() == ErrorCode::kMalformed) {
      out.refusal = JsonError(401, "unauthorized", "unknown, revoked or expired token");
    } else {
      out.refusal = ErrorResponse(principal.error());
    }
    return out;
  }
  out.principal = std::move(*principal);
  const access::Principal& p = *out.principal;
  {
    std::lock_guard lock(access_mutex);
    if (auto used = deps.access->RecordTokenUse(p); !used) {
      LogJson({{"level", "error"},
               {"msg", "cannot record token use"},
               {"error", used.error().ToString()}});
    }
  }
  if (!access::Authorize(p, action)) {
    out.refusal =
        JsonError(403, "forbidden", "token may not " + std::string(access::ActionName(action)));
  } else if (std::string_view app = req.Param("app"); !app.empty() && !access::AllowsApp(p, app)) {
    out.refusal = JsonError(403, "forbidden", "token is limited to apps " + AppList(p));
  } else if (scope == Scope::kServerWide && !p.apps.empty()) {
    out.refusal =
        JsonError(403, "forbidden",
                  "a token limited to apps " + AppList(p) + " may not use server-wide routes");
  }
  return out;
}

std::string AdminApi::AppList(const access::Principal& p) {
  std::string out;
  for (const auto& app : p.apps) out += (out.empty() ? "" : ", ") + app;
  return out;
}

RouteHandlers AdminApi::Guard(access::Action action, std::string log_action,
                              AdminApi::AuthedHandler handler, AdminApi::Scope scope) {
  RouteHandlers out;
  out.check = [this, action, scope, log_action](Request* req) -> std::optional<Response> {
    Admission admission = Admit(*req, action, scope);
    if (admission.refusal) {
      Record(*req, admission.principal ? &*admission.principal : nullptr, log_action,
             *admission.refusal);
      return std::move(admission.refusal);
    }
    req->context = std::move(*admission.principal);
    return std::nullopt;
  };
  out.handler = [this, action, scope, log_action = std::move(log_action),
                 handler = std::move(handler)](const Request& req) -> Response {
    const access::Principal* principal = std::any_cast<access::Principal>(&req.context);
    Admission admission;
    if (principal == nullptr) {
      admission = Admit(req, action, scope);
      if (admission.refusal) {
        Record(req, admission.principal ? &*admission.principal : nullptr, log_action,
               *admission.refusal);
        return std::move(*admission.refusal);
      }
      principal = &*admission.principal;
    }
    Response response = handler(req, *principal);
    Record(req, principal, log_action, response);
    return response;
  };
  return out;
}

void AdminApi::Record(const Request& req, const access::Principal* principal,
                      const std::string& log_action, const Response& response) {
  RecordMonitorEvent(req, principal, log_action, response);
  if (log_action.empty()) return;
  std::string error_code;
  std::string error_message;
  if (response.status >= 400) {
    auto body = Json::parse(response.body, nullptr, false);
    if (body.is_object() && body.contains("error") && body["error"].is_string()) {
      error_code = body["error"].get<std::string>();
      if (body.contains("message") && body["message"].is_string()) {
        error_message = body["message"].get<std::string>();
      }
    }
  }
  const std::string app = AppForLog(req, response);
  Json line = {{"level", "info"},
               {"msg", "admin"},
               {"actor", principal ? Json(principal->name) : Json(nullptr)},
               {"token_id", principal ? Json(principal->token_id) : Json(nullptr)},
               {"action", log_action},
               {"app", app},
               {"status", response.status},
               {"result", response.status < 400 ? "ok" : "refused"},
               {"remote", req.remote}};
  if (!error_code.empty()) line["error"] = error_code;
  LogJson(line);
  // Unauthenticated requests stay out of the chained log: anyone could fill it.
  if (principal == nullptr || deps.audit_log.empty()) return;
  audit::UsageRecord record;
  record.actor = principal->name;
  record.operation = log_action;
  record.purpose = "admin";
  record.result = response.status < 400                              ? audit::UsageResult::kOk
                  : response.status == 401 || response.status == 403 ? audit::UsageResult::kDenied
                                                                     : audit::UsageResult::kFailed;
  if (!error_code.empty()) {
    record.result_reason = (error_code + ": " + error_message).substr(0, audit::kMaxAuditFieldSize);
  }
  record.source = req.remote;
  record.details = ("token_id=" + principal->token_id + " request=" + req.method + " " + req.path +
                    " app=" + app + " status=" + std::to_string(response.status))
                       .substr(0, audit::kMaxAuditDetailsSize);
  std::lock_guard lock(audit_mutex);
  if (!audit_log) {
    audit::AuditOptions options;
    options.clock = [this] { return Now(deps); };
    auto opened = audit::AuditLog::Open(deps.audit_log, std::move(options));
    if (!opened) {
      LogJson({{"level", "error"},
               {"msg", "cannot open the audit log"},
               {"error", opened.error().ToString()}});
      return;
    }
    audit_log.emplace(std::move(*opened));
  }
  if (auto appended = audit_log->Append(std::move(record)); !appended) {
    LogJson({{"level", "error"},
             {"msg", "cannot append an admin audit record"},
             {"error", appended.error().ToString()}});
  }
}

std::string AdminApi::AppForLog(const Request& req, const Response& response) {
  if (!req.Param("app").empty()) return std::string(req.Param("app"));
  auto body = Json::parse(response.body, nullptr, false);
  if (body.is_object() && body.contains("app_id") && body["app_id"].is_string()) {
    return body["app_id"].get<std::string>();
  }
  return "";
}

void AdminApi::Invalidate(std::string_view app) {
  if (deps.cache != nullptr) deps.cache->Invalidate(app);
}

std::shared_ptr<AdminApi> AddAdminRoutes(Router* router, const ServerApiDeps& deps) {
  auto api = std::make_shared<AdminApi>();
  api->deps = deps;
  AdminApi* a = api.get();
  using access::Action;
  auto bind = [a](Response (AdminApi::*method)(const Request&)) {
    return [a, method](const Request& req, const access::Principal&) { return (a->*method)(req); };
  };
  const std::string apps = "/api/v1/apps";
  const std::string channel = "/api/v1/apps/{app}/channels/{name}";

  router->Add("POST", apps,
              a->Guard(Action::kReleasePublish, "app.create", bind(&AdminApi::CreateApp),
                       AdminApi::Scope::kServerWide));
  router->Add(
      "GET", apps,
      a->Guard(Action::kReleaseRead, "",
               [a](const Request&, const access::Principal& actor) { return a->ListApps(actor); }));
  router->Add("GET", apps + "/{app}", a->Guard(Action::kReleaseRead, "", bind(&AdminApi::GetApp)));
  router->Add("POST", apps + "/{app}/enrollment-token",
              a->Guard(Action::kReleasePublish, "app.enrollment_token",
                       bind(&AdminApi::RotateEnrollmentToken)));
  router->Add("PUT", apps + "/{app}/root",
              a->Guard(Action::kReleasePublish, "app.root", bind(&AdminApi::PutRoot)));
  router->Add("PUT", apps + "/{app}/targets",
              a->Guard(Action::kReleasePublish, "app.targets", bind(&AdminApi::PutTargets)));
  router->AddUpload("POST", "/api/v1/blobs", deps.max_upload_bytes,
                    a->Guard(Action::kReleasePublish, "blob.upload", bind(&AdminApi::UploadBlob)));

  router->Add("POST", apps + "/{app}/channels",
              a->Guard(Action::kReleasePublish, "channel.create", bind(&AdminApi::CreateChannel)));
  router->Add("GET", apps + "/{app}/channels",
              a->Guard(Action::kReleaseRead, "", bind(&AdminApi::ListChannels)));
  router->Add("GET", channel, a->Guard(Action::kReleaseRead, "", bind(&AdminApi::GetChannel)));
  auto bind_actor = [a](Response (AdminApi::*method)(const Request&, const access::Principal&)) {
    return [a, method](const Request& req, const access::Principal& p) {
      return (a->*method)(req, p);
    };
  };
  router->Add(
      "PATCH", channel,
      a->Guard(Action::kReleasePublish, "channel.update", bind_actor(&AdminApi::PatchChannel)));
  router->Add(
      "PUT", channel + "/rollout",
      a->Guard(Action::kReleasePublish, "channel.rollout", bind_actor(&AdminApi::PutRollout)));
  router->Add("POST", channel + "/pause",
              a->Guard(Action::kReleasePublish, "channel.pause",
                       [a](const Request& req, const access::Principal&) {
                         return a->SetPaused(req, true);
                       }));
  router->Add("POST", channel + "/resume",
              a->Guard(Action::kReleasePublish, "channel.resume",
                       [a](const Request& req, const access::Principal&) {
                         return a->SetPaused(req, false);
                       }));
  router->Add("POST", channel + "/rollback",
              a->Guard(Action::kReleasePublish, "channel.rollback", bind(&AdminApi::Rollback)));

  router->Add("POST", apps + "/{app}/releases",
              a->Guard(Action::kReleasePublish, "release.publish", bind_actor(&AdminApi::Publish)));
  router->Add("GET", apps + "/{app}/releases/check",
              a->Guard(Action::kReleasePublish, "", bind(&AdminApi::CheckPublish)));
  router->Add("GET", apps + "/{app}/releases",
              a->Guard(Action::kReleaseRead, "", bind(&AdminApi::ListReleases)));
  router->Add("GET", apps + "/{app}/releases/{version}/stats",
              a->Guard(Action::kReleaseRead, "", bind(&AdminApi::ReleaseStats)));
  router->Add("GET", apps + "/{app}/approvals",
              a->Guard(Action::kReleaseRead, "", bind(&AdminApi::ListApprovals)));
  router->Add("POST", apps + "/{app}/approvals/{id}/approve",
              a->Guard(Action::kReleasePublish, "release.approve",
                       [a](const Request& req, const access::Principal& p) {
                         return a->DecideApproval(req, p, true);
                       }));
  router->Add("POST", apps + "/{app}/approvals/{id}/reject",
              a->Guard(Action::kReleasePublish, "release.reject",
                       [a](const Request& req, const access::Principal& p) {
                         return a->DecideApproval(req, p, false);
                       }));

  router->Add("GET", apps + "/{app}/devices",
              a->Guard(Action::kReleaseRead, "", bind(&AdminApi::ListDevices)));
  router->Add("GET", apps + "/{app}/devices/{device}/events",
              a->Guard(Action::kReleaseRead, "", bind(&AdminApi::ListEvents)));
  router->Add(
      "PUT", apps + "/{app}/devices/{device}/channel",
      a->Guard(Action::kReleasePublish, "device.channel", bind(&AdminApi::SetDeviceChannel)));
  router->Add("POST", apps + "/{app}/devices/{device}/approve",
              a->Guard(Action::kReleasePublish, "device.approve",
                       [a](const Request& req, const access::Principal&) {
                         return a->SetDeviceStatus(req, storage::DeviceStatus::kActive);
                       }));
  router->Add("POST", apps + "/{app}/devices/{device}/revoke",
              a->Guard(Action::kReleasePublish, "device.revoke",
                       [a](const Request& req, const access::Principal&) {
                         return a->SetDeviceStatus(req, storage::DeviceStatus::kRevoked);
                       }));
  router->Add("GET", apps + "/{app}/enrollment-policy",
              a->Guard(Action::kReleaseRead, "", bind(&AdminApi::EnrollmentPolicy)));
  // Choosing how devices get credentials is credential management: not for a publishing token.
  router->Add(
      "PUT", apps + "/{app}/enrollment-policy",
      a->Guard(Action::kTokenManage, "app.enrollment_policy", bind(&AdminApi::EnrollmentPolicy)));
  router->Add(
      "POST", apps + "/{app}/preauthorized-keys",
      a->Guard(Action::kTokenManage, "device.preauthorize", bind(&AdminApi::AddPreauthorizedKeys)));
  router->Add("GET", apps + "/{app}/preauthorized-keys",
              a->Guard(Action::kReleaseRead, "", bind(&AdminApi::ListPreauthorizedKeys)));

  router->Add("POST", "/api/v1/tokens",
              a->Guard(Action::kTokenManage, "token.create",
                       [a](const Request& req, const access::Principal& actor) {
                         return a->CreateToken(req, actor);
                       }));
  router->Add(
      "GET", "/api/v1/tokens",
      a->Guard(Action::kTokenManage, "", [a](const Request&, const access::Principal& actor) {
        return a->ListTokens(actor);
      }));
  router->Add("DELETE", "/api/v1/tokens/{id}",
              a->Guard(Action::kTokenManage, "token.revoke",
                       [a](const Request& req, const access::Principal& actor) {
                         return a->RevokeToken(req, actor);
                       }));
  router->Add(
      "GET", "/api/v1/audit",
      a->Guard(Action::kAuditRead, "", bind(&AdminApi::Audit), AdminApi::Scope::kServerWide));
  AddAlertRoutes(router, a);
  return api;
}

}  // namespace airlock::server
