#include "server/http_server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

namespace airlock::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// After an error response that closes the connection we read (and drop) what the client is still
// sending, up to this much, so the close does not turn into a reset that destroys our response.
constexpr size_t kMaxDrainBytes = 4 << 20;
constexpr std::chrono::seconds kDrainTime{2};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view ToStd(beast::string_view s) { return std::string_view(s.data(), s.size()); }

std::string NowRfc3339() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm_utc;
  gmtime_r(&ts.tv_sec, &tm_utc);
  char buf[48];
  size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm_utc);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03ldZ", ts.tv_nsec / 1000000);
  return buf;
}

bool IsHttpParseError(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category();
}

}  // namespace

bool DecodeSegment(std::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = HexValue(in[i + 1]);
      int lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '/' || c == '\0') return false;
    out->push_back(c);
  }
  return true;
}

struct HttpServer::Impl {
  struct Connection {
    beast::tcp_stream* stream = nullptr;
    bool idle = true;  // waiting for a request header
  };
  struct Worker {
    asio::io_context ioc{1};
    std::optional<tcp::acceptor> acceptor;
    std::list<Connection*> connections;  // touched only on this worker's thread
    std::thread thread;
  };

  ServerOptions options;
  const Router* router;
  Metrics* metrics;
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<bool> stopping{false};
  uint16_t bound_port = 0;
  std::mutex control_mu;  // Stop / Wait
  bool started = false;
  bool joined = false;

  void Log(const std::string& line) {
    if (options.log_sink) {
      options.log_sink(line);
    } else {
      std::string with_newline = line + "\n";
      std::fwrite(with_newline.data(), 1, with_newline.size(), stderr);
    }
  }

  asio::awaitable<void> AcceptLoop(Worker* worker);
  asio::awaitable<void> Session(Worker* worker, tcp::socket socket);
  asio::awaitable<bool> SendFile(beast::tcp_stream& stream, const FileBody& file, uint64_t* sent);
  asio::awaitable<void> Drain(beast::tcp_stream& stream, beast::flat_buffer& buffer);
  Response Dispatch(Request* request, int* route_index);
};

asio::awaitable<void> HttpServer::Impl::AcceptLoop(Worker* worker) {
  for (;;) {
    auto [ec, socket] = co_await worker->acceptor->async_accept(kTuple);
    if (stopping.load()) co_return;
    if (ec) {
      if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) co_return;
      // Out of descriptors and the like: back off briefly instead of spinning.
      asio::steady_timer timer(worker->ioc, std::chrono::milliseconds(50));
      co_await timer.async_wait(kTuple);
      continue;
    }
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    asio::co_spawn(worker->ioc, Session(worker, std::move(socket)), asio::detached);
  }
}

Response HttpServer::Impl::Dispatch(Request* request, int* route_index) {
  Router::Match match = router->Find(request);
  switch (match.kind) {
    case Router::Match::Kind::kNotFound:
      return JsonError(404, "not_found", "no route for " + request->path);
    case Router::Match::Kind::kMethodNotAllowed: {
      Response response =
          JsonError(405, "method_not_allowed", request->method + " is not allowed here");
      response.SetHeader("Allow", match.allow);
      return response;
    }
    case Router::Match::Kind::kFound:
      break;
  }
  *route_index = match.route_index;
  try {
    return (*match.handler)(*request);
  } catch (const std::exception& e) {
    // Handlers return errors as responses; a throw is a bug, answered with 500, not a crash.
    Log(nlohmann::json({{"time", NowRfc3339()},
                        {"level", "error"},
                        {"msg", "handler threw"},
                        {"path", request->path},
                        {"what", e.what()}})
            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return JsonError(500, "internal", "internal error");
  }
}

asio::awaitable<bool> HttpServer::Impl::SendFile(beast::tcp_stream& stream, const FileBody& file,
                                                 uint64_t* sent) {
  using namespace asio::experimental::awaitable_operators;
  tcp::socket& socket = stream.socket();
  error_code ec;
  socket.native_non_blocking(true, ec);
  if (ec) co_return false;
  off_t offset = static_cast<off_t>(file.offset);
  uint64_t remaining = file.length;
  asio::steady_timer timer(socket.get_executor());
  while (remaining > 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(remaining, 1u << 30));
    ssize_t n = ::sendfile(socket.native_handle(), file.fd->get(), &offset, chunk);
    if (n > 0) {
      remaining -= static_cast<uint64_t>(n);
      *sent += static_cast<uint64_t>(n);
      continue;
    }
    if (n == 0) co_return false;  // the file is shorter than we said: the connection must end
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) co_return false;
    timer.expires_after(options.write_timeout);
    auto result =
        co_await (socket.async_wait(tcp::socket::wait_write, kTuple) || timer.async_wait(kTuple));
    if (result.index() == 1) co_return false;  // no progress within write_timeout
    auto [wait_ec] = std::get<0>(result);
    if (wait_ec) co_return false;
  }
  co_return true;
}

