// A static TUF repository on disk, as `airlock repo` and (later) the server manage it. The layout
// and the private state are documented in docs/formats/tuf-repository.md:
//
//   DIR/metadata/   1.root.json, 2.root.json, ..., root.json (latest), timestamp.json,
//   N.snapshot.json,
//                   N.targets.json, N.<delegated role>.json  (consistent snapshots; servable as is)
//   DIR/targets/    <sha256>.<basename> for every target, in the target name's subdirectories
//   DIR/.airlock/   private state (mode 0700, never to be served): repo.json (key file paths per
//                   role, staged targets and delegations, expiry defaults; no secrets), lock
//
// Keys `init` generates are never written inside DIR: they go to a per-user key directory (mode
// 0700, see DefaultKeyDir), because web servers commonly serve dot-directories too.
//
// Every operation takes an exclusive lock on DIR/.airlock/lock (kAlreadyExists "busy" if another
// process holds it), validates everything and signs everything in memory before it writes, and
// writes the published files in an order that keeps what clients see consistent at every step: new
// versioned files first, the new root next, timestamp.json last. The private state is rewritten
// (atomically) only after the published files. On failure nothing observable changes, except that
// Publish may leave unreferenced new versioned files behind (the next publish overwrites them).
//
// Error codes:
//   kInvalidArgument  bad app id, target name, role name, duration, threshold, --custom JSON, a key
//   that
//                     cannot sign, a duplicate key, a bundle of another app, a target outside a
//                     delegation's paths
//   kAlreadyExists    `init` on an existing repository; another process holds the lock
//   kNotFound         (also) `init` must generate keys and no key directory can be determined
//   kNotFound         no repository in DIR, no such file, target or delegated role, or fewer
//   signing keys
//                     available than a role's threshold
//   kWrongKey         a configured key is not one the root (or delegation) lists for its role, or a
//                     delegated role's private key does not match its public key
//   kMalformed        the private state or published metadata does not parse
//   kIo               the operating system refused a read or write
// plus the codes of crypto::PrivateKey::FromFile and bundle::InspectBundle for the files given.
//
// Not thread-safe; the lock serialises processes, not threads of one process.
#ifndef AIRLOCK_REPO_REPOSITORY_H_
#define AIRLOCK_REPO_REPOSITORY_H_

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/duration.h"
#include "common/fd.h"
#include "common/result.h"
#include "crypto/signer.h"
#include "metadata/metadata.h"

