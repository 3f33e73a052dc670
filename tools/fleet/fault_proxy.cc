#include "fault_proxy.h"

#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <list>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

namespace airlock::fleet {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
}  // namespace

const char* FaultName(Fault fault) {
  switch (fault) {
    case Fault::kNone:
      return "none";
    case Fault::kTruncate:
      return "truncate";
    case Fault::kCorrupt:
      return "corrupt";
    case Fault::kStall:
      return "stall";
    case Fault::kReset:
      return "reset";
    case Fault::kReplay:
      return "replay";
  }
  return "none";
}

FaultRates FaultRates::Spread(double total) {
  const double each = total / 5;
  return FaultRates{each, each, each, each, each};
}

struct FaultProxy::Impl {
  FaultProxyOptions options;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::thread accept_thread;

  std::mutex mu;  // guards everything below
  bool stopping = false;
  std::condition_variable idle;
  int active = 0;  // connection threads running (they are detached)
  std::list<std::shared_ptr<tcp::socket>> sockets;
  std::mt19937_64 rng;
  size_t next_upstream = 0;
  size_t next_source = 0;
  std::map<std::string, std::string> last_by_target;  // target -> the bytes of its last reply
  std::string last_any;
  std::array<uint64_t, kFaultKinds> counts{};

  // One draw: the fault for the next reply, its parameter (cut point or byte offset, XOR mask).
  Fault Draw() {
    std::uniform_real_distribution<double> u(0, 1);
    double x = u(rng), edge = 0;
    const FaultRates& r = options.rates;
    const std::pair<double, Fault> table[] = {{r.truncate, Fault::kTruncate},
                                              {r.corrupt, Fault::kCorrupt},
                                              {r.stall, Fault::kStall},
                                              {r.reset, Fault::kReset},
                                              {r.replay, Fault::kReplay}};
    for (const auto& [rate, fault] : table) {
      edge += rate;
      if (x < edge) return fault;
    }
    return Fault::kNone;
  }
  uint64_t Uniform(uint64_t lo, uint64_t hi) {  // [lo, hi]
    std::lock_guard lock(mu);
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
  }

