// airlock vault init|backup|restore and airlock key create|import|list|sign|public|suspend|resume|
// retire|revoke|compromised|rotate|delete (docs/operations/keys.md).
//
// Every command opens the store named by --vault (or $AIRLOCK_VAULT, else the default vault
// $XDG_CONFIG_HOME/airlock/vault.db, cli/app_config.h), asks for its secret
// (passphrase file, $AIRLOCK_VAULT_PASSPHRASE / $AIRLOCK_PKCS11_PIN, or a no-echo prompt on a
// terminal), and goes through keys::KeyManager, so each operation, failed ones included, appends a
// usage record to the audit log beside the vault (or --audit / $AIRLOCK_AUDIT_LOG).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>

#include "access/access_store.h"
#include "audit/audit_log.h"
#include "cli/commands.h"
#include "cli/key_loading.h"
#include "cli/table.h"
#include "common/file.h"
#include "keys/backup.h"
#include "keys/file_vault.h"
#include "keys/key_store.h"
#include "keys/key_uri.h"
#include "keys/lifecycle.h"
#include "keys/secret_box.h"
#include "repo/repository.h"

namespace airlock::cli {
namespace {

constexpr uint64_t kMaxSignInput = 256ull * 1024 * 1024;

struct CommonArgs {
  std::string vault;
  std::string passphrase_file;
  std::string pkcs11_module;
  std::string audit;
  std::string actor;
  std::string reason;
  std::string totp;
  bool json = false;
};

void AddCommon(CLI::App* c, CommonArgs& a, bool with_totp) {
  c->add_option("--vault", a.vault,
                "Key store URI: file:PATH or pkcs11:token=LABEL (default: $AIRLOCK_VAULT, else "
                "file:~/.config/airlock/vault.db)")
      ->envname("AIRLOCK_VAULT");
  c->add_option("--passphrase-file", a.passphrase_file,
                "File holding the vault passphrase / PKCS#11 PIN (first line)");
  c->add_option("--pkcs11-module", a.pkcs11_module, "PKCS#11 module (.so)")
      ->envname("AIRLOCK_PKCS11_MODULE");
  c->add_option("--audit", a.audit, "Usage/audit log (default: VAULT_PATH.audit)")
      ->envname("AIRLOCK_AUDIT_LOG");
  c->add_option("--actor", a.actor, "Who is acting (default: $AIRLOCK_ACTOR, else $USER)");
  c->add_option("--reason", a.reason, "Why (recorded in the usage log)");
  if (with_totp) c->add_option("--totp", a.totp, "TOTP code (custodian operations)");
  c->add_flag("--json", a.json, "Print the result as JSON");
}

KeyStoreArgs StoreArgs(const CommonArgs& a) {
  KeyStoreArgs k;
  k.vault = a.vault;
  k.passphrase_file = a.passphrase_file;
  k.passphrase_flag = "--passphrase-file";
  k.pkcs11_module = a.pkcs11_module;
  k.audit = a.audit;
  k.actor = a.actor;
  k.reason = a.reason;
  k.totp = a.totp;
  return k;
}

// The store, usage log, access gate and manager for this invocation (cli/key_loading.h).
Result<std::shared_ptr<KeySession>> OpenSession(const CommonArgs& a, bool create = false,
                                                std::optional<keys::KdfParams> kdf = std::nullopt) {
  AIRLOCK_ASSIGN_OR_RETURN(std::unique_ptr<KeySession> s, OpenKeySession(StoreArgs(a), create, kdf));
  return std::shared_ptr<KeySession>(std::move(s));
}

nlohmann::json KeyJson(const keys::KeyInfo& k) {
  return {{"name", k.name},
          {"key_id", k.key_id},
          {"type", std::string(crypto::KeyTypeName(k.type))},
          {"purpose", std::string(keys::KeyPurposeName(k.purpose))},
          {"state", std::string(keys::KeyStateName(k.state))},
          {"created_at", k.created_at},
          {"state_changed_at", k.state_changed_at},
          {"origin", std::string(keys::KeyOriginName(k.origin))}};
}

std::string FormatTime(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void PrintRotation(const keys::Rotation& r, bool json) {
  if (json) {
    nlohmann::json j = {{"old", KeyJson(r.old_key)}};
    if (!r.new_key.name.empty()) j["new"] = KeyJson(r.new_key);
    PrintJson(j);
    return;
  }
  std::cout << r.old_key.name << " (" << r.old_key.key_id << ") is now "
            << keys::KeyStateName(r.old_key.state) << "\n";
  if (!r.new_key.name.empty()) {
    std::cout << r.new_key.name << " is a new " << crypto::KeyTypeName(r.new_key.type) << " key "
              << r.new_key.key_id << "\n";
  }
}

// ---- vault init ----

struct InitArgs {
  CommonArgs common;
  uint32_t kdf_memory_kib = keys::KdfParams{}.m_cost_kib;
  uint32_t kdf_passes = keys::KdfParams{}.t_cost;
};

Result<void> RunInit(const InitArgs& a) {
  keys::KdfParams kdf;
  kdf.m_cost_kib = a.kdf_memory_kib;
  kdf.t_cost = a.kdf_passes;
  AIRLOCK_ASSIGN_OR_RETURN(std::shared_ptr<KeySession> session, OpenSession(a.common, /*create=*/true, kdf));
  KeySession& s = *session;
  AIRLOCK_TRY(s.manager->Record(s.ctx, "init", nullptr, {}, "uri=" + s.uri.StoreUri()));
  if (a.common.json) {
    PrintJson({{"vault", s.uri.StoreUri()}});
  } else {
    std::cout << "initialised " << s.uri.StoreUri() << "\n";
  }
  return {};
}

// ---- key create / list / sign / public ----

struct CreateArgs {
  CommonArgs common;
  std::string name, type, purpose;
};

Result<void> RunCreate(const CreateArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(crypto::KeyType type, crypto::ParseKeyType(a.type));
  AIRLOCK_ASSIGN_OR_RETURN(keys::KeyPurpose purpose, keys::ParseKeyPurpose(a.purpose));
  AIRLOCK_ASSIGN_OR_RETURN(std::shared_ptr<KeySession> session, OpenSession(a.common));
  KeySession& s = *session;
  AIRLOCK_ASSIGN_OR_RETURN(keys::KeyInfo k, s.manager->Create(s.ctx, a.name, type, purpose));
  if (a.common.json) {
    nlohmann::json j = KeyJson(k);
    j["uri"] = s.uri.WithKey(k.name).ToString();
    PrintJson(j);
  } else {
    std::cout << "created " << s.uri.WithKey(k.name).ToString() << " (" << k.key_id << ")\n";
  }
  return {};
}

// ---- key import (an existing Capgo key) ----

struct ImportArgs {
  CommonArgs common;
  std::string name, purpose, from;
};

// Everything about the request and the key file is checked before the store is opened (no
// passphrase prompt, no usage record for a command line that could never work): purpose and key
// type/size are usage errors (exit 2). The PEM file is only read.
Result<void> RunImport(const ImportArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(keys::KeyPurpose purpose, keys::ParseKeyPurpose(a.purpose));
  if (purpose != keys::KeyPurpose::kCapgo) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "only --purpose capgo can be imported; TUF and content keys must be generated "
                     "inside the store (airlock key create)");
  }
  auto key = crypto::PrivateKey::FromFile(a.from);  // errors name the file
  if (!key) {
    const Error& e = key.error();
    // A key of an algorithm or size the loader refuses cannot be a capgo key: a usage error, as
    // for one it loads (CheckImportable below). Encrypted PEM stays a failure, with the fix.
    if (e.code() == ErrorCode::kUnsupported && e.message().find("encrypted") == std::string::npos) {
      return MakeError(ErrorCode::kInvalidArgument,
                       e.message() + " (a capgo key must be RSA of 2048..16384 bits)");
    }
    if (e.code() == ErrorCode::kUnsupported) {
      return MakeError(ErrorCode::kUnsupported,
                       e.message() + "; decrypt it first (openssl pkey -in KEY -out PLAIN.pem)");
    }
    return tl::unexpected(e);
  }
  AIRLOCK_TRY(keys::CheckImportable(*key, purpose).map_error([&](Error e) {
    return e.WithContext(a.from);
  }));
  AIRLOCK_ASSIGN_OR_RETURN(std::shared_ptr<KeySession> session, OpenSession(a.common));
  KeySession& s = *session;
  AIRLOCK_ASSIGN_OR_RETURN(keys::KeyInfo k, s.manager->Import(s.ctx, a.name, *key, purpose));
  if (a.common.json) {
    nlohmann::json j = KeyJson(k);
    j["uri"] = s.uri.WithKey(k.name).ToString();
    PrintJson(j);
  } else {
    std::cout << "imported " << s.uri.WithKey(k.name).ToString() << " (" << k.key_id << ")\n";
  }
  std::cerr << "now delete " << a.from
            << " (and its copies): the key is to be used only through the store\n";
  return {};
}

struct ListArgs {
  CommonArgs common;
};

Result<void> RunList(const ListArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(std::shared_ptr<KeySession> session, OpenSession(a.common));
  KeySession& s = *session;
  AIRLOCK_ASSIGN_OR_RETURN(std::vector<keys::KeyInfo> all, s.manager->List(s.ctx));
  if (a.common.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& k : all) {
      nlohmann::json e = KeyJson(k);
      e["max_age"] = s.manager->MaxAge(k.purpose);
      e["due"] = k.name.find('@') == std::string::npos &&
                 (k.state == keys::KeyState::kActive || k.state == keys::KeyState::kSuspended) &&
                 s.manager->Now() - k.created_at >= s.manager->MaxAge(k.purpose);
      j.push_back(e);
    }
    PrintJson(j);
  } else {
    std::vector<TableRow> rows;
    for (const auto& k : all) {
      rows.push_back({k.name, std::string(keys::KeyPurposeName(k.purpose)),
                      std::string(crypto::KeyTypeName(k.type)),
                      std::string(keys::KeyStateName(k.state)), FormatTime(k.created_at), k.key_id,
                      k.origin == keys::KeyOrigin::kImported ? "imported" : "generated"});
    }
    PrintTable(std::cout, {"NAME", "PURPOSE", "TYPE", "STATE", "CREATED", "KEY ID", "ORIGIN"},
               rows);
  }
  return {};
}

