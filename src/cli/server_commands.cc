// airlock app|channel|release|rollout|device: the developer commands that talk to airlockd
// (docs/api/server-api.md). Keys stay on the developer's side: root and targets metadata are signed
// here with vault/HSM keys (cli/key_loading.h), bundles are sealed here, and the server only ever
// receives public keys, signed metadata and encrypted blobs.
//
// Local state (key records, the pinned trusted root): cli/app_config.h; what the CLI trusts:
// cli/app_trust.h.
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

#include "bundle/archive.h"
#include "bundle/bundle.h"
#include "bundle/capgo.h"
#include "cli/app_config.h"
#include "cli/app_trust.h"
#include "cli/commands.h"
#include "cli/http_client.h"
#include "cli/key_loading.h"
#include "common/file.h"
#include "common/json.h"
#include "common/semver.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
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

constexpr int64_t kYear = 365 * 24 * 3600;
constexpr size_t kMaxIdLength = 128;

// ---- options shared by every command ----

struct ServerArgs {
  std::string server;
  std::string token;
  bool json = false;
};

void AddServerOptions(CLI::App* c, ServerArgs& a, bool with_json = true) {
  c->add_option("--server", a.server, "airlockd base URL (default: $AIRLOCK_SERVER)")
      ->envname("AIRLOCK_SERVER");
  c->add_option("--token", a.token, "API token (default: $AIRLOCK_TOKEN)")
      ->envname("AIRLOCK_TOKEN");
  if (with_json) c->add_flag("--json", a.json, "Print the result as JSON");
}

// --trusted-root for the commands that start from the app's trusted root (cli/app_trust.h).
void AddTrustedRootOption(CLI::App* c, std::string& trusted_root) {
  c->add_option("--trusted-root", trusted_root,
                "Trusted root.json to start from (default: the one `app create` pinned)");
}

Result<HttpClient> Connect(const ServerArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, HttpClient::Create(a.server, a.token));
  if (a.token.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "--token (or $AIRLOCK_TOKEN) is required");
  }
  return client;
}

// Identifiers as the API takes them: 1..128 bytes of [A-Za-z0-9._-]. Checked here so that they can
// be put in URL paths as they are, and so that a typo is a usage error (exit 2).
Result<void> ValidateId(std::string_view what, const std::string& id) {
  bool ok = !id.empty() && id.size() <= kMaxIdLength;
  for (char c : id) {
    ok = ok && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-');
  }
  if (!ok) {
    return MakeError(ErrorCode::kInvalidArgument, std::string(what) + " '" + id +
                                                      "' must be 1 to 128 characters of "
                                                      "A-Z a-z 0-9 . _ -");
  }
  return {};
}

Result<void> ValidateVersion(std::string_view what, const std::string& version) {
  auto v = Semver::Parse(version);
  if (!v) {
    return MakeError(ErrorCode::kInvalidArgument, std::string(what) + " '" + version +
                                                      "' is not a semver version (" +
                                                      v.error().message() + ")");
  }
  return {};
}

