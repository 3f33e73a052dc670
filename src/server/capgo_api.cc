#include "server/capgo_api.h"

#include <sys/mman.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <new>

#include "common/flat_json.h"
#include "common/json.h"
#include "common/semver.h"
#include "crypto/hash.h"
#include "server/json_text.h"

// Sources for the wire behaviour reproduced here (read 2026-11, Cap-go/capgo backend, main branch):
//  * supabase/functions/_backend/utils/update.ts: `updateError200(c, code, message, moreInfo)` answers
//    HTTP 200 `{error: code, message, ...moreInfo, kind: getUpdateResponseKind(code)}`;
//    UPDATE_UP_TO_DATE_CODES = {no_new_version_available, already_on_builtin}; UPDATE_BLOCKED_CODES =
//    {cannot_update_via_private_channel, disabled_platform_{ios,android,electron},
//    disable_auto_update_to_{major,minor,patch,metadata}, disable_auto_update_under_native,
//    disable_prod_build, disable_dev_build, disable_device, disable_emulator, key_id_mismatch,
//    provider_infrastructure_request_blocked}; everything else is "failed".
//    `resToVersion` always sends version, url, session_key (?? ''), checksum, and `manifest` only when
//    non-empty and the plugin supports it (v5.10.0+, v6.25.0+, v7.0.35+, v8+).
//    `version_name === "builtin"` means the device runs its native version_build (isOnBuiltinVersion).
//  * utils/hono.ts simpleError200: the `{error, message, ...}` shape.
//  * plugins/channel_self.ts: POST/PUT/DELETE bodies and answers (`{status:"ok"}` = BRES;
//    `{channel, status:"override", allowSet}` / `{channel, status:"default"}`; 400 with
//    channel_not_found, channel_self_set_not_allowed, cannot_override).
//  * Cap-go/website docs/plugin/self-hosted/handling-stats.mdx: /stats answers `{status:"ok"}`.
// Airlock differences are deliberate and documented in docs/api/capgo.md (400 instead of 200 for malformed
// input, downgrade_not_authorized, strict semver).

namespace airlock::server {

namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

constexpr std::string_view kBuiltin = "builtin";

std::string Dump(const OrderedJson& value) {
  // Replace rather than throw on invalid UTF-8 coming from the interfaces.
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

CapgoReply JsonReply(int status, const OrderedJson& body) { return CapgoReply{status, Dump(body), {}}; }

CapgoReply ErrorReply(int status, std::string_view code, std::string_view message,
                      bool with_kind = true) {
  OrderedJson body;
  body["error"] = code;
  body["message"] = message;
  if (with_kind) body["kind"] = CapgoUpdateKind(code);
  return JsonReply(status, body);
}

// 400 for input that does not parse or validate; 413 when the body is over the size bound.
CapgoReply BadInput(const Error& error, std::string_view body, bool with_kind = true) {
  if (body.size() > kCapgoMaxBodyBytes) {
    return ErrorReply(413, "payload_too_large", error.message(), with_kind);
  }
  std::string_view code = error.code() == ErrorCode::kMalformed && error.message().rfind("invalid JSON", 0) == 0
                              ? "invalid_json"
                              : "invalid_request";
  return ErrorReply(400, code, error.message(), with_kind);
}

CapgoReply Internal(const Error& error, bool with_kind = true) {
  return ErrorReply(500, "internal_error", "server error: " + error.message(), with_kind);
}

Result<Json> ParseBody(std::string_view body) {
  AIRLOCK_ASSIGN_OR_RETURN(Json value, ParseJson(body, kCapgoMaxBodyBytes, kCapgoMaxJsonDepth));
  return value;
}

Result<Json> ParseCapgoBody(std::string_view body) {
  AIRLOCK_ASSIGN_OR_RETURN(Json value, ParseBody(body));
  if (!value.is_object()) return MakeError(ErrorCode::kMalformed, "request body is not a JSON object");
  return value;
}

// Optional string field: absent or null -> fallback. Present with another type -> kMalformed.
// The field readers take a nlohmann::json object or a FlatJsonObject (the /updates fast path).
template <typename Object>
Result<std::string> CapgoOptString(const Object& obj, std::string_view key, size_t max_length,
                                   std::string fallback = {}) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_string()) {
    return MakeError(ErrorCode::kMalformed, "field '" + std::string(key) + "' is not a string");
  }
  const auto& s = it->template get_ref<const std::string&>();
  if (s.size() > max_length) {
    return MakeError(ErrorCode::kLimitExceeded, "field '" + std::string(key) + "' is longer than " +
                                                    std::to_string(max_length) + " bytes");
  }
  return s;
}

