#include "server/routes.h"

#include "server/admin_keys.h"
#include "server/dashboard.h"
#include "server/static_files.h"

namespace airlock::server {

AirlockdRoutes AddAirlockdRoutes(Router* router, const ServerApiDeps& deps, const Metrics* metrics,
                                 CapgoServices capgo) {
  AddHealthRoutes(router, metrics);
  AddStaticRoutes(router, deps.data_dir);
  AddDashboardRoutes(router);
  AirlockdRoutes out;
  out.admin = AddAdminRoutes(router, deps);
  AddKeyRoutes(router, out.admin.get());
  out.device = AddDeviceRoutes(router, deps);
  AddCapgoRoutes(router, capgo);
  return out;
}

}  // namespace airlock::server
