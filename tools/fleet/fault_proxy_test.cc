// Each fault of the fault proxy against a tiny loopback HTTP server: the exact effect on the bytes
// the client receives (a strict prefix, one byte changed in the body, the same bytes later, a TCP
// reset with nothing received, an earlier reply's bytes), and the round-robin over two upstreams.
#include "fault_proxy.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <string>
#include <thread>

namespace airlock::fleet {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// Answers /big with 4000 bytes, /count with "count=N" (N counts its requests), anything else
// with its name. One request per connection.
class TinyServer {
 public:
  explicit TinyServer(std::string name) : name_(std::move(name)) {
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    thread_ = std::thread([this] { Loop(); });
  }
  ~TinyServer() {
    stop_ = true;
    beast::error_code ec;
    tcp::socket poke(io_);
    poke.connect(acceptor_.local_endpoint(), ec);  // wakes the accept
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  void Loop() {
    while (!stop_) {
      tcp::socket socket(io_);
      beast::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stop_) continue;
      beast::flat_buffer buffer;
      http::request<http::string_body> request;
      http::read(socket, buffer, request, ec);
      if (ec) continue;
      http::response<http::string_body> reply{http::status::ok, 11};
      reply.set(http::field::content_type, "text/plain");
      if (request.target() == "/big") {
        for (int i = 0; i < 4000; ++i) reply.body().push_back(static_cast<char>('a' + i % 26));
      } else if (request.target() == "/count") {
        reply.body() = "count=" + std::to_string(++count_);
      } else {
        reply.body() = name_;
      }
      reply.keep_alive(false);
      reply.prepare_payload();
      http::write(socket, reply, ec);
      socket.shutdown(tcp::socket::shutdown_both, ec);
    }
  }
  std::string name_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::atomic<bool> stop_{false};
  int count_ = 0;
  std::thread thread_;
};

struct Received {
  std::string bytes;
  beast::error_code error;  // what ended the read (eof when the peer closed cleanly)
};

// A GET of `target` on 127.0.0.1:port, everything read until the connection ends.
Received Get(uint16_t port, const std::string& target) {
  asio::io_context io;
  tcp::socket socket(io);
  Received got;
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), got.error);
  if (got.error) return got;
  const std::string request =
      "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  asio::write(socket, asio::buffer(request), got.error);
  if (got.error) return got;
  char chunk[4096];
  for (;;) {
    const size_t n = socket.read_some(asio::buffer(chunk), got.error);
    got.bytes.append(chunk, n);
    if (got.error) return got;
  }
}

std::unique_ptr<FaultProxy> StartProxy(std::vector<uint16_t> upstreams, FaultRates rates,
                                       int64_t stall_ms = 1000) {
  FaultProxyOptions options;
  options.upstream_ports = std::move(upstreams);
  options.rates = rates;
  options.stall_ms = stall_ms;
  auto proxy = FaultProxy::Start(options);
  EXPECT_TRUE(proxy) << proxy.error().message();
  return proxy ? std::move(*proxy) : nullptr;
}

size_t BodyStart(const std::string& reply) { return reply.find("\r\n\r\n") + 4; }

TEST(FaultProxy, WithoutFaultsPassesTheReplyByteForByte) {
  TinyServer server("a");
  auto proxy = StartProxy({server.port()}, {});
  const Received direct = Get(server.port(), "/big");
  const Received via = Get(proxy->port(), "/big");
  EXPECT_EQ(via.error, asio::error::eof);
  EXPECT_EQ(via.bytes, direct.bytes);
  EXPECT_EQ(proxy->Counts()[static_cast<int>(Fault::kNone)], 1u);
}

TEST(FaultProxy, TruncateSendsAStrictPrefixThenCloses) {
  TinyServer server("a");
  const std::string full = Get(server.port(), "/big").bytes;
  auto proxy = StartProxy({server.port()}, {.truncate = 1});
  for (int i = 0; i < 20; ++i) {
    const Received via = Get(proxy->port(), "/big");
    EXPECT_EQ(via.error, asio::error::eof);
    EXPECT_LT(via.bytes.size(), full.size());
    EXPECT_EQ(via.bytes, full.substr(0, via.bytes.size()));
  }
  EXPECT_EQ(proxy->Counts()[static_cast<int>(Fault::kTruncate)], 20u);
}

