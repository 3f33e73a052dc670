#include "cli/key_loading.h"

#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <utility>

#include "access/access_store.h"
#include "audit/audit_log.h"
#include "cli/app_config.h"
#include "common/file.h"
#include "crypto/rsa_raw.h"
#include "keys/audit_sink.h"
#include "keys/file_vault.h"
#include "keys/secret_box.h"
#include "keys/signer.h"
#include "keys/vault_paths.h"

namespace airlock::cli {
namespace {

constexpr uint64_t kMaxPassphraseFile = 4096;

// Reads a secret without echo from the terminal. kInvalidArgument when stdin is not a terminal,
// naming the command's flag and the variable that would have given it.
Result<std::string> Prompt(const std::string& what, const std::string& flag, const char* env) {
  if (!isatty(STDIN_FILENO)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "no " + what + ": " + (flag.empty() ? "" : "give " + flag + " FILE, ") +
                         "set $" + env + ", or run on a terminal");
  }
  termios old_mode{};
  if (tcgetattr(STDIN_FILENO, &old_mode) != 0) {
    return MakeError(ErrorCode::kIo, "cannot read the terminal mode");
  }
  termios quiet = old_mode;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  std::cerr << what << ": " << std::flush;
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  std::string line;
  std::getline(std::cin, line);
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &old_mode);
  std::cerr << "\n";
  return line;
}

Result<std::string> ReadSecretFile(const std::string& path) {
  AIRLOCK_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path, kMaxPassphraseFile));
  const size_t nl = text.find_first_of("\r\n");
  std::string first = text.substr(0, nl);
  keys::WipeString(text);
  return first;
}

// Access control through access/access_store.h: the principal must exist with a role allowing the
// action, and custodian actions need a valid TOTP code, checked once per session (a command that
// signs with a root key several times, as `key rotate --repo` does, spends one code).
class AccessGate final : public keys::Gate {
 public:
  explicit AccessGate(access::AccessStore* access) : access_(access) {}
  Result<void> Authorize(std::string_view actor, access::Action action,
                         std::optional<std::string_view> totp_code) override {
    AIRLOCK_TRY(access_->AuthorizeActor(actor, action, totp_code, &verified_));
    return {};
  }

 private:
  access::AccessStore* access_;
  std::optional<std::string> verified_;
};

keys::KeyStoreOptions StoreOptions(const KeyStoreArgs& a, const keys::KeyUri& uri) {
  keys::KeyStoreOptions options;
  const bool file = uri.scheme == keys::KeyUriScheme::kFile;
  options.secret = SecretSource(a.passphrase_file, a.passphrase_flag,
                                file ? keys::kVaultPassphraseEnv : "AIRLOCK_PKCS11_PIN",
                                file ? "vault passphrase" : "PKCS#11 user PIN");
  options.pkcs11_module = a.pkcs11_module;
  return options;
}

Result<std::filesystem::path> LogPath(const KeyStoreArgs& a, const keys::KeyUri& uri) {
  std::filesystem::path path = a.audit;
  // As the header says: --audit, else $AIRLOCK_AUDIT_LOG (the key commands read it through their
  // option, but stores opened for a key URI elsewhere have no such option), else beside the vault.
  if (const char* env = std::getenv("AIRLOCK_AUDIT_LOG");
      path.empty() && env != nullptr && *env != '\0') {
    path = env;
  }
  if (path.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(path, keys::AuditPathForVaultUri(uri.StoreUri()));
  }
  return path;
}

// What OpenKeySession made for a new file vault (its missing folders, then the vault file), undone
// on every error path unless Keep() is called.
class CreatedVault {
 public:
  ~CreatedVault() {
    if (keep_) return;
    std::error_code ec;
    for (const std::filesystem::path& file : files_) std::filesystem::remove(file, ec);
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) std::filesystem::remove(*it, ec);
  }
  // mkdir -p with mode 0700, remembering the folders made here.
  Result<void> MakeDirs(const std::filesystem::path& dir) {
    std::filesystem::path partial;
    for (const std::filesystem::path& part : dir) {
      partial /= part;
      if (::mkdir(partial.c_str(), 0700) == 0) {
        dirs_.push_back(partial);
      } else if (errno != EEXIST) {
        return MakeError(ErrorCode::kIo,
                         "cannot create " + partial.string() + ": " + std::strerror(errno));
      }
    }
    return {};
  }
  void AddFile(std::filesystem::path file) { files_.push_back(std::move(file)); }
  void Keep() { keep_ = true; }

 private:
  std::vector<std::filesystem::path> dirs_;
  std::vector<std::filesystem::path> files_;
  bool keep_ = false;
};

