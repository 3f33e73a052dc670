// TrustedMetadataSet: the in-memory set of metadata the client trusts during one update, and the
// verification rules of the TUF client workflow (specification 5.3-5.6) that need no I/O. Modelled
// on python-tuf's ngclient TrustedMetadataSet, so that behaviour matches the reference client:
//  - metadata is loaded in order root -> timestamp -> snapshot -> targets -> delegated targets;
//  - "intermediate" metadata may be loaded although expired (or, for snapshot, although its version
//    does not match timestamp's meta): the Update* call then fails with kExpired / kRollback but
//    the metadata stays loaded, so that it protects the next update of the same role against
//    rollback;
//  - a role is loadable only when the one before it is final (for example no snapshot after an
//  expired
//    timestamp).
// Error codes: kMalformed / kUnsupported / kLimitExceeded (parsing, from the metadata module),
// kBadSignature (threshold not met), kExpired, kRollback (a version lower than trusted or than the
// referring metadata commits to, a role missing from a newer snapshot, a root that is not exactly
// N+1, or any other version mismatch), kHashMismatch (length/hashes given by the referrer),
// kNotFound (no snapshot entry / no delegation for a role), kInternal (called out of order). Not
// thread-safe.
#ifndef AIRLOCK_CLIENT_TRUSTED_SET_H_
#define AIRLOCK_CLIENT_TRUSTED_SET_H_

#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "metadata/metadata.h"

namespace airlock::client {

// A targets role as the delegation search reaches it: the chain of role names from "targets" down
// to it, e.g. {"targets", "a", "c"} for role "c" delegated by "a", itself delegated by "targets".
// Delegated metadata is trusted per path, never per name: the same role reached through another
// delegator is verified again against that delegator's keys (the "diamond" case).
using RolePath = std::vector<std::string>;

// Size bounds applied to metadata when no length is known from the referrer.
struct MetadataLimits {
  size_t root_max_length = metadata::kMaxRootSize;
  size_t timestamp_max_length = metadata::kMaxTimestampSize;
  size_t snapshot_max_length = metadata::kMaxSnapshotSize;
  size_t targets_max_length = metadata::kMaxTargetsSize;
};

class TrustedMetadataSet {
 public:
  // Loads the trusted root (verified only by itself: it is the source of trust; its expiry is not
  // checked here). `reference_time` is "now" for every expiry check of this set.
  [[nodiscard]] static Result<TrustedMetadataSet> Create(ByteSpan root_bytes,
                                                         std::time_t reference_time,
                                                         MetadataLimits limits = {});

  // 5.3.4-5.3.5: `data` must be signed by a threshold of the trusted root's and of its own root
  // keys and have version trusted + 1. On success it becomes the trusted root.
  [[nodiscard]] Result<void> UpdateRoot(ByteSpan data);

  // 5.3.10 then 5.4: checks the final root is not expired, then timestamp signatures and rollback
  // (version and snapshot meta version not lower than the trusted timestamp's). Returns false,
  // keeping the trusted timestamp, when `data` has the same version as the trusted one (nothing
  // new).
  [[nodiscard]] Result<bool> UpdateTimestamp(ByteSpan data);

  // 5.5: length/hashes from timestamp's meta (skipped when `trusted_local` is true: the bytes come
  // from our own metadata directory), signatures, no role removed or rolled back against the
  // trusted snapshot, then (final checks) not expired and version == timestamp's snapshot meta
  // version.
  [[nodiscard]] Result<void> UpdateSnapshot(ByteSpan data, bool trusted_local);

  // 5.6 for the targets role at `path` ({"targets"}, or a delegated role below the loaded
  // path.front()..path[n-2]): the final snapshot must have an entry for `<last>.json`;
  // length/hashes from it (unless `trusted_local`), signatures by the keys the delegator on this
  // path (root for "targets") lists for the role, version == snapshot's, not expired. The result
  // is trusted for `path` only. kInternal if the delegator's path is not loaded or `path` is not a
  // chain starting at "targets".
  [[nodiscard]] Result<const metadata::Metadata<metadata::Targets>*> UpdateTargetsOnPath(
      ByteSpan data, const RolePath& path, bool trusted_local);

  // The same, naming the delegator instead of the path: "root" for "targets", otherwise a role
  // loaded through exactly one path (kInternal if it was loaded through none or several).
  [[nodiscard]] Result<const metadata::Metadata<metadata::Targets>*> UpdateDelegatedTargets(
      ByteSpan data, const std::string& role, const std::string& delegator, bool trusted_local);

  const metadata::Metadata<metadata::Root>& root() const { return root_; }
  const metadata::Metadata<metadata::Timestamp>* timestamp() const {
    return timestamp_ ? &*timestamp_ : nullptr;
  }
  const metadata::Metadata<metadata::Snapshot>* snapshot() const {
    return snapshot_ ? &*snapshot_ : nullptr;
  }
  // The targets role loaded for `path`; nullptr if not loaded through that path.
  const metadata::Metadata<metadata::Targets>* targets_on_path(const RolePath& path) const;
  // "targets", or a delegated role loaded through exactly one path; nullptr otherwise.
  const metadata::Metadata<metadata::Targets>* targets(const std::string& role = "targets") const;
  std::time_t reference_time() const { return reference_time_; }
  const MetadataLimits& limits() const { return limits_; }

 private:
  TrustedMetadataSet(metadata::Metadata<metadata::Root> root, std::time_t reference_time,
                     MetadataLimits limits)
      : root_(std::move(root)), reference_time_(reference_time), limits_(limits) {}
  [[nodiscard]] Result<void> CheckFinalTimestamp() const;
  [[nodiscard]] Result<void> CheckFinalSnapshot() const;

  metadata::Metadata<metadata::Root> root_;
  std::optional<metadata::Metadata<metadata::Timestamp>> timestamp_;
  std::optional<metadata::Metadata<metadata::Snapshot>> snapshot_;
  [[nodiscard]] Result<RolePath> UniquePathTo(const std::string& role) const;

  std::map<RolePath, metadata::Metadata<metadata::Targets>> targets_;
  std::time_t reference_time_;
  MetadataLimits limits_;
};

}  // namespace airlock::client

#endif  // AIRLOCK_CLIENT_TRUSTED_SET_H_