std::string Plural(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string FormatTime(int64_t t) {
  if (t <= 0) return "-";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string JsonString(const nlohmann::json& j, const char* field, std::string fallback = "-") {
  if (j.is_object() && j.contains(field) && j[field].is_string())
    return j[field].get<std::string>();
  return fallback;
}

// ---- keys ----

// A key in the session's store for `purpose`: reused when it exists with that purpose (a rerun of
// `app create` after a failure), created otherwise.
Result<std::string> EnsureVaultKey(KeySession& s, const std::string& name, crypto::KeyType type,
                                   keys::KeyPurpose purpose, bool* created) {
  *created = false;
  if (!keys::IsValidKeyName(name)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the default key name " + name +
                         " is not a valid key name (at most 64 characters); pass --root-key and "
                         "--targets-key URIs");
  }
  auto existing = s.store->Get(name);
  if (existing) {
    if (existing->purpose != purpose) {
      return MakeError(ErrorCode::kAlreadyExists,
                       "key " + s.uri.WithKey(name).ToString() + " exists with purpose " +
                           std::string(keys::KeyPurposeName(existing->purpose)) + ", not " +
                           std::string(keys::KeyPurposeName(purpose)));
    }
  } else if (existing.error().code() == ErrorCode::kNotFound) {
    AIRLOCK_TRY(s.manager->Create(s.ctx, name, type, purpose));
    *created = true;
  } else {
    return tl::unexpected(existing.error());
  }
  return CanonicalKeySpec(s.uri.WithKey(name).ToString());
}

// The default vault's session, created (with its folder, 0700) when it is the default file vault
// and does not exist yet.
Result<std::shared_ptr<KeySession>> OpenDefaultVault(const std::string& passphrase_file,
                                                     std::string* uri_out, bool* created) {
  bool is_default = false;
  AIRLOCK_ASSIGN_OR_RETURN(std::string uri, DefaultVaultUri(&is_default));
  *uri_out = uri;
  *created = false;
  KeyStoreArgs args;
  args.vault = uri;
  args.passphrase_file = passphrase_file;
  AIRLOCK_ASSIGN_OR_RETURN(keys::KeyUri parsed, keys::ParseKeyUri(uri));
  bool create = false;
  if (parsed.scheme == keys::KeyUriScheme::kFile) {
    std::error_code ec;
    if (!fs::exists(parsed.path, ec)) {
      create = true;
      fs::path parent = fs::absolute(parsed.path, ec).parent_path();
      AIRLOCK_TRY(MakePrivateDirs(parent));
    }
  }
  AIRLOCK_ASSIGN_OR_RETURN(std::unique_ptr<KeySession> s, OpenKeySession(args, create));
  *created = create;
  return std::shared_ptr<KeySession>(std::move(s));
}

using SignerPtr = std::unique_ptr<crypto::Signer>;

Result<SignerPtr> LoadTufSigner(KeyLoader& loader, const std::string& spec, const char* role) {
  auto signer = loader.LoadSigner(spec);
  if (!signer)
    return tl::unexpected(signer.error().WithContext(std::string(role) + " key " + spec));
  if ((*signer)->Public().type() == crypto::KeyType::kX25519) {
    return MakeError(ErrorCode::kInvalidArgument,
                     std::string(role) + " key " + spec + " is an x25519 key, which cannot sign");
  }
  return std::move(*signer);
}

// ---- TUF helpers ----

Result<metadata::Key> OnlineKey(const nlohmann::json& online_keys, const std::string& role) {
  if (!online_keys.is_object() || !online_keys.contains(role) ||
      !online_keys.contains(role + "_keyid") || !online_keys[role + "_keyid"].is_string()) {
    return MakeError(ErrorCode::kMalformed, "the server's online_keys lack " + role);
  }
  AIRLOCK_ASSIGN_OR_RETURN(metadata::Key key, metadata::Key::FromJson(online_keys[role]));
  if (!key.usable()) {
    return MakeError(ErrorCode::kUnsupported,
                     "the server's " + role + " key is of an unsupported type");
  }
  const std::string keyid = online_keys[role + "_keyid"].get<std::string>();
  if (key.public_key->KeyId() != keyid) {
    return MakeError(ErrorCode::kMalformed, "the server's " + role + " key id " + keyid +
                                                " does not match its key (" +
                                                key.public_key->KeyId() + ")");
  }
  return key;
}

// Streams `file`, returning its TUF target entry (length and sha256).
Result<TargetFile> TargetFor(const fs::path& file, nlohmann::json custom) {
  uint64_t size = 0;
  AIRLOCK_ASSIGN_OR_RETURN(Bytes digest, crypto::Sha256File(file, &size));
  TargetFile t;
  t.length = size;
  t.hashes["sha256"] = HexEncode(digest);
  t.custom = std::move(custom);
  return t;
}

Result<nlohmann::json> UploadBlob(HttpClient& client, const fs::path& file, const TargetFile& t,
                                  const std::string& label) {
  AIRLOCK_ASSIGN_OR_RETURN(
      HttpResponse r,
      client.Upload("/api/v1/blobs", file, {{"X-Airlock-Sha256", t.hashes.at("sha256")}}, label));
  if (r.status != 200 && r.status != 201) {
    return tl::unexpected(ServerError("POST", "/api/v1/blobs", r));
  }
  auto j = ParseJson(r.body, HttpClient::kMaxJsonBody);
  if (!j || !j->is_object()) {
    return MakeError(ErrorCode::kMalformed, "POST /api/v1/blobs: the answer is not a JSON object");
  }
  if (JsonString(*j, "sha256", "") != t.hashes.at("sha256")) {
    return MakeError(ErrorCode::kHashMismatch, "POST /api/v1/blobs: the server stored " +
                                                   JsonString(*j, "sha256") + ", not " +
                                                   t.hashes.at("sha256"));
  }
  return std::move(*j);
}

// ---- app create ----

struct AppCreateArgs {
  ServerArgs server;
  std::string app;
  std::vector<std::string> root_keys;
  uint64_t root_threshold = 1;
  std::string targets_key;
  std::string capgo_key;
  std::string app_key;
  std::string display_name;
  std::string passphrase_file;
  bool no_capgo = false;
};

Result<void> RunAppCreate(const AppCreateArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  if (!a.root_keys.empty() && a.root_threshold > a.root_keys.size()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "--root-threshold " + std::to_string(a.root_threshold) + " is more than the " +
                         std::to_string(a.root_keys.size()) + " root key(s) given");
  }
  if (a.root_keys.empty() && a.root_threshold > 1) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "--root-threshold above 1 needs as many --root-key options");
  }
  if (a.no_capgo && !a.capgo_key.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "--no-capgo and --capgo-key exclude each other");
  }
  std::optional<crypto::PublicKey> app_key;
  if (!a.app_key.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(app_key, crypto::PublicKey::FromFile(a.app_key));
  }
  AIRLOCK_ASSIGN_OR_RETURN(fs::path config_dir, ConfigDir());

  // 1. Keys, all loaded before the server is asked for anything (a wrong passphrase changes
  // nothing).
  KeyStoreArgs defaults;
  defaults.passphrase_file = a.passphrase_file;
  KeyLoader loader(defaults);
  AppConfig config;
  config.app_id = a.app;
  config.root_threshold = a.root_threshold;
  std::vector<std::string> notes;  // where keys are, printed at the end
  std::string vault_uri;
  std::shared_ptr<KeySession> default_session;
  auto open_default = [&]() -> Result<std::shared_ptr<KeySession>> {
    bool vault_created = false;
    AIRLOCK_ASSIGN_OR_RETURN(std::shared_ptr<KeySession> session,
                             OpenDefaultVault(a.passphrase_file, &vault_uri, &vault_created));
    loader.AddSession(session);
    if (vault_created) notes.push_back("created vault " + session->uri.StoreUri());
    return session;
  };
  if (a.root_keys.empty() || a.targets_key.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(default_session, open_default());
    std::shared_ptr<KeySession> session = default_session;
    auto ensure = [&](const std::string& suffix, keys::KeyPurpose purpose) -> Result<std::string> {
      bool created = false;
      AIRLOCK_ASSIGN_OR_RETURN(std::string spec,
                               EnsureVaultKey(*session, a.app + "." + suffix,
                                              crypto::KeyType::kEd25519, purpose, &created));
      notes.push_back(std::string(created ? "created " : "using existing ") + suffix + " key " +
                      spec);
      return spec;
    };
    if (a.root_keys.empty()) {
      AIRLOCK_ASSIGN_OR_RETURN(std::string spec, ensure("root", keys::KeyPurpose::kRoot));
      config.root_keys.push_back(spec);
    }
    if (a.targets_key.empty()) {
      AIRLOCK_ASSIGN_OR_RETURN(config.targets_key, ensure("targets", keys::KeyPurpose::kTargets));
    }
  }
  for (const std::string& spec : a.root_keys) {
    AIRLOCK_ASSIGN_OR_RETURN(std::string canonical, CanonicalKeySpec(spec));
    config.root_keys.push_back(canonical);
  }
  if (!a.targets_key.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(config.targets_key, CanonicalKeySpec(a.targets_key));
  }
  std::vector<SignerPtr> root_signers;
  std::set<std::string> root_ids;
  for (const std::string& spec : config.root_keys) {
    AIRLOCK_ASSIGN_OR_RETURN(SignerPtr s, LoadTufSigner(loader, spec, "root"));
    if (!root_ids.insert(s->KeyId()).second) {
      return MakeError(ErrorCode::kInvalidArgument, "root key " + spec + " is given twice");
    }
    config.root_keyids.push_back(s->KeyId());
    root_signers.push_back(std::move(s));
  }
  AIRLOCK_ASSIGN_OR_RETURN(SignerPtr targets_signer,
                           LoadTufSigner(loader, config.targets_key, "targets"));
  config.targets_keyid = targets_signer->KeyId();

  // The Capgo key: given (a key URI or an RSA PEM file), or APP.capgo in the default vault.
  std::optional<bundle::capgo::CapgoSigner> capgo_signer;
  if (!a.no_capgo) {
    if (!a.capgo_key.empty()) {
      AIRLOCK_ASSIGN_OR_RETURN(config.capgo_key, CanonicalKeySpec(a.capgo_key));
      if (!keys::LooksLikeKeyUri(config.capgo_key)) {
        config.capgo_key = fs::absolute(config.capgo_key).lexically_normal().string();
      }
    } else {
      if (!default_session) {
        AIRLOCK_ASSIGN_OR_RETURN(default_session, open_default());
      }
      bool created = false;
      AIRLOCK_ASSIGN_OR_RETURN(
          config.capgo_key,
          EnsureVaultKey(*default_session, a.app + ".capgo", crypto::KeyType::kRsa,
                         keys::KeyPurpose::kCapgo, &created));
      notes.push_back(std::string(created ? "created " : "using existing ") + "Capgo key (RSA) " +
                      config.capgo_key);
    }
    auto signer = loader.LoadCapgoSigner(config.capgo_key);
    if (!signer) return tl::unexpected(signer.error().WithContext("Capgo key " + config.capgo_key));
    capgo_signer = std::move(*signer);
  }

  // 2. The app on the server: online keys, content key, enrollment token. If it exists without a
  // root or without targets (an earlier `app create` stopped half-way), this run resumes: it reads
  // the online keys back, signs what is missing (the server checks it against its root, so other
  // keys are refused) and rotates the enrollment token, whose first value nobody saw.
  const std::string app_path = "/api/v1/apps/" + a.app;
  nlohmann::json body = {{"app_id", a.app}};
  if (!a.display_name.empty()) body["display_name"] = a.display_name;
  if (app_key) {
    body["app_key"] = app_key->ToPem();
    config.app_key_pem = app_key->ToPem();
  }
  nlohmann::json created;
  bool resumed = false;
  bool need_root = true;
  if (auto posted = client.Json("POST", "/api/v1/apps", body)) {
    created = std::move(*posted);
  } else if (posted.error().code() == ErrorCode::kAlreadyExists) {
    AIRLOCK_ASSIGN_OR_RETURN(created, client.Json("GET", app_path));
    const bool has_root = created.contains("root_version") && !created["root_version"].is_null();
    const bool has_targets =
        created.contains("targets_version") && !created["targets_version"].is_null();
    if (has_root && has_targets) {
      return MakeError(ErrorCode::kAlreadyExists,
                       "app " + a.app + " already exists on " + client.server() +
                           " (see `airlock app show " + a.app + "`)");
    }
    if (app_key && JsonString(created, "app_key", "") != app_key->ToPem()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "app " + a.app + " exists on the server with another --app-key; resuming "
                       "cannot change it");
    }
    resumed = true;
    need_root = !has_root;
    AIRLOCK_ASSIGN_OR_RETURN(
        nlohmann::json rotated,
        client.Json("POST", app_path + "/enrollment-token", nlohmann::json::object()));
    created["enrollment_token"] = JsonString(rotated, "enrollment_token", "");
    notes.push_back(std::string("resumed: the app existed on the server without ") +
                    (need_root ? "a root" : "targets") + "; enrollment token rotated");
  } else {
    return tl::unexpected(posted.error());
  }
  const nlohmann::json online = created.value("online_keys", nlohmann::json::object());
  AIRLOCK_ASSIGN_OR_RETURN(metadata::Key snapshot_key, OnlineKey(online, "snapshot"));
  AIRLOCK_ASSIGN_OR_RETURN(metadata::Key timestamp_key, OnlineKey(online, "timestamp"));
  const std::string enrollment_token = JsonString(created, "enrollment_token", "");
  config.content_key_pem = JsonString(created, "content_key", "");

  // 3. Root v1, signed by every root key.
  const std::time_t now = std::time(nullptr);
  Root root;
  root.version = 1;
  root.expires = now + kYear;
  root.consistent_snapshot = true;
  for (const SignerPtr& s : root_signers) AIRLOCK_TRY(root.AddKey("root", s->Public()));
  root.roles["root"].threshold = a.root_threshold;
  AIRLOCK_TRY(root.AddKey("targets", targets_signer->Public()));
  for (const auto& [role, key] :
       {std::pair{"snapshot", &snapshot_key}, {"timestamp", &timestamp_key}}) {
    const std::string id = key->public_key->KeyId();
    root.keys[id] = *key;
    root.roles[role].keyids = {id};
    root.roles[role].threshold = 1;
  }
  Metadata<Root> root_md(root);
  for (const SignerPtr& s : root_signers) AIRLOCK_TRY(root_md.Sign(*s));
  AIRLOCK_ASSIGN_OR_RETURN(std::string root_bytes, root_md.ToBytes());
  if (need_root) {
    AIRLOCK_ASSIGN_OR_RETURN(HttpResponse r, client.Request("PUT", app_path + "/root", root_bytes));
    if (r.status != 200) return tl::unexpected(ServerError("PUT", app_path + "/root", r));
  } else {
    // Resuming: the server already holds a root v1. Trust it only if our own root keys signed it
    // (a threshold of them), never because the server serves it.
    const std::string path = "/tuf/" + a.app + "/1.root.json";
    AIRLOCK_ASSIGN_OR_RETURN(HttpResponse r, client.Request("GET", path, std::nullopt, "",
                                                            metadata::kMaxRootSize));
    if (r.status != 200) return tl::unexpected(ServerError("GET", path, r));
    auto served = metadata::ParseRoot(r.body);
    if (!served) return tl::unexpected(served.error().WithContext(path));
    if (auto ok = root.VerifyDelegate("root", *served); !ok) {
      return tl::unexpected(ok.error().WithContext(path + " is not signed by this app's root keys"));
    }
    root_bytes = std::move(r.body);
  }
  AIRLOCK_TRY(PinTrustedRoot(a.app, root_bytes));

  // 4. Empty targets v1.
  Targets targets;
  targets.version = 1;
  targets.expires = now + kYear;
  Metadata<Targets> targets_md(targets);
  AIRLOCK_TRY(targets_md.Sign(*targets_signer));
  AIRLOCK_ASSIGN_OR_RETURN(std::string targets_bytes, targets_md.ToBytes());
  {
    AIRLOCK_ASSIGN_OR_RETURN(HttpResponse r,
                             client.Request("PUT", app_path + "/targets", targets_bytes));
    if (r.status != 200) return tl::unexpected(ServerError("PUT", app_path + "/targets", r));
  }
  AIRLOCK_TRY(RecordTargetsVersion(a.app, 1));

  // 5. Local record, and the Capgo public key for the plugin.
  if (capgo_signer) {
    const fs::path pub = config_dir / "apps" / (a.app + ".capgo.pub.pem");
    AIRLOCK_TRY(MakePrivateDirs(pub.parent_path()));
    AIRLOCK_TRY(WriteFileAtomic(pub, AsBytes(capgo_signer->public_key.ToPkcs1Pem()), 0644));
    config.capgo_public_key = pub.string();
  }
  AIRLOCK_ASSIGN_OR_RETURN(fs::path config_path, SaveAppConfig(config));

  if (a.server.json) {
    nlohmann::json out = {{"app_id", a.app},
                          {"root_version", 1},
                          {"targets_version", 1},
                          {"root_keys", config.root_keys},
                          {"root_keyids", config.root_keyids},
                          {"root_threshold", a.root_threshold},
                          {"targets_key", config.targets_key},
                          {"targets_keyid", config.targets_keyid},
                          {"capgo_key", config.capgo_key},
                          {"capgo_public_key", config.capgo_public_key},
                          {"config", config_path.string()},
                          {"content_key", JsonString(created, "content_key", "")},
                          {"enrollment_token", enrollment_token},
                          {"resumed", resumed}};
    PrintJson(out);
    return {};
  }
  std::cout << (resumed ? "finished creating app " : "created app ") << a.app << " on "
            << client.server() << " (root v1, targets v1)\n";
  for (const std::string& n : notes) std::cout << "  " << n << "\n";
  std::cout << "  root keys (threshold " << a.root_threshold << "):\n";
  for (size_t i = 0; i < config.root_keys.size(); ++i) {
    std::cout << "    " << config.root_keys[i] << " (" << config.root_keyids[i] << ")\n";
  }
  std::cout << "  targets key: " << config.targets_key << " (" << config.targets_keyid << ")\n";
  if (!config.capgo_public_key.empty()) {
    std::cout << "  Capgo public key (the plugin's publicKey): " << config.capgo_public_key << "\n";
  }
  std::cout << "  key record: " << config_path.string() << "\n";
  std::cout << "Device enrollment token (shown once, store it now): " << enrollment_token << "\n";
  std::cout << "Ship the trusted root with your app: airlock app root " << a.app
            << " --out root.json\n";
  return {};
}