// The access gate of a file vault's session, failing closed (see OpenKeySession in the header).
Result<void> OpenAccessControl(KeySession& s, const KeyStoreArgs& a) {
  if (!a.access.empty()) {
    s.access_path = a.access;
  } else {
    AIRLOCK_ASSIGN_OR_RETURN(s.access_path, keys::AccessPathForVaultUri(s.uri.StoreUri()));
  }
  AIRLOCK_ASSIGN_OR_RETURN(keys::VaultState state, s.vault->ReadState());
  const std::string vault_path = s.uri.path;
  auto access = access::AccessStore::OpenExisting(s.access_path, AccessOptionsFor(s.vault));
  if (!access && access.error().code() != ErrorCode::kNotFound) {
    return tl::unexpected(access.error().WithContext("access control of vault " + vault_path));
  }
  bool has_principals = false;
  if (access) {
    AIRLOCK_ASSIGN_OR_RETURN(bool empty, access->Empty());
    has_principals = !empty;
    s.access = std::make_unique<access::AccessStore>(std::move(*access));
  }
  if (state.access_control && !access) {
    return MakeError(ErrorCode::kNotFound,
                     "vault " + vault_path + " has access control but its access file " +
                         s.access_path.string() +
                         " is missing: every operation is refused (restore the file)");
  }
  if (state.access_control && !has_principals) {
    return MakeError(access::kDeniedCode, "access denied: vault " + vault_path +
                                              " has access control but its access file " +
                                              s.access_path.string() + " holds no principals");
  }
  if (has_principals) {
    if (!state.access_control) {
      // An access file enrolled before the vault recorded access control: record it now.
      AIRLOCK_TRY(s.vault->UpdateState([](keys::VaultState& st) -> Result<void> {
        st.access_control = true;
        return {};
      }));
    }
    s.gate = std::make_unique<AccessGate>(s.access.get());
    return {};
  }
  if (!a.managing_access) {
    std::cerr << "airlock: notice: vault " << vault_path
              << " has no access control: anyone with its passphrase may use every key (enrol an "
                 "owner with `airlock access add NAME --role owner`)\n";
  }
  return {};
}

}  // namespace

std::function<Result<std::string>()> SecretSource(const std::string& file, const std::string& flag,
                                                  const char* env, const std::string& what) {
  return [file, flag, env, what]() -> Result<std::string> {
    if (!file.empty()) return ReadSecretFile(file);
    if (const char* v = std::getenv(env); v != nullptr) return std::string(v);
    return Prompt(what, flag, env);
  };
}

std::string DefaultActor() {
  for (const char* env : {"AIRLOCK_ACTOR", "USER", "LOGNAME"}) {
    if (const char* v = std::getenv(env); v != nullptr && *v != '\0') return v;
  }
  return "unknown";
}

Result<std::unique_ptr<KeySession>> OpenKeySession(const KeyStoreArgs& a, bool create,
                                                   std::optional<keys::KdfParams> kdf) {
  std::string vault = a.vault;
  if (vault.empty()) {
    bool is_default = false;
    AIRLOCK_ASSIGN_OR_RETURN(vault, DefaultVaultUri(&is_default));
  }
  auto s = std::make_unique<KeySession>();
  AIRLOCK_ASSIGN_OR_RETURN(s->uri, keys::ParseKeyUri(vault));
  keys::KeyStoreOptions options = StoreOptions(a, s->uri);
  if (kdf) options.kdf = *kdf;
  s->ctx.actor = a.actor.empty() ? DefaultActor() : a.actor;
  s->ctx.reason = a.reason;
  if (!a.totp.empty()) s->ctx.totp_code = a.totp;
  if (s->ctx.totp_code == std::nullopt) {
    if (const char* v = std::getenv("AIRLOCK_TOTP"); v != nullptr && *v != '\0')
      s->ctx.totp_code = v;
  }
  AIRLOCK_ASSIGN_OR_RETURN(std::filesystem::path log_path, LogPath(a, s->uri));
  // The store first: a store that does not open gets no log made for it (a failed command leaves
  // nothing), and a new vault is undone if anything below fails.
  CreatedVault created;
  const bool new_file_vault = create && s->uri.scheme == keys::KeyUriScheme::kFile;
  if (new_file_vault) {
    std::error_code ec;
    AIRLOCK_TRY(created.MakeDirs(std::filesystem::absolute(s->uri.path, ec).parent_path()));
  }
  auto store = create ? keys::InitKeyStore(s->uri, options) : keys::OpenKeyStore(s->uri, options);
  if (store && new_file_vault) created.AddFile(s->uri.path);
  std::error_code log_ec;
  const bool log_existed = std::filesystem::exists(log_path, log_ec);
  if (!store && !create && log_existed) {
    // A refused open of an existing store (wrong passphrase) is a failed attempt: record it in the
    // store's own log, which exists; a missing store or log gets no new file.
    AIRLOCK_ASSIGN_OR_RETURN(audit::AuditLog log, audit::AuditLog::OpenExisting(log_path));
    audit::UsageRecord r;
    r.actor = s->ctx.actor;
    r.operation = create ? "init" : "open";
    r.result = store.error().code() == ErrorCode::kWrongKey ? audit::UsageResult::kDenied
                                                            : audit::UsageResult::kFailed;
    r.result_reason = store.error().ToString();
    r.source = s->ctx.source;
    r.reason = s->ctx.reason;
    r.details = "uri=" + s->uri.StoreUri();
    (void)log.Append(r);
    return tl::unexpected(store.error());
  }
  if (!store) return tl::unexpected(store.error());
  if (new_file_vault && !log_existed) created.AddFile(log_path);
  AIRLOCK_ASSIGN_OR_RETURN(audit::AuditLog log, audit::AuditLog::Open(log_path));
  s->store = std::move(*store);
  s->vault = keys::AsFileVault(s->store.get());
  if (keys::VaultStateStore* state = keys::AsVaultStateStore(s->store.get()); state != nullptr) {
    s->sink = std::make_unique<keys::StateAuditSink>(std::move(log), s->store.get(), state);
  } else {
    s->sink = std::make_unique<keys::AuditLogSink>(std::move(log));
  }
  // No principals (and none required), or a PKCS#11 store: every record says access-control=off.
  keys::KeyManagerOptions mopts;
  if (s->vault != nullptr) {
    auto opened = OpenAccessControl(*s, a);
    if (!opened) {
      audit::UsageRecord r;
      r.actor = s->ctx.actor;
      r.operation = "open";
      r.result = audit::UsageResult::kDenied;
      r.result_reason = opened.error().ToString();
      r.source = s->ctx.source;
      r.reason = s->ctx.reason;
      r.details = "uri=" + s->uri.StoreUri();
      (void)s->sink->Append(r);
      return tl::unexpected(opened.error());
    }
  }
  if (!s->gate) {
    s->gate = std::make_unique<keys::OpenGate>();
    mopts.details = "access-control=off";
  }
  s->manager = std::make_unique<keys::KeyManager>(*s->store, *s->sink, *s->gate, mopts);
  created.Keep();
  return s;
}

