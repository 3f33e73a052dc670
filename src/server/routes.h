// Every route airlockd serves, registered in one place: main.cc builds its router with
// AddAirlockdRoutes, and so does the authorization matrix test (authz_matrix_test.cc), which walks
// every route registered here. A route added anywhere else is one the matrix cannot see: add new
// route groups here.
#ifndef AIRLOCK_SERVER_ROUTES_H_
#define AIRLOCK_SERVER_ROUTES_H_

#include <memory>

#include "server/capgo_routes.h"
#include "server/metrics.h"
#include "server/router.h"
#include "server/server_api.h"

namespace airlock::server {

struct AirlockdRoutes {
  std::shared_ptr<AdminApi> admin;
  std::shared_ptr<DeviceRoutes> device;
};

// In order: /healthz and /metrics, the TUF and blob files under deps.data_dir, the dashboard's
// files (dashboard.h), the admin API (with GET /api/v1/keys, admin_keys.h), the device API and the
// Capgo-compatible API. `metrics` and the Capgo services must outlive the
// router.
[[nodiscard]] AirlockdRoutes AddAirlockdRoutes(Router* router, const ServerApiDeps& deps,
                                               const Metrics* metrics, CapgoServices capgo);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_ROUTES_H_
