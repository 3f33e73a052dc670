#include "client/http.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <charconv>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
// Boost.URL's compiled part, header-only: this is the only translation unit that includes it.
#include <boost/url/src.hpp>

namespace airlock::client {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

constexpr size_t kBodyBlock = 64 * 1024;

// Where a URL points.
struct Target {
  bool tls = false;
  std::string host;  // decoded, an IPv6 address without brackets
  std::string port;
  std::string target;       // path and query, as sent
  std::string host_header;  // host[:port] as in the URL
};

Result<Target> ParseTarget(const std::string& url) {
  auto parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) return MakeError(ErrorCode::kInvalidArgument, "not a URL: " + url);
  const auto scheme = parsed->scheme_id();
  if (scheme != boost::urls::scheme::http && scheme != boost::urls::scheme::https) {
    return MakeError(ErrorCode::kInvalidArgument, "only http and https URLs are fetched: " + url);
  }
  if (!parsed->has_authority() || parsed->encoded_host().empty() || parsed->has_userinfo()) {
    return MakeError(ErrorCode::kInvalidArgument, "not a usable http(s) URL: " + url);
  }
  Target t;
  t.tls = scheme == boost::urls::scheme::https;
  t.host = parsed->host_address();
  t.port = parsed->has_port() ? std::string(parsed->port()) : (t.tls ? "443" : "80");
  t.target = std::string(parsed->encoded_target());
  if (t.target.empty()) t.target = "/";
  t.host_header = std::string(parsed->encoded_host_and_port());
  return t;
}

Error NetError(const std::string& url, const std::string& what, const beast::error_code& ec) {
  const std::string why = ec == beast::error::timeout ? "timed out" : ec.message();
  return Error(ErrorCode::kIo, url + ": " + what + ": " + why);
}