template <typename Object>
Result<std::string> CapgoReqString(const Object& obj, std::string_view key, size_t max_length) {
  auto it = obj.find(key);
  if (it == obj.end()) return MakeError(ErrorCode::kMalformed, "missing field '" + std::string(key) + "'");
  AIRLOCK_ASSIGN_OR_RETURN(std::string s, CapgoOptString(obj, key, max_length));
  if (it->is_null() || s.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "field '" + std::string(key) + "' is empty");
  }
  return s;
}

template <typename Object>
Result<bool> OptBool(const Object& obj, std::string_view key, bool fallback) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) {
    return MakeError(ErrorCode::kMalformed, "field '" + std::string(key) + "' is not a boolean");
  }
  return it->template get<bool>();
}

bool AllChars(std::string_view s, bool (*ok)(char)) { return std::all_of(s.begin(), s.end(), ok); }

// ASCII classes, independent of the process locale (std::isalnum is a call per byte and follows
// the locale).
bool AsciiAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool AppIdChar(char c) {
  return AsciiAlnum(c) || c == '.' || c == '_' || c == '-';
}
bool DeviceIdChar(char c) { return AsciiAlnum(c) || c == '-'; }
bool ActionChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

Result<Semver> ParseSemverField(std::string_view key, std::string_view value) {
  auto parsed = Semver::Parse(value);
  if (!parsed) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "field '" + std::string(key) + "' is not a semantic version: " + std::string(value));
  }
  return *parsed;
}

Result<CapgoPlatform> ParsePlatform(std::string_view name) {
  if (name == "ios") return CapgoPlatform::kIos;
  if (name == "android") return CapgoPlatform::kAndroid;
  if (name == "electron") return CapgoPlatform::kElectron;
  return MakeError(ErrorCode::kInvalidArgument,
                   "field 'platform' must be ios, android or electron, not '" + std::string(name) + "'");
}

// Capgo's resToVersion: manifest for v5.10.0+, v6.25.0+, v7.0.35+ and every v8+.
bool PluginSupportsManifest(const Semver& plugin) {
  auto at_least = [&](uint64_t minor, uint64_t patch) {
    return plugin.minor > minor || (plugin.minor == minor && plugin.patch >= patch);
  };
  switch (plugin.major) {
    case 5: return at_least(10, 0);
    case 6: return at_least(25, 0);
    case 7: return at_least(0, 35);
    default: return plugin.major >= 8;
  }
}

OrderedJson BlockedExtra(const CapgoRelease& release, const CapgoDeviceInfo& device) {
  OrderedJson extra;
  extra["version"] = release.version;
  extra["old"] = device.EffectiveVersion();
  return extra;
}

CapgoReply UpdateError(std::string_view code, std::string_view message,
                       const OrderedJson& extra = OrderedJson::object()) {
  OrderedJson body;
  body["error"] = code;
  body["message"] = message;
  for (const auto& [key, value] : extra.items()) body[key] = value;
  body["kind"] = CapgoUpdateKind(code);
  return JsonReply(200, body);
}

OrderedJson StatusOk() { return OrderedJson{{"status", "ok"}}; }

const CapgoChannel* FindByName(const std::vector<CapgoChannel>& channels, std::string_view name) {
  for (const auto& channel : channels) {
    if (channel.name == name) return &channel;
  }
  return nullptr;
}

const CapgoChannel* DefaultFor(const std::vector<CapgoChannel>& channels, CapgoPlatform platform) {
  for (const auto& channel : channels) {
    if (channel.is_public && channel.EnabledFor(platform)) return &channel;
  }
  return nullptr;
}

}  // namespace

std::string_view CapgoPlatformName(CapgoPlatform platform) {
  switch (platform) {
    case CapgoPlatform::kIos: return "ios";
    case CapgoPlatform::kAndroid: return "android";
    case CapgoPlatform::kElectron: return "electron";
  }
  return "unknown";
}

int64_t CapgoChannelId(std::string_view app_id, std::string_view name) {
  std::string input = "airlock capgo channel\n";
  input.append(app_id).append("\n").append(name);
  const Bytes digest = crypto::Sha256(AsBytes(input));
  const int64_t id = ((int64_t{digest[0]} & 0x7f) << 24) | (int64_t{digest[1]} << 16) |
                     (int64_t{digest[2]} << 8) | int64_t{digest[3]};
  return id == 0 ? 1 : id;
}

std::string CoerceCapgoVersion(std::string_view version) {
  const size_t core_end = version.find_first_of("-+");
  const std::string_view core = version.substr(0, core_end);
  const auto dots = std::count(core.begin(), core.end(), '.');
  if (core.empty() || dots >= 2) return std::string(version);
  std::string out(core);
  out += dots == 0 ? ".0.0" : ".0";
  if (core_end != std::string_view::npos) out += version.substr(core_end);
  return out;
}

