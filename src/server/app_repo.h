// The server side of each app's TUF repository: online keys in the server's key store, verification of
// the metadata developers upload (root, targets), snapshot/timestamp signing, timestamp refresh, and
// device-mode key re-wrapping. See docs/api/server-api.md for the HTTP contract built on it.
//
// Files: DATA/tuf/<app>/ holds the served repository (consistent snapshots):
//   root.json, N.root.json, N.targets.json, N.snapshot.json, timestamp.json  (targets are served as
//   blobs: DATA/blobs/<sha[0:2]>/<sha>; the consistent target path <dir>/<sha256>.<name> is not used by
//   Airlock devices, which download from /v1/blobs).
// Writes are atomic (temp + fsync + rename), versioned files first and timestamp.json last, under a
// per-app lock, so a reader never sees a timestamp naming a snapshot that is not there yet. Several
// airlockd processes sharing DATA are serialized by an flock on DATA/tuf/<app>/.lock.
//
// Keys: `<app>.snapshot` and `<app>.timestamp` (ed25519, purposes snapshot/timestamp) and `<app>.content`
// (x25519, content-wrap) in the key store given at construction (a file vault or a PKCS#11 token), used
// through keys::KeyManager so every use is in the vault's usage log (actor "airlockd").
//
// App ids: 1..128 bytes of [A-Za-z0-9._-], not starting with '.' (the directory would be hidden and
// not served) -- kInvalidArgument otherwise. Key names are at most 64 bytes (keys/key_uri.h), so an app
// id too long for `<app>.timestamp`, or starting with '-', has keys named `app-<40 hex of
// SHA-256(app id)>.snapshot` etc. instead.
//
// Expiry: RefreshTimestamps also re-signs the snapshot (new version, same meta) when less than
// refresh_fraction of snapshot_expiry is left, so an app without releases for a week stays valid.
//
// Thread-safety: every method may be called from any thread (one internal mutex around the key store,
// which is not thread-safe; per-app state under the same mutex).
#ifndef AIRLOCK_SERVER_APP_REPO_H_
#define AIRLOCK_SERVER_APP_REPO_H_

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/keys.h"
#include "keys/key_store.h"
#include "keys/lifecycle.h"

namespace airlock::server {

struct AppRepoOptions {
  std::filesystem::path data_dir;          // DATA (tuf/ and blobs/ below it)
  int64_t snapshot_expiry = 7 * 86400;     // seconds a new snapshot is valid
  int64_t timestamp_expiry = 86400;        // seconds a new timestamp is valid
  // Re-sign a timestamp when less than this fraction of its validity is left (RefreshTimestamps).
  double refresh_fraction = 0.5;
  std::function<int64_t()> now;            // Unix seconds; default system clock
  // The key usage log (audit/audit_log.h) every online-key operation is appended to. Empty: the log
  // beside a file vault (keys::AuditPathForVaultUri of the store's URI), else DATA/keys.audit
  // (PKCS#11).
  std::filesystem::path audit_log;
};

struct OnlineKeys {
  nlohmann::json snapshot_key;   // TUF key object {"keytype","scheme","keyval":{"public"}}
  nlohmann::json timestamp_key;
  std::string snapshot_keyid;
  std::string timestamp_keyid;
  std::string content_key_pem;   // SPKI PEM of <app>.content (x25519)
};

struct RepoStatus {
  std::optional<uint64_t> root_version;
  std::optional<uint64_t> targets_version;
  std::optional<uint64_t> snapshot_version;
  std::optional<uint64_t> timestamp_version;
  std::optional<std::string> timestamp_expires;  // TUF time text
};

struct PublishedMetadata {
  uint64_t targets_version = 0;
  uint64_t snapshot_version = 0;
  uint64_t timestamp_version = 0;
};

// A target as listed in the trusted targets metadata.
struct TrustedTarget {
  std::string name;
  uint64_t length = 0;
  std::string sha256;      // lower-case hex
  nlohmann::json custom;   // {} when absent
};

// Looks up a held blob: its length if DATA/blobs holds `sha256_hex`, else std::nullopt.
using BlobLookup = std::function<std::optional<uint64_t>(std::string_view sha256_hex)>;

class AppRepo {
 public:
  // `store` is the server's key store (owned by the AppRepo from now on).
  AppRepo(std::unique_ptr<keys::KeyStore> store, AppRepoOptions options);
  ~AppRepo();
  AppRepo(const AppRepo&) = delete;
  AppRepo& operator=(const AppRepo&) = delete;

