// Real sockets on 127.0.0.1, port 0; the server runs in-process; clients use Beast's sync API.
#include "server/http_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include <curl/curl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "crypto/test_cert.h"
#include "common/bytes.h"
#include "crypto/hash.h"
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

// 32 MiB, far more than a socket buffer takes: the server's first sendmsg of it is partial.
std::string BigBody() {
  std::string body(32 << 20, '\0');
  for (size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + (i * 7919) % 26);
  return body;
}

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
    router_.Add("GET", "/big", [](const Request&) { return JsonResponse(200, BigBody()); });
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

TEST_F(HttpServerTest, AStringBodyLargerThanTheSocketBufferArrivesWhole) {
  const std::string expected = BigBody();
  Client client(port_);
  auto big = client.Send(http::verb::get, "/big");
  ASSERT_EQ(big.result_int(), 200);
  EXPECT_EQ(big[http::field::content_length], std::to_string(expected.size()));
  EXPECT_TRUE(big.body() == expected);
  EXPECT_TRUE(big.keep_alive());
  auto after = client.Send(http::verb::get, "/items/7");  // the connection is still in step
  EXPECT_EQ(after.body(), R"({"id":"7"})");
  auto head = client.Send(http::verb::head, "/big");
  EXPECT_EQ(head[http::field::content_length], std::to_string(expected.size()));
  EXPECT_TRUE(head.body().empty());
  EXPECT_EQ(client.Send(http::verb::get, "/items/8").body(), R"({"id":"8"})");
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

TEST_F(HttpServerTest, BodyInTheHeaderSegmentAndMalformedChunkedBody) {
  Client client(port_);
  // Header and body in one write: the body is parsed from what was already read.
  client.WriteRaw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  auto res = client.Read();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"({"size":5})");
  client.WriteRaw("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
  auto bad = client.Read();
  EXPECT_EQ(bad.result_int(), 400);
  EXPECT_FALSE(bad.keep_alive());
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

TEST(HttpServerAccessLog, OneJsonLinePerRequestWithEscapedPath) {
  Router router;
  Metrics metrics;
  AddHealthRoutes(&router, &metrics);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> lines;
  ServerOptions options;
  options.port = 0;
  options.threads = 1;
  options.access_log = true;
  options.log_sink = [&](std::string_view line) {
    std::lock_guard<std::mutex> lock(mu);
    lines.emplace_back(line);
    cv.notify_all();
  };
  HttpServer server(options, &router, &metrics);
  ASSERT_TRUE(server.Start());
  Client client(server.port());
  EXPECT_EQ(client.Send(http::verb::get, "/healthz?token=secret").result_int(), 200);
  EXPECT_EQ(client.Send(http::verb::get, "/caf%C3%A9/%22q%5C/%FF%01").result_int(), 404);
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return lines.size() >= 2; }));
  auto first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first["msg"], "request");
  EXPECT_EQ(first["level"], "info");
  EXPECT_EQ(first["method"], "GET");
  EXPECT_EQ(first["path"], "/healthz");  // no query string: it may carry secrets
  EXPECT_EQ(first["status"], 200);
  EXPECT_GT(first["bytes"].get<uint64_t>(), 0u);
  EXPECT_TRUE(first["duration_ms"].is_number());
  EXPECT_EQ(first["remote"], "127.0.0.1");
  const std::string time = first["time"];
  EXPECT_EQ(time.size(), 24u);  // 2026-11-26T10:57:41.054Z
  EXPECT_EQ(time.back(), 'Z');
  EXPECT_EQ(time[19], '.');
  auto second = nlohmann::json::parse(lines[1]);  // valid JSON although the path is not UTF-8
  EXPECT_EQ(second["path"], "/caf\xc3\xa9/\"q\\/\xef\xbf\xbd\x01");
  EXPECT_EQ(second["status"], 404);
  EXPECT_THAT(lines[0], Not(HasSubstr("secret")));
}

// ---- Upload routes
// -------------------------------------------------------------------------------

std::string ReadFileBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string Sha256Hex(const std::string& data) {
  return HexEncode(
      crypto::Sha256(ByteSpan(reinterpret_cast<const uint8_t*>(data.data()), data.size())));
}

bool DirEmpty(const std::filesystem::path& dir) { return std::filesystem::is_empty(dir); }