std::string CapgoDeviceInfo::EffectiveVersion() const {
  return version_name == kBuiltin ? version_build : version_name;
}

bool CapgoChannel::EnabledFor(CapgoPlatform platform) const {
  switch (platform) {
    case CapgoPlatform::kIos: return ios;
    case CapgoPlatform::kAndroid: return android;
    case CapgoPlatform::kElectron: return electron;
  }
  return false;
}

namespace {

template <typename Object>
Result<CapgoDeviceInfo> ParseDeviceInfo(const Object& obj, bool semver_version_name) {
  if (!obj.is_object()) return MakeError(ErrorCode::kMalformed, "expected a JSON object");
  CapgoDeviceInfo info;
  AIRLOCK_ASSIGN_OR_RETURN(info.app_id, CapgoReqString(obj, "app_id", kCapgoMaxAppIdLength));
  if (!AllChars(info.app_id, AppIdChar)) {
    return MakeError(ErrorCode::kInvalidArgument, "field 'app_id' has characters outside [A-Za-z0-9._-]");
  }
  AIRLOCK_ASSIGN_OR_RETURN(info.device_id,
                           CapgoReqString(obj, "device_id", kCapgoMaxDeviceIdLength));
  if (!AllChars(info.device_id, DeviceIdChar)) {
    return MakeError(ErrorCode::kInvalidArgument, "field 'device_id' has characters outside [A-Za-z0-9-]");
  }
  // Capgo lower-cases device ids before storing overrides; do it once here.
  std::transform(info.device_id.begin(), info.device_id.end(), info.device_id.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
  // /stats names a file beside the version ("1.2.3:assets/app.js", the plugin's manifest failures).
  AIRLOCK_ASSIGN_OR_RETURN(
      info.version_name,
      CapgoReqString(obj, "version_name",
                     semver_version_name ? kCapgoMaxShortString : kCapgoMaxStatsVersionName));
  AIRLOCK_ASSIGN_OR_RETURN(info.version_build,
                           CapgoReqString(obj, "version_build", kCapgoMaxShortString));
  info.version_build = CoerceCapgoVersion(info.version_build);
  AIRLOCK_TRY(ParseSemverField("version_build", info.version_build));
  if (semver_version_name && info.version_name != kBuiltin) {
    AIRLOCK_TRY(ParseSemverField("version_name", info.version_name));
  }
  AIRLOCK_ASSIGN_OR_RETURN(info.version_code,
                           CapgoOptString(obj, "version_code", kCapgoMaxShortString));
  AIRLOCK_ASSIGN_OR_RETURN(info.version_os,
                           CapgoOptString(obj, "version_os", kCapgoMaxShortString));
  AIRLOCK_ASSIGN_OR_RETURN(std::string platform,
                           CapgoReqString(obj, "platform", kCapgoMaxShortString));
  AIRLOCK_ASSIGN_OR_RETURN(info.platform, ParsePlatform(platform));
  AIRLOCK_ASSIGN_OR_RETURN(info.plugin_version,
                           CapgoReqString(obj, "plugin_version", kCapgoMaxShortString));
  AIRLOCK_TRY(ParseSemverField("plugin_version", info.plugin_version));
  AIRLOCK_ASSIGN_OR_RETURN(info.is_emulator, OptBool(obj, "is_emulator", false));
  AIRLOCK_ASSIGN_OR_RETURN(info.is_prod, OptBool(obj, "is_prod", true));
  AIRLOCK_ASSIGN_OR_RETURN(info.default_channel,
                           CapgoOptString(obj, "defaultChannel", kCapgoMaxShortString));
  AIRLOCK_ASSIGN_OR_RETURN(info.custom_id,
                           CapgoOptString(obj, "custom_id", kCapgoMaxCustomIdLength));
  AIRLOCK_ASSIGN_OR_RETURN(info.key_id, CapgoOptString(obj, "key_id", kCapgoMaxShortString));
  return info;
}

}  // namespace

Result<CapgoDeviceInfo> ParseCapgoDeviceInfo(const Json& obj, bool semver_version_name) {
  return ParseDeviceInfo(obj, semver_version_name);
}

Result<nlohmann::json> ParseCapgoStatsJson(std::string_view body) {
  return ParseJsonBatch(body, kCapgoMaxStatsBodyBytes, kCapgoMaxJsonDepth, kCapgoMaxStatsEvents);
}

Result<CapgoStatsBatch> ParseCapgoStats(std::string_view body) {
  return ParseCapgoStatsParsed(ParseCapgoStatsJson(body), body);
}

Result<CapgoStatsBatch> ParseCapgoStatsParsed(const Result<Json>& parsed, std::string_view body) {
  if (body.size() > kCapgoMaxStatsBodyBytes) {
    return MakeError(ErrorCode::kLimitExceeded, "request body is larger than " +
                                                    std::to_string(kCapgoMaxStatsBodyBytes) +
                                                    " bytes");
  }
  if (!parsed) return tl::unexpected(parsed.error());
  const Json& value = *parsed;
  CapgoStatsBatch batch;
  std::vector<const Json*> items;
  if (value.is_object()) {
    items.push_back(&value);
  } else if (value.is_array()) {
    batch.is_array = true;
    if (value.empty()) return MakeError(ErrorCode::kInvalidArgument, "stats array is empty");
    if (value.size() > kCapgoMaxStatsEvents) {
      return MakeError(ErrorCode::kLimitExceeded, "stats array holds " + std::to_string(value.size()) +
                                                      " events; at most " +
                                                      std::to_string(kCapgoMaxStatsEvents) + " allowed");
    }
    for (const auto& item : value) items.push_back(&item);
  } else {
    return MakeError(ErrorCode::kMalformed, "stats body is neither an object nor an array");
  }
  batch.events.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string where = batch.is_array ? "event " + std::to_string(i) + ": " : "";
    auto event = [&]() -> Result<CapgoStatsEvent> {
      CapgoStatsEvent e;
      AIRLOCK_ASSIGN_OR_RETURN(e.device, ParseCapgoDeviceInfo(*items[i], /*semver_version_name=*/false));
      AIRLOCK_ASSIGN_OR_RETURN(e.action, CapgoReqString(*items[i], "action", kCapgoMaxShortString));
      if (!AllChars(e.action, ActionChar)) {
        return MakeError(ErrorCode::kInvalidArgument, "field 'action' has characters outside [a-z0-9_]");
      }
      AIRLOCK_ASSIGN_OR_RETURN(e.old_version_name, CapgoOptString(*items[i], "old_version_name",
                                                                  kCapgoMaxStatsVersionName));
      return e;
    }();
    if (!event) {
      batch.events.push_back(
          tl::unexpected(event.error().WithContext(where.empty() ? "stats" : where + "stats")));
    } else {
      batch.events.push_back(std::move(*event));
    }
  }
  return batch;
}

