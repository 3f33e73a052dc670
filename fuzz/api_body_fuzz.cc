// Fuzzes the device API and Capgo request bodies (server/device_api.cc, capgo_api.cc through
// capgo_routes.cc) through airlockd's real router and handlers, without sockets (server_fixture.h).
// Byte 0 picks the route; the rest is the body ("@ENROLL@" and "@OWNER@" are replaced by real
// tokens, so enrollment and admin bodies get past their token checks; device bodies are signed by
// the enrolled device "fuzz-device", so /v1/check and /v1/report read them past authentication).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "server_fixture.h"

namespace {

struct Route {
  const char* method;
  const char* path;
  bool admin;
};

constexpr Route kRoutes[] = {
    {"POST", "/v1/enroll", false},
    {"POST", "/v1/check", false},
    {"POST", "/v1/report", false},
    {"POST", "/updates", false},
    {"POST", "/stats", false},
    {"POST", "/channel_self", false},
    {"PUT", "/channel_self", false},
    {"GET", "/channel_self", false},
    {"DELETE", "/channel_self", false},
    {"POST", "/api/v1/apps/com.example.app/channels", true},
    {"POST", "/api/v1/apps/com.example.app/releases", true},
    {"PUT", "/api/v1/apps/com.example.app/targets", true},
    {"POST", "/api/v1/tokens", true},
};

std::vector<std::string> Segments(const std::string& path) {
  std::vector<std::string> out;
  for (size_t start = 1; start <= path.size();) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    if (end > start) out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace airlock;
  if (size < 1) return 0;
  auto& server = fuzz::FuzzServer::Get();
  const Route& route = kRoutes[data[0] % (sizeof(kRoutes) / sizeof(kRoutes[0]))];
  server::Request req;
  req.method = route.method;
  req.path = route.path;
  req.segments = Segments(req.path);
  req.body = server.Expand(std::string(reinterpret_cast<const char*>(data + 1), size - 1));
  req.remote = "127.0.0.1";
  std::map<std::string, std::string> headers;
  if (route.admin) {
    headers["authorization"] = server.Expand("Bearer @OWNER@");
  } else if (req.path.rfind("/v1/", 0) == 0) {
    // Device routes: signed by the enrolled device, so the body is read past authentication.
    headers = server.SignedHeaders(req.method, req.path, req.body);
  }
  headers["content-type"] = "application/json";
  req.header = fuzz::LowerCaseHeaders(std::move(headers));
  int status = server.Call(req);
  // Every answer is a real HTTP status (an exception escaping a handler aborts the fuzzer).
  if (status < 200 || status > 599) __builtin_trap();
  return 0;
}
