// Updater: the TUF client workflow (specification section 5) over a Fetcher and a metadata
// directory.
//
// Usage (also how to run the client against a repository on disk, e.g. for `airlock repo verify`):
//
//   airlock::client::FileFetcher fetcher;             // or HttpFetcher, MemoryFetcher
//   airlock::client::UpdaterOptions options;
//   options.metadata_dir = md_dir;                    // must hold a trusted root.json (see
//   InitMetadataDir) options.metadata_base_url = "/repo/metadata/";    // "<base>N.root.json",
//   "<base>timestamp.json", ... options.target_base_url = "/repo/targets/"; options.fetcher =
//   &fetcher; AIRLOCK_ASSIGN_OR_RETURN(auto updater, airlock::client::Updater::Create(options));
//   AIRLOCK_TRY(updater.Refresh());
//   AIRLOCK_ASSIGN_OR_RETURN(auto info, updater.GetTargetInfo("app/bundle.alk"));
//   AIRLOCK_ASSIGN_OR_RETURN(auto path, updater.DownloadTarget(info, target_dir));
//
// Requests made (URLs are the base as given, with a '/' appended if missing, plus a name; bases are
// never re-encoded): "N.root.json" probing upward from the trusted root's version + 1 until
// kNotFound (at most max_root_rotations), "timestamp.json", then "N.snapshot.json" /
// "N.targets.json" / "N.<UrlQuote(role)>.json" (without "N." when root.consistent_snapshot is
// false) only when the copy in the metadata directory is not the current one, and targets as
// "<dirs>/<sha256>.<basename>" (or the plain path without consistent snapshots), the target path
// percent-encoded where it holds characters that cannot appear in a URL path (space, '%', '?', '#',
// non-ASCII; '/' is kept). Nothing else is requested.
//
// The metadata directory receives byte-exact copies of every verified file (root.json,
// timestamp.json, snapshot.json, targets.json, <UrlQuote(role)>.json), written atomically; nothing
// else is written there.
//
// Error codes: those of TrustedMetadataSet (client/trusted_set.h) plus the Fetcher's (kNotFound,
// kLimitExceeded for oversize downloads, kIo), kNotFound for a target no trusted role lists (or one
// not delegated to the role listing it), kHashMismatch for a target of the wrong length or hashes,
// and kInvalidArgument for bad options. Not thread-safe; one Updater per metadata directory at a
// time.
#ifndef AIRLOCK_CLIENT_UPDATER_H_
#define AIRLOCK_CLIENT_UPDATER_H_

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "client/fetcher.h"
#include "client/metadata_store.h"
#include "client/trusted_set.h"
#include "common/result.h"
#include "metadata/metadata.h"

namespace airlock::client {

// Seconds since the epoch. Production uses SystemTime (C library time(), so faketime moves it);
// tests inject their own.
using Clock = std::function<std::time_t()>;
std::time_t SystemTime();

struct UpdaterConfig {
  // Root versions fetched per refresh at most (python-tuf's max_root_rotations); the chain stops
  // there without error and continues with the newest root verified so far.
  uint64_t max_root_rotations = 256;
  // Delegated roles visited per target search at most (python-tuf's max_delegations).
  size_t max_delegations = 32;
  MetadataLimits limits;
  // With consistent snapshots, download targets as "<dirs>/<hash>.<basename>".
  bool prefix_targets_with_hash = true;
};

struct UpdaterOptions {
  std::filesystem::path metadata_dir;
  std::string metadata_base_url;
  std::string target_base_url;  // needed only for DownloadTarget
  Fetcher* fetcher = nullptr;   // not owned; must outlive the Updater
  Clock clock = SystemTime;     // read once per Refresh
  UpdaterConfig config;
};

// Writes `root_bytes` as `metadata_dir`/root.json (creating the directory). No verification: this
// is the trust anchor the caller chose.
[[nodiscard]] Result<void> InitMetadataDir(const std::filesystem::path& metadata_dir,
                                           ByteSpan root_bytes);

class Updater {
 public:
  // Loads and self-verifies metadata_dir/root.json. kNotFound if it does not exist;
  // kInvalidArgument without a fetcher or metadata base URL.
  [[nodiscard]] static Result<Updater> Create(UpdaterOptions options);

