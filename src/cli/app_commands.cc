// airlock app ..., airlock channel ...: create an app (its keys, root v1 and targets v1), replace
// its enrollment token, export its root, show it; create and list channels. See server_commands.cc.
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
#include "cli/key_loading.h"
#include "cli/server_command_helpers.h"
#include "common/file.h"
#include "common/json.h"
#include "common/semver.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "keys/key_store.h"
#include "keys/key_uri.h"
#include "keys/vault_paths.h"
#include "metadata/metadata.h"
#include "metadata/release_rules.h"

namespace airlock::cli {
namespace {

namespace fs = std::filesystem;
using metadata::Metadata;
using metadata::Root;
using metadata::TargetFile;
using metadata::Targets;

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

// The folders of `dir` (and their parents) that do not exist yet, outermost first.
std::vector<fs::path> MissingDirs(const fs::path& dir) {
  std::vector<fs::path> missing;
  std::error_code ec;
  for (fs::path p = dir; !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
    missing.insert(missing.begin(), p);
    if (p == p.parent_path()) break;
  }
  return missing;
}

// A failed `app create` leaves nothing: when this run made the default vault and fails before the
// server accepted the app, the vault, its audit log and the folders made for them are removed.
class UndoNewVault {
 public:
  ~UndoNewVault() {
    if (!armed_) return;
    std::error_code ec;
    for (const fs::path& file : files_) fs::remove(file, ec);
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) fs::remove(*it, ec);  // if empty
  }
  void Arm(const keys::KeyUri& vault, std::vector<fs::path> dirs) {
    if (vault.scheme != keys::KeyUriScheme::kFile) return;
    for (const char* suffix : {"", "-journal", "-wal", "-shm"})
      files_.push_back(vault.path + suffix);
    if (auto log = keys::AuditPathForVaultUri(vault.StoreUri())) {
      for (const char* suffix : {"", "-journal", "-wal", "-shm"})
        files_.push_back(log->string() + suffix);
    }
    dirs_ = std::move(dirs);
    armed_ = true;
  }
  void Disarm() { armed_ = false; }

 private:
  std::vector<fs::path> files_;
  std::vector<fs::path> dirs_;
  bool armed_ = false;
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
  // Destroyed after the sessions below (declared before them), so their files are closed first.
  UndoNewVault undo;

  // 1. Keys, all loaded before the server is asked for anything (a wrong passphrase changes
  // nothing).
  KeyStoreArgs defaults;
  defaults.passphrase_file = a.passphrase_file;
  defaults.passphrase_flag = "--passphrase-file";
  KeyLoader loader(defaults);
  AppConfig config;
  config.app_id = a.app;
  config.root_threshold = a.root_threshold;
  std::vector<std::string> notes;  // where keys are, printed at the end
  std::string vault_uri;
  std::shared_ptr<KeySession> default_session;
  auto open_default = [&]() -> Result<std::shared_ptr<KeySession>> {
    bool vault_created = false;
    const std::vector<fs::path> missing_dirs = MissingDirs(config_dir);
    AIRLOCK_ASSIGN_OR_RETURN(std::shared_ptr<KeySession> session,
                             OpenDefaultVault(a.passphrase_file, &vault_uri, &vault_created));
    loader.AddSession(session);
    if (vault_created) {
      notes.push_back("created vault " + session->uri.StoreUri());
      undo.Arm(session->uri, missing_dirs);
    }
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
  auto posted = client.Json("POST", "/api/v1/apps", body);
  // From here on the server holds the app, and a rerun needs these keys: keep the vault. (An app
  // that already exists keeps it only when this run resumes it, below.)
  if (posted) undo.Disarm();
  if (posted) {
    created = std::move(*posted);
  } else if (posted.error().code() == ErrorCode::kAlreadyExists) {
    AIRLOCK_ASSIGN_OR_RETURN(created, client.Json("GET", app_path));
    const bool has_root = created.contains("root_version") && !created["root_version"].is_null();
    const bool has_targets =
        created.contains("targets_version") && !created["targets_version"].is_null();
    if (has_root && has_targets) {
      return MakeError(ErrorCode::kAlreadyExists, "app " + a.app + " already exists on " +
                                                      client.server() + " (see `airlock app show " +
                                                      a.app + "`)");
    }
    if (app_key && JsonString(created, "app_key", "") != app_key->ToPem()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "app " + a.app +
                           " exists on the server with another --app-key; resuming "
                           "cannot change it");
    }
    undo.Disarm();  // resuming a half-made app: the keys made now finish it
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
    AIRLOCK_ASSIGN_OR_RETURN(HttpResponse r,
                             client.Request("GET", path, std::nullopt, "", metadata::kMaxRootSize));
    if (r.status != 200) return tl::unexpected(ServerError("GET", path, r));
    auto served = metadata::ParseRoot(r.body);
    if (!served) return tl::unexpected(served.error().WithContext(path));
    if (auto ok = root.VerifyDelegate("root", *served); !ok) {
      return tl::unexpected(
          ok.error().WithContext(path + " is not signed by this app's root keys"));
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
      client.Json("POST", "/api/v1/apps/" + a.app + "/enrollment-token", nlohmann::json::object()));
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
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client,
                           HttpClient::Create(a.server.server, a.server.token, a.server.cacert));
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
  std::cout << "wrote " << a.out << ": root v" << root.version << " of " << a.app << ", signed by "
            << root.roles.at("root").threshold << " of " << root.roles.at("root").keyids.size()
            << " root key(s), expires " << metadata::FormatTufTime(root.expires) << "\n";
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

Result<void> RunAppList(const ServerArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a));
  AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json j, client.Json("GET", "/api/v1/apps"));
  if (a.json) {
    PrintJson(j);
    return {};
  }
  std::vector<TableRow> rows;
  for (const auto& app : j.value("apps", nlohmann::json::array())) {
    rows.push_back({JsonString(app, "app_id"), JsonString(app, "display_name"),
                    FormatTime(app.value("created_at", int64_t{0}))});
  }
  PrintTable(std::cout, {"APP", "NAME", "CREATED"}, rows);
  return {};
}

