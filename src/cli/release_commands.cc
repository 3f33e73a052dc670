// airlock release ..., airlock rollout ...: publish a release (seal, sign, upload), list releases,
// roll a channel back to a signed rollback target, and staged rollouts. See server_commands.cc.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include <curl/curl.h>

#include "bundle/archive.h"
#include "bundle/bundle.h"
#include "bundle/capgo.h"
#include "cli/app_config.h"
#include "cli/app_trust.h"
#include "cli/delta_publish.h"
#include "cli/key_loading.h"
#include "cli/server_command_helpers.h"
#include "cli/table.h"
#include "common/file.h"
#include "common/json.h"
#include "common/semver.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"
#include "keys/key_store.h"
#include "keys/key_uri.h"
#include "metadata/metadata.h"
#include "metadata/release_rules.h"

namespace airlock::cli {
namespace {

namespace fs = std::filesystem;
using metadata::Metadata;
using metadata::Root;
using metadata::TargetFile;
using metadata::Targets;

// ---- rollout and rollback ----

enum class RolloutOp { kSet, kPause, kResume };

struct RolloutArgs {
  ServerArgs server;
  std::string app, channel;
  int percent = 0;
};

Result<void> RunRollout(const RolloutArgs& a, RolloutOp op) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_TRY(ValidateId("channel name", a.channel));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  const std::string base = "/api/v1/apps/" + a.app + "/channels/" + a.channel;
  nlohmann::json c;
  switch (op) {
    case RolloutOp::kSet: {
      AIRLOCK_ASSIGN_OR_RETURN(
          c, client.Json("PUT", base + "/rollout", nlohmann::json{{"percent", a.percent}}));
      break;
    }
    case RolloutOp::kPause: {
      AIRLOCK_ASSIGN_OR_RETURN(c, client.Json("POST", base + "/pause", nlohmann::json::object()));
      break;
    }
    case RolloutOp::kResume: {
      AIRLOCK_ASSIGN_OR_RETURN(c, client.Json("POST", base + "/resume", nlohmann::json::object()));
      break;
    }
  }
  if (a.server.json) {
    PrintJson(c);
  } else if (!PrintPending(c)) {
    PrintChannel(c);
  }
  return {};
}

// Loads the targets key `spec` and checks that the trusted root lists it as a targets key.
Result<SignerPtr> LoadTargetsSigner(KeyLoader& loader, const std::string& spec,
                                    const TrustedRoot& trusted, const std::string& app) {
  AIRLOCK_ASSIGN_OR_RETURN(SignerPtr signer, LoadTufSigner(loader, spec, "targets"));
  const auto& ids = trusted.root.signed_data.roles.at("targets").keyids;
  if (std::find(ids.begin(), ids.end(), signer->KeyId()) == ids.end()) {
    return MakeError(ErrorCode::kWrongKey, "key " + spec + " (" + signer->KeyId() +
                                               ") is not a targets key of app " + app +
                                               " in its trusted root v" +
                                               std::to_string(trusted.root.signed_data.version));
  }
  return signer;
}

// The targets key spec: --targets-key, else the app's record, else `fallback`.
Result<std::string> TargetsKeySpec(const std::string& given, const std::optional<AppConfig>& config,
                                   const std::string& app, const std::string& fallback = "") {
  std::string spec = given;
  if (spec.empty() && config) spec = config->targets_key;
  if (spec.empty()) spec = fallback;
  if (spec.empty()) {
    return MakeError(ErrorCode::kNotFound, "no key record for app " + app +
                                               " on this machine (airlock app create makes one); "
                                               "pass --targets-key URI");
  }
  return spec;
}

// The app's targets version on the server (what it claims; FetchVerifiedTargets checks it).
Result<uint64_t> ServerTargetsVersion(const nlohmann::json& app_info, const std::string& app) {
  if (!app_info.contains("targets_version") || !app_info["targets_version"].is_number_unsigned()) {
    return MakeError(ErrorCode::kNotFound,
                     "app " + app +
                         " has no targets metadata on the server yet (airlock app "
                         "create signs the first)");
  }
  return app_info["targets_version"].get<uint64_t>();
}

// The highest security_floor among `targets`' entries (kMalformed for a malformed one).
Result<uint64_t> HighestFloor(const Targets& targets) {
  uint64_t highest = 0;
  for (const auto& [name, t] : targets.targets) {
    auto rules = metadata::ReadReleaseRules(t.custom.value_or(nlohmann::json::object()));
    if (!rules) return tl::unexpected(rules.error().WithContext("target " + name));
    highest = std::max(highest, rules->security_floor);
  }
  return highest;
}

// What a signing command starts from: the app as the server lists it, the trusted root brought up
// to date along the verified chain, and the server's current targets once they verified under it
// (cli/app_trust.h), with their highest security floor. Nothing the server says is signed on its
// word.
struct VerifiedApp {
  nlohmann::json info;
  uint64_t targets_version = 0;
  TrustedRoot trusted;
  Metadata<Targets> current;
  uint64_t highest_floor = 0;
};

Result<VerifiedApp> LoadVerifiedApp(HttpClient& client, const std::string& app,
                                    const std::string& trusted_root) {
  VerifiedApp v;
  AIRLOCK_ASSIGN_OR_RETURN(v.info, client.Json("GET", "/api/v1/apps/" + app));
  AIRLOCK_ASSIGN_OR_RETURN(v.targets_version, ServerTargetsVersion(v.info, app));
  AIRLOCK_ASSIGN_OR_RETURN(v.trusted, LoadTrustedRoot(client, app, trusted_root));
  // A server that lists a newer root than the chain it serves withholds a rotation (which may have
  // removed a compromised targets key): refuse rather than sign under the stale root.
  if (v.info.contains("root_version") && v.info["root_version"].is_number_unsigned() &&
      v.info["root_version"].get<uint64_t>() > v.trusted.root.signed_data.version) {
    return MakeError(ErrorCode::kRollback,
                     "the server lists root v" +
                         std::to_string(v.info["root_version"].get<uint64_t>()) + " of app " + app +
                         " but serves no verifiable chain beyond v" +
                         std::to_string(v.trusted.root.signed_data.version));
  }
  AIRLOCK_ASSIGN_OR_RETURN(v.current,
                           FetchVerifiedTargets(client, app, v.trusted, v.targets_version));
  AIRLOCK_ASSIGN_OR_RETURN(v.highest_floor, HighestFloor(v.current.signed_data));
  return v;
}

// A query parameter value, percent-encoded by libcurl ('+' of a semver's build metadata included).
std::string QueryEscape(const std::string& value) {
  char* escaped = curl_easy_escape(nullptr, value.data(), static_cast<int>(value.size()));
  if (escaped == nullptr) return value;
  std::string out(escaped);
  curl_free(escaped);
  return out;
}

struct RollbackArgs {
  ServerArgs server;
  std::string app, channel, to, targets_key, trusted_root, passphrase_file;
};

// A rollback is the developer's decision, signed: the release must be signed for the channel and
// not below the highest security floor; unless its targets entries already say rollback_allowed,
// targets N+1 marking them so is signed here (after targets N verified under the trusted root) and
// sent with the rollback, which the server applies in one step.
Result<void> RunRollback(const RollbackArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_TRY(ValidateId("channel name", a.channel));
  AIRLOCK_TRY(ValidateVersion("--to", a.to));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  AIRLOCK_ASSIGN_OR_RETURN(std::optional<AppConfig> config, LoadAppConfig(a.app));
  const std::string app_path = "/api/v1/apps/" + a.app;
  // Already the channel's release: nothing to sign or send (the server would change nothing too).
  AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json channel,
                           client.Json("GET", app_path + "/channels/" + a.channel));
  if (JsonString(channel, "current_version", "") == a.to) {
    if (a.server.json) {
      channel["changed"] = false;
      PrintJson(channel);
    } else {
      std::cout << "channel " << a.channel << " already serves " << a.to << "; nothing changed: ";
      PrintChannel(channel);
    }
    return {};
  }
  AIRLOCK_ASSIGN_OR_RETURN(VerifiedApp verified, LoadVerifiedApp(client, a.app, a.trusted_root));
  const uint64_t targets_version = verified.targets_version;
  const uint64_t highest = verified.highest_floor;
  const TrustedRoot& trusted = verified.trusted;
  const Metadata<Targets>& current = verified.current;

