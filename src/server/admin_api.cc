// The admin API (/api/v1/...): docs/api/server-api.md is the contract.
//
// Why some things are the way they are:
//  * Channel changes are read-modify-write of the whole row (Store::UpdateChannel replaces every
//  field),
//    so every channel-changing handler of this process runs under AdminApi::write_mutex; otherwise
//    a PATCH could write back a stale current_version over a concurrent publish. (Two airlockd
//    processes can still race there; admin traffic is rare and the window is one request.)
//  * A release is checked completely (Store state, targets verification, target customs, bundle
//    recipients) before anything is written; then AppRepo::AcceptTargets writes the metadata and
//    Store::PublishRelease commits the row and the channel's current version in one transaction.
//    The two stores cannot share a transaction: if the database write fails after the metadata was
//    written, the served targets list a target no channel offers yet (harmless: devices only
//    install what a channel offers), and the error is returned.
//  * App creation makes the online keys first, then the row; the contract's 409 is checked on the
//  row
//    before any key is made.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <any>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "common/bytes.h"
#include "common/fd.h"
#include "common/json.h"
#include "common/semver.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/random.h"
#include "audit/audit_log.h"
#include "server/capgo_routes.h"
#include "server/channel_cache.h"
#include "server/release_policy.h"
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

bool IsLowerHex(std::string_view text, size_t length) {
  if (text.size() != length) return false;
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
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

namespace {

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
      {"rolled_back", c.rolled_back}};
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

Result<void> FsyncDir(const std::filesystem::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid() || ::fsync(fd.get()) != 0) {
    return MakeError(ErrorCode::kIo, "fsync " + dir.string() + ": " + std::strerror(errno));
  }
  return {};
}

Result<void> FsyncFile(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid() || ::fsync(fd.get()) != 0) {
    return MakeError(ErrorCode::kIo, "fsync " + path.string() + ": " + std::strerror(errno));
  }
  return {};
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

// The target must carry custom {"app_id": app, "version": version}.
Result<void> CheckTargetCustom(const TrustedTarget& target, std::string_view app,
                               std::string_view version) {
  const Json& c = target.custom;
  bool ok = c.is_object() && c.contains("app_id") && c["app_id"].is_string() &&
            c["app_id"].get<std::string>() == app && c.contains("version") &&
            c["version"].is_string() && c["version"].get<std::string>() == version;
  if (!ok) {
    return MakeError(ErrorCode::kBadSignature,
                     "target " + target.name + " is not signed with custom {\"app_id\": \"" +
                         std::string(app) + "\", \"version\": \"" + std::string(version) + "\"}");
  }
  return {};
}

}  // namespace