  void AcceptLoop() {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(io);
      beast::error_code ec;
      acceptor.accept(*socket, ec);
      std::lock_guard lock(mu);
      if (stopping) return;
      if (ec) continue;
      sockets.push_back(socket);
      auto it = std::prev(sockets.end());
      active++;
      std::thread([this, socket, it] {
        Serve(*socket);
        std::lock_guard lock(mu);
        beast::error_code ignored;
        socket->close(ignored);
        sockets.erase(it);
        if (--active == 0) idle.notify_all();
      }).detach();
    }
  }

  // Forwards one request to the next upstream; the reply serialized, or "" when it failed.
  std::string Forward(http::request<http::string_body>& request) {
    uint16_t port;
    uint32_t source = 0;
    {
      std::lock_guard lock(mu);
      port = options.upstream_ports[next_upstream++ % options.upstream_ports.size()];
      if (options.source_addresses > 1) {
        source = 0x7F010001u + static_cast<uint32_t>(next_source++ % options.source_addresses);
      }
    }
    beast::error_code ec;
    tcp::socket upstream(io);
    if (source != 0) {
      upstream.open(tcp::v4(), ec);
      if (!ec) upstream.bind(tcp::endpoint(asio::ip::address_v4(source), 0), ec);
      if (ec) return "";
    }
    upstream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    if (ec) return "";
    http::write(upstream, request, ec);
    if (ec) return "";
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(options.max_body_bytes);
    parser.skip(request.method() == http::verb::head);
    http::read(upstream, buffer, parser, ec);
    if (ec) return "";
    http::response<http::string_body> reply = parser.release();
    if (request.method() != http::verb::head && !reply.chunked()) reply.prepare_payload();
    std::ostringstream out;
    out << reply;
    return out.str();
  }

  void Serve(tcp::socket& socket) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(options.max_body_bytes);
      beast::error_code ec;
      http::read(socket, buffer, parser, ec);
      if (ec) return;
      http::request<http::string_body> request = parser.release();
      const bool keep_alive = request.keep_alive();
      const std::string target(request.target());
      std::string reply = Forward(request);
      if (reply.empty()) {
        http::response<http::string_body> bad{http::status::bad_gateway, request.version()};
        bad.keep_alive(false);
        bad.body() = "upstream failed\n";
        bad.prepare_payload();
        http::write(socket, bad, ec);
        return;
      }
      Fault fault;
      std::string earlier;
      {
        std::lock_guard lock(mu);
        fault = Draw();
        if (fault == Fault::kReplay) {
          auto it = last_by_target.find(target);
          earlier = it != last_by_target.end() ? it->second : last_any;
          if (earlier.empty()) fault = Fault::kNone;
        }
        counts[static_cast<int>(fault)]++;
        // What a later replay sends: replies as the upstream sent them, never damaged ones.
        last_by_target[target] = reply;
        last_any = reply;
      }
      std::string out = reply;
      bool close_after = !keep_alive;
      switch (fault) {
        case Fault::kNone:
          break;
        case Fault::kTruncate:
          out.resize(Uniform(0, reply.size() - 1));
          close_after = true;
          break;
        case Fault::kCorrupt: {
          const size_t head = reply.find("\r\n\r\n");
          const size_t body = head == std::string::npos ? 0 : head + 4;
          const size_t at =
              body < reply.size() ? Uniform(body, reply.size() - 1) : Uniform(0, reply.size() - 1);
          out[at] = static_cast<char>(out[at] ^ static_cast<char>(Uniform(1, 255)));
          break;
        }
        case Fault::kStall:
          std::this_thread::sleep_for(std::chrono::milliseconds(options.stall_ms));
          break;
        case Fault::kReset: {
          socket.set_option(asio::socket_base::linger(true, 0), ec);
          socket.close(ec);
          return;
        }
        case Fault::kReplay:
          out = earlier;
          close_after = true;  // the earlier reply may not match this request's framing
          break;
      }
      asio::write(socket, asio::buffer(out), ec);
      if (ec || close_after) {
        socket.shutdown(tcp::socket::shutdown_both, ec);
        return;
      }
    }
  }
};

FaultProxy::FaultProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<FaultProxy>> FaultProxy::Start(const FaultProxyOptions& options) {
  if (options.upstream_ports.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "fault proxy: no upstream");
  }
  const FaultRates& r = options.rates;
  for (double rate : {r.truncate, r.corrupt, r.stall, r.reset, r.replay}) {
    if (!(rate >= 0 && rate <= 1)) {
      return MakeError(ErrorCode::kInvalidArgument, "fault proxy: a rate outside [0, 1]");
    }
  }
  if (r.Total() > 1.0 + 1e-9) {
    return MakeError(ErrorCode::kInvalidArgument, "fault proxy: the rates add up to more than 1");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->rng.seed(options.seed);
  beast::error_code ec;
  const tcp::endpoint at(asio::ip::make_address("127.0.0.1"), options.listen_port);
  impl->acceptor.open(at.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(at, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return MakeError(ErrorCode::kIo, "fault proxy: cannot listen on 127.0.0.1:" +
                                         std::to_string(options.listen_port) + ": " + ec.message());
  }
  Impl* raw = impl.get();
  raw->accept_thread = std::thread([raw] { raw->AcceptLoop(); });
  return std::unique_ptr<FaultProxy>(new FaultProxy(std::move(impl)));
}

FaultProxy::~FaultProxy() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
    beast::error_code ec;
    impl_->acceptor.cancel(ec);
    ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);  // wakes the blocking accept
    for (auto& socket : impl_->sockets) socket->shutdown(tcp::socket::shutdown_both, ec);
  }
  impl_->accept_thread.join();
  {
    std::unique_lock lock(impl_->mu);
    impl_->idle.wait(lock, [this] { return impl_->active == 0; });
  }
  beast::error_code ec;
  impl_->acceptor.close(ec);
}

uint16_t FaultProxy::port() const { return impl_->acceptor.local_endpoint().port(); }

std::array<uint64_t, kFaultKinds> FaultProxy::Counts() const {
  std::lock_guard lock(impl_->mu);
  return impl_->counts;
}

}  // namespace airlock::fleet