namespace airlock::repo {

inline constexpr std::string_view kStateDirName = ".airlock";
inline constexpr uint64_t kMaxStateSize = 64ull * 1024 * 1024;
// Bounds on what users pass in.
inline constexpr size_t kMaxCustomSize = 64 * 1024;
inline constexpr size_t kMaxCustomDepth = 16;
inline constexpr size_t kMaxTargetNameLength = 1024;
inline constexpr size_t kMaxBasenameLength = 180;  // 64 hex + '.' + basename stays under NAME_MAX
inline constexpr size_t kMaxRoleNameLength = 64;
inline constexpr uint64_t kMaxKeysPerRole = 64;

// Default expiry periods (as python-tuf's examples): root 365d, targets and delegated roles 90d,
// snapshot 7d, timestamp 1d.
inline constexpr int64_t kDay = 86400;
inline constexpr int64_t kDefaultRootExpiry = 365 * kDay;
inline constexpr int64_t kDefaultTargetsExpiry = 90 * kDay;
inline constexpr int64_t kDefaultSnapshotExpiry = 7 * kDay;
inline constexpr int64_t kDefaultTimestampExpiry = 1 * kDay;


// A TUF target name we accept: 1..kMaxTargetNameLength bytes, '/'-separated components that are
// non-empty, do not start with '.', hold no '\\' or control characters; the last one at most
// kMaxBasenameLength bytes. kInvalidArgument otherwise.
[[nodiscard]] Result<void> ValidateTargetName(std::string_view name);

// A delegated role name: 1..kMaxRoleNameLength of [A-Za-z0-9._-], not starting with '.', and not a
// top-level role name. kInvalidArgument otherwise.
[[nodiscard]] Result<void> ValidateRoleName(std::string_view name);

// Key specs. Wherever the repository takes a private key (InitOptions::key_files, RotateOptions,
// DelegateOptions, and the key list recorded in DIR/.airlock/repo.json) the entry is either a PEM
// private key file or a key URI ("file:VAULT#name", "pkcs11:token=...;object=..."; keys/key_uri.h).
// Files are recorded as absolute paths, URIs exactly as given. The repository turns a spec into a
// crypto::Signer through a SignerLoader: the repo library cannot open key stores itself (keys depends
// on repo), so the caller that can (the CLI) passes a loader; without one, URIs are kUnsupported.
using SignerLoader =
    std::function<Result<std::unique_ptr<crypto::Signer>>(const std::string& spec)>;

// True if `spec` is a key URI (starts with "file:" or "pkcs11:") rather than a key file.
bool IsKeyUriSpec(std::string_view spec);
// The default loader: a PEM private key file (crypto::PrivateKey::FromFile); kUnsupported for a URI.
[[nodiscard]] Result<std::unique_ptr<crypto::Signer>> LoadFileSigner(const std::string& spec);

struct InitOptions {
  std::string app_id;
  // Private key files per top-level role ("root", "targets", "snapshot", "timestamp"). A role with
  // no files gets generated ed25519 keys in `key_dir` (root: `root_threshold` of them).
  // Each entry is a key spec (a file or a key URI, see SignerLoader).
  std::map<std::string, std::vector<std::filesystem::path>> key_files;
  // Turns key specs into signers; empty: LoadFileSigner. Kept by the repository for this session.
  SignerLoader signer_loader;
  // Where generated keys go; empty: DefaultKeyDir(app_id). Must be outside DIR. Created (with its
  // missing parents) mode 0700; an existing one must be a directory of this user that no one else
  // can access (kInvalidArgument otherwise). Existing files are never overwritten: a generated
  // key whose name is taken gets a numeric suffix (root.2.key).
  std::filesystem::path key_dir;
  uint64_t root_threshold = 1;
  std::time_t now = 0;  // 0: the C library clock
};

struct InitResult {
  std::vector<std::filesystem::path> generated_keys;  // private key files written
  std::filesystem::path key_dir;  // where they were written (empty if none was generated)
  std::map<std::string, std::vector<std::string>> key_ids;  // role -> key ids
};

struct AddTargetOptions {
  std::string name;         // empty: the file's base name
  std::string custom_json;  // empty, or a JSON object merged into `custom`
  std::string role;         // empty: the top-level targets role; else a delegated role
};

struct AddTargetResult {
  std::string name;
  std::string role;
  metadata::TargetFile file;
  bool replaced = false;  // a target of this name was staged before
};

struct PublishOptions {
  // Role name -> seconds, overriding the repository's defaults for this publish. Naming root also
  // re-signs root (a new root version) even when it did not change.
  std::map<std::string, int64_t> expires_in;
  std::time_t now = 0;
};

struct PublishResult {
  std::map<std::string, uint64_t> versions;  // role -> version now published
  std::map<std::string, std::time_t> expires;
};

struct RotateOptions {
  std::string role;                             // a top-level role
  std::vector<std::filesystem::path> new_keys;  // private key files that replace the role's keys
  std::vector<std::filesystem::path> old_keys;  // old root keys to sign with (default: configured)
  std::optional<uint64_t> threshold;            // default: unchanged
  std::time_t now = 0;
};

struct RotateResult {
  uint64_t root_version = 0;
  std::vector<std::string> removed_key_ids;
  std::vector<std::string> added_key_ids;
  PublishResult published;
};

struct DelegateOptions {
  std::string role;
  std::vector<std::string> paths;                  // glob patterns
  std::vector<std::filesystem::path> public_keys;  // K.pub (or K.key)
  // Private keys the repository signs the role with; default: K.key beside each K.pub.
  std::vector<std::filesystem::path> signing_keys;
  uint64_t threshold = 1;
  bool terminating = false;
};

struct DelegateResult {
  bool replaced = false;
  std::vector<std::string> key_ids;
};

struct TargetInfo {
  std::string name;
  std::string role;
  metadata::TargetFile file;
};

// An open repository holding the exclusive lock until destroyed. Move-only.
class Repository {
 public:
  // Creates DIR (or uses an empty one), generates missing keys, and publishes version 1 of every
  // role (no targets yet). kAlreadyExists if DIR holds a repository or any other file; nothing is
  // left behind on failure.
  [[nodiscard]] static Result<InitResult> Init(const std::filesystem::path& dir,
                                               const InitOptions& options);
  // kNotFound if DIR holds no repository; kMalformed if its state does not parse. `signer_loader`
  // turns the recorded key specs into signers (empty: LoadFileSigner, key files only).
  [[nodiscard]] static Result<Repository> Open(const std::filesystem::path& dir,
                                               SignerLoader signer_loader = {});

  Repository(Repository&&) noexcept = default;
  Repository& operator=(Repository&&) noexcept = default;
  ~Repository() = default;

  const std::string& app_id() const { return app_id_; }
  const std::filesystem::path& dir() const { return dir_; }

