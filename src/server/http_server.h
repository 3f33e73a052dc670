// The HTTP/1.1 server of airlockd (Boost.Beast over Asio).
//
// Threads: `threads` workers, each running its own io_context with its own listening socket bound
// to the same address with SO_REUSEPORT, so the kernel spreads new connections over the workers and
// a connection lives on one thread for its whole life (no cross-thread hand-off, no locks on the
// hot path). SO_REUSEPORT lets another process of the same user bind the same port too; run one
// airlockd per port.
//
// Per connection: keep-alive; the request header (and the wait for it between requests) must arrive
// within read_timeout, the body within another read_timeout (slow-loris); header size is bounded by
// max_header_bytes (431), body by max_body_bytes (413, checked against Content-Length before
// reading). File bodies are sent with sendfile(2) after Beast writes the header.
//
// Upload routes (Router::AddUpload): the body is streamed to a temporary file in upload_dir while
// hashed (SHA-256), up to the route's limit (413 body_too_large, checked against Content-Length
// before reading and while reading a chunked body). Each read must make progress within
// read_timeout (a slow but steady upload is not cut off). The file is fsync'ed before the handler
// sees it (Request::upload) and deleted after the handler returns unless the handler renamed it
// away; a client that disconnects or stalls mid-upload leaves no file. Disk writes happen on the
// I/O thread. At most max_uploads upload bodies are received (and handled) at once; the next upload
// is answered 503 busy with Retry-After: 5 before its body is read. An upload file is flock(2)ed
// while in use; Start removes the unlocked "upload-*" files in upload_dir (left by a crash).
//
// Pre-body checks (RouteHandlers::check, e.g. the admin API's token check) run after the header is
// parsed and the route matched, before anything else: before the Content-Length limit, the upload
// slot, the upload file and `100 Continue`. A refused request's body is never read into the server
// (the connection is closed when a body was announced).
//
// TLS: with tls_cert_file and tls_key_file set, every connection is HTTPS (OpenSSL, TLS 1.2 and
// 1.3 only); file bodies then go through the TLS stream in 256 KiB writes instead of sendfile(2).
//
// Access log: one JSON line per request, formatted without allocation churn and written to stderr
// in batches per I/O thread (at most every 5 ms or 32 KiB, one write(2) per batch).
//
// Shutdown: Stop() closes the listeners, closes connections that are waiting for a request, and
// lets requests in flight finish (their responses carry Connection: close); Wait() returns when
// every connection is gone.
//
// Thread-safety: Start, Stop and Wait may be called from any one controlling thread; Stop is also
// safe from a handler or another thread. The Router and Metrics must outlive the server.
#ifndef AIRLOCK_SERVER_HTTP_SERVER_H_
#define AIRLOCK_SERVER_HTTP_SERVER_H_

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "server/metrics.h"
#include "server/router.h"

namespace airlock::server {

struct ServerOptions {
  std::string address = "127.0.0.1";  // IPv4 or IPv6 literal
  uint16_t port = 8080;               // 0 = any free port (see HttpServer::port())
  unsigned threads = 0;               // 0 = one per core
  uint64_t max_body_bytes = 1 << 20;  // request bodies (JSON)
  uint32_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds read_timeout{30000};
  std::chrono::milliseconds write_timeout{60000};  // per write that makes no progress
  bool access_log = true;                          // one JSON line per request
  // Temporary files of upload routes (same file system as where handlers move them). Empty: the
  // system temporary folder.
  std::filesystem::path upload_dir;
  // Upload bodies received at once, over all connections (0 = no cap); beyond: 503 busy.
  uint32_t max_uploads = 4;
  // PEM files; both set = TLS on every connection (Start fails with kInvalidArgument if they do not
  // load or do not match). The key must not be encrypted.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Where log lines go (without the trailing newline); default: stderr. Called from I/O threads.
  std::function<void(std::string_view)> log_sink;
};

// The address to bind for a listen host: an IP address as is, else a host name's first address
// (getaddrinfo). kInvalidArgument "cannot resolve the listen host NAME: why".
[[nodiscard]] Result<std::string> ResolveListenHost(const std::string& host);

class HttpServer {
 public:
  HttpServer(ServerOptions options, const Router* router, Metrics* metrics);
  ~HttpServer();  // Stop() and Wait()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts the worker threads. kInvalidArgument for a bad address or thread count, kIo
  // when the address cannot be bound. Call once.
  [[nodiscard]] Result<void> Start();
  // The bound port (after Start).
  uint16_t port() const;
  // Begins graceful shutdown; idempotent.
  void Stop();
  // Blocks until all workers have finished (after Stop).
  void Wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Appends the status line and header fields of `response` (HTTP/1.0 when version is 10, else 1.1),
// then "Server: airlockd", "Content-Length" when given, the Connection field the version needs
// for `close`, and the blank line. The handler's own Content-Length, Connection, Transfer-Encoding
// and Server fields are not written, nor any field whose name is not a token or whose value holds
// CR, LF or NUL.
void AppendResponseHead(std::string* out, unsigned version, const Response& response,
                        std::optional<uint64_t> content_length, bool close);

// Percent-decodes one path segment. False for a bad escape or a decoded '/' or NUL.
bool DecodeSegment(std::string_view in, std::string* out);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_HTTP_SERVER_H_
