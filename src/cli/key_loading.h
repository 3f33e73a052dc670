// Keys for CLI options: one place that opens key stores (file vault, PKCS#11) with their secrets,
// usage log and access control, shared by `airlock vault|key` and every option that takes a key
// (`bundle seal --sign-key`, `repo init --root-key`, ...).
//
// A key spec is a key URI ("file:VAULT#name", "pkcs11:token=LABEL;object=name", keys/key_uri.h) or
// a PEM key file. URI keys sign through keys::KeyManager (keys/signer.h), so each use is authorized
// and appended to the store's audit log exactly like `airlock key sign`; private key bytes never
// leave the store.
//
// Stores: --vault, else $AIRLOCK_VAULT, else the default vault
// file:$XDG_CONFIG_HOME/airlock/vault.db (cli/app_config.h DefaultVaultUri), the one app create
// uses.
//
// Secrets: --passphrase-file where a command has it, else $AIRLOCK_VAULT_PASSPHRASE (file vault) or
// $AIRLOCK_PKCS11_PIN (PKCS#11), else a no-echo prompt on a terminal. Without any of them the error
// names the command's real flag (KeyStoreArgs::passphrase_flag) and the variable. The PKCS#11
// module comes from the URI's module-path or $AIRLOCK_PKCS11_MODULE; the audit log from
// $AIRLOCK_AUDIT_LOG or beside the vault; the actor from $AIRLOCK_ACTOR, else $USER.
#ifndef AIRLOCK_CLI_KEY_LOADING_H_
#define AIRLOCK_CLI_KEY_LOADING_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "access/access_store.h"
#include "bundle/capgo.h"
#include "common/result.h"
#include "crypto/keys.h"
#include "crypto/signer.h"
#include "keys/file_vault.h"
#include "keys/key_store.h"
#include "keys/key_uri.h"
#include "keys/lifecycle.h"
#include "repo/repository.h"

namespace airlock::cli {

// How to open a store (the `--vault ... --passphrase-file ...` options of the key commands).
struct KeyStoreArgs {
  std::string vault;            // store URI; empty: DefaultVaultUri()
  std::string passphrase_file;  // first line is the passphrase / PIN
  // The command's option for passphrase_file, named in the "no passphrase" error; empty when the
  // command has none (then the error names only the variable and the terminal).
  std::string passphrase_flag;
  std::string pkcs11_module;
  std::string audit;  // usage/audit log; empty: $AIRLOCK_AUDIT_LOG, else beside the vault
  std::string actor;  // empty: DefaultActor()
  std::string reason;
  std::string totp;  // empty: $AIRLOCK_TOTP
  // The access file; empty: beside the vault (VAULT.access).
  std::string access;
  // Set by `airlock access ...`: no "no access control" notice (the command is about to add it).
  bool managing_access = false;
};

// An open store with its usage sink, access gate, manager and the invocation's context. Not movable
// once open (the manager refers to the other members); hold it by pointer. Its destructor closes
// the audit log: the sink of a file vault or PKCS#11 store then signs a checkpoint over the records
// this session appended and writes the new head into the store (a failure there is printed as a
// warning).
struct KeySession {
  keys::KeyUri uri;
  std::unique_ptr<keys::KeyStore> store;
  keys::FileVaultStore* vault = nullptr;  // store, when it is a file vault
  std::unique_ptr<keys::UsageSink> sink;
  std::filesystem::path access_path;            // file vaults: the access file
  std::unique_ptr<access::AccessStore> access;  // open when the access file exists
  std::unique_ptr<keys::Gate> gate;
  std::unique_ptr<keys::KeyManager> manager;
  keys::OperationContext ctx;
  ~KeySession();
};

// Opens (create: initialises) the store args.vault names (empty: the default vault; create makes
// its missing folders, 0700). A failed call leaves nothing behind: the audit log is opened (and
// made) only once the store is open; a refused open of an existing store (wrong secret) is appended
// to that store's log only when the log exists; a create that fails removes the vault file and the
// folders it made.
//
// Access control (file vaults; docs/operations/keys.md). The vault records, sealed under its key,
// whether it has access control (set when the first principal is enrolled, never cleared). With it,
// the access file must exist, open and hold principals, else every operation is refused (kNotFound
// naming a missing file; the file's own error, or kDeniedCode for an empty one). Without it (and no
// principals), a notice on stderr says that anyone with the passphrase may use every key, and every
// record says access-control=off. A PKCS#11 store has no access file (its PIN is the boundary).
//
// Audit (file vaults and PKCS#11 stores, keys::VaultStateStore): records go to the log through a
// sink that signs checkpoints with the store's checkpoint key (made in the store on first need,
// purpose audit; on a token generated there, private and not extractable) every
// audit::AuditOptions::checkpoint_interval records and when the session closes, and writes the
// log's head into the store's state after every record (sealed into the vault file; a private data
// object on the token).
[[nodiscard]] Result<std::unique_ptr<KeySession>> OpenKeySession(
    const KeyStoreArgs& args, bool create = false,
    std::optional<keys::KdfParams> kdf = std::nullopt);

// The options that seal TOTP secrets under `vault`'s key.
access::AccessOptions AccessOptionsFor(keys::FileVaultStore* vault);
// A lazily-read secret: `file` (first line) if set, else the environment variable `env`, else a
// no-echo terminal prompt naming `what`. When stdin is not a terminal: kInvalidArgument "no WHAT:
// give FLAG FILE, set $ENV, or run on a terminal" (`flag` empty: the command has no such option
// and the message leaves it out).
std::function<Result<std::string>()> SecretSource(const std::string& file, const std::string& flag,
                                                  const char* env, const std::string& what);

// $AIRLOCK_ACTOR, else $USER, else $LOGNAME, else "unknown".
std::string DefaultActor();

// The form a key spec is recorded in (repository state): a file: URI with its vault path made
// absolute, other URIs canonical, files unchanged. kInvalidArgument for a malformed URI.
[[nodiscard]] Result<std::string> CanonicalKeySpec(const std::string& spec);

// Loads signers and public keys for key specs. Opens each store once (one passphrase prompt, one
// audit log handle) and keeps it open while any signer from it lives. Not thread-safe.
class KeyLoader {
 public:
  // `defaults` supplies the secret file, module, audit log, actor and reason for stores opened here
  // (its vault is ignored).
  explicit KeyLoader(KeyStoreArgs defaults = {});