asio::awaitable<void> HttpServer::Impl::Drain(beast::tcp_stream& stream,
                                              beast::flat_buffer& buffer) {
  error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.expires_after(kDrainTime);
  size_t drained = 0;
  char scratch[16384];
  while (drained < kMaxDrainBytes) {
    auto [read_ec, n] = co_await stream.async_read_some(asio::buffer(scratch), kTuple);
    if (read_ec) break;
    drained += n;
  }
  stream.socket().close(ec);
}

asio::awaitable<void> HttpServer::Impl::Session(Worker* worker, tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  Connection connection{&stream, true};
  auto self = worker->connections.insert(worker->connections.end(), &connection);
  metrics->ConnectionOpened();
  struct Cleanup {
    Worker* worker;
    std::list<Connection*>::iterator it;
    Metrics* metrics;
    ~Cleanup() {
      worker->connections.erase(it);
      metrics->ConnectionClosed();
    }
  } cleanup{worker, self, metrics};

  std::string remote;
  {
    error_code ec;
    auto endpoint = stream.socket().remote_endpoint(ec);
    if (!ec) remote = endpoint.address().to_string();
  }
  beast::flat_buffer buffer;
  bool keep_going = true;
  while (keep_going && !stopping.load()) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(options.max_header_bytes);
    parser.body_limit(options.max_body_bytes);
    connection.idle = true;
    stream.expires_after(options.read_timeout);
    auto [header_ec, header_bytes] =
        co_await http::async_read_header(stream, buffer, parser, kTuple);
    connection.idle = false;
    const auto start = std::chrono::steady_clock::now();

    Request request;
    Response response;
    int route_index = -1;
    bool close_after = false;
    bool counted_in_flight = false;
    unsigned version = 11;

    if (header_ec) {
      if (header_ec == http::error::body_limit) {
        // The parser checks Content-Length against the body limit while reading the header.
        response =
            JsonError(413, "body_too_large",
                      "request body exceeds " + std::to_string(options.max_body_bytes) + " bytes");
      } else if (header_ec == http::error::header_limit) {
        response = JsonError(431, "header_too_large", "request header fields too large");
      } else if (IsHttpParseError(header_ec) && header_ec != http::error::end_of_stream &&
                 header_ec != http::error::partial_message) {
        response = JsonError(400, "bad_request", "malformed HTTP request");
      } else {
        break;  // closed, reset, timed out or cancelled by Stop: nothing to answer
      }
      close_after = true;
    } else {
      auto& req = parser.get();
      version = req.version();
      request.method = std::string(ToStd(req.method_string()));
      std::string_view target = ToStd(req.target());
      size_t question = target.find('?');
      std::string_view raw_path = target.substr(0, question);
      if (question != std::string_view::npos)
        request.query = std::string(target.substr(question + 1));
      bool path_ok = !raw_path.empty() && raw_path.front() == '/';
      if (path_ok) {
        size_t pos = 1;
        std::string segment;
        while (pos <= raw_path.size()) {
          size_t slash = raw_path.find('/', pos);
          if (slash == std::string_view::npos) slash = raw_path.size();
          if (!DecodeSegment(raw_path.substr(pos, slash - pos), &segment)) {
            path_ok = false;
            break;
          }
          request.path += "/";
          request.path += segment;
          request.segments.push_back(segment);
          pos = slash + 1;
        }
        if (raw_path == "/") {
          request.segments.clear();
          request.path = "/";
        }
      }
      request.remote = remote;
      const auto* fields = &req.base();
      request.header = [fields](std::string_view name) -> std::string_view {
        auto it = fields->find(beast::string_view(name.data(), name.size()));
        return it == fields->end() ? std::string_view() : ToStd(it->value());
      };
      metrics->RequestStarted();
      counted_in_flight = true;

      if (!path_ok) {
        response = JsonError(400, "bad_request", "malformed request path");
        close_after = !parser.is_done();
      } else if (auto length = parser.content_length();
                 length && *length > options.max_body_bytes) {
        response =
            JsonError(413, "body_too_large",
                      "request body exceeds " + std::to_string(options.max_body_bytes) + " bytes");
        close_after = true;
      } else {
        bool body_ok = true;
        if (!parser.is_done()) {
          if (beast::iequals(req[http::field::expect], "100-continue")) {
            http::response<http::empty_body> go_on{http::status::continue_, req.version()};
            auto [continue_ec, unused] = co_await http::async_write(stream, go_on, kTuple);
            if (continue_ec) body_ok = false;
          }
          if (body_ok) {
            stream.expires_after(options.read_timeout);
            auto [body_ec, body_bytes] = co_await http::async_read(stream, buffer, parser, kTuple);
            if (body_ec == http::error::body_limit) {
              response = JsonError(
                  413, "body_too_large",
                  "request body exceeds " + std::to_string(options.max_body_bytes) + " bytes");
              close_after = true;
              body_ok = false;
            } else if (body_ec) {
              metrics->RequestFinished();
              break;  // the client went away or was too slow
            }
          } else {
            metrics->RequestFinished();
            break;
          }
        }
        if (body_ok) {
          request.body = std::move(req.body());
          response = Dispatch(&request, &route_index);
          close_after = close_after || !req.keep_alive();
        }
      }
    }
    if (stopping.load()) close_after = true;

    // Serialize: Beast writes the header (and small string bodies); file bodies go by sendfile.
    const bool head_only = request.method == "HEAD";
    http::response<http::string_body> res{static_cast<http::status>(response.status), version};
    for (const auto& [name, value] : response.headers) {
      res.set(beast::string_view(name.data(), name.size()),
              beast::string_view(value.data(), value.size()));
    }
    res.set(http::field::server, "airlockd");
    const bool no_body = response.status == 304 || response.status == 204 || response.status < 200;
    uint64_t body_length = 0;
    if (!no_body) {
      body_length = response.file ? response.file->length : response.body.size();
      res.content_length(body_length);
      if (!response.file && !head_only) res.body() = std::move(response.body);
    }
    res.keep_alive(!close_after);

    uint64_t sent = 0;
    bool write_ok = true;
    stream.expires_after(options.write_timeout);
    if (head_only || response.file) {
      http::response_serializer<http::string_body> serializer(res);
      const bool send_file = response.file && !head_only && !no_body && body_length > 0;
      int cork = 1;
      if (send_file) {
        // Header and the first file bytes leave in one segment.
        setsockopt(stream.socket().native_handle(), IPPROTO_TCP, TCP_CORK, &cork, sizeof(cork));
      }
      auto [write_ec, n] = co_await http::async_write_header(stream, serializer, kTuple);
      sent += n;
      write_ok = !write_ec;
      if (write_ok && send_file) {
        stream.expires_never();
        write_ok = co_await SendFile(stream, *response.file, &sent);
      }
      if (send_file) {
        cork = 0;
        setsockopt(stream.socket().native_handle(), IPPROTO_TCP, TCP_CORK, &cork, sizeof(cork));
      }
    } else {
      auto [write_ec, n] = co_await http::async_write(stream, res, kTuple);
      sent += n;
      write_ok = !write_ec;
    }

    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - start)
                            .count();
    metrics->Record(route_index, response.status, sent, static_cast<uint64_t>(micros));
    if (counted_in_flight) metrics->RequestFinished();
    if (options.access_log) {
      nlohmann::json line = {
          {"time", NowRfc3339()}, {"level", "info"},
          {"msg", "request"},     {"method", request.method},
          {"path", request.path}, {"status", response.status},
          {"bytes", sent},        {"duration_ms", static_cast<double>(micros) / 1000.0},
          {"remote", remote}};
      Log(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    if (!write_ok) break;
    if (close_after) {
      if (response.status >= 400) {
        co_await Drain(stream, buffer);
      }
      break;
    }
  }
  error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream.socket().close(ec);
}

