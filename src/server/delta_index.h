// The deltas an app's signed targets metadata lists (bundle/delta.h), for /v1/check: which delta
// takes a device from the release it has installed to the one it is offered. Read from the app's
// current targets (AppRepo::CurrentTargets, so only signed entries count) and cached per app for
// a few seconds, so a check that offers an update reads no file; a release the cached targets do
// not list yet (published since) reloads them at once.
#ifndef AIRLOCK_SERVER_DELTA_INDEX_H_
#define AIRLOCK_SERVER_DELTA_INDEX_H_

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "server/app_repo.h"

namespace airlock::server {

struct DeltaTarget {
  std::string name;
  uint64_t length = 0;
  std::string sha256;
  std::string method;  // "patch" / "files"
};

class DeltaIndex {
 public:
  explicit DeltaIndex(AppRepo* repo, std::chrono::seconds ttl = std::chrono::seconds(5))
      : repo_(repo), ttl_(ttl) {}

  // The signed delta of `app_id` from `base_version` to `version`, if the targets list one.
  std::optional<DeltaTarget> Find(std::string_view app_id, std::string_view version,
                                  std::string_view base_version);

 private:
  struct AppDeltas {
    std::chrono::steady_clock::time_point loaded;
    std::map<std::pair<std::string, std::string>, DeltaTarget> by_versions;  // (version, base)
    std::set<std::string, std::less<>> releases;  // every version the targets list
  };
  AppRepo* repo_;
  std::chrono::seconds ttl_;
  std::mutex mu_;
  std::map<std::string, AppDeltas, std::less<>> apps_;
};

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_DELTA_INDEX_H_
