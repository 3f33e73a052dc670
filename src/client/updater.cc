#include "client/updater.h"

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "common/file.h"

namespace airlock::client {
namespace {

using metadata::Metadata;
using metadata::TargetFile;
using metadata::Targets;

std::string WithTrailingSlash(std::string url) {
  if (!url.empty() && url.back() != '/') url.push_back('/');
  return url;
}

// The hash whose value names the consistent-snapshot target file: sha256 when listed (what our
// repository tooling and the reference implementations write), else the first listed.
std::string PrefixHash(const TargetFile& info) {
  auto it = info.hashes.find("sha256");
  if (it != info.hashes.end()) return it->second;
  return info.hashes.empty() ? std::string() : info.hashes.begin()->second;
}

// Target paths are names, not URL text: percent-encode what may not appear literally in a URL path
// (space, '%', '?', '#', controls, non-ASCII, ...), keeping '/' and the other path characters of
// RFC 3986. (python-tuf leaves this to its HTTP library, which does much the same.)
std::string EncodeTargetPath(std::string_view path) {
  return PercentEncode(path, "-._~/!$&'()*+,;=:@");
}

}  // namespace

std::time_t SystemTime() { return ::time(nullptr); }

Updater::RoleKeys Updater::RoleKeys::Of(const metadata::Root& root) {
  auto of = [&root](const char* role) {
    KeySet out;
    if (auto it = root.roles.find(role); it != root.roles.end()) {
      out.first.insert(it->second.keyids.begin(), it->second.keyids.end());
      out.second = it->second.threshold;
    }
    return out;
  };
  return RoleKeys{of("timestamp"), of("snapshot"), of("targets")};
}

Result<void> InitMetadataDir(const std::filesystem::path& metadata_dir, ByteSpan root_bytes) {
  return MetadataStore(metadata_dir).Store("root", root_bytes);
}

Updater::Updater(UpdaterOptions options, TrustedMetadataSet trusted)
    : options_(std::move(options)), store_(options_.metadata_dir), trusted_(std::move(trusted)) {}

Result<Updater> Updater::Create(UpdaterOptions options) {
  if (options.fetcher == nullptr) return MakeError(ErrorCode::kInvalidArgument, "no fetcher");
  if (options.metadata_base_url.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "no metadata base URL");
  }
  if (!options.clock) options.clock = SystemTime;
  options.metadata_base_url = WithTrailingSlash(std::move(options.metadata_base_url));
  options.target_base_url = WithTrailingSlash(std::move(options.target_base_url));
  MetadataStore store(options.metadata_dir);
  AIRLOCK_ASSIGN_OR_RETURN(Bytes root_bytes,
                           store.Load("root", options.config.limits.root_max_length));
  // The reference time is taken once, as python-tuf does: every expiry check of this update agrees.
  AIRLOCK_ASSIGN_OR_RETURN(
      TrustedMetadataSet trusted,
      TrustedMetadataSet::Create(root_bytes, options.clock(), options.config.limits));
  return Updater(std::move(options), std::move(trusted));
}

Result<Bytes> Updater::DownloadMetadata(std::string_view role, uint64_t max_length,
                                        std::optional<uint64_t> version) {
  std::string name = MetadataStore::FileName(role);
  if (version) name = std::to_string(*version) + "." + name;
  return options_.fetcher->Fetch(options_.metadata_base_url + name, max_length);
}

Result<void> Updater::Refresh() {
  if (refreshed_) return {};
  AIRLOCK_TRY(LoadRoot());
  AIRLOCK_TRY(LoadTimestamp());
  AIRLOCK_TRY(LoadSnapshot());
  AIRLOCK_TRY(LoadTargets({"targets"}));
  refreshed_ = true;
  return {};
}

Result<void> Updater::LoadRoot() {
  const uint64_t lower = trusted_.root().signed_data.version + 1;
  const uint64_t upper = lower + options_.config.max_root_rotations;
  for (uint64_t version = lower; version < upper; ++version) {
    Result<Bytes> data = DownloadMetadata("root", options_.config.limits.root_max_length, version);
    if (!data) {
      // "No such root" ends the chain: the trusted root is the newest.
      if (data.error().code() == ErrorCode::kNotFound) break;
      return tl::unexpected(data.error());
    }
    const RoleKeys before = RoleKeys::Of(trusted_.root().signed_data);
    AIRLOCK_TRY_CTX(trusted_.UpdateRoot(*data), "root version " + std::to_string(version));
    // 5.3.11 fast-forward attack recovery, before the new root is persisted (a crash in between
    // must not leave the old copies beside a root that no longer says they are stale).
    AIRLOCK_TRY(ForgetRotatedRoles(before, RoleKeys::Of(trusted_.root().signed_data)));
    AIRLOCK_TRY(store_.Store("root", *data));
  }
  return {};
}

