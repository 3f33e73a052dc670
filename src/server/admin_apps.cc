// The admin API's handlers for apps (create, list, show, root, targets, enrollment token) and blob
// uploads (server/admin_api_internal.h; docs/api/server-api.md is the contract).
#include <cctype>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "common/bytes.h"
#include "common/file.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/random.h"
#include "server/admin_api_internal.h"
#include "server/blob_gc.h"
#include "server/server_api.h"

namespace airlock::server {

using Json = nlohmann::json;
using namespace api_internal;    // NOLINT(google-build-using-namespace): this module's own helpers
using namespace admin_internal;  // NOLINT(google-build-using-namespace)

Response AdminApi::CreateApp(const Request& req) {
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

Result<std::pair<std::string, std::string>> AdminApi::NewEnrollmentToken() {
  AIRLOCK_ASSIGN_OR_RETURN(Bytes random, crypto::RandomBytes(32));
  std::string token = "enr_" + HexEncode(random);
  std::string hash = HexEncode(crypto::Sha256(AsBytes(token)));
  return std::pair{std::move(token), std::move(hash)};
}

Response AdminApi::RotateEnrollmentToken(const Request& req) {
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

Response AdminApi::ListApps(const access::Principal& actor) {
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

Result<storage::App> AdminApi::LoadApp(const Request& req, std::optional<Response>* err) {
  std::string app_id(req.Param("app"));
  if (!IsValidId(app_id)) {
    *err = JsonError(400, "bad_request", "app id must be 1 to 128 bytes of [A-Za-z0-9._-]");
    return MakeError(ErrorCode::kInvalidArgument, "bad app id");
  }
  auto app = deps.store->GetApp(app_id);
  if (!app) *err = ErrorResponse(app.error());
  return app;
}

Response AdminApi::GetApp(const Request& req) {
  std::optional<Response> err;
  auto app = LoadApp(req, &err);
  if (!app) return *err;
  auto keys = deps.repo->GetOnlineKeys(app->app_id);
  if (!keys) return ErrorResponse(keys.error());
  auto status = deps.repo->Status(app->app_id);
  if (!status) return ErrorResponse(status.error());
  auto opt = [](const std::optional<uint64_t>& v) { return v ? Json(*v) : Json(nullptr); };
  return Ok(200, {{"app_id", app->app_id},
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

Response AdminApi::PutRoot(const Request& req) {
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

Response AdminApi::PutTargets(const Request& req) {
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

Response AdminApi::UploadBlob(const Request& req) {
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
  // Already held: refresh its mtime under the collector's lock protocol (server/blob_gc.h), so a
  // collection running now keeps it; if a collection just removed it, store this copy.
  auto held = TouchBlob(dest);
  if (!held) return ErrorResponse(held.error());
  if (*held) return Ok(200, reply);
  auto dir = dest.parent_path();
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return ErrorResponse(Error(ErrorCode::kIo, "mkdir " + dir.string() + ": " + ec.message()));
  std::filesystem::rename(up.path, dest, ec);
  if (ec == std::errc::cross_device_link) {
    // The upload folder is on another file system: copy beside the destination, fsync, rename.
    auto tmp = dir / ("." + up.sha256_hex + ".tmp-" + std::to_string(::getpid()));
    ec.clear();
    std::filesystem::copy_file(up.path, tmp, std::filesystem::copy_options::overwrite_existing, ec);
    if (!ec) {
      if (auto synced = FsyncPath(tmp); !synced) {
        std::filesystem::remove(tmp, ec);
        return ErrorResponse(synced.error());
      }
      std::filesystem::rename(tmp, dest, ec);
    }
    if (ec) std::filesystem::remove(tmp, ec);
  }
  if (ec) return ErrorResponse(Error(ErrorCode::kIo, "store blob: " + ec.message()));
  if (auto synced = FsyncPath(dir); !synced) return ErrorResponse(synced.error());
  return Ok(201, reply);
}

}  // namespace airlock::server
