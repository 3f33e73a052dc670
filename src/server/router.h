// Request/Response value types and the route table of airlockd.
//
// A Router maps (method, path pattern) to a handler `Response(const Request&)`. Patterns are
// '/'-separated segments: a literal ("healthz"), a parameter ("{sha256}") that matches one
// non-empty segment, or a final "*" that matches one or more remaining segments (the rest, joined
// with '/', is Request::rest). Paths are matched on percent-decoded segments (HttpServer decodes
// them; a decoded segment never contains '/' or NUL). A path that matches a pattern under another
// method only gives 405 with Allow; a path that matches nothing gives 404; both with a JSON error
// body.
//
// Thread-safety: build the router before HttpServer::Start; afterwards it is read-only and Match
// may be called from any thread. Handlers run on the server's I/O threads and must be thread-safe.
#ifndef AIRLOCK_SERVER_ROUTER_H_
#define AIRLOCK_SERVER_ROUTER_H_

#include <any>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/fd.h"

namespace airlock::server {

// The body of an upload route, streamed to a file instead of memory (see Router::AddUpload).
struct UploadedFile {
  std::filesystem::path path;  // a temporary file in ServerOptions::upload_dir, fully written and
                               // fsync'ed; the server deletes it after the handler returns unless the
                               // handler renamed it away
  uint64_t length = 0;
  std::string sha256_hex;      // lower-case hex SHA-256 of the body, computed while receiving
};

struct Request {
  std::string method;                 // "GET", "POST", ... (HEAD is routed as GET)
  std::string path;                   // decoded, '/'-joined decoded segments, starts with '/'
  std::vector<std::string> segments;  // decoded path segments
  std::string query;                  // raw text after '?', not decoded
  std::vector<std::pair<std::string, std::string>> params;  // {name} captures, in pattern order
  std::string rest;  // what a trailing "*" matched ('/'-joined decoded segments)
  std::string body;                    // empty for upload routes
  std::optional<UploadedFile> upload;  // set for upload routes only
  std::string remote;  // peer address
  // Header lookup (case-insensitive); empty when absent. Set by the server.
  std::function<std::string_view(std::string_view)> header;
  // What a route's pre-body check (RouteHandlers::check) hands its handler, e.g. the authenticated
  // principal; empty when the handler is called without the check having run.
  std::any context;

  std::string_view Param(std::string_view name) const;
  std::string_view Header(std::string_view name) const { return header ? header(name) : ""; }
};

// An open file region to send as the body (the server uses sendfile(2)).
struct FileBody {
  std::shared_ptr<UniqueFd> fd;
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // Content-Length is set by the server
  std::string body;
  std::optional<FileBody> file;  // when set, `body` is ignored

  void SetHeader(std::string_view name, std::string_view value);
  std::string_view GetHeader(std::string_view name) const;  // case-insensitive; empty when absent
};

using Handler = std::function<Response(const Request&)>;
// Runs after the request header is parsed and the route matched (params filled) and before any body
// byte is read, answered with `100 Continue` or written to disk. A returned response is sent
// instead of reading the body (the connection is closed when a body was announced); nullopt lets
// the request proceed. It may leave state for the handler in Request::context.
using PreBodyCheck = std::function<std::optional<Response>(Request*)>;
// A handler with an optional pre-body check (Router::Add and AddUpload take either).
struct RouteHandlers {
  Handler handler;
  PreBodyCheck check;  // may be empty
};

// {"error": code, "message": message} with Content-Type application/json.
Response JsonError(int status, std::string_view code, std::string_view message);
// `json_text` with Content-Type application/json.
Response JsonResponse(int status, std::string json_text);

class Router {
 public:
  // Registers `handler` for `method` (upper case) and `pattern` (starts with '/'). Later
  // registrations of the same method and pattern are ignored; the first wins.
  void Add(std::string method, std::string_view pattern, Handler handler);
  void Add(std::string method, std::string_view pattern, RouteHandlers handlers);
  // An upload route: the body (up to `max_bytes`, else 413 body_too_large) is streamed to a
  // temporary file while hashed, and the handler sees it as Request::upload. Use for large bodies
  // only. The server caps how many upload bodies are received at once (ServerOptions::max_uploads).
  void AddUpload(std::string method, std::string_view pattern, uint64_t max_bytes, Handler handler);
  void AddUpload(std::string method, std::string_view pattern, uint64_t max_bytes,
                 RouteHandlers handlers);

  struct Match {
    enum class Kind { kFound, kNotFound, kMethodNotAllowed } kind = Kind::kNotFound;
    const Handler* handler = nullptr;  // kFound
    const PreBodyCheck* check = nullptr;  // kFound and the route has one
    int route_index = -1;              // kFound: index into Labels()
    std::string allow;                 // kMethodNotAllowed: "GET, HEAD"
    bool upload = false;               // kFound: an upload route (AddUpload)
    uint64_t max_upload_bytes = 0;     // kFound and upload
  };
  // Fills request->params and request->rest on a match. HEAD falls back to GET.
  Match Find(Request* request) const;

  // One label per registered route, "METHOD pattern", in registration order (metrics use them).
  std::vector<std::string> Labels() const;

 private:
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<std::string> parts;  // literal, "{name}" or "*"
    Handler handler;
    bool upload = false;
    uint64_t max_upload_bytes = 0;
    PreBodyCheck check;
  };
  static bool MatchParts(const Route& route, const std::vector<std::string>& segments,
                         std::vector<std::pair<std::string, std::string>>* params,
                         std::string* rest);
  std::vector<Route> routes_;
};

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_ROUTER_H_
