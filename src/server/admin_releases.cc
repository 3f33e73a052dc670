// The admin API's handlers for channels, rollouts, rollbacks and publishing releases
// (server/admin_api_internal.h; docs/api/server-api.md is the contract).
#include <algorithm>
#include <mutex>
#include <optional>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "common/semver.h"
#include "crypto/keys.h"
#include "server/admin_api_internal.h"
#include "bundle/manifest.h"
#include "server/capgo_routes.h"
#include "server/release_policy.h"
#include "server/server_api.h"

namespace airlock::server {

using Json = nlohmann::json;
using namespace api_internal;    // NOLINT(google-build-using-namespace): this module's own helpers
using namespace admin_internal;  // NOLINT(google-build-using-namespace)

Result<void> AdminApi::ApplyChannelFields(const Json& body, storage::Channel* c,
                                          bool allow_paused) {
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

Response AdminApi::CreateChannel(const Request& req) {
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
  // A new channel takes its approval policy as given: nothing is on it to protect yet.
  auto required = OptBool(parsed.json, "approval_required");
  if (!required) return BadRequest(required.error());
  auto above = OptInt(parsed.json, "approval_rollout_above", 0, 100);
  if (!above) return BadRequest(above.error());
  if (*required) c.approval_required = **required;
  if (*above) c.approval_rollout_above = static_cast<int>(**above);
  std::lock_guard lock(write_mutex);
  if (auto created = deps.store->CreateChannel(c); !created) return ErrorResponse(created.error());
  Invalidate(c.app_id);
  return Ok(201, ChannelJson(c));
}

Response AdminApi::ListChannels(const Request& req) {
  std::optional<Response> err;
  auto app = LoadApp(req, &err);
  if (!app) return *err;
  auto channels = deps.store->ListChannels(app->app_id);
  if (!channels) return ErrorResponse(channels.error());
  Json list = Json::array();
  for (const auto& c : *channels) list.push_back(ChannelJson(c));
  return Ok(200, {{"channels", list}});
}

Result<storage::Channel> AdminApi::LoadChannel(const Request& req, std::optional<Response>* err) {
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

Response AdminApi::GetChannel(const Request& req) {
  std::optional<Response> err;
  auto c = LoadChannel(req, &err);
  if (!c) return *err;
  return Ok(200, ChannelJson(*c));
}

Response AdminApi::ChangeChannel(
    const Request& req, const std::function<std::optional<Response>(storage::Channel*)>& change) {
  std::lock_guard lock(write_mutex);
  std::optional<Response> err;
  auto c = LoadChannel(req, &err);
  if (!c) return *err;
  if (auto refused = change(&*c)) return *refused;
  if (auto updated = deps.store->UpdateChannel(*c); !updated) return ErrorResponse(updated.error());
  Invalidate(c->app_id);
  return Ok(200, ChannelJson(*c));
}

// A rollout raised above the approval threshold of a channel that requires approval.
// `c` as stored (before the change).
static bool RolloutNeedsApproval(const storage::Channel& c, int percent) {
  return c.approval_required && percent > c.rollout_percent && percent > c.approval_rollout_above;
}

Response AdminApi::PatchChannel(const Request& req, const access::Principal& actor) {
  auto parsed = ParseObjectBody(req.body);
  if (parsed.error) return *parsed.error;
  return ChangeChannel(req, [&](storage::Channel* c) -> std::optional<Response> {
    const storage::Channel before = *c;
    if (auto applied = ApplyChannelFields(parsed.json, c, true); !applied) {
      return BadRequest(applied.error());
    }
    if (RolloutNeedsApproval(before, c->rollout_percent)) {
      return JsonError(409, "approval_required",
                       "channel " + c->name + " needs an approval for a rollout above " +
                           std::to_string(c->approval_rollout_above) +
                           " %: request it with PUT .../rollout (airlock rollout set)");
    }
    bool pending = false;
    if (auto reply = ApplyApprovalPolicy(parsed.json, c, actor, &pending)) return reply;
    return std::nullopt;
  });
}

Response AdminApi::PutRollout(const Request& req, const access::Principal& actor) {
  auto parsed = ParseObjectBody(req.body);
  if (parsed.error) return *parsed.error;
  auto percent = OptInt(parsed.json, "percent", 0, 100);
  if (!percent) return BadRequest(percent.error());
  if (!*percent) return JsonError(400, "bad_request", "field 'percent' must be an integer");
  return ChangeChannel(req, [&](storage::Channel* c) -> std::optional<Response> {
    if (RolloutNeedsApproval(*c, static_cast<int>(**percent))) {
      storage::Approval a = NewApproval(*c, "rollout", actor);
      a.rollout_percent = **percent;
      auto made = deps.store->CreateApproval(a);
      if (!made) return ErrorResponse(made.error());
      return Pending(*made, {{"channel", ChannelJson(*c)}});
    }
    c->rollout_percent = static_cast<int>(**percent);
    return std::nullopt;
  });
}

Response AdminApi::SetPaused(const Request& req, bool paused) {
  return ChangeChannel(req, [&](storage::Channel* c) -> std::optional<Response> {
    c->paused = paused;
    return std::nullopt;
  });
}

Response AdminApi::Rollback(const Request& req) {
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
  // Already the channel's release: nothing changes. Targets metadata sent along must still verify
  // (a forged one is refused as always), but is not accepted.
  if (c->current_version == *to) {
    if (targets_bytes) {
      auto verified =
          deps.repo->VerifyTargets(c->app_id, *targets_bytes, MakeBlobLookup(deps.data_dir));
      if (!verified) return VerificationError(verified.error());
    }
    Json same = ChannelJson(*c);
    same["changed"] = false;
    return Ok(200, same);
  }
  auto release = deps.store->GetRelease(c->app_id, *to);
  if (!release) return ErrorResponse(release.error());
  auto blobs = MakeBlobLookup(deps.data_dir);
  // The signed targets that decide: the new metadata sent with the rollback, else the current.
  Result<std::vector<TrustedTarget>> targets =
      targets_bytes ? deps.repo->VerifyTargets(c->app_id, *targets_bytes, blobs)
                    : deps.repo->CurrentTargets(c->app_id);
  Result<TrustedTarget> allowed = [&]() -> Result<TrustedTarget> {
    if (!targets) return tl::unexpected(targets.error());
    return FindRollbackTarget(*targets, c->app_id, *to, c->name);
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
  // Every blob the channel would serve (bundle and Capgo zip) must carry the permission, as the
  // serving gate (SignedReleaseGate) checks; otherwise the rollback would be accepted here and
  // then withheld from every device.
  storage::ChannelRelease next{*c, *release};
  next.channel.current_version = *to;
  next.channel.rolled_back = true;
  if (!ChannelReleaseAllowed(*targets, next)) {
    return JsonError(422, "verification_failed",
                     "rollback to " + *to + " not allowed: not every blob of the release (bundle " +
                         "and Capgo zip) is signed as a rollback target for channel " + c->name);
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
  Json changed = ChannelJson(*updated);
  changed["changed"] = true;
  return Ok(200, changed);
}

namespace {

// A Capgo manifest as the CLI sends it ([{"file_name", "file_hash", "target"}]), checked against the
// signed targets: every entry's target is listed there as a "capgo-file" of this app, version,
// file name and file_hash (so its blob is held, its bytes are the signed ones, and the plugin is
// told to expect the hash the developer signed: a file_hash replayed from another file or release
// could make it accept a stale copy it already holds), names are bundle paths (with ".br" for
// brotli), unique once ".br" is dropped, and file_hash is hex. Returns what is stored
// ([{"file_name", "file_hash", "sha256"}]). kInvalidArgument: a malformed entry; kWrongKey: not
// signed as such.
Result<std::string> CheckCapgoManifest(const nlohmann::json& manifest,
                                       const std::vector<TrustedTarget>& targets,
                                       const std::string& app_id, const std::string& version) {
  std::map<std::string, const TrustedTarget*, std::less<>> by_name;
  for (const TrustedTarget& t : targets) by_name.emplace(t.name, &t);
  std::set<std::string> seen;
  nlohmann::json out = nlohmann::json::array();
  for (const nlohmann::json& e : manifest) {
    if (!e.is_object()) {
      return MakeError(ErrorCode::kInvalidArgument, "capgo.manifest entries must be objects");
    }
    auto name = ReqString(e, "file_name", 1100);
    auto hash = ReqString(e, "file_hash", 2048);
    auto target = ReqString(e, "target", storage::kMaxTextLength);
    for (const auto* field : {&name, &hash, &target}) {
      if (!*field) return MakeError(ErrorCode::kInvalidArgument, "capgo.manifest: " + (*field).error().message());
    }
    std::string_view path = *name;
    if (path.size() > 3 && path.substr(path.size() - 3) == ".br") path.remove_suffix(3);
    if (auto ok = bundle::ValidateBundlePath(path); !ok) {
      return MakeError(ErrorCode::kInvalidArgument, "capgo.manifest: " + ok.error().message());
    }
    if (!seen.insert(std::string(path)).second) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "capgo.manifest names " + std::string(path) + " twice");
    }
    if (hash->empty() || hash->size() % 2 != 0 ||
        hash->find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "capgo.manifest: file_hash of " + *name + " is not hex");
    }
    auto t = by_name.find(*target);
    const bool capgo_file =
        t != by_name.end() && SignedString(t->second->custom, "format") == "capgo-file";
    const nlohmann::json file =
        capgo_file ? t->second->custom.value("capgo_file", nlohmann::json()) : nlohmann::json();
    if (!file.is_object() || SignedString(file, "app_id") != app_id ||
        SignedString(file, "version") != version || SignedString(file, "file_name") != *name) {
      return MakeError(ErrorCode::kWrongKey, "targets metadata does not list " + *target +
                                                 " as the Capgo file " + *name + " of " +
                                                 version);
    }
    if (SignedString(file, "file_hash") != *hash) {
      return MakeError(ErrorCode::kWrongKey, "capgo.manifest: file_hash of " + *name +
                                                 " is not the one the targets metadata signed");
    }
    out.push_back({{"file_name", *name}, {"file_hash", *hash}, {"sha256", t->second->sha256}});
  }
  std::string text = out.dump();
  if (text.size() > storage::kMaxCapgoManifestText) {
    return MakeError(ErrorCode::kInvalidArgument, "capgo.manifest is too large");
  }
  return text;
}

// The "version" and "channel" of a publish body, or the 400 reply.
struct VersionAndChannel {
  std::string version;
  std::string channel;
  std::optional<Response> error;
};

VersionAndChannel ParseVersionAndChannel(const Json& body) {
  VersionAndChannel out;
  auto version = ReqString(body, "version", kMaxSemverLength);
  if (!version) return {"", "", BadRequest(version.error())};
  if (auto v = Semver::Parse(*version); !v) {
    return {"", "", JsonError(400, "bad_request", "version: " + v.error().message())};
  }
  auto channel = ReqString(body, "channel", storage::kMaxIdLength);
  if (!channel) return {"", "", BadRequest(channel.error())};
  if (!IsValidId(*channel)) {
    return {"", "",
            JsonError(400, "bad_request", "channel must be 1 to 128 bytes of [A-Za-z0-9._-]")};
  }
  out.version = std::move(*version);
  out.channel = std::move(*channel);
  return out;
}

}  // namespace

std::optional<Response> AdminApi::RefusePublish(const std::string& app_id,
                                                const std::string& version,
                                                const std::string& channel) {
  if (auto c = deps.store->GetChannel(app_id, channel); !c) return ErrorResponse(c.error());
  auto existing = deps.store->GetRelease(app_id, version);
  if (existing) return JsonError(409, "already_exists", "release " + version + " exists");
  if (existing.error().code() != ErrorCode::kNotFound) return ErrorResponse(existing.error());
  return std::nullopt;
}

Response AdminApi::CheckPublish(const Request& req) {
  Json query = Json::object();
  for (const auto& [key, value] : DecodeQuery(req.query)) {
    if (key == "version" || key == "channel") query[key] = value;
  }
  VersionAndChannel vc = ParseVersionAndChannel(query);
  if (vc.error) return *vc.error;
  std::optional<Response> err;
  auto app = LoadApp(req, &err);
  if (!app) return *err;
  if (auto refused = RefusePublish(app->app_id, vc.version, vc.channel)) return *refused;
  return Ok(200, {{"version", vc.version}, {"channel", vc.channel}});
}

Response AdminApi::Publish(const Request& req, const access::Principal& actor) {
  auto parsed = ParseObjectBody(req.body);
  if (parsed.error) return *parsed.error;
  const Json& body = parsed.json;
  VersionAndChannel vc = ParseVersionAndChannel(body);
  if (vc.error) return *vc.error;
  const std::string* version = &vc.version;
  const std::string* channel_name = &vc.channel;
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
  const nlohmann::json* capgo_manifest = nullptr;
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
    if (auto m = capgo->find("manifest"); m != capgo->end() && !m->is_null()) {
      if (!m->is_array() || m->empty() || m->size() > 100000) {
        return JsonError(400, "bad_request",
                         "field 'capgo.manifest' must be an array of 1 to 100000 entries");
      }
      capgo_manifest = &*m;
    }
  }

  std::lock_guard lock(write_mutex);
  std::optional<Response> err;
  auto app = LoadApp(req, &err);
  if (!app) return *err;
  if (auto refused = RefusePublish(app->app_id, *version, *channel_name)) return *refused;

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
  std::optional<std::string> capgo_manifest_text;
  if (capgo_manifest != nullptr) {
    auto checked = CheckCapgoManifest(*capgo_manifest, *targets, app->app_id, *version);
    if (!checked) {
      return JsonError(checked.error().code() == ErrorCode::kInvalidArgument ? 400 : 422,
                       checked.error().code() == ErrorCode::kInvalidArgument
                           ? "bad_request"
                           : "verification_failed",
                       checked.error().message());
    }
    capgo_manifest_text = std::move(*checked);
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
        return JsonError(400, "bad_request", "app " + app->app_id + " has no app_key for app mode");
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
      return JsonError(
          422, "verification_failed",
          *target + " has no recipient for the " +
              (*encryption == storage::EncryptionMode::kDevice ? "app's content key" : "app key"));
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
    release.capgo_manifest = capgo_manifest_text;
    // The key id the targets key signed beside the Capgo form (`airlock release publish` writes
    // it): /updates refuses the form to a device whose key_id names another key.
    // A field that is there but is not a key id is refused (it would leave the release unchecked):
    // 1..64 characters of base64, the plugin's calcKeyId.
    if (const auto id = capgo->custom.find("capgo_key_id"); id != capgo->custom.end()) {
      const std::string* key_id = id->is_string() ? &id->get_ref<const std::string&>() : nullptr;
      const auto base64 = [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '+' || c == '/' || c == '=';
      };
      if (key_id == nullptr || key_id->empty() || key_id->size() > kCapgoMaxShortString ||
          !std::all_of(key_id->begin(), key_id->end(), base64)) {
        return JsonError(422, "verification_failed",
                         "capgo_key_id of " + capgo->name + " must be 1 to 64 base64 characters");
      }
      release.capgo_key_id = *key_id;
    }
  }
  auto channel = deps.store->GetChannel(app->app_id, *channel_name);
  if (!channel) return ErrorResponse(channel.error());
  auto accepted = deps.repo->AcceptTargets(app->app_id, targets_bytes, blobs);
  if (!accepted) return VerificationError(accepted.error());
  if (channel->approval_required) {
    // Stored with its approval request in one transaction; the channel keeps its release until a
    // second principal approves (admin_approvals.cc).
    storage::Approval a = NewApproval(*channel, "publish", actor);
    a.version = release.version;
    auto made = deps.store->CreateApproval(a, &release);
    if (!made) return ErrorResponse(made.error());
    return Pending(*made, {{"release", ReleaseJson(release)}});
  }
  auto published = deps.store->PublishRelease(release, *channel_name);
  Invalidate(app->app_id);
  if (!published) return ErrorResponse(published.error());
  return Ok(201, ReleaseJson(release));
}

Response AdminApi::ListReleases(const Request& req) {
  std::optional<Response> err;
  auto app = LoadApp(req, &err);
  if (!app) return *err;
  auto releases = deps.store->ListReleases(app->app_id);
  if (!releases) return ErrorResponse(releases.error());
  Json list = Json::array();
  for (const auto& r : *releases) list.push_back(ReleaseJson(r));
  return Ok(200, {{"releases", list}});
}

}  // namespace airlock::server
