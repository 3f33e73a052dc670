#include "server/http_server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
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
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "common/fd.h"
#include "crypto/hash.h"
#include "server/http_server_impl.h"
#include "server/json_text.h"
#include "server/upload_file.h"

namespace airlock::server {

using namespace http_internal;  // NOLINT(google-build-using-namespace): the HTTP core's own helpers

namespace {

// Access log batching per I/O thread.
constexpr size_t kLogFlushBytes = 32 * 1024;
constexpr std::chrono::milliseconds kLogFlushDelay{5};

// Appends the current UTC time as RFC 3339 with milliseconds. The formatted second is cached per
// thread: strftime once a second instead of once a request.
void AppendNowRfc3339(std::string* out) {
  thread_local time_t cached_second = -1;
  thread_local char cached_prefix[32];
  thread_local size_t cached_length = 0;
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec != cached_second) {
    struct tm tm_utc;
    gmtime_r(&ts.tv_sec, &tm_utc);
    cached_length = strftime(cached_prefix, sizeof(cached_prefix), "%Y-%m-%dT%H:%M:%S", &tm_utc);
    cached_second = ts.tv_sec;
  }
  out->append(cached_prefix, cached_length);
  const long ms = ts.tv_nsec / 1000000;
  const char millis[5] = {'.', static_cast<char>('0' + ms / 100),
                          static_cast<char>('0' + ms / 10 % 10), static_cast<char>('0' + ms % 10),
                          'Z'};
  out->append(millis, sizeof(millis));
}
void AppendNumber(std::string* out, uint64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  out->append(buf, static_cast<size_t>(end - buf));
}
// Microseconds as milliseconds with three decimals ("12.345"), without printf's float formatting.
void AppendMillis(std::string* out, int64_t micros) {
  if (micros < 0) micros = 0;
  AppendNumber(out, static_cast<uint64_t>(micros / 1000));
  const int64_t frac = micros % 1000;
  const char digits[4] = {'.', static_cast<char>('0' + frac / 100),
                          static_cast<char>('0' + frac / 10 % 10),
                          static_cast<char>('0' + frac % 10)};
  out->append(digits, sizeof(digits));
}
// Writes all of `data` to `fd` (retrying short writes and EINTR); gives up silently on errors
// (a log line that cannot be written must not take the server down).
void WriteFully(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}
// Header names are tokens and values hold no CR, LF or NUL: a handler's header that is not is
// dropped rather than written (a response-splitting guard; handlers never set such headers).
bool IsTokenChar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}
bool IsSafeHeader(std::string_view name, std::string_view value) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (!IsTokenChar(c)) return false;
  }
  for (unsigned char c : value) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}
}  // namespace

namespace http_internal {

std::string NowRfc3339() {
  std::string out;
  AppendNowRfc3339(&out);
  return out;
}

}  // namespace http_internal

// The status line and header fields of `response`, ending with the blank line. Written by hand (a
// writer, not a parser: requests are still parsed by Beast) so a small reply leaves in one
// sendmsg(2) without Beast's serializer machinery; tested against Beast's parser.
void AppendResponseHead(std::string* out, unsigned version, const Response& response,
                        std::optional<uint64_t> content_length, bool close) {
  out->append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  AppendNumber(out, static_cast<uint64_t>(response.status));
  out->push_back(' ');
  auto reason = http::obsolete_reason(static_cast<http::status>(response.status));
  out->append(reason.data(), reason.size());
  out->append("\r\n");
  for (const auto& [name, value] : response.headers) {
    if (!IsSafeHeader(name, value)) continue;
    if (beast::iequals(name, "Content-Length") || beast::iequals(name, "Connection") ||
        beast::iequals(name, "Transfer-Encoding") || beast::iequals(name, "Server")) {
      continue;  // the server's own
    }
    out->append(name);
    out->append(": ");
    out->append(value);
    out->append("\r\n");
  }
  out->append("Server: airlockd\r\n");
  if (content_length) {
    out->append("Content-Length: ");
    AppendNumber(out, *content_length);
    out->append("\r\n");
  }
  if (close && version != 10) out->append("Connection: close\r\n");
  if (!close && version == 10) out->append("Connection: keep-alive\r\n");
  out->append("\r\n");
}

bool DecodeSegment(std::string_view in, std::string* out) {
  out->clear();
  out->reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = HexDigitValue(in[i + 1]);
      int lo = HexDigitValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '/' || c == '\0') return false;
    out->push_back(c);
  }
  return true;
}

void HttpServer::Impl::Log(const std::string& line) {
  if (options.log_sink) {
    options.log_sink(line);
  } else {
    WriteFully(STDERR_FILENO, line + "\n");
  }
}