  Targets next = current.signed_data;
  bool found = false, need_signature = false;
  for (auto& [name, t] : next.targets) {
    nlohmann::json custom = t.custom.value_or(nlohmann::json::object());
    AIRLOCK_ASSIGN_OR_RETURN(metadata::ReleaseRules rules, metadata::ReadReleaseRules(custom));
    if (rules.version != a.to || rules.app_id != a.app) continue;
    found = true;
    if (!rules.NamesChannel(a.channel)) {
      return MakeError(ErrorCode::kWrongKey, "release " + a.to + " (" + name +
                                                 ") is not signed for channel " + a.channel);
    }
    if (rules.security_floor < highest) {
      return MakeError(ErrorCode::kRollback,
                       "release " + a.to + " has security floor " +
                           std::to_string(rules.security_floor) + ", below the app's highest (" +
                           std::to_string(highest) + "): it cannot be a rollback target");
    }
    if (!rules.rollback_allowed) {
      rules.rollback_allowed = true;
      rules.WriteTo(&custom);
      t.custom = std::move(custom);
      need_signature = true;
    }
  }
  if (!found) {
    return MakeError(ErrorCode::kNotFound, "the verified targets v" +
                                               std::to_string(targets_version) +
                                               " list no release " + a.to + " of app " + a.app);
  }
  nlohmann::json body = {{"to", a.to}};
  if (need_signature) {
    AIRLOCK_ASSIGN_OR_RETURN(std::string spec, TargetsKeySpec(a.targets_key, config, a.app));
    KeyStoreArgs defaults;
    defaults.passphrase_file = a.passphrase_file;
    defaults.passphrase_flag = "--passphrase-file";
    KeyLoader loader(defaults);
    AIRLOCK_ASSIGN_OR_RETURN(SignerPtr signer, LoadTargetsSigner(loader, spec, trusted, a.app));
    next.version = targets_version + 1;
    next.expires = std::time(nullptr) + kYear;
    Metadata<Targets> next_md(next);
    AIRLOCK_TRY(next_md.Sign(*signer));
    body["targets_metadata"] = next_md.ToJson();
  }
  AIRLOCK_ASSIGN_OR_RETURN(
      nlohmann::json c,
      client.Json("POST", app_path + "/channels/" + a.channel + "/rollback", body));
  if (need_signature) AIRLOCK_TRY(RecordTargetsVersion(a.app, targets_version + 1));
  if (a.server.json) {
    PrintJson(c);
  } else {
    std::cout << "rolled back " << a.channel << " to " << a.to
              << (need_signature ? " (signed as a rollback target in targets v" +
                                       std::to_string(targets_version + 1) + ")"
                                 : "")
              << ": ";
    PrintChannel(c);
  }
  return {};
}

