// The Capgo routes over a real SQLite store and real sockets on 127.0.0.1 (port 0), with the Capgo vectors.
#include "server/capgo_routes.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "crypto/hash.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/static_files.h"
#include "server/store_catalog.h"
#include "storage/store.h"

namespace airlock::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Json = nlohmann::json;

constexpr char kApp[] = "com.example.otatest";
constexpr char kRoutesDevice[] = "7239a82f-4ea8-4e33-9085-f4ad974d3fc4";

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::filesystem::path Vectors() { return std::filesystem::path(AIRLOCK_VECTORS_DIR) / "capgo"; }

class RoutesClient {
 public:
  explicit RoutesClient(uint16_t port) : socket_(ioc_) {
    socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  http::response<http::string_body> Send(http::verb method, const std::string& target,
                                         const std::string& body = "") {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (method != http::verb::get) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    http::write(socket_, req);
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    http::read(socket_, buffer_, parser);
    return parser.release();
  }

 private:
  asio::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
};

class CapgoRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/airlock_capgo_routes_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    ASSERT_TRUE(EnsureDataLayout(root_));
    auto store = storage::OpenStore("sqlite:" + (root_ / "airlock.db").string(), 1000);
    ASSERT_TRUE(store) << store.error().ToString();
    store_ = std::move(*store);

    // The Capgo-encrypted vector bundle, stored content-addressed.
    blob_ = ReadFile(Vectors() / "full" / "bundle_encrypted.zip");
    ASSERT_FALSE(blob_.empty());
    digest_ = HexEncode(crypto::Sha256(ByteSpan(reinterpret_cast<const uint8_t*>(blob_.data()),
                                                blob_.size())));
    std::filesystem::create_directories(root_ / "blobs" / digest_.substr(0, 2));
    std::filesystem::copy_file(Vectors() / "full" / "bundle_encrypted.zip",
                               root_ / "blobs" / digest_.substr(0, 2) / digest_);
    Json encrypted = Json::parse(ReadFile(Vectors() / "full" / "encrypt_out_v3.json"));
    session_key_ = encrypted["ivSessionKey"];
    checksum_ = encrypted["checksum"];

    ASSERT_TRUE(store_->CreateApp({kApp, "OTA test", 1000}));
    storage::Channel channel;
    channel.app_id = kApp;
    channel.name = "production";
    channel.is_default = true;
    ASSERT_TRUE(store_->CreateChannel(channel));
    storage::Release release;
    release.app_id = kApp;
    release.version = "1.0.0";
    release.target_name = "com.example.otatest_1.0.0.zip";
    release.sha256 = digest_;
    release.length = static_cast<int64_t>(blob_.size());
    release.capgo_session_key = session_key_;
    release.capgo_checksum = checksum_;
    release.created_at = 1000;
    auto published = store_->PublishRelease(release, "production");
    ASSERT_TRUE(published) << published.error().ToString();

    AddHealthRoutes(&router_, &metrics_);
    AddStaticRoutes(&router_, root_);
    ServerOptions options;
    options.port = 0;
    options.threads = 2;
    options.access_log = false;
    server_ = std::make_unique<HttpServer>(options, &router_, &metrics_);
    // The public url is only known after binding: LateCatalog forwards to the StoreCatalog made then.
  }

  void StartServer() {
    ASSERT_TRUE(server_->Start());
    catalog_ = std::make_unique<StoreCatalog>(store_.get(),
                                              "http://127.0.0.1:" + std::to_string(server_->port()));
  }

  void TearDown() override {
    if (server_) {
      server_->Stop();
      server_->Wait();
    }
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  // A catalog whose public url is set once the server has a port.
  class LateCatalog : public CapgoReleaseCatalog {
   public:
    explicit LateCatalog(std::unique_ptr<StoreCatalog>* inner) : inner_(inner) {}
    Result<std::optional<CapgoOffer>> FindOffer(const CapgoDeviceInfo& device) override {
      return (*inner_)->FindOffer(device);
    }

   private:
    std::unique_ptr<StoreCatalog>* inner_;
  };

  void AddRoutesAndStart(CapgoRateLimiter* limiter = nullptr) {
    registry_ = std::make_unique<StoreChannelRegistry>(store_.get());
    sink_ = std::make_unique<StoreStatsSink>(store_.get(), [] { return int64_t{2000}; });
    AddCapgoRoutes(&router_, {&late_catalog_, registry_.get(), sink_.get(), limiter});
    StartServer();
  }

  std::string UpdatesRequest(const std::string& version_name = "builtin",
                             const std::string& version_build = "0.9.0") {
    Json j = Json::parse(ReadFile(Vectors() / "updates_request_example.json"));
    j["version_name"] = version_name;
    j["version_build"] = version_build;
    return j.dump();
  }

  std::filesystem::path root_;
  std::unique_ptr<storage::Store> store_;
  std::string blob_;
  std::string digest_;
  std::string session_key_;
  std::string checksum_;
  Metrics metrics_;
  Router router_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<StoreCatalog> catalog_;
  LateCatalog late_catalog_{&catalog_};
  std::unique_ptr<StoreChannelRegistry> registry_;
  std::unique_ptr<StoreStatsSink> sink_;
};