void HttpServer::Impl::FlushAccessLog(Worker* worker) {
  if (worker->log_buffer.empty()) return;
  WriteFully(STDERR_FILENO, worker->log_buffer);
  worker->log_buffer.clear();
}

void HttpServer::Impl::AccessLog(Worker* worker, const Request& request, int status, uint64_t sent,
                                 int64_t micros) {
  thread_local std::string line;
  line.clear();
  line.append("{\"time\":\"");
  AppendNowRfc3339(&line);
  line.append("\",\"level\":\"info\",\"msg\":\"request\",\"method\":");
  AppendJsonString(&line, request.method);
  line.append(",\"path\":");
  AppendJsonString(&line, request.path);
  line.append(",\"status\":");
  AppendNumber(&line, static_cast<uint64_t>(status));
  line.append(",\"bytes\":");
  AppendNumber(&line, sent);
  line.append(",\"duration_ms\":");
  AppendMillis(&line, micros);
  line.append(",\"remote\":");
  AppendJsonString(&line, request.remote);
  line.push_back('}');
  if (options.log_sink) {
    options.log_sink(line);
    return;
  }
  // Batched: one write(2) per 32 KiB or 5 ms per thread instead of one per request.
  worker->log_buffer.append(line);
  worker->log_buffer.push_back('\n');
  if (worker->log_buffer.size() >= kLogFlushBytes) {
    FlushAccessLog(worker);
  } else if (!worker->log_timer_armed) {
    worker->log_timer_armed = true;
    worker->log_timer.expires_after(kLogFlushDelay);
    worker->log_timer.async_wait([this, worker](const error_code&) {
      worker->log_timer_armed = false;
      FlushAccessLog(worker);
    });
  }
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

namespace {

Result<void> SetUpTls(ssl::context* context, const ServerOptions& options) {
  SSL_CTX* native = context->native_handle();
  // TLS 1.2 and 1.3 only; no compression, no renegotiation, server cipher order.
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
    return MakeError(ErrorCode::kInternal, "cannot set the minimum TLS version");
  }
  SSL_CTX_set_options(
      native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  error_code ec;
  context->use_certificate_chain_file(options.tls_cert_file, ec);
  if (ec) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "TLS certificate " + options.tls_cert_file + ": " + ec.message());
  }
  context->use_private_key_file(options.tls_key_file, ssl::context::pem, ec);
  if (ec) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "TLS key " + options.tls_key_file + ": " + ec.message());
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "TLS key " + options.tls_key_file + " does not match the certificate");
  }
  return {};
}

}  // namespace

Result<std::string> ResolveListenHost(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  if (!ec) return host;
  // A host name (localhost, a name of this machine): its first address.
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(host, "", ec);
  if (ec || results.empty()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "cannot resolve the listen host " + host + ": " +
                         (ec ? ec.message() : std::string("no address")));
  }
  return results.begin()->endpoint().address().to_string();
}

Result<void> HttpServer::Start() {
  Impl& impl = *impl_;
  std::lock_guard<std::mutex> lock(impl.control_mu);
  if (impl.started) return MakeError(ErrorCode::kInvalidArgument, "server already started");
  unsigned threads = impl.options.threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  if (threads > 1024) return MakeError(ErrorCode::kInvalidArgument, "too many threads");
  error_code ec;
  AIRLOCK_ASSIGN_OR_RETURN(std::string numeric, ResolveListenHost(impl.options.address));
  auto address = asio::ip::make_address(numeric, ec);
  if (ec) return MakeError(ErrorCode::kInvalidArgument, "bad listen address " + numeric);
  if (impl.options.tls_cert_file.empty() != impl.options.tls_key_file.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "TLS needs both a certificate and a key");
  }
  if (!impl.options.tls_cert_file.empty()) {
    impl.tls.emplace(ssl::context::tls_server);
    if (auto ok = SetUpTls(&*impl.tls, impl.options); !ok) {
      impl.tls.reset();
      return ok;
    }
  }
  if (!impl.options.upload_dir.empty()) {
    // Uploads a crash left behind (files of a live airlockd sharing DATA are locked and stay).
    if (size_t removed = RemoveStaleUploads(impl.options.upload_dir); removed > 0) {
      std::string line = "{\"level\":\"info\",\"msg\":\"removed stale uploads\",\"count\":";
      AppendNumber(&line, removed);
      line.append(",\"dir\":");
      AppendJsonString(&line, impl.options.upload_dir.string());
      impl.Log(line + "}");
    }
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
    w->thread = std::thread([w, &impl] {
      // Handlers must not throw out; if something in Asio does, keep serving the other connections.
      for (;;) {
        try {
          w->ioc.run();
          break;
        } catch (const std::exception& e) {
          std::fprintf(stderr, "{\"level\":\"error\",\"msg\":\"io thread caught exception\"}\n");
        }
      }
      impl.FlushAccessLog(w);
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