KeySession::~KeySession() {
  if (auto* sink = dynamic_cast<keys::AuditLogSink*>(this->sink.get()); sink != nullptr) {
    if (auto closed = sink->Close(); !closed) {
      std::cerr << "airlock: warning: no closing audit checkpoint: " << closed.error().ToString()
                << "\n";
    }
  }
}

access::AccessOptions AccessOptionsFor(keys::FileVaultStore* vault) {
  access::AccessOptions options;
  if (vault == nullptr) return options;
  options.sealer = access::SecretSealer{
      [vault](ByteSpan plain, std::string_view aad) { return vault->SealSecret(plain, aad); },
      [vault](ByteSpan sealed, std::string_view aad) -> Result<Bytes> {
        AIRLOCK_ASSIGN_OR_RETURN(keys::SecretBytes plain, vault->OpenSecret(sealed, aad));
        return plain.get();
      }};
  return options;
}

Result<std::string> CanonicalKeySpec(const std::string& spec) {
  if (!keys::LooksLikeKeyUri(spec)) return spec;
  AIRLOCK_ASSIGN_OR_RETURN(keys::KeyUri uri, keys::ParseKeyUri(spec));
  if (uri.scheme == keys::KeyUriScheme::kFile) {
    std::error_code ec;
    std::filesystem::path abs = std::filesystem::absolute(uri.path, ec);
    if (!ec) uri.path = abs.lexically_normal().string();
  }
  return uri.ToString();
}

namespace {

// A store-backed signer that keeps its session open.
class SessionSigner final : public crypto::Signer {
 public:
  SessionSigner(std::shared_ptr<KeySession> session, std::unique_ptr<keys::KeyStoreSigner> inner)
      : session_(std::move(session)), inner_(std::move(inner)) {}
  const crypto::PublicKey& Public() const override { return inner_->Public(); }
  Result<Bytes> Sign(ByteSpan message) override { return inner_->Sign(message); }

 private:
  std::shared_ptr<KeySession> session_;
  std::unique_ptr<keys::KeyStoreSigner> inner_;
};

Result<keys::KeyUri> KeyUriWithName(const std::string& spec) {
  AIRLOCK_ASSIGN_OR_RETURN(keys::KeyUri uri, keys::ParseKeyUri(spec));
  if (!uri.has_key()) {
    return MakeError(ErrorCode::kInvalidArgument, "key URI " + spec +
                                                      " names a store, not a key (file:VAULT#name, "
                                                      "pkcs11:token=LABEL;object=name)");
  }
  return uri;
}

}  // namespace

KeyLoader::KeyLoader(KeyStoreArgs defaults) : defaults_(std::move(defaults)) {}

