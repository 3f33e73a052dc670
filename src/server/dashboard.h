// The web dashboard (docs/operations/dashboard.md): the files of web/dashboard, embedded into
// airlockd at build time (embed_dashboard.cmake) and served as they are under /dashboard/. The
// pages call the admin API from the browser with the API token the user pastes; the routes here
// are unguarded static GETs that hold no data.
//
// Every answer carries a Content-Security-Policy that allows scripts, styles and connections to
// this origin only (no inline script or style, nothing from another site, no framing), nosniff and
// no-referrer; index.html is no-store. A name that is not one of the embedded files answers 404.
#ifndef AIRLOCK_SERVER_DASHBOARD_H_
#define AIRLOCK_SERVER_DASHBOARD_H_

#include <span>
#include <string_view>

#include "server/router.h"

namespace airlock::server {

struct DashboardFile {
  std::string_view name;  // "index.html", "app.js", ...
  std::span<const unsigned char> bytes;
};

// The embedded files (generated dashboard_data.cc), sorted by name.
std::span<const DashboardFile> DashboardFiles();

// The Content-Security-Policy header value of every dashboard answer.
inline constexpr std::string_view kDashboardCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

// GET /dashboard (308 to /dashboard/) and GET /dashboard/* (index.html for the folder itself).
void AddDashboardRoutes(Router* router);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_DASHBOARD_H_