TEST_F(CapgoRoutesTest, UpdatesOffersTheReleaseAndTheUrlServesTheVectorBytes) {
  AddRoutesAndStart();
  RoutesClient client(server_->port());
  auto reply = client.Send(http::verb::post, "/updates", UpdatesRequest());
  ASSERT_EQ(reply.result_int(), 200) << reply.body();
  EXPECT_EQ(reply[http::field::content_type], "application/json");
  Json body = Json::parse(reply.body());
  EXPECT_EQ(body["version"], "1.0.0") << reply.body();
  EXPECT_EQ(body["session_key"], session_key_);
  EXPECT_EQ(body["checksum"], checksum_);
  std::string url = body["url"];
  std::string prefix = "http://127.0.0.1:" + std::to_string(server_->port());
  ASSERT_EQ(url.rfind(prefix, 0), 0u) << url;
  EXPECT_EQ(url.substr(prefix.size()), "/v1/blobs/" + digest_);

  auto download = client.Send(http::verb::get, url.substr(prefix.size()));
  ASSERT_EQ(download.result_int(), 200);
  EXPECT_TRUE(download.body() == blob_) << "downloaded bytes differ from the vector";
}

TEST_F(CapgoRoutesTest, UpToDateWhenTheDeviceRunsTheRelease) {
  AddRoutesAndStart();
  RoutesClient client(server_->port());
  auto reply = client.Send(http::verb::post, "/updates", UpdatesRequest("1.0.0"));
  ASSERT_EQ(reply.result_int(), 200) << reply.body();
  Json body = Json::parse(reply.body());
  EXPECT_EQ(body["kind"], "up_to_date") << reply.body();
  EXPECT_EQ(body["error"], "no_new_version_available");
  EXPECT_FALSE(body.contains("url"));
}

TEST_F(CapgoRoutesTest, NoChannelForAnUnknownApp) {
  AddRoutesAndStart();
  RoutesClient client(server_->port());
  Json j = Json::parse(UpdatesRequest());
  j["app_id"] = "com.example.other";
  auto reply = client.Send(http::verb::post, "/updates", j.dump());
  ASSERT_EQ(reply.result_int(), 200) << reply.body();
  EXPECT_EQ(Json::parse(reply.body())["kind"], "failed");
}

TEST_F(CapgoRoutesTest, StatsAreAcceptedAndStoredForEnrolledDevices) {
  storage::Device device;
  device.app_id = kApp;
  device.device_id = kRoutesDevice;
  device.public_key = std::string(64, 'b');
  device.platform = "android";
  ASSERT_TRUE(store_->CreateDevice(device));
  AddRoutesAndStart();
  RoutesClient client(server_->port());
  Json event = Json::parse(UpdatesRequest("1.0.0"));
  event["action"] = "set";
  event["old_version_name"] = "builtin";
  auto reply = client.Send(http::verb::post, "/stats", event.dump());
  ASSERT_EQ(reply.result_int(), 200) << reply.body();
  EXPECT_EQ(Json::parse(reply.body())["status"], "ok");
  auto events = store_->ListDeviceEvents(kApp, kRoutesDevice);
  ASSERT_TRUE(events);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].kind, "capgo_set");
  EXPECT_EQ((*events)[0].version, "1.0.0");
  EXPECT_EQ((*events)[0].received_at, 2000);

  // An unenrolled device's event is accepted too (and not stored).
  event["device_id"] = "00000000-0000-0000-0000-000000000001";
  reply = client.Send(http::verb::post, "/stats", Json::array({event}).dump());
  EXPECT_EQ(reply.result_int(), 200) << reply.body();
}

TEST_F(CapgoRoutesTest, BadJsonIs400Json) {
  AddRoutesAndStart();
  RoutesClient client(server_->port());
  for (const char* path : {"/updates", "/stats", "/channel_self"}) {
    auto reply = client.Send(http::verb::post, path, "{not json");
    EXPECT_EQ(reply.result_int(), 400) << path << " " << reply.body();
    EXPECT_EQ(reply[http::field::content_type], "application/json");
    Json body = Json::parse(reply.body());
    EXPECT_TRUE(body["error"].is_string()) << reply.body();
  }
}