struct SignArgs {
  CommonArgs common;
  std::string name, in, out;
};

Result<void> RunSign(const SignArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(Bytes message, ReadFile(a.in, kMaxSignInput));
  AIRLOCK_ASSIGN_OR_RETURN(std::shared_ptr<KeySession> session, OpenSession(a.common));
  KeySession& s = *session;
  AIRLOCK_ASSIGN_OR_RETURN(Bytes sig, s.manager->Sign(s.ctx, a.name, message));
  AIRLOCK_TRY(WriteFileAtomic(a.out, sig));
  if (a.common.json) {
    PrintJson({{"key", a.name}, {"signature", a.out}, {"size", sig.size()}});
  }
  return {};
}

struct PublicArgs {
  CommonArgs common;
  std::string name, out;
};

Result<void> RunPublic(const PublicArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(std::shared_ptr<KeySession> session, OpenSession(a.common));
  KeySession& s = *session;
  AIRLOCK_ASSIGN_OR_RETURN(crypto::PublicKey pub, s.manager->PublicKey(s.ctx, a.name));
  const std::string pem = pub.ToPem();
  if (a.out.empty()) {
    std::cout << pem;
  } else {
    AIRLOCK_TRY(WriteFileAtomic(a.out, AsBytes(pem)));
  }
  return {};
}

