#include "server/routes.h"

#include "server/static_files.h"

namespace airlock::server {

AirlockdRoutes AddAirlockdRoutes(Router* router, const ServerApiDeps& deps, const Metrics* metrics,
                                 CapgoServices capgo) {
  AddHealthRoutes(router, metrics);
  AddStaticRoutes(router, deps.data_dir);
  AirlockdRoutes out;
  out.admin = AddAdminRoutes(router, deps);
  out.device = AddDeviceRoutes(router, deps);
  AddCapgoRoutes(router, capgo);
  return out;
}

}  // namespace airlock::server