TEST_F(CapgoRoutesTest, ChannelSelfListsAndReadsTheDefault) {
  AddRoutesAndStart();
  RoutesClient client(server_->port());
  auto list = client.Send(http::verb::get, "/channel_self?app_id=com.example.otatest&platform=android");
  ASSERT_EQ(list.result_int(), 200) << list.body();
  Json channels = Json::parse(list.body());
  ASSERT_TRUE(channels.is_array()) << list.body();
  ASSERT_EQ(channels.size(), 1u);
  EXPECT_EQ(channels[0]["name"], "production");

  auto current = client.Send(http::verb::put, "/channel_self", UpdatesRequest());
  ASSERT_EQ(current.result_int(), 200) << current.body();
  EXPECT_EQ(Json::parse(current.body())["channel"], "production") << current.body();
}

TEST_F(CapgoRoutesTest, RateLimitedPerDevice) {
  CapgoRateLimiter limiter({1, 0.001, 100}, [] { return std::chrono::steady_clock::time_point(); });
  AddRoutesAndStart(&limiter);
  RoutesClient client(server_->port());
  EXPECT_EQ(client.Send(http::verb::post, "/updates", UpdatesRequest()).result_int(), 200);
  auto limited = client.Send(http::verb::post, "/updates", UpdatesRequest());
  EXPECT_EQ(limited.result_int(), 429);
  EXPECT_FALSE(limited[http::field::retry_after].empty());
  // Another device has its own bucket.
  Json other = Json::parse(UpdatesRequest());
  other["device_id"] = "00000000-0000-0000-0000-000000000002";
  EXPECT_EQ(client.Send(http::verb::post, "/updates", other.dump()).result_int(), 200);
}

// A 429 makes the plugin send one rate_limit_reached stat (CapgoUpdater.java
// checkAndHandleRateLimitResponse -> sendRateLimitStatistic); it releases its claim and sends it
// again whenever that answer is not a success, so a stats request must not share the bucket that
// refused the check.
TEST_F(CapgoRoutesTest, RateLimitReachedStatGetsThroughAfterA429) {
  CapgoRateLimiter limiter({1, 0.001, 100}, [] { return std::chrono::steady_clock::time_point(); });
  AddRoutesAndStart(&limiter);
  RoutesClient client(server_->port());
  EXPECT_EQ(client.Send(http::verb::post, "/updates", UpdatesRequest()).result_int(), 200);
  ASSERT_EQ(client.Send(http::verb::post, "/updates", UpdatesRequest()).result_int(), 429);
  Json stat = Json::parse(UpdatesRequest());
  stat["action"] = "rate_limit_reached";
  stat["old_version_name"] = "";
  auto reply = client.Send(http::verb::post, "/stats", stat.dump());
  EXPECT_EQ(reply.result_int(), 200) << reply.body();
  // Stats are limited too, in their own bucket.
  EXPECT_EQ(client.Send(http::verb::post, "/stats", stat.dump()).result_int(), 429);
}

// The plugin's stats batches are well over 64 KiB (200 events with web-view error metadata).
TEST_F(CapgoRoutesTest, StatsBatchOverSixtyFourKibIsAccepted) {
  AddRoutesAndStart();
  RoutesClient client(server_->port());
  Json batch = Json::array();
  for (int i = 0; i < 200; ++i) {
    Json event = Json::parse(UpdatesRequest("1.0.0"));
    event["action"] = "app_moved_to_background";
    event["metadata"] = {{"error", std::string(500, 'x')}};
    batch.push_back(std::move(event));
  }
  ASSERT_GT(batch.dump().size(), 64u * 1024);
  auto reply = client.Send(http::verb::post, "/stats", batch.dump());
  ASSERT_EQ(reply.result_int(), 200) << reply.body().substr(0, 200);
  EXPECT_EQ(Json::parse(reply.body())["results"].size(), 200u);
}

TEST(DecodeQueryTest, DecodesPairs) {
  auto pairs = DecodeQuery("app_id=a.b&x=%41+b&bad=%zz&&flag");
  ASSERT_EQ(pairs.size(), 3u);
  EXPECT_EQ(pairs[0], (std::pair<std::string, std::string>{"app_id", "a.b"}));
  EXPECT_EQ(pairs[1], (std::pair<std::string, std::string>{"x", "A b"}));
  EXPECT_EQ(pairs[2], (std::pair<std::string, std::string>{"flag", ""}));
}

}  // namespace
}  // namespace airlock::server