// ---- app enrollment-token ----

// Commands that name one app and a server.
struct AppIdArgs {
  ServerArgs server;
  std::string app;
};

Result<void> RunAppEnrollmentToken(const AppIdArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  AIRLOCK_ASSIGN_OR_RETURN(
      nlohmann::json rotated,
      client.Json("POST", "/api/v1/apps/" + a.app + "/enrollment-token",
                  nlohmann::json::object()));
  const std::string token = JsonString(rotated, "enrollment_token", "");
  if (a.server.json) {
    PrintJson({{"app_id", a.app}, {"enrollment_token", token}});
    return {};
  }
  std::cout << "new device enrollment token for " << a.app
            << " (the old one no longer enrolls devices; enrolled devices stay enrolled)\n";
  std::cout << "Device enrollment token (shown once, store it now): " << token << "\n";
  return {};
}

// ---- app root / app show ----

struct AppRootArgs {
  ServerArgs server;
  std::string app, out, trusted_root;
};

Result<void> RunAppRoot(const AppRootArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, HttpClient::Create(a.server.server, a.server.token));
  AIRLOCK_ASSIGN_OR_RETURN(TrustedRoot trusted, LoadTrustedRoot(client, a.app, a.trusted_root));
  const Root& root = trusted.root.signed_data;
  AIRLOCK_TRY(WriteFileAtomic(a.out, AsBytes(trusted.bytes), 0644));
  if (a.server.json) {
    PrintJson({{"app_id", a.app},
               {"out", a.out},
               {"version", root.version},
               {"expires", metadata::FormatTufTime(root.expires)},
               {"root_keyids", root.roles.at("root").keyids},
               {"root_threshold", root.roles.at("root").threshold}});
    return {};
  }
  std::cout << "wrote " << a.out << ": root v" << root.version << " of " << a.app
            << ", signed by " << root.roles.at("root").threshold << " of "
            << root.roles.at("root").keyids.size() << " root key(s), expires "
            << metadata::FormatTufTime(root.expires) << "\n";
  return {};
}