Result<void> Updater::ForgetRotatedRoles(const RoleKeys& before, const RoleKeys& after) {
  // Once the timestamp or snapshot keys change, the versions signed under the old keys are no
  // reference for rollback checks any more: a repository recovering from a fast-forward attack
  // (versions pushed up with a stolen key) rotates the keys and starts the versions again. The
  // copies would often fail verification under the new root anyway, but not when a key is kept,
  // so they are deleted whenever the key set or threshold changes, as the specification says.
  if (before.timestamp != after.timestamp || before.snapshot != after.snapshot) {
    AIRLOCK_TRY(store_.Remove("timestamp"));
    AIRLOCK_TRY(store_.Remove("snapshot"));
  }
  // targets.json is never a rollback reference (snapshot's meta is), but a copy signed under
  // rotated-out keys is not kept either.
  if (before.targets != after.targets) AIRLOCK_TRY(store_.Remove("targets"));
  return {};
}

Result<void> Updater::LoadTimestamp() {
  const auto& limits = options_.config.limits;
  if (Result<Bytes> local = store_.Load("timestamp", limits.timestamp_max_length)) {
    // A local copy that does not verify (or is expired) is no error: it only serves as the rollback
    // reference when it does load.
    (void)trusted_.UpdateTimestamp(*local);
  }
  AIRLOCK_ASSIGN_OR_RETURN(
      Bytes data, DownloadMetadata("timestamp", limits.timestamp_max_length, std::nullopt));
  AIRLOCK_ASSIGN_OR_RETURN(bool is_new, trusted_.UpdateTimestamp(data));
  if (is_new) AIRLOCK_TRY(store_.Store("timestamp", data));
  return {};
}

Result<void> Updater::LoadSnapshot() {
  const auto& limits = options_.config.limits;
  if (Result<Bytes> local = store_.Load("snapshot", limits.snapshot_max_length)) {
    // The local copy was verified when stored; if it is still the one timestamp names, no download.
    if (trusted_.UpdateSnapshot(*local, /*trusted_local=*/true)) return {};
  }
  const metadata::MetaFile& meta = trusted_.timestamp()->signed_data.snapshot_meta;
  std::optional<uint64_t> version;
  if (trusted_.root().signed_data.consistent_snapshot) version = meta.version;
  AIRLOCK_ASSIGN_OR_RETURN(
      Bytes data,
      DownloadMetadata("snapshot", meta.length.value_or(limits.snapshot_max_length), version));
  AIRLOCK_TRY(trusted_.UpdateSnapshot(data, /*trusted_local=*/false));
  AIRLOCK_TRY(store_.Store("snapshot", data));
  return {};
}

Result<const Metadata<Targets>*> Updater::LoadTargets(const RolePath& path) {
  // Loaded for this path already: the same delegator chain verified it. A copy loaded through
  // another delegator is not looked at (it is verified again below, against this path's keys).
  if (const Metadata<Targets>* loaded = trusted_.targets_on_path(path)) return loaded;
  const std::string& role = path.back();
  const auto& limits = options_.config.limits;
  if (Result<Bytes> local = store_.Load(role, limits.targets_max_length)) {
    // Verified like a download (including snapshot's hashes): only the request is saved.
    auto from_local = trusted_.UpdateTargetsOnPath(*local, path, /*trusted_local=*/false);
    if (from_local) return *from_local;
  }
  const metadata::Snapshot& snapshot = trusted_.snapshot()->signed_data;
  auto meta_it = snapshot.meta.find(role + ".json");
  if (meta_it == snapshot.meta.end()) {
    return MakeError(ErrorCode::kNotFound, "snapshot has no entry for " + role + ".json");
  }
  std::optional<uint64_t> version;
  if (trusted_.root().signed_data.consistent_snapshot) version = meta_it->second.version;
  AIRLOCK_ASSIGN_OR_RETURN(
      Bytes data,
      DownloadMetadata(role, meta_it->second.length.value_or(limits.targets_max_length), version));
  AIRLOCK_ASSIGN_OR_RETURN(const Metadata<Targets>* loaded,
                           trusted_.UpdateTargetsOnPath(data, path, /*trusted_local=*/false));
  AIRLOCK_TRY(store_.Store(role, data));
  return loaded;
}