// ---- lifecycle ----

struct StateArgs {
  CommonArgs common;
  std::string name;
};

enum class StateOp { kSuspend, kResume, kRetire, kRevoke, kCompromised, kDelete };

Result<void> RunState(const StateArgs& a, StateOp op) {
  AIRLOCK_ASSIGN_OR_RETURN(std::shared_ptr<KeySession> session, OpenSession(a.common));
  KeySession& s = *session;
  keys::KeyManager& m = *s.manager;
  std::optional<keys::KeyInfo> info;
  switch (op) {
    case StateOp::kSuspend: {
      AIRLOCK_ASSIGN_OR_RETURN(info, m.Suspend(s.ctx, a.name));
      break;
    }
    case StateOp::kResume: {
      AIRLOCK_ASSIGN_OR_RETURN(info, m.Resume(s.ctx, a.name));
      break;
    }
    case StateOp::kRetire: {
      AIRLOCK_ASSIGN_OR_RETURN(info, m.Retire(s.ctx, a.name));
      break;
    }
    case StateOp::kRevoke: {
      AIRLOCK_ASSIGN_OR_RETURN(info, m.Revoke(s.ctx, a.name));
      break;
    }
    case StateOp::kCompromised: {
      AIRLOCK_ASSIGN_OR_RETURN(keys::Rotation r, m.Compromised(s.ctx, a.name));
      PrintRotation(r, a.common.json);
      return {};
    }
    case StateOp::kDelete: {
      AIRLOCK_TRY(m.Delete(s.ctx, a.name));
      std::cout << "deleted " << a.name << "\n";
      return {};
    }
  }
  if (a.common.json) {
    PrintJson(KeyJson(*info));
  } else {
    std::cout << info->name << " is now " << keys::KeyStateName(info->state) << "\n";
  }
  return {};
}