// Waits (bounded) for `condition`; polling, because the server's progress is not observable
// otherwise. Returns the condition's last value.
template <class F>
bool WaitFor(F condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

class UploadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/airlockd_upload_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    uploads_ = root_ / "uploads";
    std::filesystem::create_directories(uploads_);
    router_.AddUpload("POST", "/up", 4 << 20, [this](const Request& r) {
      std::lock_guard<std::mutex> lock(mu_);
      ++calls_;
      if (!r.upload) return JsonError(500, "internal", "no upload");
      seen_bytes_ = ReadFileBytes(r.upload->path);
      seen_length_ = r.upload->length;
      seen_sha_ = r.upload->sha256_hex;
      seen_in_dir_ = r.upload->path.parent_path() == uploads_;
      return JsonResponse(201, "{\"length\":" + std::to_string(r.upload->length) + "}");
    });
    router_.AddUpload("POST", "/keep", 4 << 20, [this](const Request& r) {
      std::filesystem::rename(r.upload->path, root_ / "kept");
      return JsonResponse(201, "{}");
    });
    ServerOptions options;
    options.port = 0;
    options.threads = 2;
    options.max_body_bytes = 1024;  // the JSON limit does not apply to upload routes
    options.access_log = false;
    options.upload_dir = uploads_;
    server_ = std::make_unique<HttpServer>(options, &router_, &metrics_);
    ASSERT_TRUE(server_->Start());
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(root_);
  }

  std::filesystem::path root_;
  std::filesystem::path uploads_;
  Router router_;
  Metrics metrics_;
  std::unique_ptr<HttpServer> server_;
  std::mutex mu_;
  int calls_ = 0;
  std::string seen_bytes_;
  uint64_t seen_length_ = 0;
  std::string seen_sha_;
  bool seen_in_dir_ = false;
};

TEST_F(UploadTest, StreamsThreeMiBToAFileWithItsDigest) {
  const std::string body = RandomBytes(3 << 20);
  Client client(server_->port());
  auto res =
      client.Send(http::verb::post, "/up", {{"Content-Type", "application/octet-stream"}}, body);
  ASSERT_EQ(res.result_int(), 201);
  EXPECT_EQ(res.body(), "{\"length\":3145728}");
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(calls_, 1);
  EXPECT_EQ(seen_length_, body.size());
  EXPECT_TRUE(seen_bytes_ == body);
  EXPECT_EQ(seen_sha_, Sha256Hex(body));
  EXPECT_TRUE(seen_in_dir_);
  EXPECT_TRUE(DirEmpty(uploads_));  // removed after the handler, before the response
  EXPECT_TRUE(res.keep_alive());
}

TEST_F(UploadTest, ChunkedUploadIsReassembled) {
  const std::string body = RandomBytes(300000);
  std::string raw = "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  const size_t pieces[] = {1, 4095, 100000, 65536, 300000 - 1 - 4095 - 100000 - 65536};
  size_t offset = 0;
  for (size_t n : pieces) {
    char size_line[32];
    std::snprintf(size_line, sizeof(size_line), "%zx\r\n", n);
    raw += size_line;
    raw += body.substr(offset, n);
    raw += "\r\n";
    offset += n;
  }
  raw += "0\r\n\r\n";
  Client client(server_->port());
  client.WriteRaw(raw);
  auto res = client.Read();
  ASSERT_EQ(res.result_int(), 201);
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(seen_length_, body.size());
  EXPECT_TRUE(seen_bytes_ == body);
  EXPECT_EQ(seen_sha_, Sha256Hex(body));
  EXPECT_TRUE(DirEmpty(uploads_));
}