// ---- release publish / list ----

// The key a release is sealed to: `given_file` (a PEM public key) when set, else `recorded_pem`;
// the server's `served_pem` must be the same key. kNotFound when this machine knows none; kWrongKey
// when the server offers another.
Result<crypto::PublicKey> TrustedRecipient(const std::string& what, const std::string& flag,
                                           const std::string& recorded_pem,
                                           const std::string& given_file,
                                           const std::string& served_pem, const std::string& app) {
  std::string trusted_pem = recorded_pem;
  if (!given_file.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(crypto::PublicKey given, crypto::PublicKey::FromFile(given_file));
    trusted_pem = given.ToPem();
  }
  if (trusted_pem.empty()) {
    return MakeError(ErrorCode::kNotFound, "no " + what + " recorded for app " + app +
                                               " on this machine; pass " + flag + " FILE");
  }
  auto served = crypto::PublicKey::FromPem(served_pem);
  if (!served || served->ToPem() != trusted_pem) {
    return MakeError(ErrorCode::kWrongKey, "the server's " + what + " for " + app +
                                               " is not the one this machine trusts (recorded at "
                                               "app create, or " +
                                               flag + "): refusing to encrypt to it");
  }
  return crypto::PublicKey::FromPem(trusted_pem);
}

struct PublishArgs {
  ServerArgs server;
  std::string app, version, from, channel, sign_key, targets_key, encrypt = "device";
  std::string capgo_key, passphrase_file, trusted_root, app_key, content_key;
  std::vector<std::string> also_channels;
  bool capgo = false;
  std::optional<uint64_t> security_floor;
  bool security_fix = false;
  bool rollback_target = false;
  size_t deltas = 3;
  bool capgo_manifest = false;
};

// One file of a Capgo manifest update, encrypted and listed in the targets (capgo_manifest.cc).
struct CapgoManifestUpload {
  bundle::capgo::ManifestFile file;
  std::string target_name;
  fs::path path;
  TargetFile target;
};

