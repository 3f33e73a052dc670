#include <netinet/in.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "common/fd.h"
#include "crypto/hash.h"
#include "server/http_server.h"
#include "server/http_server_impl.h"
#include "server/json_text.h"
#include "server/upload_file.h"

namespace airlock::server {

using namespace http_internal;  // NOLINT(google-build-using-namespace): the HTTP core's own helpers

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
// After an error response that closes the connection we read (and drop) what the client is still
// sending, up to this much, so the close does not turn into a reset that destroys our response.
constexpr size_t kMaxDrainBytes = 4 << 20;
constexpr std::chrono::seconds kDrainTime{2};
// Upload bodies are read (and written to disk) in pieces of this size.
constexpr size_t kUploadChunk = 256 * 1024;
// The Retry-After of a 503 busy answer to an upload beyond ServerOptions::max_uploads.
constexpr std::string_view kUploadRetryAfter = "5";
// File bodies under TLS go through SSL_write in pieces of this size.
constexpr size_t kTlsFileChunk = 256 * 1024;

// One sendmsg(2) of `a` then `b` on a non-blocking socket: the bytes taken (0 when the buffer is
// full), or -1 on an error (the connection is gone).
ssize_t TrySend(int fd, std::string_view a, std::string_view b) {
  iovec iov[2] = {{const_cast<char*>(a.data()), a.size()}, {const_cast<char*>(b.data()), b.size()}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = b.empty() ? 1 : 2;
  for (;;) {
    ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return -1;
  }
}

bool IsHttpParseError(const error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category();
}

Response TooLarge(uint64_t limit) {
  return JsonError(413, "body_too_large",
                   "request body exceeds " + std::to_string(limit) + " bytes");
}

template <class Stream>
constexpr bool kIsTls = !std::is_same_v<Stream, beast::tcp_stream>;

}  // namespace

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

Response HttpServer::Impl::RouteError(const Router::Match& match, const Request& request) {
  if (match.kind == Router::Match::Kind::kMethodNotAllowed) {
    Response response =
        JsonError(405, "method_not_allowed", request.method + " is not allowed here");
    response.SetHeader("Allow", match.allow);
    return response;
  }
  return JsonError(404, "not_found", "no route for " + request.path);
}

Response HttpServer::Impl::Dispatch(const Router::Match& match, Request* request,
                                    int* route_index) {
  if (match.kind != Router::Match::Kind::kFound) return RouteError(match, *request);
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

std::optional<Response> HttpServer::Impl::Check(const Router::Match& match, Request* request) {
  try {
    return (*match.check)(request);
  } catch (const std::exception& e) {
    Log(nlohmann::json({{"time", NowRfc3339()},
                        {"level", "error"},
                        {"msg", "pre-body check threw"},
                        {"path", request->path},
                        {"what", e.what()}})
            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return JsonError(500, "internal", "internal error");
  }
}

asio::awaitable<bool> HttpServer::Impl::SendFile(beast::tcp_stream& stream, const FileBody& file,
                                                 uint64_t* sent) {
  using namespace asio::experimental::awaitable_operators;
  // The socket is already non-blocking: Serve sets it once per plain-TCP connection.
  tcp::socket& socket = stream.socket();
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

template <class Stream>
asio::awaitable<bool> HttpServer::Impl::SendFileChunked(Stream& stream, beast::tcp_stream& tcp,
                                                        const FileBody& file, uint64_t* sent) {
  // No sendfile(2) through TLS: read the file in large pieces and let SSL_write encrypt them.
  std::vector<uint8_t> chunk(static_cast<size_t>(std::min<uint64_t>(file.length, kTlsFileChunk)));
  uint64_t offset = file.offset;
  uint64_t remaining = file.length;
  while (remaining > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(remaining, chunk.size()));
    auto got = PreadSome(file.fd->get(), offset, std::span<uint8_t>(chunk.data(), want));
    if (!got || *got == 0) co_return false;    // read error or a file shorter than announced
    tcp.expires_after(options.write_timeout);  // per piece: progress-based
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(chunk.data(), *got), kTuple);
    if (ec) co_return false;
    offset += n;
    remaining -= n;
    *sent += n;
  }
  co_return true;
}

asio::awaitable<void> HttpServer::Impl::Drain(beast::tcp_stream& stream,
                                              beast::flat_buffer& buffer) {
  (void)buffer;
  error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.expires_after(kDrainTime);
  size_t drained = 0;
  std::vector<char> scratch(16384);
  while (drained < kMaxDrainBytes) {
    auto [read_ec, n] = co_await stream.async_read_some(asio::buffer(scratch), kTuple);
    if (read_ec) break;
    drained += n;
  }
  stream.socket().close(ec);
}

asio::awaitable<void> HttpServer::Impl::Session(Worker* worker, tcp::socket socket) {
  std::string remote;
  {
    error_code ec;
    auto endpoint = socket.remote_endpoint(ec);
    if (!ec) remote = endpoint.address().to_string();
  }
  if (tls) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *tls);
    beast::tcp_stream& tcp_layer = beast::get_lowest_layer(stream);
    co_await Serve(worker, stream, tcp_layer, std::move(remote));
  } else {
    beast::tcp_stream stream(std::move(socket));
    co_await Serve(worker, stream, stream, std::move(remote));
  }
}