TEST_F(UploadTest, OverLimitByContentLengthIs413AndLeavesNoFile) {
  Client client(server_->port());
  // Only the header: the limit is checked against Content-Length before any body byte is read.
  client.WriteRaw("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                  std::to_string((4 << 20) + 1) + "\r\n\r\n");
  auto res = client.Read();
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_THAT(res.body(), HasSubstr("\"error\":\"body_too_large\""));
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(DirEmpty(uploads_));
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(calls_, 0);
}

TEST_F(UploadTest, ChunkedOverLimitIs413AndLeavesNoFile) {
  Client client(server_->port());
  const std::string piece(1 << 20, 'z');
  std::string raw = "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 5; ++i) raw += "100000\r\n" + piece + "\r\n";  // 5 MiB > 4 MiB
  raw += "0\r\n\r\n";
  std::thread writer([&] {
    try {
      client.WriteRaw(raw);
    } catch (const std::exception&) {
      // The server may stop reading once it has answered.
    }
  });
  auto res = client.Read();
  writer.join();
  EXPECT_EQ(res.result_int(), 413);
  EXPECT_THAT(res.body(), HasSubstr("\"error\":\"body_too_large\""));
  EXPECT_TRUE(DirEmpty(uploads_));
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(calls_, 0);
}

TEST_F(UploadTest, DisconnectMidBodyLeavesNoFile) {
  {
    Client client(server_->port());
    client.WriteRaw("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 3000000\r\n\r\n" +
                    RandomBytes(1 << 20));
    // The server has the temporary file open once it reads the body.
    ASSERT_TRUE(WaitFor([&] { return !DirEmpty(uploads_); }));
    ASSERT_EQ(metrics_.in_flight(), 1);
  }  // the client disconnects here, 2 MB short
  // The server notices (the request leaves in-flight only after the file is gone).
  ASSERT_TRUE(WaitFor([&] { return metrics_.in_flight() == 0; }));
  EXPECT_TRUE(DirEmpty(uploads_));
  std::lock_guard<std::mutex> lock(mu_);
  EXPECT_EQ(calls_, 0);
}

TEST_F(UploadTest, HandlerMayKeepTheFileByRenamingIt) {
  const std::string body = RandomBytes(5000);
  Client client(server_->port());
  auto res = client.Send(http::verb::post, "/keep", {}, body);
  ASSERT_EQ(res.result_int(), 201);
  EXPECT_TRUE(ReadFileBytes(root_ / "kept") == body);
  EXPECT_TRUE(DirEmpty(uploads_));
}

// ---- TLS
// -----------------------------------------------------------------------------------------

using crypto::testing::MakeSelfSignedCert;

size_t CurlAppend(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

struct CurlResult {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::string body;
};

CurlResult CurlGet(const std::string& url, const std::filesystem::path& ca,
                   const std::string& post_body = "", long ssl_version = CURL_SSLVERSION_DEFAULT) {
  CurlResult result;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_CAINFO, ca.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, CurlAppend);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &result.body);
  curl_easy_setopt(curl.get(), CURLOPT_SSLVERSION, ssl_version);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 30L);
  if (!post_body.empty()) {
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, post_body.data());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(post_body.size()));
  }
  result.code = curl_easy_perform(curl.get());
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &result.status);
  return result;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/airlockd_tls_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    data_ = root_ / "data";
    ASSERT_TRUE(EnsureDataLayout(data_));
    ASSERT_TRUE(MakeSelfSignedCert(root_ / "cert.pem", root_ / "key.pem"));
    blob_ = RandomBytes((1 << 20) + 12345);  // several TLS file pieces
    WriteFile(data_ / "blobs" / kBlobDigest.substr(0, 2) / kBlobDigest, blob_);
    AddHealthRoutes(&router_, &metrics_);
    AddStaticRoutes(&router_, data_);
    router_.AddUpload("POST", "/up", 4 << 20, [](const Request& r) {
      return JsonResponse(201, "{\"sha256\":\"" + r.upload->sha256_hex + "\"}");
    });
    options_.port = 0;
    options_.threads = 1;
    options_.access_log = false;
    options_.upload_dir = root_;
    options_.tls_cert_file = (root_ / "cert.pem").string();
    options_.tls_key_file = (root_ / "key.pem").string();
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::filesystem::path root_;
  std::filesystem::path data_;
  std::string blob_;
  Router router_;
  Metrics metrics_;
  ServerOptions options_;
};

TEST_F(TlsTest, ServesHealthzBlobsAndUploadsOverTls) {
  HttpServer server(options_, &router_, &metrics_);
  ASSERT_TRUE(server.Start());
  const std::string base = "https://127.0.0.1:" + std::to_string(server.port());
  auto health = CurlGet(base + "/healthz", root_ / "cert.pem");
  ASSERT_EQ(health.code, CURLE_OK) << curl_easy_strerror(health.code);
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, R"({"status":"ok"})");

  auto blob = CurlGet(base + "/v1/blobs/" + kBlobDigest, root_ / "cert.pem");
  ASSERT_EQ(blob.code, CURLE_OK) << curl_easy_strerror(blob.code);
  EXPECT_EQ(blob.status, 200);
  EXPECT_EQ(blob.body.size(), blob_.size());
  EXPECT_TRUE(blob.body == blob_);

  const std::string upload = RandomBytes(700000);
  auto posted = CurlGet(base + "/up", root_ / "cert.pem", upload);
  ASSERT_EQ(posted.code, CURLE_OK) << curl_easy_strerror(posted.code);
  EXPECT_EQ(posted.status, 201);
  EXPECT_EQ(posted.body, "{\"sha256\":\"" + Sha256Hex(upload) + "\"}");
}