Result<void> RunAppShow(const AppIdArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json j, client.Json("GET", "/api/v1/apps/" + a.app));
  if (a.server.json) {
    PrintJson(j);
    return {};
  }
  auto num = [&](const char* f) {
    return j.contains(f) && j[f].is_number_unsigned() ? std::to_string(j[f].get<uint64_t>())
                                                      : std::string("-");
  };
  std::cout << JsonString(j, "app_id") << "\n"
            << "  root v" << num("root_version") << ", targets v" << num("targets_version")
            << ", timestamp expires " << JsonString(j, "timestamp_expires") << "\n"
            << "  app key: " << (j.contains("app_key") && j["app_key"].is_string() ? "set" : "none")
            << "\n";
  return {};
}

// ---- channels ----

void PrintChannel(const nlohmann::json& c) {
  auto flag = [&](const char* f) { return c.value(f, false) ? "yes" : "no"; };
  std::string platforms;
  for (const char* p : {"ios", "android", "electron"}) {
    if (c.value(p, true)) platforms += (platforms.empty() ? "" : ",") + std::string(p);
  }
  std::cout << JsonString(c, "name") << ": current " << JsonString(c, "current_version")
            << ", rollout " << c.value("rollout_percent", 0) << "%, paused " << flag("paused")
            << ", default " << flag("default") << ", self-assign " << flag("allow_self_assign")
            << ", platforms " << (platforms.empty() ? "none" : platforms) << ", min native "
            << JsonString(c, "min_native_version") << "\n";
}