template <class Stream>
asio::awaitable<void> HttpServer::Impl::Serve(Worker* worker, Stream& stream,
                                              beast::tcp_stream& tcp, std::string remote) {
  Connection connection{&tcp, true};
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

  if constexpr (kIsTls<Stream>) {
    tcp.expires_after(options.read_timeout);
    auto [handshake_ec] = co_await stream.async_handshake(ssl::stream_base::server, kTuple);
    if (handshake_ec) {
      error_code ec;
      tcp.socket().close(ec);
      co_return;
    }
  }

  beast::flat_buffer buffer;
  std::string head;  // each response's head, capacity kept across requests
  if constexpr (!kIsTls<Stream>) {
    // TrySend writes to the descriptor directly: it must never block.
    error_code ec;
    tcp.socket().native_non_blocking(true, ec);
    if (ec) co_return;
  }
  bool keep_going = true;
  while (keep_going && !stopping.load()) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(options.max_header_bytes);
    // The limit depends on the route (upload routes have their own), known after the header.
    parser.body_limit(boost::none);
    connection.idle = true;
    tcp.expires_after(options.read_timeout);
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
    std::optional<http::request_parser<http::buffer_body>> upload_parser;
    TempUpload temp;
    UploadSlot upload_slot;
    // The header fields Request::header reads (they move with the parser for upload routes).
    const http::fields* fields = nullptr;

    if (header_ec) {
      if (header_ec == http::error::header_limit) {
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
      fields = &req.base();
      request.header = [&fields](std::string_view name) -> std::string_view {
        auto it = fields->find(beast::string_view(name.data(), name.size()));
        return it == fields->end() ? std::string_view() : ToStd(it->value());
      };
      metrics->RequestStarted();
      counted_in_flight = true;
      const bool keep_alive = req.keep_alive();
      const bool expect_continue = beast::iequals(req[http::field::expect], "100-continue");

      Router::Match match;
      if (path_ok) match = router->Find(&request);
      const bool upload = match.kind == Router::Match::Kind::kFound && match.upload;
      const uint64_t limit = upload ? match.max_upload_bytes : options.max_body_bytes;

      // The route's own check (authentication and authorisation of the admin API) runs on the
      // header alone: a refused request gets no 100 Continue, no upload file and no upload slot,
      // and its body is never read (the connection is closed when one was announced).
      std::optional<Response> refused;
      if (path_ok && match.kind == Router::Match::Kind::kFound && match.check != nullptr) {
        route_index = match.route_index;
        refused = Check(match, &request);
      }

      bool body_ok = true;
      if (!path_ok) {
        response = JsonError(400, "bad_request", "malformed request path");
        close_after = !parser.is_done();
        body_ok = false;
      } else if (refused) {
        response = std::move(*refused);
        close_after = !parser.is_done();
        body_ok = false;
      } else if (auto length = parser.content_length(); length && *length > limit) {
        response = TooLarge(limit);
        close_after = true;
        body_ok = false;
      } else if (upload && !upload_slot.Acquire(&uploads_in_flight, options.max_uploads)) {
        response = JsonError(503, "busy",
                             "too many uploads in progress (" +
                                 std::to_string(options.max_uploads) + "); retry later");
        response.SetHeader("Retry-After", kUploadRetryAfter);
        close_after = !parser.is_done();
        body_ok = false;
      } else if (upload &&
                 !temp.Create(options.upload_dir.empty() ? std::filesystem::temp_directory_path()
                                                         : options.upload_dir)) {
        std::string line = "{\"level\":\"error\",\"msg\":\"cannot create an upload file\",\"dir\":";
        AppendJsonString(&line, options.upload_dir.string());
        Log(line + "}");
        response = JsonError(500, "internal", "cannot store the upload");
        close_after = true;
        body_ok = false;
      }
      if (body_ok && !parser.is_done() && expect_continue) {
        http::response<http::empty_body> go_on{http::status::continue_, version};
        auto [continue_ec, unused] = co_await http::async_write(stream, go_on, kTuple);
        if (continue_ec) {
          metrics->RequestFinished();
          break;
        }
      }
      if (body_ok && upload) {
        // Streamed: the header moves to a buffer_body parser that hands us the body piece by piece.
        upload_parser.emplace(std::move(parser));
        auto& up = *upload_parser;
        fields = &up.get().base();
        up.body_limit(limit);
        std::vector<uint8_t> chunk(kUploadChunk);
        crypto::Hasher hasher = crypto::Hasher::Sha256();
        uint64_t received = 0;
        bool aborted = false;
        bool disk_ok = true;
        while (!up.is_done()) {
          up.get().body().data = chunk.data();
          up.get().body().size = chunk.size();
          tcp.expires_after(options.read_timeout);  // per read: a slow but moving upload lives
          auto [read_ec, n] = co_await http::async_read_some(stream, buffer, up, kTuple);
          size_t got = chunk.size() - up.get().body().size;
          if (got > 0) {
            ByteSpan piece(chunk.data(), got);
            if (!WriteAll(temp.fd(), piece)) {
              disk_ok = false;  // answered below; the rest of the body is not read
              close_after = true;
              break;
            }
            hasher.Update(piece);
            received += got;
          }
          if (read_ec == http::error::need_buffer) continue;
          if (read_ec == http::error::body_limit) {
            response = TooLarge(limit);
            close_after = true;
            body_ok = false;
            break;
          }
          if (read_ec) {
            aborted = true;  // the client went away or stalled
            break;
          }
        }
        if (aborted) {
          temp.Remove();
          metrics->RequestFinished();
          break;
        }
        if (body_ok && (!disk_ok || !temp.Finish())) {
          Log("{\"level\":\"error\",\"msg\":\"cannot write an upload file\"}");
          response = JsonError(500, "internal", "cannot store the upload");
          body_ok = false;
        }
        if (body_ok) {
          request.upload = UploadedFile{temp.path(), received, HexEncode(hasher.Finish())};
        } else {
          temp.Remove();
        }
      } else if (body_ok && !parser.is_done()) {
        parser.body_limit(limit);
        // A small body usually came in the same read as the header: parse it from the buffer here
        // instead of a round trip through async_read and the scheduler.
        error_code body_ec;
        if (buffer.size() > 0) {
          buffer.consume(parser.put(buffer.data(), body_ec));
          if (body_ec == http::error::need_more) body_ec = {};
        }
        if (!body_ec && !parser.is_done()) {
          tcp.expires_after(options.read_timeout);
          auto [read_ec, body_bytes] = co_await http::async_read(stream, buffer, parser, kTuple);
          body_ec = read_ec;
        }
        if (body_ec == http::error::body_limit) {
          response = TooLarge(limit);
          close_after = true;
          body_ok = false;
        } else if (body_ec && IsHttpParseError(body_ec) && body_ec != http::error::end_of_stream &&
                   body_ec != http::error::partial_message) {
          response = JsonError(400, "bad_request", "malformed HTTP request body");
          close_after = true;
          body_ok = false;
        } else if (body_ec) {
          metrics->RequestFinished();
          break;  // the client went away or was too slow
        }
      }
      if (body_ok) {
        if (!upload) request.body = std::move(parser.get().body());
        response = Dispatch(match, &request, &route_index);
        close_after = close_after || !keep_alive;
      }
      temp.Remove();  // unless the handler renamed it away
      upload_slot.Release();
    }
    if (stopping.load()) close_after = true;

    // The head is written by hand (AppendResponseHead). Plain TCP: head and a string body leave in
    // one sendmsg(2) when the socket takes them (small replies always do), the rest (if any) via
    // async_write under the write timeout; file bodies follow by sendfile(2). TLS: async_write of
    // head and body, file bodies in pieces through SSL_write.
    const bool head_only = request.method == "HEAD";
    const bool no_body = response.status == 304 || response.status == 204 || response.status < 200;
    std::optional<uint64_t> body_length;
    if (!no_body) body_length = response.file ? response.file->length : response.body.size();
    head.clear();
    AppendResponseHead(&head, version, response, body_length, close_after);
    const bool send_file = response.file && !head_only && !no_body && *body_length > 0;
    std::string_view body_bytes;
    if (!response.file && !head_only && !no_body) body_bytes = response.body;

    uint64_t sent = 0;
    bool write_ok = true;
    if constexpr (kIsTls<Stream>) {
      tcp.expires_after(options.write_timeout);
      const std::array<asio::const_buffer, 2> buffers{
          asio::buffer(head), asio::buffer(body_bytes.data(), body_bytes.size())};
      auto [write_ec, n] = co_await asio::async_write(stream, buffers, kTuple);
      sent += n;
      write_ok = !write_ec;
      if (write_ok && send_file) {
        write_ok = co_await SendFileChunked(stream, tcp, *response.file, &sent);
      }
    } else {
      const int fd = tcp.socket().native_handle();
      int cork = 1;
      if (send_file) {
        // Header and the first file bytes leave in one segment.
        setsockopt(fd, IPPROTO_TCP, TCP_CORK, &cork, sizeof(cork));
      }
      ssize_t n = TrySend(fd, head, body_bytes);
      if (n < 0) {
        write_ok = false;
      } else {
        sent += static_cast<uint64_t>(n);
        const size_t total = head.size() + body_bytes.size();
        if (static_cast<size_t>(n) < total) {
          // The socket buffer was full: the rest asynchronously.
          size_t done = static_cast<size_t>(n);
          std::string_view head_rest =
              done < head.size() ? std::string_view(head).substr(done) : "";
          std::string_view body_rest =
              body_bytes.substr(done < head.size() ? 0 : done - head.size());
          const std::array<asio::const_buffer, 2> rest{
              asio::buffer(head_rest.data(), head_rest.size()),
              asio::buffer(body_rest.data(), body_rest.size())};
          tcp.expires_after(options.write_timeout);
          auto [write_ec, m] = co_await asio::async_write(tcp, rest, kTuple);
          sent += m;
          write_ok = !write_ec;
        }
      }
      if (write_ok && send_file) {
        tcp.expires_never();
        write_ok = co_await SendFile(tcp, *response.file, &sent);
      }
      if (send_file) {
        cork = 0;
        setsockopt(fd, IPPROTO_TCP, TCP_CORK, &cork, sizeof(cork));
      }
    }

    const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - start)
                            .count();
    metrics->Record(route_index, response.status, sent, static_cast<uint64_t>(micros));
    if (counted_in_flight) metrics->RequestFinished();
    if (options.access_log) AccessLog(worker, request, response.status, sent, micros);
    if (!write_ok) break;
    if (close_after) {
      if (response.status >= 400) {
        co_await Drain(tcp, buffer);
      }
      break;
    }
  }
  // No TLS close_notify: every response is length-delimited, so a truncation is visible anyway,
  // and waiting for the peer's close_notify would hold the connection open.
  error_code ec;
  tcp.socket().shutdown(tcp::socket::shutdown_both, ec);
  tcp.socket().close(ec);
}

}  // namespace airlock::server
