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

std::set<std::string> RoleKeyIds(const metadata::Root& root, const std::string& role) {
  auto it = root.roles.find(role);
  if (it == root.roles.end()) return {};
  return std::set<std::string>(it->second.keyids.begin(), it->second.keyids.end());
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
  AIRLOCK_TRY(LoadTargets("targets", "root"));
  refreshed_ = true;
  return {};
}

Result<void> Updater::LoadRoot() {
  const metadata::Root initial = trusted_.root().signed_data;
  const uint64_t lower = initial.version + 1;
  const uint64_t upper = lower + options_.config.max_root_rotations;
  for (uint64_t version = lower; version < upper; ++version) {
    Result<Bytes> data = DownloadMetadata("root", options_.config.limits.root_max_length, version);
    if (!data) {
      // "No such root" ends the chain: the trusted root is the newest.
      if (data.error().code() == ErrorCode::kNotFound) break;
      return tl::unexpected(data.error());
    }
    AIRLOCK_TRY_CTX(trusted_.UpdateRoot(*data), "root version " + std::to_string(version));
    AIRLOCK_TRY(store_.Store("root", *data));
  }
  // 5.3.11 fast-forward attack recovery: once the timestamp or snapshot keys are rotated, versions
  // signed by the old keys are no reference for rollback checks any more. (They would also fail
  // verification below, but a rotation can keep old keys that still meet the threshold.)
  const metadata::Root& final_root = trusted_.root().signed_data;
  if (final_root.version != initial.version &&
      (RoleKeyIds(initial, "timestamp") != RoleKeyIds(final_root, "timestamp") ||
       RoleKeyIds(initial, "snapshot") != RoleKeyIds(final_root, "snapshot"))) {
    AIRLOCK_TRY(store_.Remove("timestamp"));
    AIRLOCK_TRY(store_.Remove("snapshot"));
  }
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

Result<const Metadata<Targets>*> Updater::LoadTargets(const std::string& role,
                                                      const std::string& delegator) {
  if (const Metadata<Targets>* loaded = trusted_.targets(role)) return loaded;
  const auto& limits = options_.config.limits;
  if (Result<Bytes> local = store_.Load(role, limits.targets_max_length)) {
    // Verified like a download (including snapshot's hashes): only the request is saved.
    auto from_local = trusted_.UpdateDelegatedTargets(*local, role, delegator, false);
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
                           trusted_.UpdateDelegatedTargets(data, role, delegator, false));
  AIRLOCK_TRY(store_.Store(role, data));
  return loaded;
}

Result<std::optional<TargetFile>> Updater::SearchDelegations(std::string_view target_path) {
  // Preorder depth-first search (5.6.7): a stack of (role, delegator), children pushed in reverse
  // so the first-listed delegation is visited first; a terminating delegation that matches drops
  // every role not yet visited.
  std::vector<std::pair<std::string, std::string>> to_visit = {{"targets", "root"}};
  std::set<std::string> visited;
  while (visited.size() <= options_.config.max_delegations && !to_visit.empty()) {
    auto [role, delegator] = std::move(to_visit.back());
    to_visit.pop_back();
    if (visited.count(role) != 0) continue;
    AIRLOCK_ASSIGN_OR_RETURN(const Metadata<Targets>* targets, LoadTargets(role, delegator));
    auto found = targets->signed_data.targets.find(std::string(target_path));
    if (found != targets->signed_data.targets.end()) return found->second;
    visited.insert(role);
    if (!targets->signed_data.delegations) continue;
    std::vector<std::pair<std::string, std::string>> children;
    for (const auto& [child, terminating] :
         targets->signed_data.delegations->RolesForTarget(target_path)) {
      children.emplace_back(child, role);
      if (terminating) {
        to_visit.clear();
        break;
      }
    }
    to_visit.insert(to_visit.end(), children.rbegin(), children.rend());
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

Result<Bytes> Updater::FetchTarget(std::string_view target_path, const TargetFile& info) {
  if (options_.target_base_url.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "no target base URL");
  }
  std::string remote_path(target_path);
  if (trusted_.root().signed_data.consistent_snapshot && options_.config.prefix_targets_with_hash) {
    remote_path = metadata::ConsistentTargetPath(target_path, PrefixHash(info));
  }
  // Never read more than the signed length (endless-data attack); Verify checks it is not shorter.
  AIRLOCK_ASSIGN_OR_RETURN(
      Bytes data, options_.fetcher->Fetch(options_.target_base_url + EncodeTargetPath(remote_path),
                                          info.length));
  AIRLOCK_TRY_CTX(info.Verify(data), std::string(target_path));
  return data;
}

Result<std::filesystem::path> Updater::DownloadTarget(std::string_view target_path,
                                                      const TargetFile& info,
                                                      const std::filesystem::path& target_dir) {
  if (target_path.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty target path");
  AIRLOCK_ASSIGN_OR_RETURN(Bytes data, FetchTarget(target_path, info));
  std::error_code ec;
  std::filesystem::create_directories(target_dir, ec);
  if (ec) {
    return MakeError(ErrorCode::kIo,
                     "cannot create target directory " + target_dir.string() + ": " + ec.message());
  }
  std::filesystem::path path = target_dir / TargetFileName(target_path);
  AIRLOCK_TRY(WriteFileAtomic(path, data));
  return path;
}

}  // namespace airlock::client
