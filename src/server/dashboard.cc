#include "server/dashboard.h"

#include <string>

namespace airlock::server {
namespace {

std::string_view ContentType(std::string_view name) {
  auto ends = [name](std::string_view suffix) { return name.ends_with(suffix); };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".ico")) return "image/x-icon";
  if (ends(".json")) return "application/json";
  return "application/octet-stream";
}

// The headers every dashboard answer carries, the 404 included.
void SetSecurityHeaders(Response* response) {
  response->SetHeader("Content-Security-Policy", kDashboardCsp);
  response->SetHeader("X-Content-Type-Options", "nosniff");
  response->SetHeader("Referrer-Policy", "no-referrer");
  response->SetHeader("X-Frame-Options", "DENY");
}

Response Serve(std::string_view name) {
  if (name.empty()) name = "index.html";
  for (const DashboardFile& file : DashboardFiles()) {
    if (file.name != name) continue;
    Response response;
    response.body.assign(reinterpret_cast<const char*>(file.bytes.data()), file.bytes.size());
    response.SetHeader("Content-Type", ContentType(name));
    // The page is small and names its scripts without versions: never serve a stale one.
    response.SetHeader("Cache-Control", name == "index.html" ? "no-store" : "no-cache");
    SetSecurityHeaders(&response);
    return response;
  }
  Response response = JsonError(404, "not_found", "no such dashboard file");
  SetSecurityHeaders(&response);
  return response;
}

}  // namespace

void AddDashboardRoutes(Router* router) {
  router->Add("GET", "/dashboard", [](const Request&) {
    Response response;
    response.status = 308;
    response.SetHeader("Location", "/dashboard/");
    SetSecurityHeaders(&response);
    return response;
  });
  // "/dashboard/" is the folder itself (rest ""); a deeper path ("a/b") names no embedded file.
  router->Add("GET", "/dashboard/*", [](const Request& request) { return Serve(request.rest); });
}

}  // namespace airlock::server