// Runs the io_context until the operation `start` begins completes; returns its error.
template <typename Start>
beast::error_code Await(net::io_context& ioc, Start&& start) {
  beast::error_code result = net::error::would_block;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

void ExpireAt(beast::tcp_stream& tcp, SteadyClock::time_point when) {
  if (when == SteadyClock::time_point::max()) {
    tcp.expires_never();
  } else {
    tcp.expires_at(when);
  }
}

struct Exchanged {
  HttpResponse response;
  std::optional<std::string> location;  // a redirect to follow
};

bool IsRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// Sends the request on a connected `stream` and reads the answer (see HttpExchange).
template <typename Stream>
Result<Exchanged> Exchange(Stream& stream, beast::tcp_stream& tcp, net::io_context& ioc,
                           const Target& t, const std::string& url, const HttpRequest& req,
                           const HttpBodySink& sink, SteadyClock::time_point total_deadline) {
  const bool low_speed = req.low_speed_limit > 0 && req.low_speed_time.count() > 0;
  auto io_deadline = [&] {
    return low_speed ? std::min(SteadyClock::now() + req.low_speed_time, total_deadline)
                     : total_deadline;
  };
  http::request<http::string_body> msg{req.method == "POST" ? http::verb::post : http::verb::get,
                                       t.target, 11};
  msg.set(http::field::host, t.host_header);
  if (!req.user_agent.empty()) msg.set(http::field::user_agent, req.user_agent);
  for (const auto& [name, value] : req.headers) msg.set(name, value);
  if (req.range_from > 0) {
    msg.set(http::field::range, "bytes=" + std::to_string(req.range_from) + "-");
  }
  msg.set(http::field::connection, "close");
  if (msg.method() == http::verb::post) {
    msg.body() = req.body;
    msg.prepare_payload();
  }
  ExpireAt(tcp, io_deadline());
  beast::error_code ec =
      Await(ioc, [&](auto handler) { http::async_write(stream, msg, std::move(handler)); });
  if (ec) return tl::unexpected(NetError(url, "cannot send the request", ec));

  beast::flat_buffer buffer;
  // Beast reads as much as the buffer has room for: room for a whole block, few reads.
  buffer.reserve(kBodyBlock);
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);  // the bounds are the caller's (max_body, the sink)
  ExpireAt(tcp, io_deadline());
  ec = Await(ioc, [&](auto handler) {
    http::async_read_header(stream, buffer, parser, std::move(handler));
  });
  if (ec) return tl::unexpected(NetError(url, "no valid answer", ec));
  auto& res = parser.get();
  Exchanged out;
  out.response.status = static_cast<int>(res.result_int());
  out.response.url = url;
  if (auto it = res.find(http::field::retry_after); it != res.end()) {
    const std::string_view v = it->value();
    int64_t seconds = 0;
    auto [end, err] = std::from_chars(v.data(), v.data() + v.size(), seconds);
    if (err == std::errc() && end == v.data() + v.size() && seconds > 0) {
      out.response.retry_after_seconds = std::min<int64_t>(seconds, 86400);
    }
  }
  const int status = out.response.status;
  if (IsRedirect(status) && req.max_redirects > 0) {
    auto location = res.find(http::field::location);
    if (location == res.end() || location->value().empty()) {
      return MakeError(ErrorCode::kIo,
                       url + ": HTTP " + std::to_string(status) + " without a Location");
    }
    out.location = std::string(location->value());
    return out;
  }
  const bool success = status >= 200 && status <= 299;
  if (!success && !req.read_error_body) return out;
  if (success && req.range_from > 0) {
    if (status != 206) return out;  // the whole body again: the caller starts over
    const std::string want = "bytes " + std::to_string(req.range_from) + "-";
    auto range = res.find(http::field::content_range);
    if (range == res.end() || range->value().substr(0, want.size()) != want) {
      return MakeError(ErrorCode::kIo,
                       url + ": the server answered the range request with " + "another range");
    }
  }
  if (const auto declared = parser.content_length(); declared && *declared > req.max_body) {
    return MakeError(ErrorCode::kLimitExceeded,
                     url + ": the answer declares " + std::to_string(*declared) +
                         " bytes, more than the " + std::to_string(req.max_body) + " allowed");
  }
  Bytes block(kBodyBlock);
  SteadyClock::time_point window_start = SteadyClock::now();
  uint64_t window_bytes = 0;
  uint64_t received = 0;
  while (!parser.is_done()) {
    res.body().data = block.data();
    res.body().size = block.size();
    ExpireAt(tcp, io_deadline());
    ec = Await(ioc, [&](auto handler) {
      http::async_read_some(stream, buffer, parser, std::move(handler));
    });
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      if (ec == beast::error::timeout && low_speed && SteadyClock::now() < total_deadline) {
        return MakeError(ErrorCode::kIo, url + ": nothing arrived for " +
                                             std::to_string(req.low_speed_time.count()) + " s");
      }
      return tl::unexpected(NetError(url, "the answer broke off", ec));
    }
    const size_t n = block.size() - res.body().size;
    received += n;
    if (received > req.max_body) {  // a chunked or lying answer: the bound holds on what arrives
      return MakeError(ErrorCode::kLimitExceeded, url + ": the answer is longer than the " +
                                                      std::to_string(req.max_body) +
                                                      " bytes allowed");
    }
    if (n > 0) AIRLOCK_TRY(sink(ByteSpan(block.data(), n)));
    window_bytes += n;
    const auto now = SteadyClock::now();
    if (low_speed && now - window_start >= req.low_speed_time) {
      if (window_bytes < req.low_speed_limit * static_cast<uint64_t>(req.low_speed_time.count())) {
        return MakeError(ErrorCode::kIo, url + ": slower than " +
                                             std::to_string(req.low_speed_limit) + " bytes/s for " +
                                             std::to_string(req.low_speed_time.count()) + " s");
      }
      window_start = now;
      window_bytes = 0;
    }
  }
  return out;
}

// Resolves and connects `tcp` to `t` within the connect deadline.
Result<void> Connect(beast::tcp_stream& tcp, net::io_context& ioc, const Target& t,
                     const std::string& url, SteadyClock::time_point deadline) {
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  const auto endpoints = resolver.resolve(t.host, t.port, ec);
  if (ec) return tl::unexpected(NetError(url, "cannot resolve " + t.host, ec));
  ExpireAt(tcp, deadline);
  ec = Await(ioc, [&](auto handler) { tcp.async_connect(endpoints, std::move(handler)); });
  if (ec) return tl::unexpected(NetError(url, "cannot connect", ec));
  return {};
}