struct ChannelCreateArgs {
  ServerArgs server;
  std::string app, name;
  bool is_default = false, allow_self_assign = false;
  bool ios = true, android = true, electron = true;
  CLI::Option* ios_opt = nullptr;
  CLI::Option* android_opt = nullptr;
  CLI::Option* electron_opt = nullptr;
  std::string min_native_version;
  int rollout_percent = 100;
  CLI::Option* rollout_opt = nullptr;
};

Result<void> RunChannelCreate(const ChannelCreateArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_TRY(ValidateId("channel name", a.name));
  if (!a.min_native_version.empty()) {
    AIRLOCK_TRY(ValidateVersion("--min-native-version", a.min_native_version));
  }
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  nlohmann::json body = {
      {"name", a.name}, {"default", a.is_default}, {"allow_self_assign", a.allow_self_assign}};
  if (a.ios_opt->count() > 0) body["ios"] = a.ios;
  if (a.android_opt->count() > 0) body["android"] = a.android;
  if (a.electron_opt->count() > 0) body["electron"] = a.electron;
  if (!a.min_native_version.empty()) body["min_native_version"] = a.min_native_version;
  if (a.rollout_opt->count() > 0) body["rollout_percent"] = a.rollout_percent;
  AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json c,
                           client.Json("POST", "/api/v1/apps/" + a.app + "/channels", body));
  if (a.server.json) {
    PrintJson(c);
  } else {
    std::cout << "created channel ";
    PrintChannel(c);
  }
  return {};
}

struct AppOnlyArgs {
  ServerArgs server;
  std::string app;
  int limit = 100;
};

