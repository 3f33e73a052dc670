#include "client/trusted_set.h"

#include <optional>
#include <string>

namespace airlock::client {
namespace {

using metadata::Metadata;
using metadata::Root;
using metadata::Snapshot;
using metadata::Targets;
using metadata::Timestamp;

// Every version disagreement is reported as kRollback: either a version went down, or metadata does
// not carry the version the signed metadata referring to it committed to (mix-and-match).
tl::unexpected<Error> VersionMismatch(std::string_view what, uint64_t got, uint64_t expected) {
  return MakeError(ErrorCode::kRollback, std::string(what) + ": expected version " +
                                             std::to_string(expected) + ", got " +
                                             std::to_string(got));
}

}  // namespace

Result<TrustedMetadataSet> TrustedMetadataSet::Create(ByteSpan root_bytes,
                                                      std::time_t reference_time,
                                                      MetadataLimits limits) {
  AIRLOCK_ASSIGN_OR_RETURN(Metadata<Root> root,
                           metadata::ParseRoot(AsString(root_bytes), limits.root_max_length));
  AIRLOCK_TRY_CTX(root.signed_data.VerifyDelegate("root", root), "trusted root");
  return TrustedMetadataSet(std::move(root), reference_time, limits);
}

Result<void> TrustedMetadataSet::UpdateRoot(ByteSpan data) {
  if (timestamp_) return MakeError(ErrorCode::kInternal, "cannot update root after timestamp");
  AIRLOCK_ASSIGN_OR_RETURN(Metadata<Root> next,
                           metadata::ParseRoot(AsString(data), limits_.root_max_length));
  // Checks both thresholds (trusted's and next's own) and version == trusted + 1.
  AIRLOCK_TRY(metadata::VerifyRootRotation(root_, next));
  root_ = std::move(next);
  return {};
}

Result<bool> TrustedMetadataSet::UpdateTimestamp(ByteSpan data) {
  if (snapshot_) return MakeError(ErrorCode::kInternal, "cannot update timestamp after snapshot");
  // 5.3.10: the final root must not be expired. Checked here, as python-tuf does, because the root
  // chain is complete once the first timestamp is loaded.
  AIRLOCK_TRY_CTX(metadata::CheckExpiry(root_.signed_data, reference_time_, "root"), "final root");
  AIRLOCK_ASSIGN_OR_RETURN(Metadata<Timestamp> next,
                           metadata::ParseTimestamp(AsString(data), limits_.timestamp_max_length));
  AIRLOCK_TRY(root_.signed_data.VerifyDelegate("timestamp", next));
  if (timestamp_) {
    const Timestamp& trusted = timestamp_->signed_data;
    AIRLOCK_TRY(metadata::CheckNoRollback(trusted.version, next.signed_data.version, "timestamp"));
    if (next.signed_data.version == trusted.version) {
      // Nothing new: keep the trusted copy, which must itself be final (not expired).
      AIRLOCK_TRY(CheckFinalTimestamp());
      return false;
    }
    AIRLOCK_TRY(metadata::CheckNoRollback(trusted.snapshot_meta.version,
                                          next.signed_data.snapshot_meta.version,
                                          "snapshot version in timestamp"));
  }
  // Loaded before the expiry check: an expired timestamp still protects against rollback of the
  // next.
  timestamp_ = std::move(next);
  AIRLOCK_TRY(CheckFinalTimestamp());
  return true;
}

Result<void> TrustedMetadataSet::CheckFinalTimestamp() const {
  if (!timestamp_) return MakeError(ErrorCode::kInternal, "no timestamp loaded");
  return metadata::CheckExpiry(timestamp_->signed_data, reference_time_, "timestamp");
}

Result<void> TrustedMetadataSet::UpdateSnapshot(ByteSpan data, bool trusted_local) {
  if (!timestamp_)
    return MakeError(ErrorCode::kInternal, "cannot update snapshot before timestamp");
  if (!targets_.empty())
    return MakeError(ErrorCode::kInternal, "cannot update snapshot after targets");
  AIRLOCK_TRY(CheckFinalTimestamp());
  const metadata::MetaFile& meta = timestamp_->signed_data.snapshot_meta;
  if (!trusted_local) AIRLOCK_TRY_CTX(meta.Verify(data), "snapshot");
  AIRLOCK_ASSIGN_OR_RETURN(Metadata<Snapshot> next,
                           metadata::ParseSnapshot(AsString(data), limits_.snapshot_max_length));
  AIRLOCK_TRY(root_.signed_data.VerifyDelegate("snapshot", next));
  if (snapshot_) {
    for (const auto& [name, old_entry] : snapshot_->signed_data.meta) {
      auto it = next.signed_data.meta.find(name);
      if (it == next.signed_data.meta.end()) {
        return MakeError(ErrorCode::kRollback, "new snapshot drops " + name);
      }
      AIRLOCK_TRY(metadata::CheckNoRollback(old_entry.version, it->second.version,
                                            "snapshot entry " + name));
    }
  }
  snapshot_ = std::move(next);
  return CheckFinalSnapshot();
}

Result<void> TrustedMetadataSet::CheckFinalSnapshot() const {
  if (!snapshot_ || !timestamp_) return MakeError(ErrorCode::kInternal, "no snapshot loaded");
  AIRLOCK_TRY(metadata::CheckExpiry(snapshot_->signed_data, reference_time_, "snapshot"));
  uint64_t expected = timestamp_->signed_data.snapshot_meta.version;
  if (snapshot_->signed_data.version != expected) {
    return VersionMismatch("snapshot (timestamp meta)", snapshot_->signed_data.version, expected);
  }
  return {};
}

const Metadata<Targets>* TrustedMetadataSet::targets_on_path(const RolePath& path) const {
  auto it = targets_.find(path);
  return it == targets_.end() ? nullptr : &it->second;
}

Result<RolePath> TrustedMetadataSet::UniquePathTo(const std::string& role) const {
  if (role == "targets") return RolePath{"targets"};
  std::optional<RolePath> found;
  for (const auto& [path, md] : targets_) {
    if (path.back() != role) continue;
    if (found) {
      return MakeError(ErrorCode::kInternal,
                       role + " was loaded through several delegation paths; name the path");
    }
    found = path;
  }
  if (!found) return MakeError(ErrorCode::kInternal, "delegator " + role + " is not loaded");
  return *found;
}

const Metadata<Targets>* TrustedMetadataSet::targets(const std::string& role) const {
  auto path = UniquePathTo(role);
  return path ? targets_on_path(*path) : nullptr;
}

Result<const Metadata<Targets>*> TrustedMetadataSet::UpdateDelegatedTargets(
    ByteSpan data, const std::string& role, const std::string& delegator, bool trusted_local) {
  RolePath path;
  if (delegator == "root") {
    if (role != "targets") {
      return MakeError(ErrorCode::kInternal, "root delegates only targets, not " + role);
    }
    path = {"targets"};
  } else {
    AIRLOCK_ASSIGN_OR_RETURN(path, UniquePathTo(delegator));
    path.push_back(role);
  }
  return UpdateTargetsOnPath(data, path, trusted_local);
}

Result<const Metadata<Targets>*> TrustedMetadataSet::UpdateTargetsOnPath(ByteSpan data,
                                                                         const RolePath& path,
                                                                         bool trusted_local) {
  if (!snapshot_) return MakeError(ErrorCode::kInternal, "cannot load targets before snapshot");
  if (path.empty() || path.front() != "targets") {
    return MakeError(ErrorCode::kInternal, "a delegation path starts at targets");
  }
  AIRLOCK_TRY(CheckFinalSnapshot());
  const std::string& role = path.back();
  const bool top_level = path.size() == 1;
  const Metadata<Targets>* parent = nullptr;
  if (!top_level) {
    // The delegator as loaded on this very path: a copy of it trusted through another path, or
    // this role trusted through another delegator, counts for nothing here.
    parent = targets_on_path(RolePath(path.begin(), path.end() - 1));
    if (parent == nullptr) {
      return MakeError(ErrorCode::kInternal, "delegator " + path[path.size() - 2] +
                                                 " is not loaded on this delegation path");
    }
  }
  auto meta_it = snapshot_->signed_data.meta.find(role + ".json");
  if (meta_it == snapshot_->signed_data.meta.end()) {
    return MakeError(ErrorCode::kNotFound, "snapshot has no entry for " + role + ".json");
  }
  const metadata::MetaFile& meta = meta_it->second;
  if (!trusted_local) AIRLOCK_TRY_CTX(meta.Verify(data), role);
  AIRLOCK_ASSIGN_OR_RETURN(Metadata<Targets> next,
                           metadata::ParseTargets(AsString(data), limits_.targets_max_length));
  if (top_level) {
    AIRLOCK_TRY(root_.signed_data.VerifyDelegate("targets", next));
  } else {
    AIRLOCK_TRY_CTX(parent->signed_data.VerifyDelegate(role, next),
                    role + " (delegated by " + path[path.size() - 2] + ")");
  }
  if (next.signed_data.version != meta.version) {
    return VersionMismatch(role + " (snapshot meta)", next.signed_data.version, meta.version);
  }
  AIRLOCK_TRY(metadata::CheckExpiry(next.signed_data, reference_time_, role));
  auto [it, inserted] = targets_.insert_or_assign(path, std::move(next));
  return &it->second;
}

}  // namespace airlock::client