struct RotateArgs {
  CommonArgs common;
  std::string name;
  std::string repo;  // a TUF repository using the key for its purpose's role
  bool due = false;
};

// Rotates NAME and, inside the rotation (before the old key is retired, lifecycle.h RotationHook),
// the repository's role keys: new root metadata listing the new key, signed by a threshold of the
// old root keys (the old key, now NAME@N, when it is a root key) and of the new ones, then
// published. A failure at any step undoes the store rotation; the repository is unchanged unless the
// publish itself completed.
Result<keys::Rotation> RotateWithRepository(std::shared_ptr<KeySession> session,
                                            const std::string& name, const std::string& dir) {
  KeySession& s = *session;
  AIRLOCK_ASSIGN_OR_RETURN(keys::KeyInfo info, s.store->Get(name));
  if (!keys::IsTufRolePurpose(info.purpose)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "key " + name + " has purpose " + std::string(keys::KeyPurposeName(info.purpose)) +
                         ", not a TUF role (root, targets, snapshot, timestamp); drop --repo");
  }
  const std::string role(keys::KeyPurposeName(info.purpose));
  AIRLOCK_ASSIGN_OR_RETURN(std::string key_spec, CanonicalKeySpec(s.uri.WithKey(name).ToString()));
  KeyLoader loader;
  loader.AddSession(session);
  AIRLOCK_ASSIGN_OR_RETURN(repo::Repository repository,
                           repo::Repository::Open(dir, loader.AsRepoLoader()));
  std::vector<std::string> specs = repository.KeySpecs(role);
  if (std::find(specs.begin(), specs.end(), key_spec) == specs.end()) {
    return MakeError(ErrorCode::kNotFound, "repository " + dir + " does not use " + key_spec +
                                               " for its " + role + " role");
  }
  return s.manager->Rotate(s.ctx, name, [&](const keys::Rotation& r) -> Result<void> {
    // The spec now names the new key; the old one is reachable as NAME@N until it is retired.
    AIRLOCK_ASSIGN_OR_RETURN(std::string old_spec,
                             CanonicalKeySpec(s.uri.WithKey(r.old_key.name).ToString()));
    repo::RotateOptions options;
    options.role = role;
    for (const std::string& spec : specs) options.new_keys.emplace_back(spec);
    if (role == "root") {
      for (const std::string& spec : specs) {
        options.old_keys.emplace_back(spec == key_spec ? old_spec : spec);
      }
    }
    AIRLOCK_ASSIGN_OR_RETURN(repo::RotateResult rotated, repository.Rotate(options));
    std::cerr << dir << ": root v" << rotated.root_version << " lists " << r.new_key.key_id
              << " for " << role << " (signed by old and new root keys) and is published\n";
    return {};
  });
}