Result<void> RunChannelList(const AppOnlyArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json j,
                           client.Json("GET", "/api/v1/apps/" + a.app + "/channels"));
  if (a.server.json) {
    PrintJson(j);
    return {};
  }
  for (const auto& c : j.value("channels", nlohmann::json::array())) PrintChannel(c);
  return {};
}

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
  } else {
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

// What a signing command starts from: the app as the server lists it, the trusted root brought up to
// date along the verified chain, and the server's current targets once they verified under it
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

struct RollbackArgs {
  ServerArgs server;
  std::string app, channel, to, targets_key, trusted_root, passphrase_file;
};

// A rollback is the developer's decision, signed: the release must be signed for the channel and not
// below the highest security floor; unless its targets entries already say rollback_allowed, targets
// N+1 marking them so is signed here (after targets N verified under the trusted root) and sent with
// the rollback, which the server applies in one step.
Result<void> RunRollback(const RollbackArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_TRY(ValidateId("channel name", a.channel));
  AIRLOCK_TRY(ValidateVersion("--to", a.to));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  AIRLOCK_ASSIGN_OR_RETURN(std::optional<AppConfig> config, LoadAppConfig(a.app));
  const std::string app_path = "/api/v1/apps/" + a.app;
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

// The key a release is sealed to: `given_file` (a PEM public key) when set, else `recorded_pem`; the
// server's `served_pem` must be the same key. kNotFound when this machine knows none; kWrongKey when
// the server offers another.
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
};

Result<void> RunPublish(const PublishArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_TRY(ValidateId("channel name", a.channel));
  for (const std::string& c : a.also_channels) AIRLOCK_TRY(ValidateId("--allow-channel", c));
  AIRLOCK_TRY(ValidateVersion("--version", a.version));
  if (a.security_fix && a.security_floor) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "--security-fix and --security-floor exclude each other");
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
      return MakeError(ErrorCode::kRollback,
                       "--security-floor " + std::to_string(*a.security_floor) +
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
        TrustedRecipient(device ? "content key" : "app key",
                         device ? "--content-key" : "--app-key",
                         config ? (device ? config->content_key_pem : config->app_key_pem) : "",
                         device ? a.content_key : a.app_key,
                         JsonString(app_info, device ? "content_key" : "app_key", ""), a.app));
    bundle::SealOptions options;
    options.app_id = a.app;
    options.version = a.version;
    blob = tmp.path() / "bundle.alb";
    AIRLOCK_TRY(bundle::SealBundle(zip, options, *bundle_signer, {recipient}, blob));
    target_name = prefix + "bundle.alb";
    custom["format"] = "airlock-bundle";
  }
  AIRLOCK_ASSIGN_OR_RETURN(TargetFile blob_target, TargetFor(blob, custom));

  std::optional<bundle::capgo::EncryptResult> capgo;
  TargetFile capgo_target;
  const fs::path capgo_file = tmp.path() / "capgo.zip";
  if (capgo_signer) {
    AIRLOCK_ASSIGN_OR_RETURN(capgo, bundle::capgo::EncryptFile(zip, *capgo_signer, capgo_file));
    AIRLOCK_ASSIGN_OR_RETURN(
        capgo_target,
        TargetFor(capgo_file, [&] {
          nlohmann::json c = {{"format", "capgo-v2"}};
          rules.WriteTo(&c);
          return c;
        }()));
  }

  // Blobs first (content-addressed; harmless if the release is then refused).
  AIRLOCK_TRY(UploadBlob(client, blob, blob_target, "uploading " + target_name));
  if (capgo) AIRLOCK_TRY(UploadBlob(client, capgo_file, capgo_target, "uploading capgo.zip"));

  // Targets metadata N+1 listing the release.
  Targets next = current.signed_data;
  next.version = targets_version + 1;
  next.expires = std::time(nullptr) + kYear;
  next.targets[target_name] = blob_target;
  if (capgo) next.targets[prefix + "capgo.zip"] = capgo_target;
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
  }
  AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json release,
                           client.Json("POST", app_path + "/releases", body));
  AIRLOCK_TRY(RecordTargetsVersion(a.app, next.version));
  if (a.server.json) {
    PrintJson(release);
    return {};
  }
  std::cout << "published " << a.app << " " << a.version << " to channel " << a.channel << "\n"
            << "  " << target_name << " (" << Plural(blob_target.length, "byte", "bytes")
            << ", sha256 " << blob_target.hashes["sha256"] << ", encryption " << a.encrypt << ")\n";
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
  std::cout << std::left << std::setw(16) << "VERSION" << std::setw(10) << "ENCRYPTION"
            << std::setw(12) << "LENGTH" << std::setw(8) << "CAPGO"
            << "CREATED\n";
  for (const auto& r : j.value("releases", nlohmann::json::array())) {
    std::cout << std::left << std::setw(16) << JsonString(r, "version") << std::setw(10)
              << JsonString(r, "encryption") << std::setw(12) << r.value("length", uint64_t{0})
              << std::setw(8) << (r.contains("capgo") && r["capgo"].is_object() ? "yes" : "no")
              << FormatTime(r.value("created_at", int64_t{0})) << "\n";
  }
  return {};
}

// ---- devices ----

Result<void> RunDeviceList(const AppOnlyArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  AIRLOCK_ASSIGN_OR_RETURN(
      nlohmann::json j,
      client.Json("GET", "/api/v1/apps/" + a.app + "/devices?limit=" + std::to_string(a.limit)));
  if (a.server.json) {
    PrintJson(j);
    return {};
  }
  const nlohmann::json devices = j.value("devices", nlohmann::json::array());
  std::cout << std::left << std::setw(38) << "DEVICE" << std::setw(10) << "PLATFORM" << std::setw(9)
            << "STATUS" << std::setw(16) << "CHANNEL"
            << "LAST SEEN\n";
  for (const auto& d : devices) {
    std::cout << std::left << std::setw(38) << JsonString(d, "device_id") << std::setw(10)
              << JsonString(d, "platform") << std::setw(9) << JsonString(d, "status")
              << std::setw(16) << JsonString(d, "channel_override")
              << FormatTime(d.value("last_seen", int64_t{0})) << "\n";
  }
  std::cout << Plural(devices.size(), "device", "devices") << "\n";
  return {};
}

struct DeviceArgs {
  ServerArgs server;
  std::string app;
  std::string device;
};