  // Uses an already-open session for its store (e.g. the one a `key` command holds).
  void AddSession(std::shared_ptr<KeySession> session);

  // A URI: a keys::KeyStoreSigner (kNotFound for an unknown key, kInvalidArgument for an x25519
  // key or a URI without a key name). Otherwise a PEM private key file.
  [[nodiscard]] Result<std::unique_ptr<crypto::Signer>> LoadSigner(const std::string& spec);
  // A URI: the store's public key for it. Otherwise a PEM public key file.
  [[nodiscard]] Result<crypto::PublicKey> LoadPublicKey(const std::string& spec);
  // LoadSigner as the repository library wants it. The loader must outlive the function.
  repo::SignerLoader AsRepoLoader();
  // The app's Capgo encryption key (bundle/capgo.h). A URI: an RSA key of purpose capgo, whose
  // type-1 blocks are made in the store through KeyManager::PrivateEncryptPkcs1 (authorized as
  // key.sign and recorded in the audit log); kInvalidArgument for a key of another purpose,
  // kNotFound for an unknown key. Otherwise a PEM private key file (kUnsupported unless RSA). The
  // signer keeps its store open and may outlive the loader.
  [[nodiscard]] Result<bundle::capgo::CapgoSigner> LoadCapgoSigner(const std::string& spec);

 private:
  Result<std::shared_ptr<KeySession>> Session(const keys::KeyUri& uri);

  KeyStoreArgs defaults_;
  std::map<std::string, std::shared_ptr<KeySession>> sessions_;  // by store URI
};

// KeyLoader(defaults).LoadCapgoSigner(spec) for a caller with no loader of its own (e.g.
// `release publish --capgo-key SPEC`): secrets, audit log and actor as for every key URI (see the
// top of this file).
[[nodiscard]] Result<bundle::capgo::CapgoSigner> LoadCapgoSigner(const std::string& spec,
                                                                 const KeyStoreArgs& defaults = {});

}  // namespace airlock::cli

#endif  // AIRLOCK_CLI_KEY_LOADING_H_