Result<void> RunRotate(const RotateArgs& a) {
  if (a.due == !a.name.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "give either NAME or --due");
  }
  AIRLOCK_ASSIGN_OR_RETURN(std::shared_ptr<KeySession> session, OpenSession(a.common));
  KeySession& s = *session;
  if (!a.repo.empty() && a.due) {
    return MakeError(ErrorCode::kInvalidArgument, "--repo rotates one named key, not --due");
  }
  if (!a.repo.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(keys::Rotation r, RotateWithRepository(session, a.name, a.repo));
    PrintRotation(r, a.common.json);
    return {};
  }
  if (!a.due) {
    AIRLOCK_ASSIGN_OR_RETURN(keys::Rotation r, s.manager->Rotate(s.ctx, a.name));
    PrintRotation(r, a.common.json);
    return {};
  }
  AIRLOCK_ASSIGN_OR_RETURN(std::vector<keys::Rotation> done, s.manager->RotateDue(s.ctx));
  if (a.common.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& r : done) j.push_back({{"old", KeyJson(r.old_key)}, {"new", KeyJson(r.new_key)}});
    PrintJson(j);
  } else {
    if (done.empty()) std::cout << "no key is due for rotation\n";
    for (const auto& r : done) PrintRotation(r, false);
  }
  return {};
}

// ---- backup / restore ----

struct BackupArgs {
  CommonArgs common;
  std::string out;
  std::string shares;  // "K/N" or "K-of-N"
  std::string backup_passphrase_file;
};

struct RestoreArgs {
  CommonArgs common;
  std::string in;
  std::vector<std::string> share_files;
  std::string backup_passphrase_file;
};

constexpr const char* kBackupPassphraseEnv = "AIRLOCK_BACKUP_PASSPHRASE";

Result<void> RunBackup(const BackupArgs& a) {
  std::optional<keys::ShareSpec> spec;
  if (!a.shares.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(spec, keys::ParseShareSpec(a.shares));
  }
  AIRLOCK_ASSIGN_OR_RETURN(std::shared_ptr<KeySession> session, OpenSession(a.common));
  KeySession& s = *session;
  AIRLOCK_TRY(s.manager->Authorize(s.ctx, access::Action::kVaultBackup).map_error([&](Error e) {
    (void)s.manager->Record(s.ctx, "backup", nullptr, tl::unexpected(e));
    return e;
  }));
  auto secret = SecretSource(a.backup_passphrase_file, "--backup-passphrase-file", kBackupPassphraseEnv,
                               "backup passphrase");
  auto written = [&]() -> Result<keys::BackupResult> {
    AIRLOCK_ASSIGN_OR_RETURN(std::string passphrase, secret());
    auto r = keys::WriteBackup(*s.store, passphrase, a.out, spec);
    keys::WipeString(passphrase);
    return r;
  }();
  Result<void> outcome;
  if (!written) outcome = tl::unexpected(written.error());
  AIRLOCK_TRY(s.manager->Record(
      s.ctx, "backup", nullptr, outcome,
      written ? "out=" + a.out + " keys=" + std::to_string(written->keys) +
                    (spec ? " shares=" + a.shares : "")
              : ""));
  if (!written) return tl::unexpected(written.error());
  if (a.common.json) {
    PrintJson({{"out", a.out}, {"keys", written->keys}, {"share_files", written->share_files}});
  } else {
    std::cout << "backed up " << written->keys << " key(s) to " << a.out << "\n";
    for (const auto& f : written->share_files) std::cout << "share: " << f << "\n";
  }
  return {};
}