TEST_F(TlsTest, RefusesTls11AndPlainHttp) {
  HttpServer server(options_, &router_, &metrics_);
  ASSERT_TRUE(server.Start());
  const std::string port = std::to_string(server.port());
  auto old = CurlGet(
      "https://127.0.0.1:" + port + "/healthz", root_ / "cert.pem", "",
      static_cast<long>(CURL_SSLVERSION_TLSv1_1) | static_cast<long>(CURL_SSLVERSION_MAX_TLSv1_1));
  EXPECT_NE(old.code, CURLE_OK);
  auto plain = CurlGet("http://127.0.0.1:" + port + "/healthz", root_ / "cert.pem");
  EXPECT_NE(plain.code, CURLE_OK);
  // The server is still fine afterwards.
  EXPECT_EQ(CurlGet("https://127.0.0.1:" + port + "/healthz", root_ / "cert.pem").status, 200);
}

TEST_F(TlsTest, StartFailsForAMissingOrMismatchedKey) {
  ServerOptions missing = options_;
  missing.tls_key_file = (root_ / "nope.pem").string();
  HttpServer a(missing, &router_, &metrics_);
  auto started = a.Start();
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().code(), ErrorCode::kInvalidArgument);

  ASSERT_TRUE(MakeSelfSignedCert(root_ / "cert2.pem", root_ / "key2.pem"));
  ServerOptions mismatched = options_;
  mismatched.tls_key_file = (root_ / "key2.pem").string();
  HttpServer b(mismatched, &router_, &metrics_);
  started = b.Start();
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().code(), ErrorCode::kInvalidArgument);

  ServerOptions half = options_;
  half.tls_key_file.clear();
  HttpServer c(half, &router_, &metrics_);
  EXPECT_FALSE(c.Start());
}

}  // namespace

// The hand-written response head parses with Beast's own response parser to exactly the fields
// the server means, and handler fields that could split the response are dropped.
http::response<http::string_body> ParseHead(const std::string& head, const std::string& body) {
  http::response_parser<http::string_body> parser;
  parser.eager(true);
  boost::system::error_code ec;
  std::string wire = head + body;
  size_t used = parser.put(boost::asio::buffer(wire), ec);
  EXPECT_FALSE(ec) << ec.message() << "\n" << wire;
  EXPECT_EQ(used, wire.size()) << wire;
  EXPECT_TRUE(parser.is_done()) << wire;
  return parser.release();
}

TEST(AppendResponseHead, ParsesBackWithBeast) {
  Response response = JsonResponse(404, R"({"error":"not_found"})");
  response.SetHeader("Cache-Control", "no-store");
  std::string head;
  AppendResponseHead(&head, 11, response, response.body.size(), /*close=*/false);
  EXPECT_EQ(head,
            "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
            "Server: airlockd\r\nContent-Length: 21\r\n\r\n");
  auto parsed = ParseHead(head, response.body);
  EXPECT_EQ(parsed.result_int(), 404u);
  EXPECT_EQ(parsed.version(), 11u);
  EXPECT_TRUE(parsed.keep_alive());
  EXPECT_EQ(parsed[http::field::content_type], "application/json");
  EXPECT_EQ(parsed.body(), response.body);

  head.clear();
  AppendResponseHead(&head, 11, response, response.body.size(), /*close=*/true);
  EXPECT_FALSE(ParseHead(head, response.body).keep_alive());
  head.clear();
  AppendResponseHead(&head, 10, response, response.body.size(), /*close=*/false);
  auto http10 = ParseHead(head, response.body);
  EXPECT_EQ(http10.version(), 10u);
  EXPECT_TRUE(http10.keep_alive());
  head.clear();
  AppendResponseHead(&head, 10, response, response.body.size(), /*close=*/true);
  EXPECT_FALSE(ParseHead(head, response.body).keep_alive());
}

TEST(AppendResponseHead, DropsUnsafeAndServerOwnedFields) {
  Response response;
  response.status = 204;
  response.SetHeader("X-Split", "a\r\nSet-Cookie: evil=1");
  response.SetHeader("X-Lf", "a\nb");
  response.SetHeader("X-Nul", std::string("a\0b", 3));
  response.SetHeader("Bad Name", "x");
  response.SetHeader("Content-Length", "999");
  response.SetHeader("Connection", "upgrade");
  response.SetHeader("Transfer-Encoding", "chunked");
  response.SetHeader("Server", "other");
  response.SetHeader("ETag", "\"abc\"");
  std::string head;
  AppendResponseHead(&head, 11, response, std::nullopt, /*close=*/false);
  EXPECT_EQ(head, "HTTP/1.1 204 No Content\r\nETag: \"abc\"\r\nServer: airlockd\r\n\r\n");
}

}  // namespace airlock::server