// Every file of the release's zip encrypted for Capgo's manifest (partial) updates, under the
// session key of the release's Capgo zip; each a target "releases/VERSION/capgo/FILE_NAME".
Result<std::vector<CapgoManifestUpload>> MakeCapgoManifest(
    const fs::path& zip, const std::string& app, const std::string& version,
    const bundle::capgo::EncryptResult& capgo, const bundle::capgo::CapgoSigner& signer,
    const fs::path& work) {
  AIRLOCK_ASSIGN_OR_RETURN(bundle::capgo::SessionKey session,
                           bundle::capgo::ParseSessionKey(capgo.session_key, signer.public_key));
  AIRLOCK_ASSIGN_OR_RETURN(bundle::Manifest files, bundle::ScanArchive(zip));
  const fs::path plain = work / "plain";
  fs::create_directories(plain);
  fs::create_directories(work / "enc");
  AIRLOCK_TRY(bundle::ExtractArchive(zip, files, plain));
  std::vector<CapgoManifestUpload> out;
  for (size_t i = 0; i < files.size(); ++i) {
    CapgoManifestUpload u;
    u.path = work / "enc" / std::to_string(i);
    AIRLOCK_ASSIGN_OR_RETURN(u.file, bundle::capgo::EncryptManifestFile(
                                         plain / files[i].path, files[i].path, session, signer,
                                         u.path));
    u.target_name = "releases/" + version + "/capgo/" + u.file.file_name;
    nlohmann::json custom = {
        {"format", "capgo-file"},
        {"capgo_file",
         {{"app_id", app},
          {"version", version},
          {"file_name", u.file.file_name},
          {"file_hash", u.file.file_hash}}}};
    AIRLOCK_ASSIGN_OR_RETURN(u.target, TargetFor(u.path, std::move(custom)));
    out.push_back(std::move(u));
  }
  return out;
}

// "2.1 %": a delta's size as a share of the bundle's.
std::string DeltaShare(uint64_t delta, uint64_t bundle) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %%", bundle == 0 ? 0.0 : 100.0 * delta / bundle);
  return buf;
}

