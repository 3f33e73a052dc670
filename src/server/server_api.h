// airlockd's own API: the admin API (/api/v1/...) and the device API (/v1/enroll, /v1/check,
// /v1/report). The contract is docs/api/server-api.md (and docs/api/openapi.yaml).
//
// Handlers run on the I/O threads; every dependency here is thread-safe (the AccessStore is used under
// an internal mutex of the API object). Hot paths (/v1/check, Capgo /updates) read channel and release
// state from a ChannelCache (channel_cache.h) rather than the database.
#ifndef AIRLOCK_SERVER_SERVER_API_H_
#define AIRLOCK_SERVER_SERVER_API_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "keys/access.h"
#include "server/app_repo.h"
#include "server/router.h"
#include "storage/store.h"

namespace airlock::server {

class ChannelCache;

struct ServerApiDeps {
  storage::Store* store = nullptr;
  AppRepo* repo = nullptr;
  keys::AccessStore* access = nullptr;  // DATA/access.db
  ChannelCache* cache = nullptr;        // invalidated by every admin change
  std::filesystem::path data_dir;       // DATA (blobs/ below it)
  std::string public_url;               // scheme://host[:port], no trailing '/'
  std::function<int64_t()> clock;       // Unix seconds
  uint64_t max_upload_bytes = uint64_t{2} << 30;
};

// Registers every /api/v1 route. The returned object owns per-API state (the access-store mutex) and
// must outlive the server.
struct AdminApi;
[[nodiscard]] std::shared_ptr<AdminApi> AddAdminRoutes(Router* router, const ServerApiDeps& deps);

// Registers POST /v1/enroll, /v1/check, /v1/report (GET /v1/blobs is in static_files.h).
void AddDeviceRoutes(Router* router, const ServerApiDeps& deps);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_SERVER_API_H_
