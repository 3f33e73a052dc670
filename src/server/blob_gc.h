// Collecting blobs nothing references, and the upload side of the same protocol.
//
// A blob DATA/blobs/<sha256[0:2]>/<sha256> is referenced when a release in the store names it (its
// bundle or Capgo zip), or any targets metadata in DATA/tuf/<app>/ lists it (so a blob the signed
// repository lists is never removed, whatever the database says). An unreferenced blob is removed
// once its mtime is older than the grace period: a publish uploads its blobs first and names them
// in a release seconds later, so a fresh upload is never collected.
//
// Races, also with other airlockd sharing DATA: the collector takes flock(LOCK_EX | LOCK_NB) on a
// candidate, re-reads its mtime under the lock, and unlinks it while holding the lock. An upload
// of bytes already held (TouchBlob) takes LOCK_SH on the blob, then refreshes its mtime if the file
// is still linked, or reports it gone so the upload stores its own copy. Either the collector sees
// the fresh mtime and keeps the blob, or the upload sees it unlinked and stores it again.
#ifndef AIRLOCK_SERVER_BLOB_GC_H_
#define AIRLOCK_SERVER_BLOB_GC_H_

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>

#include "common/result.h"
#include "storage/store.h"

namespace airlock::server {

struct BlobGcStats {
  uint64_t kept = 0;     // referenced
  uint64_t fresh = 0;    // unreferenced but younger than the grace period
  uint64_t removed = 0;  // unreferenced and older (with dry_run: would be removed)
  uint64_t removed_bytes = 0;
};

struct BlobGcOptions {
  int64_t now = 0;    // unix seconds
  int64_t grace = 0;  // seconds
  bool dry_run = false;
};

// The sha256 digests every release of every app names, and every targets metadata file under
// DATA/tuf lists.
[[nodiscard]] Result<std::set<std::string>> ReferencedBlobs(storage::Store* store,
                                                            const std::filesystem::path& data);

// Removes the unreferenced blobs older than the grace period (see above).
[[nodiscard]] Result<BlobGcStats> CollectBlobs(storage::Store* store,
                                               const std::filesystem::path& data,
                                               const BlobGcOptions& options);

// For an upload whose bytes are already stored at `blob`: true if the blob is still there (its
// mtime is now refreshed, so a collector keeps it), false if it is missing or was just collected.
[[nodiscard]] Result<bool> TouchBlob(const std::filesystem::path& blob);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_BLOB_GC_H_
