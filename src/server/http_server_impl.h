// Internal to the HTTP server (http_server.cc: start, stop, logging; http_connection.cc: accepting,
// reading requests, dispatching and writing responses): the state HttpServer::Impl shares between
// the two. Not for use outside the server's HTTP core.
#ifndef AIRLOCK_SERVER_HTTP_SERVER_IMPL_H_
#define AIRLOCK_SERVER_HTTP_SERVER_IMPL_H_

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "server/http_server.h"

namespace airlock::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace http_internal {

// The current UTC time as RFC 3339 with milliseconds.
std::string NowRfc3339();

inline std::string_view ToStd(beast::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace http_internal

struct HttpServer::Impl {
  struct Connection {
    beast::tcp_stream* stream = nullptr;  // the TCP layer (under TLS too)
    bool idle = true;                     // waiting for a request header
  };
  struct Worker {
    // Every socket and timer of a worker is used only on its thread, so the reactor's
    // per-descriptor locking is not needed (Stop() reaches the worker through post(), which stays
    // locked).
    asio::io_context ioc{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    std::optional<tcp::acceptor> acceptor;
    std::list<Connection*> connections;  // touched only on this worker's thread
    std::thread thread;
    // Access log lines waiting for the next flush (this worker's thread only).
    std::string log_buffer;
    asio::steady_timer log_timer{ioc};
    bool log_timer_armed = false;
  };

  ServerOptions options;
  const Router* router;
  Metrics* metrics;
  std::optional<ssl::context> tls;
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<bool> stopping{false};
  std::atomic<uint32_t> uploads_in_flight{0};
  uint16_t bound_port = 0;
  std::mutex control_mu;  // Stop / Wait
  bool started = false;
  bool joined = false;

  // A log line to the sink (or stderr).
  void Log(const std::string& line);
  void FlushAccessLog(Worker* worker);
  // One access log line per request, batched per worker.
  void AccessLog(Worker* worker, const Request& request, int status, uint64_t sent, int64_t micros);

  asio::awaitable<void> AcceptLoop(Worker* worker);
  asio::awaitable<void> Session(Worker* worker, tcp::socket socket);
  template <class Stream>
  asio::awaitable<void> Serve(Worker* worker, Stream& stream, beast::tcp_stream& tcp,
                              std::string remote);
  asio::awaitable<bool> SendFile(beast::tcp_stream& stream, const FileBody& file, uint64_t* sent);
  template <class Stream>
  asio::awaitable<bool> SendFileChunked(Stream& stream, beast::tcp_stream& tcp,
                                        const FileBody& file, uint64_t* sent);
  asio::awaitable<void> Drain(beast::tcp_stream& stream, beast::flat_buffer& buffer);
  Response Dispatch(const Router::Match& match, Request* request, int* route_index);
  std::optional<Response> Check(const Router::Match& match, Request* request);
  Response RouteError(const Router::Match& match, const Request& request);
};

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_HTTP_SERVER_IMPL_H_
