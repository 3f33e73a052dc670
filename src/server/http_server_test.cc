// Real sockets on 127.0.0.1, port 0; the server runs in-process; clients use Beast's sync API.
#include "server/http_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "server/metrics.h"
#include "server/router.h"
#include "server/static_files.h"

namespace airlock::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using ::testing::HasSubstr;
using ::testing::Not;

void WriteFile(const std::filesystem::path& path, const std::string& data) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << data;
}

std::string RandomBytes(size_t n) {
  std::mt19937 rng(42);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

const std::string kBlobDigest(64, 'a');

class Client {
 public:
  explicit Client(uint16_t port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  http::response<http::string_body> Send(
      http::verb method, std::string target,
      std::vector<std::pair<std::string, std::string>> headers = {}, std::string body = "") {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [name, value] : headers) req.set(name, value);
    if (!body.empty() || method == http::verb::post) {
      req.body() = std::move(body);
      req.prepare_payload();
    }
    http::write(socket_, req);
    return Read(method == http::verb::head);
  }
  http::response<http::string_body> Read(bool head = false) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    parser.skip(head);
    http::read(socket_, buffer_, parser);
    return parser.release();
  }
  void WriteRaw(const std::string& text) { asio::write(socket_, asio::buffer(text)); }
  // True when the server closed the connection (EOF) before sending anything more.
  bool ClosedByPeer() {
    char c;
    boost::system::error_code ec;
    socket_.read_some(asio::buffer(&c, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }

 private:
  asio::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/airlockd_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    data_ = root_ / "data";
    ASSERT_TRUE(EnsureDataLayout(data_));
    WriteFile(data_ / "secret.txt", "TOP-SECRET");
    WriteFile(data_ / "tuf" / "outside.json", "OUTSIDE-APP");
    WriteFile(data_ / "tuf" / "app" / "timestamp.json", R"({"signed":"ts"})");
    WriteFile(data_ / "tuf" / "app" / "3.root.json", R"({"signed":"root3"})");
    WriteFile(data_ / "tuf" / "app" / ".hidden", "HIDDEN");
    std::filesystem::create_symlink("../../secret.txt", data_ / "tuf" / "app" / "link.json");
    blob_ = RandomBytes(100000);
    WriteFile(data_ / "blobs" / kBlobDigest.substr(0, 2) / kBlobDigest, blob_);

    AddHealthRoutes(&router_, &metrics_);
    AddStaticRoutes(&router_, data_);
    router_.Add("POST", "/echo", [](const Request& r) {
      return JsonResponse(200, "{\"size\":" + std::to_string(r.body.size()) + "}");
    });
    router_.Add("GET", "/slow", [this](const Request&) {
      slow_entered_.set_value();
      slow_release_.get_future().wait();
      return JsonResponse(200, "{\"slow\":true}");
    });
    router_.Add("GET", "/items/{id}", [](const Request& r) {
      return JsonResponse(200, "{\"id\":\"" + std::string(r.Param("id")) + "\"}");
    });
    ServerOptions options;
    options.address = "127.0.0.1";
    options.port = 0;
    options.threads = 2;
    options.max_body_bytes = 1024;
    options.max_header_bytes = 8192;
    options.access_log = false;
    server_ = std::make_unique<HttpServer>(options, &router_, &metrics_);
    ASSERT_TRUE(server_->Start());
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(root_);
  }

  std::filesystem::path root_;
  std::filesystem::path data_;
  std::string blob_;
  Router router_;
  Metrics metrics_;
  std::promise<void> slow_entered_;
  std::promise<void> slow_release_;
  std::unique_ptr<HttpServer> server_;
  uint16_t port_ = 0;
};

TEST_F(HttpServerTest, HealthzAnswersOk) {
  Client client(port_);
  auto res = client.Send(http::verb::get, "/healthz");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"({"status":"ok"})");
  EXPECT_EQ(res[http::field::content_type], "application/json");
}

TEST_F(HttpServerTest, KeepAliveServesTwoRequestsOnOneConnection) {
  Client client(port_);
  auto first = client.Send(http::verb::get, "/healthz");
  auto second = client.Send(http::verb::get, "/items/42");
  EXPECT_EQ(first.result_int(), 200);
  EXPECT_TRUE(first.keep_alive());
  EXPECT_EQ(second.result_int(), 200);
  EXPECT_EQ(second.body(), R"({"id":"42"})");
  EXPECT_THAT(metrics_.Render(), HasSubstr("airlock_http_connections_total 1\n"));
}