Result<void> RunRestore(const RestoreArgs& a) {
  AIRLOCK_ASSIGN_OR_RETURN(std::shared_ptr<KeySession> session, OpenSession(a.common));
  KeySession& s = *session;
  AIRLOCK_TRY(s.manager->Authorize(s.ctx, access::Action::kVaultRestore).map_error([&](Error e) {
    (void)s.manager->Record(s.ctx, "restore", nullptr, tl::unexpected(e));
    return e;
  }));
  auto restored = [&]() -> Result<std::vector<keys::KeyInfo>> {
    if (!a.share_files.empty()) {
      std::vector<std::filesystem::path> files(a.share_files.begin(), a.share_files.end());
      return keys::RestoreFromShares(*s.store, files);
    }
    if (a.in.empty()) {
      return MakeError(ErrorCode::kInvalidArgument, "give --in FILE or --share FILE ...");
    }
    auto secret = SecretSource(a.backup_passphrase_file, "--backup-passphrase-file", kBackupPassphraseEnv,
                               "backup passphrase");
    AIRLOCK_ASSIGN_OR_RETURN(std::string passphrase, secret());
    auto r = keys::RestoreBackup(*s.store, passphrase, a.in);
    keys::WipeString(passphrase);
    return r;
  }();
  Result<void> outcome;
  if (!restored) outcome = tl::unexpected(restored.error());
  std::string names;
  if (restored) {
    for (const auto& k : *restored) names += (names.empty() ? "" : ",") + k.name;
  }
  AIRLOCK_TRY(s.manager->Record(s.ctx, "restore", nullptr, outcome, "keys=" + names));
  if (!restored) return tl::unexpected(restored.error());
  if (a.common.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& k : *restored) j.push_back(KeyJson(k));
    PrintJson(j);
  } else {
    for (const auto& k : *restored) std::cout << "restored " << k.name << " (" << k.key_id << ")\n";
  }
  return {};
}

}  // namespace