HttpServer::HttpServer(ServerOptions options, const Router* router, Metrics* metrics)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->router = router;
  impl_->metrics = metrics;
}

HttpServer::~HttpServer() {
  Stop();
  Wait();
}

Result<void> HttpServer::Start() {
  Impl& impl = *impl_;
  std::lock_guard<std::mutex> lock(impl.control_mu);
  if (impl.started) return MakeError(ErrorCode::kInvalidArgument, "server already started");
  unsigned threads = impl.options.threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  if (threads > 1024) return MakeError(ErrorCode::kInvalidArgument, "too many threads");
  error_code ec;
  auto address = asio::ip::make_address(impl.options.address, ec);
  if (ec) {
    return MakeError(ErrorCode::kInvalidArgument, "bad listen address " + impl.options.address);
  }
  impl.metrics->SetRoutes(impl.router->Labels());
  uint16_t port = impl.options.port;
  for (unsigned i = 0; i < threads; ++i) {
    auto worker = std::make_unique<Impl::Worker>();
    tcp::endpoint endpoint(address, port);
    tcp::acceptor& acceptor = worker->acceptor.emplace(worker->ioc);
    acceptor.open(endpoint.protocol(), ec);
    if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) {
      int one = 1;
      if (setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        ec = error_code(errno, boost::system::system_category());
      }
    }
    if (!ec) acceptor.bind(endpoint, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return MakeError(ErrorCode::kIo, "listen on " + impl.options.address + ":" +
                                           std::to_string(port) + ": " + ec.message());
    }
    // With port 0 the first socket picks the port and the others join it.
    if (port == 0) port = acceptor.local_endpoint().port();
    impl.workers.push_back(std::move(worker));
  }
  impl.bound_port = port;
  for (auto& worker : impl.workers) {
    Impl::Worker* w = worker.get();
    asio::co_spawn(w->ioc, impl.AcceptLoop(w), asio::detached);
    w->thread = std::thread([w] {
      // Handlers must not throw out; if something in Asio does, keep serving the other connections.
      for (;;) {
        try {
          w->ioc.run();
          return;
        } catch (const std::exception& e) {
          std::fprintf(stderr, "{\"level\":\"error\",\"msg\":\"io thread caught exception\"}\n");
        }
      }
    });
  }
  impl.started = true;
  return {};
}

uint16_t HttpServer::port() const { return impl_->bound_port; }

void HttpServer::Stop() {
  Impl& impl = *impl_;
  if (impl.stopping.exchange(true)) return;
  for (auto& worker : impl.workers) {
    Impl::Worker* w = worker.get();
    asio::post(w->ioc, [w] {
      error_code ec;
      if (w->acceptor) w->acceptor->close(ec);
      for (Impl::Connection* connection : w->connections) {
        if (connection->idle) connection->stream->socket().cancel(ec);
      }
    });
  }
}

void HttpServer::Wait() {
  Impl& impl = *impl_;
  std::lock_guard<std::mutex> lock(impl.control_mu);
  if (impl.joined) return;
  for (auto& worker : impl.workers) {
    if (worker->thread.joinable()) worker->thread.join();
  }
  impl.joined = impl.started;
}

}  // namespace airlock::server