TEST_F(HttpServerTest, MetricsCountRequestsByRouteAndStatus) {
  Client client(port_);
  client.Send(http::verb::get, "/healthz");
  client.Send(http::verb::get, "/healthz");
  client.Send(http::verb::get, "/nowhere");
  auto res = client.Send(http::verb::get, "/metrics");
  ASSERT_EQ(res.result_int(), 200);
  EXPECT_THAT(res[http::field::content_type], HasSubstr("text/plain; version=0.0.4"));
  const std::string& text = res.body();
  EXPECT_THAT(text,
              HasSubstr("airlock_http_requests_total{route=\"GET /healthz\",status=\"200\"} 2\n"));
  EXPECT_THAT(text,
              HasSubstr("airlock_http_requests_total{route=\"unmatched\",status=\"404\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("airlock_http_requests_in_flight 1\n"));  // this request
  EXPECT_THAT(text, HasSubstr("# TYPE airlock_http_response_bytes_total counter"));
  EXPECT_THAT(text, Not(HasSubstr("airlock_http_response_bytes_total 0\n")));
}

TEST_F(HttpServerTest, UnknownPathIs404Json) {
  Client client(port_);
  auto res = client.Send(http::verb::get, "/no/such/thing");
  EXPECT_EQ(res.result_int(), 404);
  EXPECT_THAT(res.body(), HasSubstr("\"error\":\"not_found\""));
  EXPECT_THAT(res.body(), HasSubstr("\"message\""));
}

TEST_F(HttpServerTest, WrongMethodIs405WithAllow) {
  Client client(port_);
  auto res = client.Send(http::verb::delete_, "/healthz");
  EXPECT_EQ(res.result_int(), 405);
  EXPECT_EQ(res[http::field::allow], "GET, HEAD");
  EXPECT_THAT(res.body(), HasSubstr("\"error\":\"method_not_allowed\""));
  auto echo = client.Send(http::verb::get, "/echo");
  EXPECT_EQ(echo.result_int(), 405);
  EXPECT_EQ(echo[http::field::allow], "POST");
}

TEST_F(HttpServerTest, BodyWithinLimitReachesHandler) {
  Client client(port_);
  auto res = client.Send(http::verb::post, "/echo", {}, std::string(1024, 'x'));
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"({"size":1024})");
}

TEST_F(HttpServerTest, BodyTooLargeIs413) {
  Client client(port_);
  auto res = client.Send(http::verb::post, "/echo", {}, std::string(1025, 'x'));
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_THAT(res.body(), HasSubstr("\"error\":\"body_too_large\""));
  EXPECT_FALSE(res.keep_alive());
}

TEST_F(HttpServerTest, ChunkedBodyTooLargeIs413) {
  Client client(port_);
  std::string chunk(800, 'y');
  client.WriteRaw(
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "320\r\n" +
      chunk + "\r\n320\r\n" + chunk + "\r\n0\r\n\r\n");
  auto res = client.Read();
  EXPECT_EQ(res.result_int(), 413);
}

TEST_F(HttpServerTest, OversizedHeaderIs431) {
  Client client(port_);
  client.WriteRaw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'h') +
                  "\r\n\r\n");
  auto res = client.Read();
  EXPECT_EQ(res.result_int(), 431);
}

TEST_F(HttpServerTest, MalformedRequestIs400) {
  Client client(port_);
  client.WriteRaw("GET /healthz HTTP/1.1\r\nHost x\r\n\r\n");
  auto res = client.Read();
  EXPECT_EQ(res.result_int(), 400);
}

TEST_F(HttpServerTest, TufFileHasCacheHeadersAndRevalidates) {
  Client client(port_);
  auto ts = client.Send(http::verb::get, "/tuf/app/timestamp.json");
  ASSERT_EQ(ts.result_int(), 200);
  EXPECT_EQ(ts.body(), R"({"signed":"ts"})");
  EXPECT_EQ(ts[http::field::cache_control], "no-cache");
  EXPECT_EQ(ts[http::field::content_type], "application/json");
  EXPECT_FALSE(ts[http::field::last_modified].empty());
  std::string etag(ts[http::field::etag]);
  ASSERT_FALSE(etag.empty());

  auto again = client.Send(http::verb::get, "/tuf/app/timestamp.json", {{"If-None-Match", etag}});
  EXPECT_EQ(again.result_int(), 304);
  EXPECT_TRUE(again.body().empty());

  auto root = client.Send(http::verb::get, "/tuf/app/3.root.json");
  ASSERT_EQ(root.result_int(), 200);
  EXPECT_EQ(root.body(), R"({"signed":"root3"})");
  EXPECT_EQ(root[http::field::cache_control], "public, max-age=31536000, immutable");

  auto head = client.Send(http::verb::head, "/tuf/app/3.root.json");
  EXPECT_EQ(head.result_int(), 200);
  EXPECT_EQ(head[http::field::content_length], "18");
  // The connection is still in step after HEAD.
  EXPECT_EQ(client.Send(http::verb::get, "/healthz").result_int(), 200);
}