std::string_view CapgoUpdateKind(std::string_view code) {
  static constexpr std::string_view kUpToDate[] = {"no_new_version_available", "already_on_builtin"};
  static constexpr std::string_view kBlocked[] = {
      "cannot_update_via_private_channel", "disabled_platform_ios", "disabled_platform_android",
      "disabled_platform_electron", "disable_auto_update_to_major", "disable_auto_update_to_minor",
      "disable_auto_update_to_patch", "disable_auto_update_to_metadata",
      "disable_auto_update_under_native", "disable_prod_build", "disable_dev_build", "disable_device",
      "disable_emulator", "key_id_mismatch", "provider_infrastructure_request_blocked",
      // Airlock's own: never downgrade without a signed rollback authorisation.
      "downgrade_not_authorized"};
  for (auto c : kUpToDate) {
    if (c == code) return "up_to_date";
  }
  for (auto c : kBlocked) {
    if (c == code) return "blocked";
  }
  return "failed";
}

namespace {
// The /updates decision for a validated device (both parse paths end here).
CapgoReply UpdatesForDevice(const CapgoDeviceInfo& device, CapgoReleaseCatalog& catalog);
}  // namespace

CapgoReply HandleCapgoUpdates(std::string_view body, CapgoReleaseCatalog& catalog) {
  return HandleCapgoUpdatesParsed(ParseBody(body), body, catalog);
}

CapgoReply HandleCapgoUpdatesParsed(const Result<Json>& json, std::string_view body,
                                    CapgoReleaseCatalog& catalog) {
  if (!json) return BadInput(json.error(), body);
  if (!json->is_object()) {
    return BadInput(Error(ErrorCode::kMalformed, "request body is not a JSON object"), body);
  }
  auto parsed = ParseCapgoDeviceInfo(*json);
  if (!parsed) return BadInput(parsed.error(), body);
  return UpdatesForDevice(*parsed, catalog);
}

CapgoReply HandleCapgoUpdatesFlat(const FlatJsonObject& body, CapgoReleaseCatalog& catalog) {
  auto parsed = ParseDeviceInfo(body, /*semver_version_name=*/true);
  // The fast path only ever sees bodies under kCapgoMaxBodyBytes: no 413 here.
  if (!parsed) return BadInput(parsed.error(), std::string_view());
  return UpdatesForDevice(*parsed, catalog);
}