// `device approve` (pending -> active) and `device revoke` (for good: 403 on every device route).
Result<void> RunDeviceStatus(const DeviceArgs& a, const char* action) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_TRY(ValidateId("device id", a.device));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  AIRLOCK_ASSIGN_OR_RETURN(
      nlohmann::json j,
      client.Json("POST", "/api/v1/apps/" + a.app + "/devices/" + a.device + "/" + action,
                  nlohmann::json::object()));
  if (a.server.json) {
    PrintJson(j);
  } else {
    std::cout << "device " << a.device << " of " << a.app << ": " << JsonString(j, "status")
              << "\n";
  }
  return {};
}

struct DevicePolicyArgs {
  ServerArgs server;
  std::string app;
  std::string policy;  // empty: show
};

Result<void> RunDevicePolicy(const DevicePolicyArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  const std::string path = "/api/v1/apps/" + a.app + "/enrollment-policy";
  nlohmann::json j;
  if (a.policy.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(j, client.Json("GET", path));
  } else {
    AIRLOCK_ASSIGN_OR_RETURN(j, client.Json("PUT", path, nlohmann::json{{"policy", a.policy}}));
  }
  if (a.server.json) {
    PrintJson(j);
  } else {
    std::cout << "enrollment policy of " << a.app << ": " << JsonString(j, "policy") << "\n";
  }
  return {};
}

struct DevicePreauthArgs {
  ServerArgs server;
  std::string app;
  std::string keys_file;
};

// The factory list: a JSON array of {"signing_key", "device_id"?} objects, or one such object per
// line (JSON lines). Read whole (bounded), checked by the server; sent in batches of 1000.
Result<void> RunDevicePreauthorize(const DevicePreauthArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  constexpr uint64_t kMaxListBytes = 64ull * 1024 * 1024;
  AIRLOCK_ASSIGN_OR_RETURN(std::string text, ReadTextFile(a.keys_file, kMaxListBytes));
  nlohmann::json keys = nlohmann::json::array();
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {
    AIRLOCK_ASSIGN_OR_RETURN(keys, ParseJson(text, kMaxListBytes));
    if (!keys.is_array()) {
      return MakeError(ErrorCode::kMalformed, a.keys_file + ": not a JSON array");
    }
  } else {
    std::istringstream lines(text);
    std::string line;
    for (size_t n = 1; std::getline(lines, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto entry = ParseJson(line, kMaxListBytes);
      if (!entry) {
        return MakeError(ErrorCode::kMalformed,
                         a.keys_file + ":" + std::to_string(n) + ": " + entry.error().message());
      }
      keys.push_back(std::move(*entry));
    }
  }
  if (keys.empty()) return MakeError(ErrorCode::kMalformed, a.keys_file + ": no keys");
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  constexpr size_t kBatch = 1000;
  uint64_t added = 0;
  for (size_t at = 0; at < keys.size(); at += kBatch) {
    nlohmann::json batch = nlohmann::json::array();
    for (size_t i = at; i < std::min(keys.size(), at + kBatch); ++i) batch.push_back(keys[i]);
    AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json j,
                             client.Json("POST", "/api/v1/apps/" + a.app + "/preauthorized-keys",
                                         nlohmann::json{{"keys", std::move(batch)}}));
    added += j.value("added", uint64_t{0});
  }
  if (a.server.json) {
    PrintJson({{"app_id", a.app}, {"added", added}, {"keys", keys.size()}});
  } else {
    std::cout << "preauthorized " << Plural(added, "new key", "new keys") << " of " << keys.size()
              << " for " << a.app << "\n";
  }
  return {};
}

}  // namespace