TEST(FaultProxy, CorruptChangesExactlyOneByteOfTheBody) {
  TinyServer server("a");
  const std::string full = Get(server.port(), "/big").bytes;
  auto proxy = StartProxy({server.port()}, {.corrupt = 1});
  for (int i = 0; i < 20; ++i) {
    const Received via = Get(proxy->port(), "/big");
    EXPECT_EQ(via.error, asio::error::eof);
    ASSERT_EQ(via.bytes.size(), full.size());
    std::vector<size_t> differ;
    for (size_t k = 0; k < full.size(); ++k) {
      if (via.bytes[k] != full[k]) differ.push_back(k);
    }
    ASSERT_EQ(differ.size(), 1u);
    EXPECT_GE(differ[0], BodyStart(full));
  }
}

TEST(FaultProxy, StallHoldsTheReplyThenSendsItIntact) {
  TinyServer server("a");
  const std::string full = Get(server.port(), "/big").bytes;
  auto proxy = StartProxy({server.port()}, {.stall = 1}, 300);
  const auto start = std::chrono::steady_clock::now();
  const Received via = Get(proxy->port(), "/big");
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(via.error, asio::error::eof);
  EXPECT_EQ(via.bytes, full);
  EXPECT_GE(took, std::chrono::milliseconds(300));
}

TEST(FaultProxy, ResetSendsNothingAndResetsTheConnection) {
  TinyServer server("a");
  auto proxy = StartProxy({server.port()}, {.reset = 1});
  const Received via = Get(proxy->port(), "/big");
  EXPECT_EQ(via.error, asio::error::connection_reset);
  EXPECT_EQ(via.bytes, "");
  EXPECT_EQ(proxy->Counts()[static_cast<int>(Fault::kReset)], 1u);
}

TEST(FaultProxy, ReplaySendsTheEarlierReplyToTheSameTarget) {
  TinyServer server("a");
  FaultProxyOptions options;
  options.upstream_ports = {server.port()};
  // The first reply has nothing earlier to replay: it passes (counted as none); later ones replay.
  options.rates.replay = 1;
  auto proxy = std::move(*FaultProxy::Start(options));
  const Received first = Get(proxy->port(), "/count");
  EXPECT_NE(first.bytes.find("count=1"), std::string::npos) << first.bytes;
  Get(proxy->port(), "/other");
  const Received second = Get(proxy->port(), "/count");
  EXPECT_EQ(second.bytes, first.bytes);  // the server said count=2: the client got count=1's bytes
  const Received third = Get(server.port(), "/count");
  EXPECT_NE(third.bytes.find("count=3"), std::string::npos) << third.bytes;
  // /other had no earlier reply of its own: it got the last of any target (count=1's) too.
  EXPECT_EQ(proxy->Counts()[static_cast<int>(Fault::kReplay)], 2u);
  EXPECT_EQ(proxy->Counts()[static_cast<int>(Fault::kNone)], 1u);
}

TEST(FaultProxy, RoundRobinAlternatesTheUpstreams) {
  TinyServer one("one"), two("two");
  auto proxy = StartProxy({one.port(), two.port()}, {});
  std::string seen;
  for (int i = 0; i < 4; ++i) {
    const std::string bytes = Get(proxy->port(), "/who").bytes;
    seen += bytes.substr(BodyStart(bytes)) + " ";
  }
  EXPECT_EQ(seen, "one two one two ");
}

TEST(FaultProxy, AnUnreachableUpstreamIsA502) {
  asio::io_context io;
  tcp::acceptor closed(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const uint16_t dead = closed.local_endpoint().port();
  closed.close();
  auto proxy = StartProxy({dead}, {});
  const Received via = Get(proxy->port(), "/x");
  EXPECT_EQ(via.bytes.rfind("HTTP/1.1 502 Bad Gateway\r\n", 0), 0u) << via.bytes;
}

TEST(FaultProxy, RatesAboveOneInTotalAreRefused) {
  FaultProxyOptions options;
  options.upstream_ports = {1};
  options.rates = {.truncate = 0.6, .corrupt = 0.6};
  auto proxy = FaultProxy::Start(options);
  ASSERT_FALSE(proxy);
  EXPECT_EQ(proxy.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(proxy.error().message(), "fault proxy: the rates add up to more than 1");
  options.rates = {};
  options.upstream_ports.clear();
  auto none = FaultProxy::Start(options);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message(), "fault proxy: no upstream");
}

}  // namespace
}  // namespace airlock::fleet