struct AdminApi {
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
  Admission Admit(const Request& req, access::Action action, Scope scope) {
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

  static std::string AppList(const access::Principal& p) {
    std::string out;
    for (const auto& app : p.apps) out += (out.empty() ? "" : ", ") + app;
    return out;
  }

  // The route's handler and its pre-body check. The check (run by HttpServer after the header,
  // before the body) admits the request and leaves the principal in Request::context; the handler
  // uses it, or admits the request itself when called without the check (tests calling handlers
  // directly). Mutating routes (`log_action` set) log one JSON line and append one record to the
  // server's audit log (Record) with the outcome.
  RouteHandlers Guard(access::Action action, std::string log_action, AuthedHandler handler,
                      Scope scope = Scope::kFiltered) {
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

  // The outcome of a mutating request (`log_action` non-empty): one JSON line on stderr, and for an
  // authenticated principal one record in the server's key usage log (deps.audit_log): actor = the
  // token's name, source = the TCP peer address (X-Forwarded-For is never trusted), operation =
  // `log_action`, details = token id, request, app and status.
  void Record(const Request& req, const access::Principal* principal, const std::string& log_action,
              const Response& response) {
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
      record.result_reason =
          (error_code + ": " + error_message).substr(0, audit::kMaxAuditFieldSize);
    }
    record.source = req.remote;
    record.details = ("token_id=" + principal->token_id + " request=" + req.method + " " +
                      req.path + " app=" + app + " status=" + std::to_string(response.status))
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

  // {app} of the path, else the app_id of a created app's reply.
  static std::string AppForLog(const Request& req, const Response& response) {
    if (!req.Param("app").empty()) return std::string(req.Param("app"));
    auto body = Json::parse(response.body, nullptr, false);
    if (body.is_object() && body.contains("app_id") && body["app_id"].is_string()) {
      return body["app_id"].get<std::string>();
    }
    return "";
  }

  void Invalidate(std::string_view app) {
    if (deps.cache != nullptr) deps.cache->Invalidate(app);
  }

  // --- apps ---

  Response CreateApp(const Request& req) {
    auto parsed = ParseObjectBody(req.body);
    if (parsed.error) return *parsed.error;
    const Json& body = parsed.json;
    auto app_id = ReqString(body, "app_id", storage::kMaxIdLength);
    if (!app_id) return BadRequest(app_id.error());
    if (!IsValidId(*app_id)) {
      return JsonError(400, "bad_request", "app_id must be 1 to 128 bytes of [A-Za-z0-9._-]");
    }
    auto display = OptString(body, "display_name", storage::kMaxTextLength);
    if (!display) return BadRequest(display.error());
    auto app_key_pem = OptString(body, "app_key", storage::kMaxTextLength);
    if (!app_key_pem) return BadRequest(app_key_pem.error());
    std::optional<std::string> app_key;
    if (*app_key_pem) {
      auto key = crypto::PublicKey::FromPem(**app_key_pem);
      if (!key) return JsonError(400, "bad_request", "app_key: " + key.error().message());
      if (key->type() != crypto::KeyType::kX25519 && key->type() != crypto::KeyType::kRsa) {
        return JsonError(400, "bad_request", "app_key must be an X25519 or RSA public key");
      }
      app_key = key->ToPem();
    }
    auto existing = deps.store->GetApp(*app_id);
    if (existing) return JsonError(409, "already_exists", "app " + *app_id + " exists");
    if (existing.error().code() != ErrorCode::kNotFound) return ErrorResponse(existing.error());

    auto token = NewEnrollmentToken();
    if (!token) return ErrorResponse(token.error());
    auto& [token_text, token_hash] = *token;

    auto keys = deps.repo->CreateApp(*app_id);
    if (!keys) return ErrorResponse(keys.error());
    storage::App row{*app_id, display->value_or(*app_id), Now(deps), token_hash, app_key};
    if (auto created = deps.store->CreateApp(row); !created) return ErrorResponse(created.error());
    Invalidate(*app_id);
    return Ok(201, {{"app_id", *app_id},
                    {"online_keys", OnlineKeysJson(*keys)},
                    {"content_key", keys->content_key_pem},
                    {"enrollment_token", token_text}});
  }

  // A device enrollment token ("enr_" + 64 hex) and the SHA-256 hex stored for it.
  static Result<std::pair<std::string, std::string>> NewEnrollmentToken() {
    AIRLOCK_ASSIGN_OR_RETURN(Bytes random, crypto::RandomBytes(32));
    std::string token = "enr_" + HexEncode(random);
    std::string hash = HexEncode(crypto::Sha256(AsBytes(token)));
    return std::pair{std::move(token), std::move(hash)};
  }

  // POST /api/v1/apps/{app}/enrollment-token: a new token replaces the old one (a leaked token, or
  // an `app create` that failed before its token was shown). Devices already enrolled stay enrolled.
  Response RotateEnrollmentToken(const Request& req) {
    std::optional<Response> err;
    auto app = LoadApp(req, &err);
    if (!app) return *err;
    auto token = NewEnrollmentToken();
    if (!token) return ErrorResponse(token.error());
    if (auto set = deps.store->SetEnrollTokenHash(app->app_id, token->second); !set) {
      return ErrorResponse(set.error());
    }
    return Ok(200, {{"app_id", app->app_id}, {"enrollment_token", token->first}});
  }

  // Only the apps `actor` may see (access::Principal::apps).
  Response ListApps(const access::Principal& actor) {
    auto apps = deps.store->ListApps();
    if (!apps) return ErrorResponse(apps.error());
    Json list = Json::array();
    for (const auto& a : *apps) {
      if (!access::AllowsApp(actor, a.app_id)) continue;
      list.push_back(
          {{"app_id", a.app_id}, {"display_name", a.display_name}, {"created_at", a.created_at}});
    }
    return Ok(200, {{"apps", list}});
  }

  // The app named by {app}, or the 400/404 reply.
  Result<storage::App> LoadApp(const Request& req, std::optional<Response>* err) {
    std::string app_id(req.Param("app"));
    if (!IsValidId(app_id)) {
      *err = JsonError(400, "bad_request", "app id must be 1 to 128 bytes of [A-Za-z0-9._-]");
      return MakeError(ErrorCode::kInvalidArgument, "bad app id");
    }
    auto app = deps.store->GetApp(app_id);
    if (!app) *err = ErrorResponse(app.error());
    return app;
  }

  Response GetApp(const Request& req) {
    std::optional<Response> err;
    auto app = LoadApp(req, &err);
    if (!app) return *err;
    auto keys = deps.repo->GetOnlineKeys(app->app_id);
    if (!keys) return ErrorResponse(keys.error());
    auto status = deps.repo->Status(app->app_id);
    if (!status) return ErrorResponse(status.error());
    auto opt = [](const std::optional<uint64_t>& v) { return v ? Json(*v) : Json(nullptr); };
    return Ok(200,
              {{"app_id", app->app_id},
               {"display_name", app->display_name},
               {"created_at", app->created_at},
               {"online_keys", OnlineKeysJson(*keys)},
               {"content_key", keys->content_key_pem},
               {"app_key", app->app_key ? Json(*app->app_key) : Json(nullptr)},
               {"root_version", opt(status->root_version)},
               {"targets_version", opt(status->targets_version)},
               {"timestamp_expires",
                status->timestamp_expires ? Json(*status->timestamp_expires) : Json(nullptr)}});
  }

  Response PutRoot(const Request& req) {
    if (req.body.size() > kMaxJsonBody) {
      return JsonError(413, "body_too_large", "metadata is at most 1 MiB");
    }
    std::optional<Response> err;
    auto app = LoadApp(req, &err);
    if (!app) return *err;
    auto version = deps.repo->AcceptRoot(app->app_id, req.body);
    if (!version) return VerificationError(version.error());
    return Ok(200, {{"version", *version}});
  }

  Response PutTargets(const Request& req) {
    if (req.body.size() > kMaxJsonBody) {
      return JsonError(413, "body_too_large", "metadata is at most 1 MiB");
    }
    std::optional<Response> err;
    auto app = LoadApp(req, &err);
    if (!app) return *err;
    std::lock_guard lock(write_mutex);
    auto published = deps.repo->AcceptTargets(app->app_id, req.body, MakeBlobLookup(deps.data_dir));
    if (!published) return VerificationError(published.error());
    return Ok(200, {{"targets_version", published->targets_version},
                    {"snapshot_version", published->snapshot_version},
                    {"timestamp_version", published->timestamp_version}});
  }

  // --- blobs ---

  Response UploadBlob(const Request& req) {
    if (!req.upload) return JsonError(400, "bad_request", "no upload body");
    const UploadedFile& up = *req.upload;
    if (!IsLowerHex(up.sha256_hex, 64))
      return ErrorResponse(Error(ErrorCode::kInternal, "bad digest"));
    std::string_view claimed = req.Header("X-Airlock-Sha256");
    if (!claimed.empty()) {
      std::string lower(claimed);
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (!IsLowerHex(lower, 64)) {
        return JsonError(400, "bad_request", "X-Airlock-Sha256 must be 64 hex digits");
      }
      if (lower != up.sha256_hex) {
        return JsonError(422, "verification_failed",
                         "body sha256 " + up.sha256_hex + " differs from X-Airlock-Sha256");
      }
    }
    Json reply = {{"sha256", up.sha256_hex}, {"length", up.length}};
    auto dest = BlobPath(deps.data_dir, up.sha256_hex);
    std::error_code ec;
    if (std::filesystem::is_regular_file(dest, ec)) return Ok(200, reply);
    auto dir = dest.parent_path();
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return ErrorResponse(Error(ErrorCode::kIo, "mkdir " + dir.string() + ": " + ec.message()));
    std::filesystem::rename(up.path, dest, ec);
    if (ec == std::errc::cross_device_link) {
      // The upload folder is on another file system: copy beside the destination, fsync, rename.
      auto tmp = dir / ("." + up.sha256_hex + ".tmp-" + std::to_string(::getpid()));
      ec.clear();
      std::filesystem::copy_file(up.path, tmp, std::filesystem::copy_options::overwrite_existing,
                                 ec);
      if (!ec) {
        if (auto synced = FsyncFile(tmp); !synced) {
          std::filesystem::remove(tmp, ec);
          return ErrorResponse(synced.error());
        }
        std::filesystem::rename(tmp, dest, ec);
      }
      if (ec) std::filesystem::remove(tmp, ec);
    }
    if (ec) return ErrorResponse(Error(ErrorCode::kIo, "store blob: " + ec.message()));
    if (auto synced = FsyncDir(dir); !synced) return ErrorResponse(synced.error());
    return Ok(201, reply);
  }

  // --- channels ---

  // Applies the settable fields present in `body` to `c`.
  static Result<void> ApplyChannelFields(const Json& body, storage::Channel* c, bool allow_paused) {
    AIRLOCK_ASSIGN_OR_RETURN(auto is_default, OptBool(body, "default"));
    AIRLOCK_ASSIGN_OR_RETURN(auto self_assign, OptBool(body, "allow_self_assign"));
    AIRLOCK_ASSIGN_OR_RETURN(auto ios, OptBool(body, "ios"));
    AIRLOCK_ASSIGN_OR_RETURN(auto android, OptBool(body, "android"));
    AIRLOCK_ASSIGN_OR_RETURN(auto electron, OptBool(body, "electron"));
    AIRLOCK_ASSIGN_OR_RETURN(auto percent, OptInt(body, "rollout_percent", 0, 100));
    if (is_default) c->is_default = *is_default;
    if (self_assign) c->allow_self_assign = *self_assign;
    if (ios) c->ios = *ios;
    if (android) c->android = *android;
    if (electron) c->electron = *electron;
    if (percent) c->rollout_percent = static_cast<int>(*percent);
    if (body.contains("min_native_version")) {
      AIRLOCK_ASSIGN_OR_RETURN(auto min_native,
                               OptString(body, "min_native_version", kMaxSemverLength));
      if (min_native) AIRLOCK_TRY_CTX(Semver::Parse(*min_native), "min_native_version");
      c->min_native_version = min_native;
    }
    if (allow_paused) {
      AIRLOCK_ASSIGN_OR_RETURN(auto paused, OptBool(body, "paused"));
      if (paused) c->paused = *paused;
    }
    return {};
  }

  Response CreateChannel(const Request& req) {
    std::optional<Response> err;
    auto app = LoadApp(req, &err);
    if (!app) return *err;
    auto parsed = ParseObjectBody(req.body);
    if (parsed.error) return *parsed.error;
    auto name = ReqString(parsed.json, "name", storage::kMaxIdLength);
    if (!name) return BadRequest(name.error());
    if (!IsValidId(*name)) {
      return JsonError(400, "bad_request", "name must be 1 to 128 bytes of [A-Za-z0-9._-]");
    }
    storage::Channel c;
    c.app_id = app->app_id;
    c.name = *name;
    if (auto applied = ApplyChannelFields(parsed.json, &c, false); !applied) {
      return BadRequest(applied.error());
    }
    std::lock_guard lock(write_mutex);
    if (auto created = deps.store->CreateChannel(c); !created)
      return ErrorResponse(created.error());
    Invalidate(c.app_id);
    return Ok(201, ChannelJson(c));
  }

  Response ListChannels(const Request& req) {
    std::optional<Response> err;
    auto app = LoadApp(req, &err);
    if (!app) return *err;
    auto channels = deps.store->ListChannels(app->app_id);
    if (!channels) return ErrorResponse(channels.error());
    Json list = Json::array();
    for (const auto& c : *channels) list.push_back(ChannelJson(c));
    return Ok(200, {{"channels", list}});
  }

  // The channel named by {app}/{name}, or the 400/404 reply.
  Result<storage::Channel> LoadChannel(const Request& req, std::optional<Response>* err) {
    auto app = LoadApp(req, err);
    if (!app) return tl::unexpected(app.error());
    std::string name(req.Param("name"));
    if (!IsValidId(name)) {
      *err = JsonError(400, "bad_request", "channel name must be 1 to 128 bytes of [A-Za-z0-9._-]");
      return MakeError(ErrorCode::kInvalidArgument, "bad channel name");
    }
    auto channel = deps.store->GetChannel(app->app_id, name);
    if (!channel) *err = ErrorResponse(channel.error());
    return channel;
  }

  Response GetChannel(const Request& req) {
    std::optional<Response> err;
    auto c = LoadChannel(req, &err);
    if (!c) return *err;
    return Ok(200, ChannelJson(*c));
  }

  // Read-modify-write of a channel under write_mutex.
  Response ChangeChannel(const Request& req,
                         const std::function<std::optional<Response>(storage::Channel*)>& change) {
    std::lock_guard lock(write_mutex);
    std::optional<Response> err;
    auto c = LoadChannel(req, &err);
    if (!c) return *err;
    if (auto refused = change(&*c)) return *refused;
    if (auto updated = deps.store->UpdateChannel(*c); !updated)
      return ErrorResponse(updated.error());
    Invalidate(c->app_id);
    return Ok(200, ChannelJson(*c));
  }

  Response PatchChannel(const Request& req) {
    auto parsed = ParseObjectBody(req.body);
    if (parsed.error) return *parsed.error;
    return ChangeChannel(req, [&](storage::Channel* c) -> std::optional<Response> {
      if (auto applied = ApplyChannelFields(parsed.json, c, true); !applied) {
        return BadRequest(applied.error());
      }
      return std::nullopt;
    });
  }

  Response PutRollout(const Request& req) {
    auto parsed = ParseObjectBody(req.body);
    if (parsed.error) return *parsed.error;
    auto percent = OptInt(parsed.json, "percent", 0, 100);
    if (!percent) return BadRequest(percent.error());
    if (!*percent) return JsonError(400, "bad_request", "field 'percent' must be an integer");
    return ChangeChannel(req, [&](storage::Channel* c) -> std::optional<Response> {
      c->rollout_percent = static_cast<int>(**percent);
      return std::nullopt;
    });
  }

  Response SetPaused(const Request& req, bool paused) {
    return ChangeChannel(req, [&](storage::Channel* c) -> std::optional<Response> {
      c->paused = paused;
      return std::nullopt;
    });
  }

  // POST .../rollback {"to": V[, "targets_metadata": {...}]}: the targets metadata, when given (the
  // CLI signs V as a rollback target), is verified first and the rollback checked against it; it is
  // accepted only if the rollback is allowed, so a refused rollback changes nothing.
  Response Rollback(const Request& req) {
    auto parsed = ParseObjectBody(req.body);
    if (parsed.error) return *parsed.error;
    auto to = ReqString(parsed.json, "to", kMaxSemverLength);
    if (!to) return BadRequest(to.error());
    if (auto v = Semver::Parse(*to); !v)
      return JsonError(400, "bad_request", "to: " + v.error().message());
    std::optional<std::string> targets_bytes;
    if (auto md = parsed.json.find("targets_metadata"); md != parsed.json.end()) {
      if (!md->is_object()) {
        return JsonError(400, "bad_request", "field 'targets_metadata' must be an object");
      }
      targets_bytes = md->dump();
    }
    std::lock_guard lock(write_mutex);
    std::optional<Response> err;
    auto c = LoadChannel(req, &err);
    if (!c) return *err;
    auto release = deps.store->GetRelease(c->app_id, *to);
    if (!release) return ErrorResponse(release.error());
    auto blobs = MakeBlobLookup(deps.data_dir);
    Result<TrustedTarget> allowed = [&]() -> Result<TrustedTarget> {
      if (!targets_bytes) return deps.repo->CheckRollbackAllowed(c->app_id, *to, c->name);
      AIRLOCK_ASSIGN_OR_RETURN(auto targets,
                               deps.repo->VerifyTargets(c->app_id, *targets_bytes, blobs));
      return FindRollbackTarget(targets, c->app_id, *to, c->name);
    }();
    if (!allowed) {
      const ErrorCode code = allowed.error().code();
      if (code == ErrorCode::kIo || code == ErrorCode::kInternal) {
        return ErrorResponse(allowed.error());
      }
      if (code != ErrorCode::kInvalidArgument && code != ErrorCode::kNotFound) {
        return VerificationError(allowed.error());
      }
      return JsonError(422, "verification_failed",
                       "rollback to " + *to + " not allowed: " + allowed.error().message());
    }
    if (allowed->sha256 != release->sha256 && allowed->sha256 != release->capgo_sha256) {
      return JsonError(422, "verification_failed",
                       "the signed rollback target is not release " + *to + "'s blob");
    }
    if (targets_bytes) {
      auto accepted = deps.repo->AcceptTargets(c->app_id, *targets_bytes, blobs);
      if (!accepted) return VerificationError(accepted.error());
    }
    auto set = deps.store->SetChannelCurrentVersion(c->app_id, c->name, *to, true);
    Invalidate(c->app_id);
    if (!set) return ErrorResponse(set.error());
    auto updated = deps.store->GetChannel(c->app_id, c->name);
    if (!updated) return ErrorResponse(updated.error());
    return Ok(200, ChannelJson(*updated));
  }

  // --- releases ---

  Response Publish(const Request& req) {
    auto parsed = ParseObjectBody(req.body);
    if (parsed.error) return *parsed.error;
    const Json& body = parsed.json;
    auto version = ReqString(body, "version", kMaxSemverLength);
    if (!version) return BadRequest(version.error());
    if (auto v = Semver::Parse(*version); !v) {
      return JsonError(400, "bad_request", "version: " + v.error().message());
    }
    auto channel_name = ReqString(body, "channel", storage::kMaxIdLength);
    if (!channel_name) return BadRequest(channel_name.error());
    if (!IsValidId(*channel_name)) {
      return JsonError(400, "bad_request", "channel must be 1 to 128 bytes of [A-Za-z0-9._-]");
    }
    auto encryption_name = ReqString(body, "encryption", 16);
    if (!encryption_name) return BadRequest(encryption_name.error());
    auto encryption = storage::ParseEncryptionMode(*encryption_name);
    if (!encryption) return BadRequest(encryption.error());
    auto target = ReqString(body, "target", storage::kMaxTextLength);
    if (!target) return BadRequest(target.error());
    if (target->empty()) return JsonError(400, "bad_request", "field 'target' is empty");
    auto md = body.find("targets_metadata");
    if (md == body.end() || !md->is_object()) {
      return JsonError(400, "bad_request", "field 'targets_metadata' must be an object");
    }
    std::optional<std::string> capgo_target, capgo_session_key, capgo_checksum;
    if (auto capgo = body.find("capgo"); capgo != body.end() && !capgo->is_null()) {
      if (!capgo->is_object())
        return JsonError(400, "bad_request", "field 'capgo' must be an object");
      auto t = ReqString(*capgo, "target", storage::kMaxTextLength);
      auto k = ReqString(*capgo, "session_key", storage::kMaxTextLength);
      auto s = ReqString(*capgo, "checksum", storage::kMaxTextLength);
      if (!t) return BadRequest(t.error());
      if (!k) return BadRequest(k.error());
      if (!s) return BadRequest(s.error());
      if (t->empty()) return JsonError(400, "bad_request", "field 'capgo.target' is empty");
      capgo_target = *t;
      capgo_session_key = *k;
      capgo_checksum = *s;
    }

    std::lock_guard lock(write_mutex);
    std::optional<Response> err;
    auto app = LoadApp(req, &err);
    if (!app) return *err;
    auto channel = deps.store->GetChannel(app->app_id, *channel_name);
    if (!channel) return ErrorResponse(channel.error());
    auto existing = deps.store->GetRelease(app->app_id, *version);
    if (existing) return JsonError(409, "already_exists", "release " + *version + " exists");
    if (existing.error().code() != ErrorCode::kNotFound) return ErrorResponse(existing.error());

    std::string targets_bytes = md->dump();
    auto blobs = MakeBlobLookup(deps.data_dir);
    auto targets = deps.repo->VerifyTargets(app->app_id, targets_bytes, blobs);
    if (!targets) return VerificationError(targets.error());
    const TrustedTarget* main_target = FindTarget(*targets, *target);
    if (main_target == nullptr) {
      return JsonError(422, "verification_failed", "targets metadata does not list " + *target);
    }
    if (auto ok = CheckTargetCustom(*main_target, app->app_id, *version); !ok) {
      return VerificationError(ok.error());
    }
    // The signed release rules: the release names this channel and keeps the highest floor.
    if (auto ok = CheckPublishable(*targets, *main_target, *channel_name); !ok) {
      return JsonError(422, "verification_failed", ok.error().message());
    }
    const TrustedTarget* capgo = nullptr;
    if (capgo_target) {
      capgo = FindTarget(*targets, *capgo_target);
      if (capgo == nullptr) {
        return JsonError(422, "verification_failed",
                         "targets metadata does not list " + *capgo_target);
      }
      if (auto ok = CheckTargetCustom(*capgo, app->app_id, *version); !ok) {
        return VerificationError(ok.error());
      }
      if (auto ok = CheckPublishable(*targets, *capgo, *channel_name); !ok) {
        return JsonError(422, "verification_failed", ok.error().message());
      }
    }
    auto blob_path = BlobPath(deps.data_dir, main_target->sha256);
    if (*encryption != storage::EncryptionMode::kNone) {
      std::optional<crypto::PublicKey> recipient;
      if (*encryption == storage::EncryptionMode::kDevice) {
        auto keys = deps.repo->GetOnlineKeys(app->app_id);
        if (!keys) return ErrorResponse(keys.error());
        auto key = crypto::PublicKey::FromPem(keys->content_key_pem);
        if (!key) return ErrorResponse(key.error());
        recipient = std::move(*key);
      } else {
        if (!app->app_key) {
          return JsonError(400, "bad_request",
                           "app " + app->app_id + " has no app_key for app mode");
        }
        auto key = crypto::PublicKey::FromPem(*app->app_key);
        if (!key) return ErrorResponse(key.error());
        recipient = std::move(*key);
      }
      auto has = deps.repo->BundleHasRecipient(blob_path, *recipient);
      if (!has) {
        return JsonError(422, "verification_failed",
                         *target + " is not a sealed bundle: " + has.error().message());
      }
      if (!*has) {
        return JsonError(422, "verification_failed",
                         *target + " has no recipient for the " +
                             (*encryption == storage::EncryptionMode::kDevice ? "app's content key"
                                                                              : "app key"));
      }
    }

    storage::Release release;
    release.app_id = app->app_id;
    release.version = *version;
    release.target_name = main_target->name;
    release.sha256 = main_target->sha256;
    release.length = static_cast<int64_t>(main_target->length);
    release.encryption = *encryption;
    release.format = BlobFormat(blob_path);
    release.created_at = Now(deps);
    if (capgo != nullptr) {
      release.capgo_target = capgo->name;
      release.capgo_sha256 = capgo->sha256;
      release.capgo_length = static_cast<int64_t>(capgo->length);
      release.capgo_session_key = capgo_session_key;
      release.capgo_checksum = capgo_checksum;
    }
    auto accepted = deps.repo->AcceptTargets(app->app_id, targets_bytes, blobs);
    if (!accepted) return VerificationError(accepted.error());
    auto published = deps.store->PublishRelease(release, *channel_name);
    Invalidate(app->app_id);
    if (!published) return ErrorResponse(published.error());
    return Ok(201, ReleaseJson(release));
  }

  Response ListReleases(const Request& req) {
    std::optional<Response> err;
    auto app = LoadApp(req, &err);
    if (!app) return *err;
    auto releases = deps.store->ListReleases(app->app_id);
    if (!releases) return ErrorResponse(releases.error());
    Json list = Json::array();
    for (const auto& r : *releases) list.push_back(ReleaseJson(r));
    return Ok(200, {{"releases", list}});
  }

  // --- devices ---

  Response ListDevices(const Request& req) {
    std::optional<Response> err;
    auto limit = QueryLimit(req, 1000, &err);
    if (!limit) return *err;
    auto app = LoadApp(req, &err);
    if (!app) return *err;
    auto devices = deps.store->ListDevices(app->app_id, *limit);
    if (!devices) return ErrorResponse(devices.error());
    Json list = Json::array();
    for (const auto& d : *devices) {
      list.push_back(
          {{"device_id", d.device_id},
           {"platform", d.platform},
           {"public_key", d.public_key},
           {"channel_override", d.channel_override ? Json(*d.channel_override) : Json(nullptr)},
           {"last_seen", d.last_seen}});
    }
    return Ok(200, {{"devices", list}});
  }

  // PUT .../devices/{device}/channel {"channel": NAME | null}: the device's channel override (null
  // clears it). The device must be enrolled and the channel must exist.
  Response SetDeviceChannel(const Request& req) {
    auto parsed = ParseObjectBody(req.body);
    if (parsed.error) return *parsed.error;
    const Json& body = parsed.json;
    if (!body.contains("channel")) return JsonError(400, "bad_request", "missing field 'channel'");
    auto channel = OptString(body, "channel", storage::kMaxIdLength);
    if (!channel) return BadRequest(channel.error());
    if (*channel && !IsValidId(**channel)) {
      return JsonError(400, "bad_request", "channel must be 1 to 128 bytes of [A-Za-z0-9._-]");
    }
    std::string device_id(req.Param("device"));
    if (!IsValidId(device_id)) return JsonError(400, "bad_request", "bad device id");
    std::lock_guard lock(write_mutex);
    std::optional<Response> err;
    auto app = LoadApp(req, &err);
    if (!app) return *err;
    auto device = deps.store->GetDevice(app->app_id, device_id);
    if (!device) return ErrorResponse(device.error());
    if (*channel) {
      if (auto found = deps.store->GetChannel(app->app_id, **channel); !found) {
        return ErrorResponse(found.error());
      }
    }
    device->channel_override = *channel;
    if (auto updated = deps.store->UpdateDevice(*device); !updated) {
      return ErrorResponse(updated.error());
    }
    if (deps.cache != nullptr) deps.cache->InvalidateDevice(app->app_id, device_id);
    return Ok(200, {{"device_id", device->device_id},
                    {"platform", device->platform},
                    {"public_key", device->public_key},
                    {"channel_override", *channel ? Json(**channel) : Json(nullptr)},
                    {"last_seen", device->last_seen}});
  }

  Response ListEvents(const Request& req) {
    std::optional<Response> err;
    auto limit = QueryLimit(req, storage::kMaxListLimit, &err);
    if (!limit) return *err;
    auto app = LoadApp(req, &err);
    if (!app) return *err;
    std::string device(req.Param("device"));
    if (!IsValidId(device)) return JsonError(400, "bad_request", "bad device id");
    auto events = deps.store->ListDeviceEvents(app->app_id, device, *limit);
    if (!events) return ErrorResponse(events.error());
    Json list = Json::array();
    for (const auto& e : *events) {
      list.push_back({{"seq", e.seq},
                      {"version", e.version},
                      {"kind", e.kind},
                      {"reason_code", e.reason_code},
                      {"detail", e.detail},
                      {"occurred_at", e.occurred_at},
                      {"received_at", e.received_at}});
    }
    return Ok(200, {{"events", list}});
  }

  // --- tokens and audit ---

  // POST /api/v1/tokens: a token minted by `actor` never out-ranks it (every action of the roles
  // asked for is one `actor` holds, else 403), never outlives it (expires_in beyond the actor's
  // expiry: 403; absent: the actor's expiry), never reaches apps outside the actor's (403; absent:
  // the actor's apps), and stops working when the actor is revoked (its parent is recorded).
  Response CreateToken(const Request& req, const access::Principal& actor) {
    auto parsed = ParseObjectBody(req.body);
    if (parsed.error) return *parsed.error;
    const Json& body = parsed.json;
    auto name = ReqString(body, "name", access::kMaxPrincipalNameSize);
    if (!name) return BadRequest(name.error());
    auto roles_it = body.find("roles");
    if (roles_it == body.end() || !roles_it->is_array() || roles_it->empty() ||
        roles_it->size() > 16) {
      return JsonError(400, "bad_request", "field 'roles' must be an array of 1 to 16 role names");
    }
    std::vector<access::Role> roles;
    for (const auto& r : *roles_it) {
      if (!r.is_string()) return JsonError(400, "bad_request", "roles must be strings");
      auto role = access::ParseRole(r.get<std::string>());
      if (!role) return BadRequest(role.error());
      roles.push_back(*role);
    }
    auto expires_in = OptInt(body, "expires_in", 1, int64_t{10} * 366 * 86400);
    if (!expires_in) return BadRequest(expires_in.error());
    access::TokenLimits limits;
    limits.parent_token_id = actor.token_id;
    if (auto apps_it = body.find("apps"); apps_it != body.end() && !apps_it->is_null()) {
      if (!apps_it->is_array() || apps_it->empty() || apps_it->size() > 64) {
        return JsonError(400, "bad_request", "field 'apps' must be an array of 1 to 64 app ids");
      }
      for (const auto& app : *apps_it) {
        if (!app.is_string() || !IsValidId(app.get<std::string>())) {
          return JsonError(400, "bad_request", "apps must be 1 to 128 bytes of [A-Za-z0-9._-]");
        }
        limits.apps.push_back(app.get<std::string>());
      }
    }
    // No escalation: a token may not be given an action its creator lacks.
    for (access::Role role : roles) {
      for (access::Action action : access::AllActions()) {
        if (access::RoleAllows(role, action) && !access::Authorize(actor, action)) {
          return JsonError(403, "forbidden",
                           "role " + std::string(access::RoleName(role)) + " allows " +
                               std::string(access::ActionName(action)) +
                               ", which this token may not");
        }
      }
    }
    Result<access::CreatedToken> created = [&] {
      std::lock_guard lock(access_mutex);
      return deps.access->CreateToken(*name, roles, expires_in->value_or(0), limits);
    }();
    if (!created) {
      if (created.error().code() == access::kDeniedCode) {
        return JsonError(403, "forbidden", created.error().message());
      }
      return ErrorResponse(created.error());
    }
    Json reply = TokenJson(created->principal);
    reply["token"] = created->token;
    return Ok(201, reply);
  }

  static Json TokenJson(const access::Principal& p) {
    Json json = PrincipalJson(p);
    if (p.kind != access::PrincipalKind::kToken) return json;
    json["id"] = p.token_id;
    json["parent"] = p.parent_token_id ? Json(*p.parent_token_id) : Json(nullptr);
    json["apps"] = p.apps.empty() ? Json(nullptr) : Json(p.apps);
    json["last_used"] = p.last_used ? Json(*p.last_used) : Json(nullptr);
    return json;
  }

  // GET /api/v1/tokens: every principal (tokens with id, parent, apps and last use); a token
  // limited to apps sees only the tokens limited to some of its apps.
  Response ListTokens(const access::Principal& actor) {
    Result<std::vector<access::Principal>> principals = [&] {
      std::lock_guard lock(access_mutex);
      return deps.access->List();
    }();
    if (!principals) return ErrorResponse(principals.error());
    Json list = Json::array();
    for (const auto& p : *principals) {
      if (WithinApps(actor, p)) list.push_back(TokenJson(p));
    }
    return Ok(200, {{"principals", list}});
  }

  // True when `p`'s reach lies within `actor`'s apps (always for an unlimited actor).
  static bool WithinApps(const access::Principal& actor, const access::Principal& p) {
    if (actor.apps.empty()) return true;
    if (p.kind != access::PrincipalKind::kToken || p.apps.empty()) return false;
    return std::all_of(p.apps.begin(), p.apps.end(),
                       [&](const std::string& app) { return access::AllowsApp(actor, app); });
  }

  // DELETE /api/v1/tokens/{id}: revokes the token (its requests get 401 from now on, and so do the
  // tokens it minted). 404 for an unknown id, or one outside a limited actor's apps.
  Response RevokeToken(const Request& req, const access::Principal& actor) {
    std::string id(req.Param("id"));
    Result<access::Principal> revoked = [&]() -> Result<access::Principal> {
      std::lock_guard lock(access_mutex);
      auto found = deps.access->FindTokenById(id);
      if (!found) return found;
      if (!WithinApps(actor, *found)) {
        return MakeError(ErrorCode::kNotFound, "no token with id " + id.substr(0, 64));
      }
      return deps.access->RevokeToken(id);
    }();
    if (!revoked) return ErrorResponse(revoked.error());
    return Ok(200, TokenJson(*revoked));
  }

  Response Audit(const Request& req) {
    std::optional<Response> err;
    auto limit = QueryLimit(req, 1000, &err);
    if (!limit) return *err;
    if (deps.audit_log.empty()) return JsonError(404, "not_found", "no audit log configured");
    // Opened per request: an AuditLog is not thread-safe, and this is a rare admin read.
    auto log = audit::AuditLog::OpenExisting(deps.audit_log);
    if (!log) {
      if (log.error().code() == ErrorCode::kNotFound) return Ok(200, {{"records", Json::array()}});
      return ErrorResponse(log.error());
    }
    auto head = log->Head();
    if (!head) return ErrorResponse(head.error());
    audit::AuditFilter filter;
    filter.limit = *limit;
    int64_t first = head->first - static_cast<int64_t>(*limit);
    if (first > 0) filter.after_seq = first;
    auto records = log->Query(filter);
    if (!records) return ErrorResponse(records.error());
    Json list = Json::array();
    for (const auto& r : *records) list.push_back(UsageRecordJson(r));
    return Ok(200, {{"records", list}});
  }
};

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
  router->Add("GET", apps,
              a->Guard(Action::kReleaseRead, "", [a](const Request&, const access::Principal& actor) {
                return a->ListApps(actor);
              }));
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
  router->Add("PATCH", channel,
              a->Guard(Action::kReleasePublish, "channel.update", bind(&AdminApi::PatchChannel)));
  router->Add("PUT", channel + "/rollout",
              a->Guard(Action::kReleasePublish, "channel.rollout", bind(&AdminApi::PutRollout)));
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
              a->Guard(Action::kReleasePublish, "release.publish", bind(&AdminApi::Publish)));
  router->Add("GET", apps + "/{app}/releases",
              a->Guard(Action::kReleaseRead, "", bind(&AdminApi::ListReleases)));

  router->Add("GET", apps + "/{app}/devices",
              a->Guard(Action::kReleaseRead, "", bind(&AdminApi::ListDevices)));
  router->Add("GET", apps + "/{app}/devices/{device}/events",
              a->Guard(Action::kReleaseRead, "", bind(&AdminApi::ListEvents)));
  router->Add("PUT", apps + "/{app}/devices/{device}/channel",
              a->Guard(Action::kReleasePublish, "device.channel", bind(&AdminApi::SetDeviceChannel)));

  router->Add("POST", "/api/v1/tokens",
              a->Guard(Action::kTokenManage, "token.create",
                       [a](const Request& req, const access::Principal& actor) {
                         return a->CreateToken(req, actor);
                       }));
  router->Add("GET", "/api/v1/tokens",
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
  return api;
}

}  // namespace airlock::server
