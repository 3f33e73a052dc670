// `airlock repo verify`: the repository as a client sees it. Everything is checked by the client
// library (src/client) over the local filesystem, starting from 1.root.json, so what passes here is
// what a device would accept: the root chain, timestamp, snapshot, targets, every delegated role,
// every target file.
#include <deque>
#include <set>

#include "client/fetcher.h"
#include "client/metadata_store.h"
#include "client/trusted_set.h"
#include "client/updater.h"
#include "common/file.h"
#include "repo/repository.h"

namespace airlock::repo {

namespace fs = std::filesystem;

namespace {

// Upper bound on delegated roles walked (the client's max_delegations bounds one search; verify
// walks the whole graph once).
constexpr size_t kMaxRolesWalked = 10000;

std::string DirUrl(const fs::path& dir) {
  std::error_code ec;
  fs::path abs = fs::absolute(dir, ec);
  std::string s = (ec ? dir : abs).lexically_normal().string();
  if (s.empty() || s.back() != '/') s += '/';
  return s;
}

}  // namespace

Result<VerifyReport> VerifyRepository(const fs::path& dir, std::time_t now) {
  const fs::path metadata_dir = dir / "metadata";
  AIRLOCK_ASSIGN_OR_RETURN(Bytes first_root,
                           ReadFile(metadata_dir / "1.root.json", metadata::kMaxRootSize));
  AIRLOCK_ASSIGN_OR_RETURN(ScopedTempDir scratch, ScopedTempDir::Create({}, "airlock-verify-"));
  const fs::path md = scratch.path() / "metadata";
  AIRLOCK_TRY(client::InitMetadataDir(md, first_root));

  client::FileFetcher fetcher;
  client::UpdaterOptions options;
  options.metadata_dir = md;
  options.metadata_base_url = DirUrl(metadata_dir);
  options.target_base_url = DirUrl(dir / "targets");
  options.fetcher = &fetcher;
  if (now != 0) options.clock = [now] { return now; };
  AIRLOCK_ASSIGN_OR_RETURN(client::Updater updater, client::Updater::Create(options));
  AIRLOCK_TRY_CTX(updater.Refresh(), "refresh");

  VerifyReport report;
  const client::TrustedMetadataSet& trusted = updater.trusted();
  report.root_version = trusted.root().signed_data.version;
  if (trusted.timestamp() == nullptr || trusted.snapshot() == nullptr ||
      trusted.targets() == nullptr) {
    return MakeError(ErrorCode::kInternal,
                     "refresh succeeded without timestamp, snapshot or targets");
  }
  report.timestamp_version = trusted.timestamp()->signed_data.version;
  report.snapshot_version = trusted.snapshot()->signed_data.version;
  report.targets_version = trusted.targets()->signed_data.version;

  // root.json must be the newest root (servers and tools that read "root.json" expect it).
  AIRLOCK_ASSIGN_OR_RETURN(Bytes latest,
                           ReadFile(metadata_dir / "root.json", metadata::kMaxRootSize));
  AIRLOCK_ASSIGN_OR_RETURN(
      Bytes newest, ReadFile(metadata_dir / (std::to_string(report.root_version) + ".root.json"),
                             metadata::kMaxRootSize));
  if (latest != newest) {
    return MakeError(ErrorCode::kHashMismatch, "metadata/root.json is not the newest root (" +
                                                   std::to_string(report.root_version) +
                                                   ".root.json)");
  }

  // Walk every delegated role with a copy of the client's trusted set (the same checks the client
  // runs when a target search reaches the role), collecting every listed target.
  client::TrustedMetadataSet walk = trusted;
  std::vector<TargetInfo> listed;
  std::deque<std::pair<std::string, const metadata::Targets*>> queue;
  queue.emplace_back("targets", &trusted.targets()->signed_data);
  report.roles_visited.push_back("targets");
  std::set<std::string> visited = {"targets"};
  while (!queue.empty()) {
    auto [role, targets] = queue.front();
    queue.pop_front();
    for (const auto& [name, file] : targets->targets) listed.push_back({name, role, file});
    if (!targets->delegations) continue;
    for (const metadata::DelegatedRole& child : targets->delegations->roles) {
      if (!visited.insert(child.name).second) continue;
      if (visited.size() > kMaxRolesWalked) {
        return MakeError(ErrorCode::kLimitExceeded,
                         "more than " + std::to_string(kMaxRolesWalked) + " delegated roles");
      }
      const auto& meta = trusted.snapshot()->signed_data.meta;
      auto entry = meta.find(child.name + ".json");
      if (entry == meta.end()) {
        return MakeError(ErrorCode::kNotFound,
                         "snapshot does not list delegated role " + child.name);
      }
      std::string url = options.metadata_base_url + std::to_string(entry->second.version) + "." +
                        client::UrlQuote(child.name) + ".json";
      uint64_t bound = entry->second.length.value_or(metadata::kMaxTargetsSize);
      auto bytes = fetcher.Fetch(url, bound);
      if (!bytes) return tl::unexpected(bytes.error().WithContext("delegated role " + child.name));
      auto loaded = walk.UpdateDelegatedTargets(*bytes, child.name, role, false);
      if (!loaded)
        return tl::unexpected(loaded.error().WithContext("delegated role " + child.name));
      report.roles_visited.push_back(child.name);
      queue.emplace_back(child.name, &(*loaded)->signed_data);
    }
  }

  // Every target must be reachable by a client's search and its file must match.
  for (const TargetInfo& t : listed) {
    auto info = updater.GetTargetInfo(t.name);
    if (!info) {
      return tl::unexpected(info.error().WithContext("target " + t.name + " (listed by " + t.role +
                                                     ") is not reachable by a client"));
    }
    auto bytes = updater.FetchTarget(t.name, *info);
    if (!bytes) return tl::unexpected(bytes.error().WithContext("target " + t.name));
    report.targets.push_back({t.name, t.role, *info});
  }
  report.private_key_files = FindPrivateKeyFiles(dir);
  return report;
}

}  // namespace airlock::repo