  // Creates the app's online keys and content key (kAlreadyExists if any exists) and DATA/tuf/<app>/.
  [[nodiscard]] Result<OnlineKeys> CreateApp(std::string_view app_id);
  // kNotFound if the app has no online keys.
  [[nodiscard]] Result<OnlineKeys> GetOnlineKeys(std::string_view app_id);
  [[nodiscard]] Result<RepoStatus> Status(std::string_view app_id);

  // Accepts a signed root (rules in docs/api/server-api.md, PUT .../root): kBadSignature /
  // kExpired / kInvalidArgument (roles not the online keys, consistent_snapshot false) /
  // kRollback (version not current + 1) / kMalformed. Returns the accepted version.
  [[nodiscard]] Result<uint64_t> AcceptRoot(std::string_view app_id, std::string_view root_bytes);

  // Accepts signed targets metadata (PUT .../targets and releases): verified against the current root's
  // targets role (kBadSignature), version current + 1 (kRollback), unexpired (kExpired), each target held
  // with its length and sha256 (kHashMismatch / kNotFound via `blobs`); kInvalidArgument when there is
  // no root yet. On success writes N.targets.json, a new snapshot and
  // timestamp (signed with the online keys), timestamp last.
  [[nodiscard]] Result<PublishedMetadata> AcceptTargets(std::string_view app_id,
                                                        std::string_view targets_bytes,
                                                        const BlobLookup& blobs);
  // Verifies like AcceptTargets but writes nothing; returns the targets it lists.
  [[nodiscard]] Result<std::vector<TrustedTarget>> VerifyTargets(std::string_view app_id,
                                                                 std::string_view targets_bytes,
                                                                 const BlobLookup& blobs);
  // The targets of the current (served) targets metadata. kNotFound when there is none.
  [[nodiscard]] Result<std::vector<TrustedTarget>> CurrentTargets(std::string_view app_id);

  // Re-signs a timestamp (new version, same snapshot) for every app whose timestamp has less than
  // refresh_fraction of its validity left (or has expired). Returns the app ids refreshed. An app that
  // fails (e.g. a suspended online key) does not stop the others; the first such error is returned
  // after every app was tried.
  [[nodiscard]] Result<std::vector<std::string>> RefreshTimestamps();

  // Device mode: reads the sealed bundle at `bundle_path` (header only), unwraps the content key for
  // the recipient that is the app's content key (through the key store), and wraps it to
  // `device_public_key` (x25519) with AAD bundle::ContentKeyAad(app, version). Returns the wrapped
  // bytes (crypto::WrapKey format). kNotFound if the bundle has no recipient for the content key.
  // Results for (bundle sha256, device key) need not be cached; header parses may be.
  [[nodiscard]] Result<Bytes> WrapForDevice(std::string_view app_id,
                                            const std::filesystem::path& bundle_path,
                                            const crypto::PublicKey& device_public_key);

  // The vault names of the app's keys the server holds: {snapshot, timestamp, content}.
  static std::vector<std::string> OnlineKeyNames(std::string_view app_id);

  // Runs `fn` with the repo's key manager and its operation context (actor "airlockd") under the
  // repo's lock, so the monitor's key actions (suspend, rotate, revoke: monitor_actions.h) are in
  // the usage log like every other operation and never interleave with a signing. Returns fn's
  // result; kIo when the usage log cannot be opened.
  using KeyAction = std::function<Result<std::string>(keys::KeyManager& manager,
                                                      const keys::OperationContext& ctx)>;
  [[nodiscard]] Result<std::string> WithKeyManager(const KeyAction& fn);

  // True when the sealed bundle at `bundle_path` has a recipient whose key is `recipient` (for the
  // release checks of app and device modes). kMalformed if it is not a sealed bundle.
  [[nodiscard]] Result<bool> BundleHasRecipient(const std::filesystem::path& bundle_path,
                                                const crypto::PublicKey& recipient);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_APP_REPO_H_