namespace {

CapgoReply UpdatesForDevice(const CapgoDeviceInfo& device, CapgoReleaseCatalog& catalog) {
  auto offer_or = catalog.FindOffer(device);
  if (!offer_or) return Internal(offer_or.error());
  if (!offer_or->has_value()) return UpdateError("no_channel", "no default channel or override");
  const CapgoOffer& offer = **offer_or;
  const CapgoChannel& channel = offer.channel;
  if (!offer.release && offer.release_without_capgo) {
    return UpdateError("no_bundle", "Cannot get bundle: release " + *offer.release_without_capgo +
                                        " of channel " + channel.name +
                                        " has no Capgo form (published without --capgo)");
  }
  if (!offer.release) return UpdateError("no_bundle", "Cannot get bundle");
  const CapgoRelease& release = *offer.release;

  auto offered = Semver::Parse(release.version);
  if (!offered) {
    return Internal(Error(ErrorCode::kInternal, "catalog release version is not semver: " + release.version));
  }
  // Validated in ParseCapgoDeviceInfo, so these parse.
  const std::string current_text = device.EffectiveVersion();
  const Semver current = *Semver::Parse(current_text);
  const Semver native = *Semver::Parse(device.version_build);
  const Semver plugin = *Semver::Parse(device.plugin_version);

  if (!device.key_id.empty() && !release.key_id.empty() && device.key_id != release.key_id) {
    OrderedJson extra;
    extra["deviceKeyId"] = device.key_id;
    extra["bundleKeyId"] = release.key_id;
    return UpdateError("key_id_mismatch",
                       "Device encryption key does not match bundle encryption key", extra);
  }
  // Capgo compares names (`version_name === version.name`); semver equality also catches "1.0.0+build".
  if (current_text == release.version || std::is_eq(Compare(current, *offered))) {
    return UpdateError("no_new_version_available", "No new version available");
  }
  if (!channel.EnabledFor(device.platform)) {
    const std::string name(CapgoPlatformName(device.platform));
    return UpdateError("disabled_platform_" + name, "Cannot update, " + name + " is disabled",
                       BlockedExtra(release, device));
  }
  if (!channel.is_public && !channel.allow_self_assign && !offer.via_device_override) {
    return UpdateError("cannot_update_via_private_channel",
                       "Cannot update via a private channel. The channel \"" + channel.name +
                           "\" does not allow device self-assignment.");
  }
  if (channel.min_native_version) {
    auto floor = Semver::Parse(*channel.min_native_version);
    if (!floor) {
      return Internal(Error(ErrorCode::kInternal,
                            "channel min_native_version is not semver: " + *channel.min_native_version));
    }
    if (std::is_lt(Compare(native, *floor))) {
      return UpdateError("disable_auto_update_to_metadata",
                         "Cannot update, native version " + device.version_build + " is below " +
                             *channel.min_native_version + " required by channel " + channel.name,
                         BlockedExtra(release, device));
    }
  }
  if (channel.disable_auto_update_under_native && std::is_lt(Compare(*offered, native))) {
    return UpdateError("disable_auto_update_under_native", "Cannot revert under native version",
                       BlockedExtra(release, device));
  }
  if (!channel.allow_dev && !device.is_prod) {
    return UpdateError("disable_dev_build", "Cannot update, dev build is disabled",
                       BlockedExtra(release, device));
  }
  if (!channel.allow_emulator && device.is_emulator) {
    return UpdateError("disable_emulator", "Cannot update, emulator is disabled",
                       BlockedExtra(release, device));
  }
  // Airlock rule (Capgo has none): a lower version is offered only when the signed targets metadata marks
  // it as an allowed rollback, so a compromised channel pointer cannot push devices back to a vulnerable
  // bundle.
  if (std::is_lt(Compare(*offered, current)) && !release.authorized_rollback) {
    return UpdateError("downgrade_not_authorized",
                       "Cannot downgrade from " + current_text + " to " + release.version +
                           ": not an authorized rollback",
                       BlockedExtra(release, device));
  }

  // Built by hand (same bytes as the ordered_json dump this replaced; capgo_api_test checks both
  // agree): this is the hot reply. Without a manifest it depends only on these four strings, and
  // every device of a channel gets the same one: each I/O thread keeps the last one it built.
  struct LastReply {
    std::string version, url, session_key, checksum, body;
  };
  thread_local LastReply last;
  const bool plain = release.manifest.empty() || !PluginSupportsManifest(plugin);
  if (plain && !last.body.empty() && last.version == release.version && last.url == release.url &&
      last.session_key == release.session_key && last.checksum == release.checksum) {
    return CapgoReply{200, last.body, {}};
  }
  std::string out;
  out.reserve(64 + release.version.size() + release.url.size() + release.session_key.size() +
              release.checksum.size());
  out += "{\"version\":";
  AppendJsonString(&out, release.version);
  out += ",\"url\":";
  AppendJsonString(&out, release.url);
  out += ",\"session_key\":";
  AppendJsonString(&out, release.session_key);
  out += ",\"checksum\":";
  AppendJsonString(&out, release.checksum);
  if (!plain) {
    out += ",\"manifest\":[";
    bool first = true;
    for (const auto& entry : release.manifest) {
      if (!first) out += ',';
      first = false;
      out += "{\"file_name\":";
      AppendJsonString(&out, entry.file_name);
      out += ",\"file_hash\":";
      AppendJsonString(&out, entry.file_hash);
      out += ",\"download_url\":";
      AppendJsonString(&out, entry.download_url);
      out += '}';
    }
    out += ']';
  }
  out += '}';
  if (plain) last = LastReply{release.version, release.url, release.session_key, release.checksum, out};
  return CapgoReply{200, std::move(out), {}};
}

}  // namespace