void KeyLoader::AddSession(std::shared_ptr<KeySession> session) {
  sessions_[session->uri.StoreUri()] = std::move(session);
}

Result<std::shared_ptr<KeySession>> KeyLoader::Session(const keys::KeyUri& uri) {
  const std::string store_uri = uri.StoreUri();
  if (auto it = sessions_.find(store_uri); it != sessions_.end()) return it->second;
  KeyStoreArgs args = defaults_;
  args.vault = store_uri;
  // The URI's own module-path wins over the defaults (keys/key_uri.h).
  if (uri.query.count("module-path")) args.pkcs11_module.clear();
  AIRLOCK_ASSIGN_OR_RETURN(std::unique_ptr<KeySession> opened, OpenKeySession(args));
  std::shared_ptr<KeySession> session(std::move(opened));
  sessions_[store_uri] = session;
  return session;
}

Result<std::unique_ptr<crypto::Signer>> KeyLoader::LoadSigner(const std::string& spec) {
  if (!keys::LooksLikeKeyUri(spec)) {
    auto key = crypto::PrivateKey::FromFile(spec);
    if (!key) return tl::unexpected(key.error());
    return std::unique_ptr<crypto::Signer>(
        std::make_unique<crypto::PrivateKeySigner>(std::move(*key)));
  }
  AIRLOCK_ASSIGN_OR_RETURN(keys::KeyUri uri, KeyUriWithName(spec));
  AIRLOCK_ASSIGN_OR_RETURN(std::shared_ptr<KeySession> session, Session(uri));
  AIRLOCK_ASSIGN_OR_RETURN(
      std::unique_ptr<keys::KeyStoreSigner> inner,
      keys::KeyStoreSigner::Create(*session->manager, session->ctx, uri.key_name));
  return std::unique_ptr<crypto::Signer>(
      std::make_unique<SessionSigner>(std::move(session), std::move(inner)));
}

Result<crypto::PublicKey> KeyLoader::LoadPublicKey(const std::string& spec) {
  if (!keys::LooksLikeKeyUri(spec)) return crypto::PublicKey::FromFile(spec);
  AIRLOCK_ASSIGN_OR_RETURN(keys::KeyUri uri, KeyUriWithName(spec));
  AIRLOCK_ASSIGN_OR_RETURN(std::shared_ptr<KeySession> session, Session(uri));
  return session->manager->PublicKey(session->ctx, uri.key_name);
}

repo::SignerLoader KeyLoader::AsRepoLoader() {
  return [this](const std::string& spec) { return LoadSigner(spec); };
}

Result<bundle::capgo::CapgoSigner> KeyLoader::LoadCapgoSigner(const std::string& spec) {
  if (!keys::LooksLikeKeyUri(spec)) {
    AIRLOCK_ASSIGN_OR_RETURN(crypto::PrivateKey key, crypto::PrivateKey::FromFile(spec));
    if (key.type() != crypto::KeyType::kRsa) {
      return MakeError(ErrorCode::kUnsupported, spec + " is a " +
                                                    std::string(crypto::KeyTypeName(key.type())) +
                                                    " key; Capgo encryption needs an RSA key");
    }
    crypto::PublicKey pub = key.Public();
    auto shared = std::make_shared<crypto::PrivateKey>(std::move(key));
    return bundle::capgo::CapgoSigner{
        [shared](ByteSpan data) { return crypto::RsaPkcs1Type1Sign(*shared, data); },
        std::move(pub)};
  }
  AIRLOCK_ASSIGN_OR_RETURN(keys::KeyUri uri, KeyUriWithName(spec));
  AIRLOCK_ASSIGN_OR_RETURN(std::shared_ptr<KeySession> session, Session(uri));
  AIRLOCK_ASSIGN_OR_RETURN(crypto::PublicKey pub,
                           session->manager->PublicKey(session->ctx, uri.key_name));
  // Told here, before any work, rather than by the store at the first block.
  AIRLOCK_ASSIGN_OR_RETURN(keys::KeyInfo info, session->store->Get(uri.key_name));
  if (info.purpose != keys::KeyPurpose::kCapgo) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "key " + spec + " has purpose " +
                         std::string(keys::KeyPurposeName(info.purpose)) +
                         "; Capgo encryption needs a key created with --purpose capgo");
  }
  std::string name = uri.key_name;
  return bundle::capgo::CapgoSigner{[session, name](ByteSpan data) {
                                      return session->manager->PrivateEncryptPkcs1(session->ctx,
                                                                                   name, data);
                                    },
                                    std::move(pub)};
}

Result<bundle::capgo::CapgoSigner> LoadCapgoSigner(const std::string& spec,
                                                   const KeyStoreArgs& defaults) {
  KeyLoader loader(defaults);
  return loader.LoadCapgoSigner(spec);
}

}  // namespace airlock::cli