  // The whole top-level update: root chain (5.3), fast-forward recovery (5.3.11: whenever a new
  // root changes the timestamp or snapshot key ids or threshold, the local timestamp.json and
  // snapshot.json are deleted before that root is stored, and targets.json when the targets keys
  // change, so that the repository can start those versions again), timestamp (5.4), snapshot
  // (5.5), targets (5.6). Once it succeeded, later calls do nothing; after a failure,
  // retry with a new Updater.
  [[nodiscard]] Result<void> Refresh();

  // Refreshes first if needed, then searches the delegation graph (preorder depth-first, honouring
  // terminating delegations, visiting at most max_delegations roles) for `target_path`. A delegated
  // role is verified with the keys its delegator on the path being searched lists for it, also when
  // the same role was loaded before through another delegator (kBadSignature if they did not sign).
  // kNotFound if no role that `target_path` is delegated to lists it.
  [[nodiscard]] Result<metadata::TargetFile> GetTargetInfo(std::string_view target_path);

  // If `target_dir`/TargetFileName(target_path) exists with the right length and hashes, its path.
  [[nodiscard]] std::optional<std::filesystem::path> FindCachedTarget(
      std::string_view target_path, const metadata::TargetFile& info,
      const std::filesystem::path& target_dir) const;

  // Streams the target to a temporary file beside `target_dir`/TargetFileName(target_path),
  // through a buffer of at most kFetchChunkSize bytes (the target is never held in memory),
  // checking length and hashes as the bytes arrive, and renames it onto that path only once they
  // matched. Returns that path. The signed length is a hard bound: kLimitExceeded ("the server
  // sent more than its signed length") at the first byte past it; kHashMismatch for a wrong hash
  // or a short body. On any failure the temporary file is removed and nothing appears at the
  // path (a file already there is left as it was).
  [[nodiscard]] Result<std::filesystem::path> DownloadTarget(
      std::string_view target_path, const metadata::TargetFile& info,
      const std::filesystem::path& target_dir);
  // The same checks, collecting the verified bytes in memory instead of writing a file: only for
  // callers that need the bytes (e.g. `airlock repo verify`); the agent uses DownloadTarget.
  [[nodiscard]] Result<Bytes> FetchTarget(std::string_view target_path,
                                          const metadata::TargetFile& info);

  const TrustedMetadataSet& trusted() const { return trusted_; }

 private:
  // Key ids and threshold of the roles whose rotation makes local copies stale (5.3.11).
  struct RoleKeys {
    using KeySet = std::pair<std::set<std::string>, uint64_t>;
    KeySet timestamp;
    KeySet snapshot;
    KeySet targets;
    static RoleKeys Of(const metadata::Root& root);
  };

  Updater(UpdaterOptions options, TrustedMetadataSet trusted);
  [[nodiscard]] Result<void> LoadRoot();
  [[nodiscard]] Result<void> ForgetRotatedRoles(const RoleKeys& before, const RoleKeys& after);
  [[nodiscard]] Result<void> LoadTimestamp();
  [[nodiscard]] Result<void> LoadSnapshot();
  [[nodiscard]] Result<const metadata::Metadata<metadata::Targets>*> LoadTargets(
      const RolePath& path);
  [[nodiscard]] Result<std::string> TargetUrl(std::string_view target_path,
                                              const metadata::TargetFile& info) const;
  // Fetches the target into `sink` with the length bound and length/hash checks.
  [[nodiscard]] Result<void> StreamTarget(std::string_view target_path,
                                          const metadata::TargetFile& info, const ChunkSink& sink);
  [[nodiscard]] Result<Bytes> DownloadMetadata(std::string_view role, uint64_t max_length,
                                               std::optional<uint64_t> version);
  [[nodiscard]] Result<std::optional<metadata::TargetFile>> SearchDelegations(
      std::string_view target_path);

  UpdaterOptions options_;
  MetadataStore store_;
  TrustedMetadataSet trusted_;
  bool refreshed_ = false;
};

}  // namespace airlock::client

#endif  // AIRLOCK_CLIENT_UPDATER_H_