Result<void> RunPublish(const PublishArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_TRY(ValidateId("channel name", a.channel));
  for (const std::string& c : a.also_channels) AIRLOCK_TRY(ValidateId("--allow-channel", c));
  AIRLOCK_TRY(ValidateVersion("--version", a.version));
  if (a.security_fix && a.security_floor) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "--security-fix and --security-floor exclude each other");
  }
  if (a.capgo_manifest && !a.capgo) {
    return MakeError(ErrorCode::kInvalidArgument, "--capgo-manifest needs --capgo");
  }
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  std::error_code ec;
  if (!fs::exists(a.from, ec)) {
    return MakeError(ErrorCode::kNotFound, "--from " + a.from + " does not exist");
  }
  AIRLOCK_ASSIGN_OR_RETURN(std::optional<AppConfig> config, LoadAppConfig(a.app));
  AIRLOCK_ASSIGN_OR_RETURN(std::string targets_spec,
                           TargetsKeySpec(a.targets_key, config, a.app, a.sign_key));
  const std::string sign_spec = a.sign_key.empty() ? targets_spec : a.sign_key;
  std::string capgo_spec = a.capgo_key;
  if (a.capgo && capgo_spec.empty()) {
    if (!config || config->capgo_key.empty()) {
      return MakeError(ErrorCode::kNotFound,
                       "no Capgo key recorded for app " + a.app + "; pass --capgo-key FILE");
    }
    capgo_spec = config->capgo_key;
  }

  // What this machine trusts (LoadVerifiedApp): nothing the server says is signed on its word.
  const std::string app_path = "/api/v1/apps/" + a.app;
  AIRLOCK_ASSIGN_OR_RETURN(VerifiedApp verified, LoadVerifiedApp(client, a.app, a.trusted_root));
  const nlohmann::json& app_info = verified.info;
  const uint64_t targets_version = verified.targets_version;
  const TrustedRoot& trusted = verified.trusted;
  const Metadata<Targets>& current = verified.current;

  // What the server would refuse (version exists, no such channel, not allowed to publish),
  // asked before anything is sealed or uploaded: a refused publish leaves no blob behind.
  AIRLOCK_TRY(client.Json("GET", app_path + "/releases/check?version=" + QueryEscape(a.version) +
                                     "&channel=" + QueryEscape(a.channel)));
  if (!a.capgo && config && !config->capgo_key.empty()) {
    std::cerr << "airlock: warning: app " << a.app
              << " has a Capgo key but this release is published without --capgo: Capgo "
                 "devices on channel "
              << a.channel << " will get no_bundle for " << a.version << "\n";
  }

  // The signed release rules (metadata/release_rules.h): the floor never goes down.
  const uint64_t highest_floor = verified.highest_floor;
  metadata::ReleaseRules rules;
  rules.app_id = a.app;
  rules.version = a.version;
  rules.channels = {a.channel};
  for (const std::string& c : a.also_channels) {
    if (!rules.NamesChannel(c)) rules.channels.push_back(c);
  }
  rules.security_floor = highest_floor + (a.security_fix ? 1 : 0);
  if (a.security_floor) {
    if (*a.security_floor < highest_floor) {
      return MakeError(ErrorCode::kRollback, "--security-floor " +
                                                 std::to_string(*a.security_floor) +
                                                 " is below the app's highest signed floor " +
                                                 std::to_string(highest_floor) +
                                                 " (a release carries the highest floor so far)");
    }
    rules.security_floor = *a.security_floor;
  }
  rules.rollback_allowed = a.rollback_target;

  // Keys (after the cheap checks, before any work on files).
  KeyStoreArgs defaults;
  defaults.passphrase_file = a.passphrase_file;
  defaults.passphrase_flag = "--passphrase-file";
  KeyLoader loader(defaults);
  AIRLOCK_ASSIGN_OR_RETURN(SignerPtr targets_signer,
                           LoadTargetsSigner(loader, targets_spec, trusted, a.app));
  SignerPtr other_signer;
  crypto::Signer* bundle_signer = targets_signer.get();
  if (sign_spec != targets_spec) {
    AIRLOCK_ASSIGN_OR_RETURN(other_signer, LoadTufSigner(loader, sign_spec, "signing"));
    bundle_signer = other_signer.get();
  }
  std::optional<bundle::capgo::CapgoSigner> capgo_signer;
  if (a.capgo) {
    auto signer = loader.LoadCapgoSigner(capgo_spec);
    if (!signer) return tl::unexpected(signer.error().WithContext("Capgo key " + capgo_spec));
    capgo_signer = std::move(*signer);
  }

  // The plain zip.
  AIRLOCK_ASSIGN_OR_RETURN(ScopedTempDir tmp, ScopedTempDir::Create({}, "airlock-publish-"));
  fs::path zip = a.from;
  if (fs::is_directory(a.from, ec)) {
    zip = tmp.path() / "app.zip";
    AIRLOCK_TRY(bundle::CreateArchive(a.from, bundle::ArchiveFormat::kZip, zip));
  } else {
    bundle::ArchiveFormat format = bundle::ArchiveFormat::kZip;
    AIRLOCK_TRY(bundle::ScanArchive(zip, {}, &format));
    if (format != bundle::ArchiveFormat::kZip && (a.encrypt == "none" || a.capgo)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "--from " + a.from + " is a tar; --encrypt none and --capgo need a zip");
    }
  }

  // The release blob.
  const std::string prefix = "releases/" + a.version + "/";
  fs::path blob = zip;
  std::string target_name = prefix + "bundle.zip";
  nlohmann::json custom = {{"format", "zip"}, {"encryption", {{"mode", a.encrypt}}}};
  rules.WriteTo(&custom);
  crypto::SecretBytes content_key;
  if (a.encrypt != "none") {
    // The recipient this machine trusts (recorded at `app create`, or given), never the server's
    // word: a server that swapped it would get the release encrypted to a key of its own.
    const bool device = a.encrypt == "device";
    if (!device && JsonString(app_info, "app_key", "").empty()) {
      return MakeError(ErrorCode::kNotFound,
                       "app " + a.app +
                           " has no app key (--encrypt app needs `app create --app-key`); use "
                           "--encrypt device");
    }
    AIRLOCK_ASSIGN_OR_RETURN(
        crypto::PublicKey recipient,
        TrustedRecipient(device ? "content key" : "app key", device ? "--content-key" : "--app-key",
                         config ? (device ? config->content_key_pem : config->app_key_pem) : "",
                         device ? a.content_key : a.app_key,
                         JsonString(app_info, device ? "content_key" : "app_key", ""), a.app));
    bundle::SealOptions options;
    options.app_id = a.app;
    options.version = a.version;
    // One content key for the bundle and its deltas: a device's one wrapped key opens either.
    AIRLOCK_ASSIGN_OR_RETURN(Bytes key_bytes, crypto::RandomBytes(crypto::kStreamKeySize));
    content_key = crypto::SecretBytes(std::move(key_bytes));
    options.content_key = content_key.span();
    blob = tmp.path() / "bundle.alb";
    AIRLOCK_TRY(bundle::SealBundle(zip, options, *bundle_signer, {recipient}, blob));
    target_name = prefix + "bundle.alb";
    custom["format"] = "airlock-bundle";
  }
  AIRLOCK_ASSIGN_OR_RETURN(TargetFile blob_target, TargetFor(blob, custom));

  // Deltas from the channel's previous releases (device mode: they open with the same key).
  std::vector<MadeDelta> deltas;
  std::vector<std::string> skipped;
  if (a.encrypt == "device" && a.deltas > 0) {
    DeltaPlan plan{a.app, a.version, a.channel, a.deltas, zip, blob_target.length,
                   tmp.path() / "deltas"};
    AIRLOCK_ASSIGN_OR_RETURN(deltas, MakePublishDeltas(plan, current.signed_data, *bundle_signer,
                                                       content_key.span(), &skipped));
  }
  content_key.Wipe();

  std::optional<bundle::capgo::EncryptResult> capgo;
  std::vector<CapgoManifestUpload> capgo_manifest;
  TargetFile capgo_target;
  const fs::path capgo_file = tmp.path() / "capgo.zip";
  if (capgo_signer) {
    AIRLOCK_ASSIGN_OR_RETURN(capgo, bundle::capgo::EncryptFile(zip, *capgo_signer, capgo_file));
    if (a.capgo_manifest) {
      AIRLOCK_ASSIGN_OR_RETURN(capgo_manifest,
                               MakeCapgoManifest(zip, a.app, a.version, *capgo, *capgo_signer,
                                                 tmp.path() / "capgo-manifest"));
    }
    AIRLOCK_ASSIGN_OR_RETURN(capgo_target, TargetFor(capgo_file, [&] {
                               // Signed with the release: the server offers the Capgo form
                               // only to devices whose key_id names this key.
                               // (The server refuses an empty one; Capgo keys are RSA.)
                               nlohmann::json c = {{"format", "capgo-v2"}};
                               const std::string key_id =
                                   bundle::capgo::KeyId(capgo_signer->public_key);
                               if (!key_id.empty()) c["capgo_key_id"] = key_id;
                               rules.WriteTo(&c);
                               return c;
                             }()));
  }

  // Blobs first (content-addressed; harmless if the release is then refused).
  AIRLOCK_TRY(UploadBlob(client, blob, blob_target, "uploading " + target_name));
  if (capgo) AIRLOCK_TRY(UploadBlob(client, capgo_file, capgo_target, "uploading capgo.zip"));
  for (const CapgoManifestUpload& u : capgo_manifest) {
    AIRLOCK_TRY(UploadBlob(client, u.path, u.target, "uploading " + u.target_name));
  }
  for (const MadeDelta& d : deltas) {
    AIRLOCK_TRY(UploadBlob(client, d.file, d.target, "uploading " + d.target_name));
  }

  // Targets metadata N+1 listing the release.
  Targets next = current.signed_data;
  next.version = targets_version + 1;
  next.expires = std::time(nullptr) + kYear;
  next.targets[target_name] = blob_target;
  if (capgo) next.targets[prefix + "capgo.zip"] = capgo_target;
  for (const CapgoManifestUpload& u : capgo_manifest) next.targets[u.target_name] = u.target;
  for (const MadeDelta& d : deltas) next.targets[d.target_name] = d.target;
  Metadata<Targets> next_md(next);
  AIRLOCK_TRY(next_md.Sign(*targets_signer));

  nlohmann::json body = {{"version", a.version},
                         {"channel", a.channel},
                         {"encryption", a.encrypt},
                         {"target", target_name},
                         {"targets_metadata", next_md.ToJson()}};
  if (capgo) {
    body["capgo"] = {{"target", prefix + "capgo.zip"},
                     {"session_key", capgo->session_key},
                     {"checksum", capgo->checksum}};
    if (!capgo_manifest.empty()) {
      nlohmann::json entries = nlohmann::json::array();
      for (const CapgoManifestUpload& u : capgo_manifest) {
        entries.push_back({{"file_name", u.file.file_name},
                           {"file_hash", u.file.file_hash},
                           {"target", u.target_name}});
      }
      body["capgo"]["manifest"] = std::move(entries);
    }
  }
  AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json release,
                           client.Json("POST", app_path + "/releases", body));
  AIRLOCK_TRY(RecordTargetsVersion(a.app, next.version));
  if (auto kept = CacheReleaseFiles(a.app, a.version, zip); !kept) {
    std::cerr << "airlock: warning: " << kept.error().message()
              << " (later publishes cannot make deltas from it)\n";
  }
  if (a.server.json) {
    PrintJson(release);
    return {};
  }
  const bool pending = PrintPending(release);
  std::cout << (pending ? "uploaded " : "published ") << a.app << " " << a.version
            << (pending ? " for channel " : " to channel ") << a.channel << "\n"
            << "  " << target_name << " (" << Plural(blob_target.length, "byte", "bytes")
            << ", sha256 " << blob_target.hashes["sha256"] << ", encryption " << a.encrypt << ")\n";
  for (const MadeDelta& d : deltas) {
    std::cout << "  " << d.target_name << " (" << Plural(d.target.length, "byte", "bytes") << ", "
              << DeltaShare(d.target.length, blob_target.length) << " of the bundle, from "
              << d.base_version << ")\n";
  }
  for (const std::string& why : skipped) std::cout << "  no delta from " << why << "\n";
  if (!capgo_manifest.empty()) {
    uint64_t total = 0;
    for (const CapgoManifestUpload& u : capgo_manifest) total += u.target.length;
    std::cout << "  " << prefix << "capgo/ (" << Plural(capgo_manifest.size(), "file", "files")
              << ", " << Plural(total, "byte", "bytes") << ": the Capgo manifest)\n";
  }
  if (capgo) {
    std::cout << "  " << prefix << "capgo.zip (" << Plural(capgo_target.length, "byte", "bytes")
              << ", sha256 " << capgo_target.hashes["sha256"] << ", Capgo v2)\n";
  }
  std::cout << "  signed for channel" << (rules.channels.size() == 1 ? " " : "s ");
  for (size_t i = 0; i < rules.channels.size(); ++i) {
    std::cout << (i == 0 ? "" : ", ") << rules.channels[i];
  }
  std::cout << "; security floor " << rules.security_floor << "; "
            << (rules.rollback_allowed ? "a rollback target" : "not a rollback target") << "\n";
  std::cout << "  targets v" << next.version << " signed by " << targets_signer->KeyId() << "\n";
  return {};
}