// ---- channels ----

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
  bool require_approval = false;
  int approval_above = 100;
  CLI::Option* approval_above_opt = nullptr;
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
  if (a.require_approval) body["approval_required"] = true;
  if (a.approval_above_opt->count() > 0) body["approval_rollout_above"] = a.approval_above;
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

Result<void> RunChannelList(const AppOnlyArgs& a) {
  AIRLOCK_TRY(ValidateId("app id", a.app));
  AIRLOCK_ASSIGN_OR_RETURN(HttpClient client, Connect(a.server));
  AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json j,
                           client.Json("GET", "/api/v1/apps/" + a.app + "/channels"));
  if (a.server.json) {
    PrintJson(j);
    return {};
  }
  std::vector<TableRow> rows;
  for (const auto& c : j.value("channels", nlohmann::json::array())) {
    rows.push_back(ChannelTableRow(c));
  }
  PrintTable(std::cout, ChannelTableHeader(), rows);
  return {};
}

}  // namespace

void AddAppCommands(CLI::App& app, Action& action) {
  CLI::App* apps =
      app.add_subcommand("app", "Create apps on airlockd and export their trusted root");
  apps->require_subcommand(1);
  CLI::App* channels = app.add_subcommand("channel", "Create and list an app's channels");
  channels->require_subcommand(1);

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
  CLI::App* ar = apps->add_subcommand(
      "root", "Write the app's newest root that verifies from the pinned one (root.json)");
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

  auto list = std::make_shared<ServerArgs>();
  CLI::App* al = apps->add_subcommand("list", "List the apps the token may see");
  AddServerOptions(al, *list);
  al->callback([list, &action] { action = [list] { return RunAppList(*list); }; });

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
  chc->add_flag("--require-approval", cc->require_approval,
                "Publishes (and rollouts above --approval-above) wait for a second principal");
  cc->approval_above_opt =
      chc->add_option("--approval-above", cc->approval_above,
                      "With --require-approval: rollouts above this percentage need approval")
          ->check(CLI::Range(0, 100));
  chc->callback([cc, &action] { action = [cc] { return RunChannelCreate(*cc); }; });

  auto cl = std::make_shared<AppOnlyArgs>();
  CLI::App* chl = channels->add_subcommand("list", "List an app's channels");
  chl->add_option("app_id", cl->app, "App id")->required();
  AddServerOptions(chl, cl->server);
  chl->callback([cl, &action] { action = [cl] { return RunChannelList(*cl); }; });
}

}  // namespace airlock::cli