Result<std::optional<TargetFile>> Updater::SearchDelegations(std::string_view target_path) {
  // Preorder depth-first search (5.6.7): a stack of delegation paths, children pushed in reverse
  // so the first-listed delegation is visited first; a terminating delegation that matches drops
  // every role not yet visited. Each role is loaded and verified for the path it is reached
  // through (see RolePath); a role already on its own path (a cycle) is not visited again.
  std::vector<RolePath> to_visit = {{"targets"}};
  size_t visited = 0;
  while (visited <= options_.config.max_delegations && !to_visit.empty()) {
    RolePath path = std::move(to_visit.back());
    to_visit.pop_back();
    AIRLOCK_ASSIGN_OR_RETURN(const Metadata<Targets>* targets, LoadTargets(path));
    ++visited;
    auto found = targets->signed_data.targets.find(std::string(target_path));
    if (found != targets->signed_data.targets.end()) return found->second;
    if (!targets->signed_data.delegations) continue;
    std::vector<RolePath> children;
    for (const auto& [child, terminating] :
         targets->signed_data.delegations->RolesForTarget(target_path)) {
      if (std::find(path.begin(), path.end(), child) == path.end()) {
        RolePath child_path = path;
        child_path.push_back(child);
        children.push_back(std::move(child_path));
      }
      if (terminating) {
        to_visit.clear();
        break;
      }
    }
    to_visit.insert(to_visit.end(), std::make_move_iterator(children.rbegin()),
                    std::make_move_iterator(children.rend()));
  }
  return std::optional<TargetFile>();
}

Result<TargetFile> Updater::GetTargetInfo(std::string_view target_path) {
  if (target_path.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty target path");
  AIRLOCK_TRY(Refresh());
  AIRLOCK_ASSIGN_OR_RETURN(std::optional<TargetFile> info, SearchDelegations(target_path));
  if (!info) {
    return MakeError(ErrorCode::kNotFound,
                     "no trusted role lists target " + std::string(target_path));
  }
  return *info;
}

std::optional<std::filesystem::path> Updater::FindCachedTarget(
    std::string_view target_path, const TargetFile& info,
    const std::filesystem::path& target_dir) const {
  std::filesystem::path path = target_dir / TargetFileName(target_path);
  if (info.VerifyFile(path)) return path;
  return std::nullopt;
}

Result<std::string> Updater::TargetUrl(std::string_view target_path, const TargetFile& info) const {
  if (options_.target_base_url.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "no target base URL");
  }
  std::string remote_path(target_path);
  if (trusted_.root().signed_data.consistent_snapshot && options_.config.prefix_targets_with_hash) {
    remote_path = metadata::ConsistentTargetPath(target_path, PrefixHash(info));
  }
  return options_.target_base_url + EncodeTargetPath(remote_path);
}

Result<void> Updater::StreamTarget(std::string_view target_path, const TargetFile& info,
                                   const ChunkSink& sink) {
  AIRLOCK_ASSIGN_OR_RETURN(std::string url, TargetUrl(target_path, info));
  AIRLOCK_ASSIGN_OR_RETURN(auto verifier,
                           metadata::LengthAndHashVerifier::Create(info.length, info.hashes));
  // The signed length is a hard bound on what is read (endless-data attack): the fetcher stops at
  // the first byte past it, and the verifier would refuse that byte too.
  Result<void> fetched =
      options_.fetcher->FetchTo(url, info.length, [&](ByteSpan chunk) -> Result<void> {
        AIRLOCK_TRY(verifier.Update(chunk));
        return sink(chunk);
      });
  if (!fetched) {
    if (fetched.error().code() == ErrorCode::kLimitExceeded) {
      return MakeError(ErrorCode::kLimitExceeded,
                       "target " + std::string(target_path) +
                           ": the server sent more than its signed length of " +
                           std::to_string(info.length) + " bytes");
    }
    return tl::unexpected(fetched.error().WithContext("target " + std::string(target_path)));
  }
  AIRLOCK_TRY_CTX(verifier.Finish(), "target " + std::string(target_path));
  return {};
}

Result<Bytes> Updater::FetchTarget(std::string_view target_path, const TargetFile& info) {
  Bytes data;
  AIRLOCK_TRY(StreamTarget(target_path, info, [&data](ByteSpan chunk) -> Result<void> {
    data.insert(data.end(), chunk.begin(), chunk.end());
    return {};
  }));
  return data;
}

Result<std::filesystem::path> Updater::DownloadTarget(std::string_view target_path,
                                                      const TargetFile& info,
                                                      const std::filesystem::path& target_dir) {
  if (target_path.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty target path");
  std::error_code ec;
  std::filesystem::create_directories(target_dir, ec);
  if (ec) {
    return MakeError(ErrorCode::kIo,
                     "cannot create target directory " + target_dir.string() + ": " + ec.message());
  }
  std::filesystem::path path = target_dir / TargetFileName(target_path);
  // Written under a temporary name beside `path`; renamed onto it only once length and hashes
  // matched. On any failure the AtomicFile's destructor removes the partial file.
  AIRLOCK_ASSIGN_OR_RETURN(AtomicFile out, AtomicFile::Create(path));
  AIRLOCK_TRY(StreamTarget(target_path, info, [&out](ByteSpan chunk) { return out.Write(chunk); }));
  AIRLOCK_TRY(out.Commit());
  return path;
}

}  // namespace airlock::client