TEST_F(HttpServerTest, PathTraversalIsRefusedAndReadsNothingOutside) {
  for (const std::string target :
       {"/tuf/app/../outside.json", "/tuf/app/%2e%2e/outside.json", "/tuf/app/%2E%2E/outside.json",
        "/tuf/app/..%2foutside.json", "/tuf/app/%2e%2e%2f%2e%2e%2fsecret.txt", "/tuf/../secret.txt",
        "/tuf/%2e%2e/secret.txt/x", "/tuf/app/.hidden", "/tuf/app/link.json",
        "/tuf/app//timestamp.json", "/tuf/app/./timestamp.json", "/tuf/app/%00x", "/tuf/app/%zz",
        "/tuf/.app/timestamp.json"}) {
    SCOPED_TRACE(target);
    Client client(port_);
    auto res = client.Send(http::verb::get, target);
    EXPECT_TRUE(res.result_int() == 404 || res.result_int() == 400) << res.result_int();
    EXPECT_THAT(res.body(), Not(HasSubstr("SECRET")));
    EXPECT_THAT(res.body(), Not(HasSubstr("OUTSIDE")));
    EXPECT_THAT(res.body(), Not(HasSubstr("HIDDEN")));
  }
}

TEST_F(HttpServerTest, BlobIsServedWhole) {
  Client client(port_);
  auto res = client.Send(http::verb::get, "/v1/blobs/" + kBlobDigest);
  ASSERT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), blob_);
  EXPECT_EQ(res[http::field::accept_ranges], "bytes");
  EXPECT_EQ(res[http::field::etag], "\"" + kBlobDigest + "\"");
  // Keep-alive still works after a sendfile body.
  EXPECT_EQ(client.Send(http::verb::get, "/healthz").result_int(), 200);
}

TEST_F(HttpServerTest, BlobRangeFirstBytes) {
  Client client(port_);
  auto res = client.Send(http::verb::get, "/v1/blobs/" + kBlobDigest, {{"Range", "bytes=0-99"}});
  ASSERT_EQ(res.result_int(), 206);
  EXPECT_EQ(res.body(), blob_.substr(0, 100));
  EXPECT_EQ(res[http::field::content_range], "bytes 0-99/100000");
  auto middle =
      client.Send(http::verb::get, "/v1/blobs/" + kBlobDigest, {{"Range", "bytes=50000-"}});
  ASSERT_EQ(middle.result_int(), 206);
  EXPECT_EQ(middle.body(), blob_.substr(50000));
}

TEST_F(HttpServerTest, BlobSuffixRange) {
  Client client(port_);
  auto res = client.Send(http::verb::get, "/v1/blobs/" + kBlobDigest, {{"Range", "bytes=-500"}});
  ASSERT_EQ(res.result_int(), 206);
  EXPECT_EQ(res.body(), blob_.substr(blob_.size() - 500));
  EXPECT_EQ(res[http::field::content_range], "bytes 99500-99999/100000");
}

TEST_F(HttpServerTest, BlobRangeOutsideIs416) {
  Client client(port_);
  auto res = client.Send(http::verb::get, "/v1/blobs/" + kBlobDigest, {{"Range", "bytes=100000-"}});
  EXPECT_EQ(res.result_int(), 416);
  EXPECT_EQ(res[http::field::content_range], "bytes */100000");
  EXPECT_THAT(res.body(), HasSubstr("range_not_satisfiable"));
}

TEST_F(HttpServerTest, UnknownOrMalformedBlobIs404) {
  Client client(port_);
  EXPECT_EQ(client.Send(http::verb::get, "/v1/blobs/" + std::string(64, 'b')).result_int(), 404);
  EXPECT_EQ(client.Send(http::verb::get, "/v1/blobs/../secret.txt").result_int(), 404);
  EXPECT_EQ(client.Send(http::verb::get, "/v1/blobs/" + std::string(64, 'A')).result_int(), 404);
}

TEST(HttpServerTimeouts, SlowHeaderIsCutOffAtReadTimeout) {
  Router router;
  Metrics metrics;
  AddHealthRoutes(&router, &metrics);
  ServerOptions options;
  options.port = 0;
  options.threads = 1;
  options.read_timeout = std::chrono::milliseconds(200);
  options.access_log = false;
  HttpServer server(options, &router, &metrics);
  ASSERT_TRUE(server.Start());
  Client client(server.port());
  const auto start = std::chrono::steady_clock::now();
  client.WriteRaw("GET /healthz HTTP/1.1\r\nHost: x\r\n");  // never finishes the header
  EXPECT_TRUE(client.ClosedByPeer());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST_F(HttpServerTest, StopFinishesInFlightRequestThenRefusesConnections) {
  Client idle(port_);
  ASSERT_EQ(idle.Send(http::verb::get, "/healthz").result_int(), 200);

  std::future<http::response<http::string_body>> slow = std::async(std::launch::async, [this] {
    Client client(port_);
    return client.Send(http::verb::get, "/slow");
  });
  slow_entered_.get_future().wait();
  server_->Stop();
  slow_release_.set_value();
  auto res = slow.get();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"({"slow":true})");
  EXPECT_FALSE(res.keep_alive());
  // The idle keep-alive connection is closed without a response. (Checked after the release: the
  // blocked handler may hold the same I/O thread.)
  EXPECT_TRUE(idle.ClosedByPeer());
  server_->Wait();

  asio::io_context ioc;
  tcp::socket socket(ioc);
  boost::system::error_code ec;
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
  EXPECT_TRUE(ec) << "connected after shutdown";
}

}  // namespace
}  // namespace airlock::server
