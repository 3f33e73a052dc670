// HTTP routes of the Capgo-compatible device protocol: `POST /updates`, `POST /stats` and
// `POST|PUT|GET|DELETE /channel_self`, each a thin adapter from Request to the transport-independent
// Handle* functions of capgo_api.h (which validate everything). Every request first takes a token from the
// rate limiter, keyed by the device id it names (else its app id, else the peer address); a refused request
// answers 429 with Retry-After and is not handled. Replies are the CapgoReply status, body and headers with
// Content-Type application/json.
//
// Thread-safety: the interfaces and the limiter must be thread-safe (the Store-backed ones and
// CapgoRateLimiter are) and must outlive the router.
#ifndef AIRLOCK_SERVER_CAPGO_ROUTES_H_
#define AIRLOCK_SERVER_CAPGO_ROUTES_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/capgo_api.h"
#include "server/router.h"

namespace airlock::server {

struct CapgoServices {
  CapgoReleaseCatalog* catalog = nullptr;
  CapgoChannelRegistry* channels = nullptr;
  CapgoStatsSink* stats = nullptr;
  CapgoRateLimiter* limiter = nullptr;  // nullptr = no rate limiting
};

void AddCapgoRoutes(Router* router, CapgoServices services);

// Splits and percent-decodes ('+' is a space) an application/x-www-form-urlencoded query. Pairs with a bad
// escape are dropped.
std::vector<std::pair<std::string, std::string>> DecodeQuery(std::string_view query);

// The rate-limit key of a request: "device:<id>", "app:<id>" or "addr:<remote>".
std::string CapgoRateKey(const Request& request);
// The rate-limit key of a /stats request: "stats:" + its CapgoRateKey (bodies up to
// kCapgoMaxStatsBodyBytes), so stats never share a bucket with checks and channel calls.
std::string CapgoStatsRateKey(const Request& request);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_CAPGO_ROUTES_H_