  // Copies FILE into DIR/targets/ under its hash-prefixed name and stages it (replacing a staged
  // target of the same name). A `.alb` file's app_id and version go into `custom` (merged with
  // custom_json; a conflicting app_id or version, or a bundle of another app, is kInvalidArgument).
  // Published by the next Publish.
  [[nodiscard]] Result<AddTargetResult> AddTarget(const std::filesystem::path& file,
                                                  const AddTargetOptions& options);
  // Unstages NAME (from the role that holds it). The file in DIR/targets/ stays: clients holding
  // older metadata may still fetch it. kNotFound if no role holds NAME.
  [[nodiscard]] Result<std::string> RemoveTarget(std::string_view name);
  // Adds (or replaces) a delegation from the top-level targets role; published by the next Publish.
  [[nodiscard]] Result<DelegateResult> Delegate(const DelegateOptions& options);
  // Signs and writes new versions of targets, every delegated role, snapshot and timestamp (and
  // root if asked via expires_in).
  [[nodiscard]] Result<PublishResult> Publish(const PublishOptions& options);
  // Writes a new root version in which ROLE's keys are replaced, signed by a threshold of the old
  // root keys and of the new root keys, and publishes (re-signing the other roles as needed, which
  // also publishes staged target changes).
  [[nodiscard]] Result<RotateResult> Rotate(const RotateOptions& options);

  // Staged targets, in name order.
  std::vector<TargetInfo> StagedTargets() const;
  // The key specs recorded for ROLE (top-level or delegated), as repo.json holds them.
  std::vector<std::string> KeySpecs(const std::string& role) const;

 private:
  Repository() = default;
  struct Signers;

  [[nodiscard]] Result<void> LoadState();
  [[nodiscard]] Result<std::unique_ptr<crypto::Signer>> LoadSigner(const std::string& spec) const;
  [[nodiscard]] Result<void> SaveState() const;
  [[nodiscard]] Result<PublishResult> PublishInternal(
      const PublishOptions& options,
      const std::optional<metadata::Metadata<metadata::Root>>& new_root);

  std::filesystem::path dir_;
  UniqueFd lock_;
  std::string app_id_;
  // Private key specs (files or key URIs) per role (top-level and delegated).
  std::map<std::string, std::vector<std::string>> key_files_;
  SignerLoader signer_loader_;
  std::map<std::string, int64_t> expires_in_;            // role (or "delegated") -> seconds
  std::map<std::string, metadata::TargetFile> targets_;  // staged top-level targets
  std::optional<metadata::Delegations> delegations_;     // staged delegations
  std::map<std::string, std::map<std::string, metadata::TargetFile>> delegated_targets_;
};

// What VerifyRepository checked.
struct VerifyReport {
  uint64_t root_version = 0;
  uint64_t timestamp_version = 0;
  uint64_t snapshot_version = 0;
  uint64_t targets_version = 0;
  std::vector<TargetInfo> targets;  // every target, with the role that listed it
  std::vector<std::string> roles_visited;
  // Files inside DIR that look like private keys (FindPrivateKeyFiles): a warning, not an error.
  std::vector<std::filesystem::path> private_key_files;
};

// Where `init` writes the keys it generates for APP_ID: $AIRLOCK_KEY_DIR if set and non-empty (used
// as is), else $XDG_CONFIG_HOME/airlock/keys/APP_ID (if XDG_CONFIG_HOME is absolute, as the XDG
// spec requires), else $HOME/.config/airlock/keys/APP_ID. kNotFound if none of these is set.
[[nodiscard]] Result<std::filesystem::path> DefaultKeyDir(std::string_view app_id);

// Regular files under DIR (all of it, .airlock included; symlinked directories are not followed)
// that look like private keys: named *.key, or whose first 4 KiB hold a PEM "PRIVATE KEY" header.
// A web server pointed at DIR could publish them. Best effort: unreadable entries are skipped.
std::vector<std::filesystem::path> FindPrivateKeyFiles(const std::filesystem::path& dir);

// Runs the TUF client workflow (src/client) against DIR's published files from 1.root.json, with a
// fetcher over the local filesystem, then checks every target's file in DIR/targets/ against its
// length and hashes. Needs no private state. Errors are the client's (kBadSignature, kExpired,
// kRollback, kHashMismatch, kNotFound, ...), with the role or target named in the message. Also
// lists private key files found inside DIR (report.private_key_files) for the caller to warn about.
[[nodiscard]] Result<VerifyReport> VerifyRepository(const std::filesystem::path& dir,
                                                    std::time_t now = 0);

}  // namespace airlock::repo

#endif  // AIRLOCK_REPO_REPOSITORY_H_