CapgoReply HandleCapgoStats(std::string_view body, CapgoStatsSink& sink) {
  return HandleCapgoStatsParsed(ParseCapgoStatsJson(body), body,
                                sink);
}

CapgoReply HandleCapgoStatsParsed(const Result<Json>& parsed, std::string_view body,
                                  CapgoStatsSink& sink) {
  constexpr bool kNoKind = false;
  auto batch = ParseCapgoStatsParsed(parsed, body);
  if (!batch) {
    if (body.size() > kCapgoMaxStatsBodyBytes) {
      return ErrorReply(413, "payload_too_large", batch.error().message(), kNoKind);
    }
    return BadInput(batch.error(), {}, kNoKind);
  }
  // One event: all or nothing, as before batches existed. A batch: every valid event is recorded
  // and each gets its own result, so one bad event does not sink the rest (the plugin drops a
  // whole batch on any 4xx but 408/429).
  if (!batch->is_array && !batch->events[0]) return BadInput(batch->events[0].error(), {}, kNoKind);
  std::vector<CapgoStatsEvent> valid;
  for (const auto& event : batch->events) {
    if (event) valid.push_back(*event);
  }
  if (!valid.empty()) {
    auto recorded = sink.Record(valid);
    if (!recorded) return Internal(recorded.error(), kNoKind);
  }
  if (!batch->is_array) return JsonReply(200, StatusOk());
  OrderedJson results = OrderedJson::array();
  for (size_t i = 0; i < batch->events.size(); ++i) {
    const auto& event = batch->events[i];
    if (event) {
      results.push_back(OrderedJson{{"index", i}, {"status", "ok"}});
    } else {
      results.push_back(OrderedJson{{"index", i},
                                    {"status", "error"},
                                    {"error", "invalid_request"},
                                    {"message", event.error().message()}});
    }
  }
  return JsonReply(200, OrderedJson{{"status", "ok"}, {"results", std::move(results)}});
}