void AddKeyCommands(CLI::App& app, Action& action) {
  CLI::App* vault = app.add_subcommand("vault", "Create, back up and restore key stores");
  vault->require_subcommand(1);
  CLI::App* key = app.add_subcommand("key", "Create, use, rotate and retire keys in a key store");
  key->require_subcommand(1);

  auto init = std::make_shared<InitArgs>();
  CLI::App* vi = vault->add_subcommand("init", "Create a new, empty file vault");
  AddCommon(vi, init->common, false);
  vi->add_option("--kdf-memory-kib", init->kdf_memory_kib, "Argon2id memory (KiB; default 65536)")
      ->check(CLI::Range(uint32_t{8}, uint32_t{4u * 1024 * 1024}));
  vi->add_option("--kdf-passes", init->kdf_passes, "Argon2id passes (default 3)")
      ->check(CLI::Range(uint32_t{1}, uint32_t{64}));
  vi->callback([init, &action] { action = [init] { return RunInit(*init); }; });

  auto backup = std::make_shared<BackupArgs>();
  CLI::App* vb = vault->add_subcommand("backup", "Write an encrypted export of every key");
  AddCommon(vb, backup->common, true);
  vb->add_option("--out", backup->out, "Backup file")->required();
  vb->add_option("--shares,--split", backup->shares,
                 "K/N (or K-of-N): also split each root key's backup into N Shamir shares");
  vb->add_option("--backup-passphrase-file", backup->backup_passphrase_file,
                 "File holding the backup passphrase (else $AIRLOCK_BACKUP_PASSPHRASE or a prompt)");
  vb->callback([backup, &action] { action = [backup] { return RunBackup(*backup); }; });

  auto restore = std::make_shared<RestoreArgs>();
  CLI::App* vr = vault->add_subcommand("restore", "Restore keys from a backup or from Shamir shares");
  AddCommon(vr, restore->common, true);
  vr->add_option("--in", restore->in, "Backup file");
  vr->add_option("--share", restore->share_files, "Share file (repeat; any K of N)");
  vr->add_option("--backup-passphrase-file", restore->backup_passphrase_file,
                 "File holding the backup passphrase");
  vr->callback([restore, &action] { action = [restore] { return RunRestore(*restore); }; });

  auto create = std::make_shared<CreateArgs>();
  CLI::App* kc = key->add_subcommand("create", "Generate a key inside the store");
  kc->add_option("name", create->name, "Key name")->required();
  AddCommon(kc, create->common, false);
  kc->add_option("--type", create->type, "ed25519, ecdsa-p256, rsa-4096 or x25519")->required();
  kc->add_option("--purpose", create->purpose,
                 "root, targets, snapshot, timestamp, content-wrap, capgo or audit")
      ->required();
  kc->callback([create, &action] { action = [create] { return RunCreate(*create); }; });

  auto import = std::make_shared<ImportArgs>();
  CLI::App* ki = key->add_subcommand(
      "import", "Move an existing Capgo RSA private key (PKCS#1 or PKCS#8 PEM) into the store");
  ki->add_option("name", import->name, "Key name")->required();
  AddCommon(ki, import->common, false);
  ki->add_option("--purpose", import->purpose, "capgo (the only importable purpose)")->required();
  ki->add_option("--from", import->from, "The PEM file (e.g. .capgo_key_v2); it is only read")
      ->required();
  ki->callback([import, &action] { action = [import] { return RunImport(*import); }; });

  auto list = std::make_shared<ListArgs>();
  CLI::App* kl = key->add_subcommand("list", "List keys with purpose, type, state and age");
  AddCommon(kl, list->common, false);
  kl->callback([list, &action] { action = [list] { return RunList(*list); }; });

  auto sign = std::make_shared<SignArgs>();
  CLI::App* ks = key->add_subcommand("sign", "Sign a file (raw signature, crypto::Sign format)");
  ks->add_option("name", sign->name, "Key name")->required();
  AddCommon(ks, sign->common, true);
  ks->add_option("--in", sign->in, "File to sign")->required();
  ks->add_option("--out", sign->out, "Signature output")->required();
  ks->callback([sign, &action] { action = [sign] { return RunSign(*sign); }; });

  auto pub = std::make_shared<PublicArgs>();
  CLI::App* kp = key->add_subcommand("public", "Export a key's public key (SPKI PEM)");
  kp->add_option("name", pub->name, "Key name")->required();
  AddCommon(kp, pub->common, false);
  kp->add_option("--out", pub->out, "Output file (default: stdout)");
  kp->callback([pub, &action] { action = [pub] { return RunPublic(*pub); }; });

  const std::vector<std::tuple<const char*, const char*, StateOp>> state_ops = {
      {"suspend", "Suspend a key (unusable until resumed)", StateOp::kSuspend},
      {"resume", "Resume a suspended key (custodian, TOTP)", StateOp::kResume},
      {"retire", "Retire a key (verify only)", StateOp::kRetire},
      {"revoke", "Revoke a key", StateOp::kRevoke},
      {"compromised", "Mark a key compromised and rotate it at once (custodian, TOTP)",
       StateOp::kCompromised},
      {"delete", "Destroy a key (custodian, TOTP)", StateOp::kDelete},
  };
  for (const auto& [cmd, help, op] : state_ops) {
    auto args = std::make_shared<StateArgs>();
    CLI::App* c = key->add_subcommand(cmd, help);
    c->add_option("name", args->name, "Key name")->required();
    AddCommon(c, args->common, true);
    const StateOp o = op;
    c->callback([args, o, &action] { action = [args, o] { return RunState(*args, o); }; });
  }

  auto rotate = std::make_shared<RotateArgs>();
  CLI::App* kr = key->add_subcommand(
      "rotate", "Replace a key by a new one (the old becomes NAME@N, retired); --due: every key past "
                "its maximum age");
  kr->add_option("name", rotate->name, "Key name");
  AddCommon(kr, rotate->common, true);
  kr->add_flag("--due", rotate->due, "Rotate every key past its purpose's maximum age");
  kr->add_option("--repo", rotate->repo,
                 "TUF repository DIR using this key for its role: write and publish new root "
                 "metadata signed by the old and new keys before the old key is retired");
  kr->callback([rotate, &action] { action = [rotate] { return RunRotate(*rotate); }; });
}

}  // namespace airlock::cli
