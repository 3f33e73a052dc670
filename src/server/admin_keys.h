// GET /api/v1/keys (docs/api/server-api.md, "Keys"): the keys of the server's vault with their
// state and last use, for operators and the dashboard. Server-wide (the vault spans apps), guarded
// by key.list. Registered by AddAirlockdRoutes (routes.cc).
#ifndef AIRLOCK_SERVER_ADMIN_KEYS_H_
#define AIRLOCK_SERVER_ADMIN_KEYS_H_

#include <cstddef>

#include "server/router.h"

namespace airlock::server {

struct AdminApi;

// How many of the newest usage-log records are read for the keys' last use: a key not used within
// them shows "last_used": null (the cost of the listing stays bounded however long the log is).
inline constexpr size_t kKeyLastUseWindow = 20000;

void AddKeyRoutes(Router* router, AdminApi* api);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_ADMIN_KEYS_H_