CapgoReply HandleCapgoChannelSelf(CapgoChannelMethod method, std::string_view body,
                                  const std::vector<std::pair<std::string, std::string>>& query,
                                  CapgoChannelRegistry& registry) {
  constexpr bool kNoKind = false;
  if (method == CapgoChannelMethod::kGet) {
    // The list needs only the app and platform; take them from the query string, bounded like bodies.
    Json params = Json::object();
    for (const auto& [key, value] : query) {
      if (key == "app_id" || key == "platform") params[key] = value;
    }
    auto app_id = CapgoReqString(params, "app_id", kCapgoMaxAppIdLength);
    if (!app_id) return BadInput(app_id.error(), {}, kNoKind);
    if (!AllChars(*app_id, AppIdChar)) {
      return ErrorReply(400, "invalid_request", "parameter 'app_id' has characters outside [A-Za-z0-9._-]",
                        kNoKind);
    }
    std::optional<CapgoPlatform> platform;
    if (params.contains("platform")) {
      auto p = ParsePlatform(params["platform"].get<std::string>());
      if (!p) return BadInput(p.error(), {}, kNoKind);
      platform = *p;
    }
    auto channels = registry.ListChannels(*app_id);
    if (!channels) return Internal(channels.error(), kNoKind);
    OrderedJson list = OrderedJson::array();
    for (const auto& channel : *channels) {
      if (!channel.is_public && !channel.allow_self_assign) continue;
      if (platform && !channel.EnabledFor(*platform)) continue;
      list.push_back(OrderedJson{{"id", channel.id},
                                 {"name", channel.name},
                                 {"public", channel.is_public},
                                 {"allow_self_set", channel.allow_self_assign}});
    }
    return JsonReply(200, list);
  }

  auto json = ParseCapgoBody(body);
  if (!json) return BadInput(json.error(), body, kNoKind);
  auto parsed = ParseCapgoDeviceInfo(*json);
  if (!parsed) return BadInput(parsed.error(), body, kNoKind);
  const CapgoDeviceInfo& device = *parsed;

  auto channels = registry.ListChannels(device.app_id);
  if (!channels) return Internal(channels.error(), kNoKind);
  auto assignment = registry.GetAssignment(device.app_id, device.device_id);
  if (!assignment) return Internal(assignment.error(), kNoKind);
  const CapgoChannel* assigned = *assignment ? FindByName(*channels, **assignment) : nullptr;

  switch (method) {
    case CapgoChannelMethod::kPut: {
      if (assigned) {
        return JsonReply(200, OrderedJson{{"channel", assigned->name},
                                          {"status", "override"},
                                          {"allowSet", assigned->allow_self_assign}});
      }
      const CapgoChannel* fallback = DefaultFor(*channels, device.platform);
      // Current plugins keep the channel they chose locally and send it as defaultChannel; they
      // save the `channel` answered here (CapgoUpdater.java persistDefaultChannelFromResponse), so
      // answering the public channel would move a device set to beta back. /updates follows
      // defaultChannel for a self-assignable channel (channel_cache.h ResolveChannel).
      if (!device.default_channel.empty()) {
        const CapgoChannel* asked = FindByName(*channels, device.default_channel);
        if (asked != nullptr && asked != fallback && asked->allow_self_assign &&
            asked->EnabledFor(device.platform)) {
          return JsonReply(200, OrderedJson{{"channel", asked->name},
                                            {"status", "override"},
                                            {"allowSet", true}});
        }
      }
      if (!fallback) return ErrorReply(400, "channel_not_found", "Cannot find channel", kNoKind);
      return JsonReply(200, OrderedJson{{"channel", fallback->name}, {"status", "default"}});
    }
    case CapgoChannelMethod::kPost: {
      auto name = CapgoReqString(*json, "channel", kCapgoMaxShortString);
      if (!name) return BadInput(name.error(), body, kNoKind);
      // An admin-made assignment to a channel that does not allow self-assignment sticks (Capgo: same).
      if (assigned && !assigned->allow_self_assign) {
        return ErrorReply(400, "cannot_override",
                          "The device's current channel does not allow changing it from the device",
                          kNoKind);
      }
      const CapgoChannel* target = FindByName(*channels, *name);
      if (!target) {
        return ErrorReply(400, "channel_not_found", "Cannot find channel " + *name, kNoKind);
      }
      const CapgoChannel* fallback = DefaultFor(*channels, device.platform);
      if (fallback == target) {
        // Choosing the default channel is the same as having no assignment: `unset` makes the
        // plugin clear its stored choice (CapgoUpdater.java setChannel, res.get("unset")).
        if (*assignment) {
          auto cleared = registry.ClearAssignment(device.app_id, device.device_id);
          if (!cleared) return Internal(cleared.error(), kNoKind);
        }
        return JsonReply(200, OrderedJson{{"status", "ok"}, {"unset", true}});
      }
      // The plugin fires its channelPrivate event for these codes (CapacitorUpdaterPlugin.java,
      // setChannel: "cannot_update_via_private_channel" / "channel_self_set_not_allowed").
      if (!target->allow_self_assign) {
        return ErrorReply(400, "channel_self_set_not_allowed",
                          "This channel does not allow devices to self associate", kNoKind);
      }
      if (!target->EnabledFor(device.platform)) {
        return ErrorReply(400, "channel_self_set_not_allowed",
                          "This channel is disabled for " + std::string(CapgoPlatformName(device.platform)),
                          kNoKind);
      }
      if (assigned != target) {
        auto set = registry.SetAssignment(device.app_id, device.device_id, target->name);
        if (!set && set.error().code() == ErrorCode::kWrongKey) {
          // A natively enrolled device (store_catalog.h): a claimed id cannot change it.
          return ErrorReply(
              400, "device_enrolled_natively",
              "The device is enrolled with its own key or revoked; it cannot be changed from here",
              kNoKind);
        }
        // A device this server does not know (Airlock never creates devices from plugin traffic)
        // keeps its choice itself: the plugin stores it and sends it as defaultChannel, which
        // /updates follows for a self-assignable channel. Nothing is stored here.
        if (!set && set.error().code() != ErrorCode::kNotFound) return Internal(set.error(), kNoKind);
      }
      return JsonReply(200, OrderedJson{{"status", "ok"}, {"allowSet", true}});
    }
    case CapgoChannelMethod::kDelete: {
      if (!assigned || !assigned->allow_self_assign) {
        return ErrorReply(400, "cannot_override",
                          assigned ? "The device's current channel does not allow changing it from the device"
                                   : "The device has no channel assignment to remove",
                          kNoKind);
      }
      auto cleared = registry.ClearAssignment(device.app_id, device.device_id);
      if (!cleared) return Internal(cleared.error(), kNoKind);
      return JsonReply(200, StatusOk());
    }
    case CapgoChannelMethod::kGet:
      break;  // handled above
  }
  return Internal(Error(ErrorCode::kInternal, "unhandled channel_self method"), kNoKind);
}