Result<Exchanged> ExchangeOnce(const Target& t, const std::string& url, const HttpRequest& req,
                               const HttpBodySink& sink, SteadyClock::time_point total_deadline) {
  net::io_context ioc;
  const SteadyClock::time_point connect_deadline =
      std::min(SteadyClock::now() + req.connect_timeout, total_deadline);
  if (!t.tls) {
    beast::tcp_stream stream(ioc);
    AIRLOCK_TRY(Connect(stream, ioc, t, url, connect_deadline));
    return Exchange(stream, stream, ioc, t, url, req, sink, total_deadline);
  }
  ssl::context ctx(ssl::context::tls_client);
  beast::error_code ec;
  ctx.set_default_verify_paths(ec);
  if (ec) return tl::unexpected(NetError(url, "cannot load the trusted certificates", ec));
  ctx.set_verify_mode(ssl::verify_peer);
  if (SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION) != 1) {
    return MakeError(ErrorCode::kInternal, "cannot require TLS 1.2");
  }
  beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
  SSL* ssl_handle = stream.native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  beast::error_code not_ip;
  net::ip::make_address(t.host, not_ip);
  const bool named = not_ip
                         ? X509_VERIFY_PARAM_set1_host(param, t.host.c_str(), t.host.size()) == 1 &&
                               SSL_set_tlsext_host_name(ssl_handle, t.host.c_str()) == 1
                         : X509_VERIFY_PARAM_set1_ip_asc(param, t.host.c_str()) == 1;
  if (!named) return MakeError(ErrorCode::kInternal, url + ": cannot set the expected TLS name");
  beast::tcp_stream& tcp = beast::get_lowest_layer(stream);
  AIRLOCK_TRY(Connect(tcp, ioc, t, url, connect_deadline));
  ExpireAt(tcp, connect_deadline);
  ec = Await(ioc, [&](auto handler) {
    stream.async_handshake(ssl::stream_base::client, std::move(handler));
  });
  if (ec) return tl::unexpected(NetError(url, "TLS handshake failed", ec));
  return Exchange(stream, tcp, ioc, t, url, req, sink, total_deadline);
}

}  // namespace

bool HasHttpScheme(const std::string& url) {
  return url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
}

Result<HttpResponse> HttpExchange(const HttpRequest& request, const HttpBodySink& sink) {
  if (request.method != "GET" && request.method != "POST") {
    return MakeError(ErrorCode::kInvalidArgument, "unsupported HTTP method " + request.method);
  }
  const SteadyClock::time_point total_deadline = request.total_timeout.count() > 0
                                                     ? SteadyClock::now() + request.total_timeout
                                                     : SteadyClock::time_point::max();
  std::string url = request.url;
  for (int redirects = 0;; ++redirects) {
    AIRLOCK_ASSIGN_OR_RETURN(Target t, ParseTarget(url));
    AIRLOCK_ASSIGN_OR_RETURN(Exchanged ex, ExchangeOnce(t, url, request, sink, total_deadline));
    if (!ex.location) return ex.response;
    if (redirects >= request.max_redirects) {
      return MakeError(ErrorCode::kIo, request.url + ": more than " +
                                           std::to_string(request.max_redirects) + " redirects");
    }
    auto base = boost::urls::parse_absolute_uri(url);
    auto ref = boost::urls::parse_uri_reference(*ex.location);
    if (!base || !ref) {
      return MakeError(ErrorCode::kIo, url + ": a redirect to an unusable Location");
    }
    boost::urls::url next;
    if (auto resolved = boost::urls::resolve(*base, *ref, next); !resolved) {
      return MakeError(ErrorCode::kIo, url + ": a redirect to an unusable Location");
    }
    next.remove_fragment();
    url = std::string(next.buffer());
    const bool downgrade = request.url.rfind("https://", 0) == 0 && url.rfind("https://", 0) != 0;
    if (!HasHttpScheme(url) || downgrade) {
      return MakeError(ErrorCode::kInvalidArgument, request.url + ": refused a redirect to " + url);
    }
  }
}

}  // namespace airlock::client