void AddServerCommands(CLI::App& app, Action& action) {
  CLI::App* apps =
      app.add_subcommand("app", "Create apps on airlockd and export their trusted root");
  apps->require_subcommand(1);
  CLI::App* channels = app.add_subcommand("channel", "Create and list an app's channels");
  channels->require_subcommand(1);
  CLI::App* releases = app.add_subcommand("release", "Publish, list and roll back releases");
  releases->require_subcommand(1);
  CLI::App* rollout = app.add_subcommand("rollout", "Staged rollouts: set, pause, resume");
  rollout->require_subcommand(1);
  CLI::App* devices = app.add_subcommand("device", "An app's enrolled devices");
  devices->require_subcommand(1);

  auto create = std::make_shared<AppCreateArgs>();
  CLI::App* ac = apps->add_subcommand(
      "create", "Create an app: its root and targets keys (default vault), root v1, targets v1");
  ac->add_option("app_id", create->app, "App id")->required();
  AddServerOptions(ac, create->server);
  ac->add_option("--root-key", create->root_keys,
                 "Root key URI or PEM file (repeatable; default: APP.root in the default vault)");
  ac->add_option("--root-threshold", create->root_threshold, "Root signatures required")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100}));
  ac->add_option("--targets-key", create->targets_key,
                 "Targets key URI or PEM file (default: APP.targets in the default vault)");
  ac->add_option("--capgo-key", create->capgo_key,
                 "Capgo RSA key: key URI (purpose capgo) or PEM file (default: APP.capgo in the "
                 "default vault)");
  ac->add_flag("--no-capgo", create->no_capgo, "Make no Capgo key");
  ac->add_option("--app-key", create->app_key,
                 "Public key (PEM, x25519 or RSA) for `--encrypt app` releases");
  ac->add_option("--display-name", create->display_name, "Display name");
  ac->add_option("--passphrase-file", create->passphrase_file,
                 "File holding the vault passphrase (else $AIRLOCK_VAULT_PASSPHRASE or a prompt)");
  ac->callback([create, &action] { action = [create] { return RunAppCreate(*create); }; });

  auto enrollment = std::make_shared<AppIdArgs>();
  CLI::App* ae = apps->add_subcommand(
      "enrollment-token", "Replace the app's device enrollment token (the old one stops working)");
  ae->add_option("app_id", enrollment->app, "App id")->required();
  AddServerOptions(ae, enrollment->server);
  ae->callback([enrollment, &action] {
    action = [enrollment] { return RunAppEnrollmentToken(*enrollment); };
  });

  auto root = std::make_shared<AppRootArgs>();
  CLI::App* ar =
      apps->add_subcommand("root", "Write the app's newest root that verifies from the pinned one (root.json)");
  ar->add_option("app_id", root->app, "App id")->required();
  ar->add_option("--out", root->out, "Output file")->required();
  AddTrustedRootOption(ar, root->trusted_root);
  AddServerOptions(ar, root->server);
  ar->callback([root, &action] { action = [root] { return RunAppRoot(*root); }; });

  auto show = std::make_shared<AppIdArgs>();
  CLI::App* as = apps->add_subcommand("show", "Show an app as the server knows it");
  as->add_option("app_id", show->app, "App id")->required();
  AddServerOptions(as, show->server);
  as->callback([show, &action] { action = [show] { return RunAppShow(*show); }; });

  auto cc = std::make_shared<ChannelCreateArgs>();
  CLI::App* chc = channels->add_subcommand("create", "Create a channel");
  chc->add_option("app_id", cc->app, "App id")->required();
  chc->add_option("name", cc->name, "Channel name")->required();
  AddServerOptions(chc, cc->server);
  chc->add_flag("--default", cc->is_default, "Devices without a channel get this one");
  chc->add_flag("--allow-self-assign", cc->allow_self_assign, "Devices may choose this channel");
  cc->ios_opt = chc->add_flag("--ios,!--no-ios", cc->ios, "Serve iOS devices (default yes)");
  cc->android_opt =
      chc->add_flag("--android,!--no-android", cc->android, "Serve Android devices (default yes)");
  cc->electron_opt = chc->add_flag("--electron,!--no-electron", cc->electron,
                                   "Serve Electron devices (default yes)");
  chc->add_option("--min-native-version", cc->min_native_version,
                  "Lowest native app version served (semver)");
  cc->rollout_opt = chc->add_option("--rollout-percent", cc->rollout_percent,
                                    "Share of devices offered new releases (0-100)")
                        ->check(CLI::Range(0, 100));
  chc->callback([cc, &action] { action = [cc] { return RunChannelCreate(*cc); }; });

  auto cl = std::make_shared<AppOnlyArgs>();
  CLI::App* chl = channels->add_subcommand("list", "List an app's channels");
  chl->add_option("app_id", cl->app, "App id")->required();
  AddServerOptions(chl, cl->server);
  chl->callback([cl, &action] { action = [cl] { return RunChannelList(*cl); }; });

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
  rp->add_option("--app-key", publish->app_key,
                 "The app's public key (PEM) for --encrypt app (default: recorded by `app create`)");
  rp->add_option("--allow-channel", publish->also_channels,
                 "Another channel the release may later be made current on (repeatable; signed)");
  rp->add_flag("--security-fix", publish->security_fix,
               "Raise the security floor by one: no device or rollback goes below this release");
  rp->add_option("--security-floor", publish->security_floor,
                 "Set the security floor (default: the app's highest so far; never lower)");
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

  auto dl = std::make_shared<AppOnlyArgs>();
  CLI::App* dls = devices->add_subcommand("list", "List an app's enrolled devices");
  dls->add_option("app_id", dl->app, "App id")->required();
  AddServerOptions(dls, dl->server);
  dls->add_option("--limit", dl->limit, "At most this many devices (1-10000)")
      ->check(CLI::Range(1, 10000));
  dls->callback([dl, &action] { action = [dl] { return RunDeviceList(*dl); }; });

  for (const char* verb : {"approve", "revoke"}) {
    auto args = std::make_shared<DeviceArgs>();
    CLI::App* c = devices->add_subcommand(
        verb, std::string(verb) == "approve"
                  ? "Let a device waiting under the `approve` policy in"
                  : "Revoke a device for good: 403 on every device route, no further keys");
    c->add_option("app_id", args->app, "App id")->required();
    c->add_option("device_id", args->device, "Device id")->required();
    AddServerOptions(c, args->server);
    c->callback(
        [args, verb, &action] { action = [args, verb] { return RunDeviceStatus(*args, verb); }; });
  }
  auto policy = std::make_shared<DevicePolicyArgs>();
  CLI::App* dp = devices->add_subcommand(
      "policy", "Show or set how devices enroll: token, approve or preauth");
  dp->add_option("app_id", policy->app, "App id")->required();
  dp->add_option("policy", policy->policy, "New policy (default: show the current one)")
      ->check(CLI::IsMember({"token", "approve", "preauth"}));
  AddServerOptions(dp, policy->server);
  dp->callback([policy, &action] { action = [policy] { return RunDevicePolicy(*policy); }; });
  auto preauth = std::make_shared<DevicePreauthArgs>();
  CLI::App* dpa = devices->add_subcommand(
      "preauthorize", "Register device signing keys that may enroll under the preauth policy");
  dpa->add_option("app_id", preauth->app, "App id")->required();
  dpa->add_option("--keys", preauth->keys_file,
                  "JSON array or JSON lines of {\"signing_key\": HEX, \"device_id\": ID}")
      ->required();
  AddServerOptions(dpa, preauth->server);
  dpa->callback(
      [preauth, &action] { action = [preauth] { return RunDevicePreauthorize(*preauth); }; });
}

}  // namespace airlock::cli