CapgoRateLimiter::CapgoRateLimiter(Options options, Clock clock)
    : options_(options),
      clock_(std::move(clock)),
      shard_count_(options.max_keys >= 1024 ? kShards : 1),
      generation_size_(std::max<size_t>(1, options.max_keys / shard_count_ / 2)) {
  size_t capacity = 2;
  while (capacity < 2 * generation_size_) capacity *= 2;
  constexpr size_t kHugePage = size_t{2} << 20;
  const size_t bytes = 2 * shard_count_ * capacity * sizeof(Slot);
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* block = std::aligned_alloc(kHugePage, rounded);
  if (block == nullptr) throw std::bad_alloc();
  ::madvise(block, rounded, MADV_HUGEPAGE);  // a hint: without it, 4 KiB pages
  arena_.reset(static_cast<Slot*>(block));
  Slot* next = arena_.get();
  for (size_t i = 0; i < shard_count_; ++i) {
    for (Generation* g : {&shards_[i].current, &shards_[i].previous}) {
      g->slots = next;
      g->capacity = capacity;
      std::uninitialized_fill_n(next, capacity, Slot{});
      next += capacity;
    }
  }
}

void CapgoRateLimiter::FreeArena::operator()(void* p) const { std::free(p); }

CapgoRateLimiter::Slot* CapgoRateLimiter::Generation::Find(uint64_t id) {
  const size_t mask = capacity - 1;
  for (size_t i = static_cast<size_t>(id) & mask;; i = (i + 1) & mask) {
    if (slots[i].id == id || slots[i].id == 0) return &slots[i];
  }
}

double CapgoRateLimiter::Refilled(const Bucket& bucket, std::chrono::steady_clock::time_point now) const {
  const double elapsed = std::chrono::duration<double>(now - bucket.updated).count();
  return std::min(options_.burst, bucket.tokens + std::max(0.0, elapsed) * options_.refill_per_second);
}

CapgoReply CapgoRateLimiter::Limited(double wait_seconds) const {
  // Retry-After is whole seconds; round up and never say 0 (that would invite an immediate retry).
  const double capped = std::min(wait_seconds, 86400.0);
  const long seconds = std::max(1L, static_cast<long>(std::ceil(capped)));
  CapgoReply reply = ErrorReply(429, "too_many_requests", "Too many requests, retry later", true);
  reply.headers.emplace_back("Retry-After", std::to_string(seconds));
  return reply;
}

std::optional<CapgoReply> CapgoRateLimiter::Check(std::string_view key) {
  const auto now = clock_();
  uint64_t id = std::hash<std::string_view>{}(key);
  if (id == 0) id = 1;  // 0 marks empty slots
  // The shard comes from the high bits; the tables inside use the low bits.
  Shard& shard = shards_[shard_count_ == 1 ? 0 : (id >> 56) % shard_count_];
  std::lock_guard<std::mutex> lock(shard.mutex);
  Slot* slot = shard.current.Find(id);
  if (slot->id == 0) {
    Bucket bucket{options_.burst, now};
    // Seen in the previous generation: carry its tokens over. (Its stale copy there goes with
    // that generation at the next rotation.)
    if (const Slot* old = shard.previous.Find(id); old->id == id) bucket = old->bucket;
    if (shard.current.used >= generation_size_) {
      std::swap(shard.previous, shard.current);
      std::fill_n(shard.current.slots, shard.current.capacity, Slot{});  // forgotten
      shard.current.used = 0;
      slot = shard.current.Find(id);
    }
    slot->id = id;
    slot->bucket = bucket;
    ++shard.current.used;
  }
  Bucket& bucket = slot->bucket;
  bucket.tokens = Refilled(bucket, now);
  bucket.updated = now;
  if (bucket.tokens >= 1.0) {
    bucket.tokens -= 1.0;
    return std::nullopt;
  }
  const double wait =
      options_.refill_per_second > 0 ? (1.0 - bucket.tokens) / options_.refill_per_second : 86400.0;
  return Limited(wait);
}

}  // namespace airlock::server