Result<void> RunReleaseList(const AppOnlyArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json j,
                           client.Json("GET", "/api/v1/apps/" + a.app + "/releases"));
  if (a.server.json) {
    PrintJson(j);
    return {};
  }
  std::vector<TableRow> rows;
  for (const auto& r : j.value("releases", nlohmann::json::array())) {
    rows.push_back({JsonString(r, "version"), JsonString(r, "encryption"),
                    std::to_string(r.value("length", uint64_t{0})),
                    r.contains("capgo") && r["capgo"].is_object() ? "yes" : "no",
                    FormatTime(r.value("created_at", int64_t{0}))});
  }
  PrintTable(std::cout, {"VERSION", "ENCRYPTION", "LENGTH", "CAPGO", "CREATED"}, rows);
  return {};
}

}  // namespace

void AddReleaseCommands(CLI::App& app, Action& action) {
  CLI::App* releases = app.add_subcommand("release", "Publish, list and roll back releases");
  releases->require_subcommand(1);
  CLI::App* rollout = app.add_subcommand("rollout", "Staged rollouts: set, pause, resume");
  rollout->require_subcommand(1);

  auto publish = std::make_shared<PublishArgs>();
  CLI::App* rp = releases->add_subcommand(
      "publish", "Seal, sign and upload a release and make it a channel's current version");
  rp->add_option("app_id", publish->app, "App id")->required();
  AddServerOptions(rp, publish->server);
  rp->add_option("--version", publish->version, "Release version (semver)")->required();
  rp->add_option("--from", publish->from, "The app's web folder, or a zip of it")->required();
  rp->add_option("--channel", publish->channel, "Channel to publish to")->required();
  rp->add_option("--sign-key", publish->sign_key,
                 "Key URI or PEM file signing the bundle (default: the app's targets key)");
  rp->add_option("--targets-key", publish->targets_key,
                 "Key signing the targets metadata (default: recorded by `app create`)");
  rp->add_option("--encrypt", publish->encrypt,
                 "device (default: per-device keys), app (the app key) or none")
      ->check(CLI::IsMember({"device", "app", "none"}));
  rp->add_flag("--capgo", publish->capgo,
               "Also publish a Capgo v2 encrypted zip for @capgo/capacitor-updater apps");
  rp->add_option("--capgo-key", publish->capgo_key,
                 "Capgo RSA key URI or PEM file (default: recorded by `app create`)");
  rp->add_option("--content-key", publish->content_key,
                 "The app's device-mode content key (PEM) for --encrypt device (default: recorded "
                 "by `app create`)");
  rp->add_option(
      "--app-key", publish->app_key,
      "The app's public key (PEM) for --encrypt app (default: recorded by `app create`)");
  rp->add_option("--allow-channel", publish->also_channels,
                 "Another channel the release may later be made current on (repeatable; signed)");
  rp->add_flag("--security-fix", publish->security_fix,
               "Raise the security floor by one: no device or rollback goes below this release");
  rp->add_option("--security-floor", publish->security_floor,
                 "Set the security floor (default: the app's highest so far; never lower)");
  rp->add_flag("--capgo-manifest", publish->capgo_manifest,
               "With --capgo: also each file on its own, for Capgo's manifest (partial) updates");
  rp->add_option("--deltas", publish->deltas,
                 "Make deltas from this many previous releases of the channel (0: none)")
      ->capture_default_str();
  rp->add_flag("--rollback-target", publish->rollback_target,
               "Sign this release as a rollback target now (`release rollback` can sign it later)");
  AddTrustedRootOption(rp, publish->trusted_root);
  rp->add_option("--passphrase-file", publish->passphrase_file,
                 "File holding the vault passphrase (else $AIRLOCK_VAULT_PASSPHRASE or a prompt)");
  rp->callback([publish, &action] { action = [publish] { return RunPublish(*publish); }; });

  auto rl = std::make_shared<AppOnlyArgs>();
  CLI::App* rls = releases->add_subcommand("list", "List an app's releases, newest first");
  rls->add_option("app_id", rl->app, "App id")->required();
  AddServerOptions(rls, rl->server);
  rls->callback([rl, &action] { action = [rl] { return RunReleaseList(*rl); }; });

  auto rb = std::make_shared<RollbackArgs>();
  CLI::App* rbc = releases->add_subcommand(
      "rollback", "Make an earlier release a channel's current version (signed rollback targets)");
  rbc->add_option("app_id", rb->app, "App id")->required();
  AddServerOptions(rbc, rb->server);
  rbc->add_option("--channel", rb->channel, "Channel")->required();
  rbc->add_option("--to", rb->to, "Release version to go back to")->required();
  rbc->add_option("--targets-key", rb->targets_key,
                  "Key signing the rollback permission (default: recorded by `app create`)");
  AddTrustedRootOption(rbc, rb->trusted_root);
  rbc->add_option("--passphrase-file", rb->passphrase_file,
                  "File holding the vault passphrase (else $AIRLOCK_VAULT_PASSPHRASE or a prompt)");
  rbc->callback([rb, &action] { action = [rb] { return RunRollback(*rb); }; });

  const std::tuple<const char*, const char*, RolloutOp> rollout_ops[] = {
      {"set", "Offer new releases to a share of the channel's devices", RolloutOp::kSet},
      {"pause", "Stop offering the channel's release", RolloutOp::kPause},
      {"resume", "Offer the channel's release again", RolloutOp::kResume},
  };
  for (const auto& [name, help, op] : rollout_ops) {
    auto args = std::make_shared<RolloutArgs>();
    CLI::App* c = rollout->add_subcommand(name, help);
    c->add_option("app_id", args->app, "App id")->required();
    AddServerOptions(c, args->server);
    c->add_option("--channel", args->channel, "Channel")->required();
    if (op == RolloutOp::kSet) {
      c->add_option("--percent", args->percent, "Percentage of devices (0-100)")
          ->required()
          ->check(CLI::Range(0, 100));
    }
    const RolloutOp o = op;
    c->callback([args, o, &action] { action = [args, o] { return RunRollout(*args, o); }; });
  }
}

}  // namespace airlock::cli
