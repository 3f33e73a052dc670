// The deltas `airlock release publish` makes (bundle/delta.h): from the N previous releases of the
// channel whose files this machine kept (the release cache, ConfigDir()/releases/APP/VERSION.zip,
// written by every publish), to the release being published.
#ifndef AIRLOCK_CLI_DELTA_PUBLISH_H_
#define AIRLOCK_CLI_DELTA_PUBLISH_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/signer.h"
#include "metadata/metadata.h"

namespace airlock::cli {

struct MadeDelta {
  std::string base_version;
  std::string target_name;  // releases/VERSION/delta-from-BASE.ald
  std::filesystem::path file;
  metadata::TargetFile target;
};

struct DeltaPlan {
  std::string app, version, channel;
  size_t count = 3;                // previous releases to make deltas from
  std::filesystem::path new_zip;   // the release's plain zip
  uint64_t bundle_length = 0;      // a delta no smaller is not kept
  std::filesystem::path work_dir;  // private, removed by the caller
};

// The bases: the `count` highest versions below `version` that the signed `targets` list as
// sealed bundles of `app` for `channel`. Each one whose zip is in the release cache gets a patch
// delta signed by `signer` under `content_key`; the others are named in `skipped` with why.
[[nodiscard]] Result<std::vector<MadeDelta>> MakePublishDeltas(const DeltaPlan& plan,
                                                               const metadata::Targets& targets,
                                                               crypto::Signer& signer,
                                                               ByteSpan content_key,
                                                               std::vector<std::string>* skipped);

// Keeps the release's plain zip in the release cache (0600 in a 0700 folder) for the deltas of
// later publishes, and removes all but the newest `keep` versions of the app there.
[[nodiscard]] Result<void> CacheReleaseFiles(const std::string& app, const std::string& version,
                                             const std::filesystem::path& zip, size_t keep = 10);

}  // namespace airlock::cli

#endif  // AIRLOCK_CLI_DELTA_PUBLISH_H_
