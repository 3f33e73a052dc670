// DeviceApiClient against a server that is not airlockd (test_http_server.h): how it treats
// answers it must not trust (malformed, endless, redirects). The real server's answers are tested
// in tests/e2e/device_api_test.cc.
#include "client/device_api_client.h"

#include <filesystem>
#include <optional>

#include <gtest/gtest.h>

#include "client/test_http_server.h"
#include "common/file.h"
#include "crypto/base64.h"

namespace airlock::client {
namespace {

namespace fs = std::filesystem;

class DeviceApiClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = ScopedTempDir::Create({}, "airlock-api-client-");
    ASSERT_TRUE(tmp);
    tmp_.emplace(std::move(*tmp));
    server_ = std::make_unique<testing::NodeHttpServer>(tmp_->path() / "www");
    ASSERT_TRUE(server_->ok()) << "node is needed for this test";
    auto identity = LoadOrCreateDeviceIdentity(tmp_->path() / "identity");
    ASSERT_TRUE(identity);
    identity_.emplace(std::move(*identity));
    fs::create_directories(server_->root() / "v1");
  }

  DeviceApiClient Client(const std::string& base_path = "", size_t max_response = 1 << 20) {
    DeviceApiOptions options{server_->Url(base_path), "io.example.app"};
    options.max_response_bytes = max_response;
    return DeviceApiClient::Create(*identity_, options).value();
  }

  void Answer(const std::string& route, const std::string& body) {
    ASSERT_TRUE(WriteFileAtomic(server_->root() / "v1" / route, AsBytes(body)));
  }

  static CheckRequest Request() { return CheckRequest{"1.0.0", "1.0.0", "linux", "beta"}; }

  std::optional<ScopedTempDir> tmp_;
  std::unique_ptr<testing::NodeHttpServer> server_;
  std::optional<DeviceIdentity> identity_;
};

TEST_F(DeviceApiClientTest, ParsesAnAnswerWithoutAnUpdate) {
  Answer("check", R"({"update": false, "reason": "up_to_date"})");
  auto client = Client();
  auto r = client.Check(Request());
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_FALSE(r->update);
  EXPECT_EQ(r->reason, "up_to_date");
  EXPECT_FALSE(r->key_pending());
  EXPECT_EQ(server_->Requests(), std::vector<std::string>{"/v1/check"});
}

TEST_F(DeviceApiClientTest, ParsesAnOfferAndDecodesTheWrappedKey) {
  const std::string sha(64, 'a');
  Answer("check", R"({"update": true, "version": "1.2.0", "channel": "beta", "rollback": true,
    "target": {"name": "releases/1.2.0/bundle.alb", "length": 1234, "sha256": ")" +
                      sha + R"("}, "url": "http://127.0.0.1/v1/blobs/x", "tuf_url": "http://t/",
    "encryption": "device", "wrapped_key": ")" +
                      crypto::Base64Encode(AsBytes("wrapped!")) + R"("})");
  auto client = Client();
  auto r = client.Check(Request());
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r->update);
  EXPECT_EQ(r->version, "1.2.0");
  EXPECT_EQ(r->channel, "beta");
  EXPECT_TRUE(r->rollback);
  EXPECT_EQ(r->target.name, "releases/1.2.0/bundle.alb");
  EXPECT_EQ(r->target.length, 1234u);
  EXPECT_EQ(r->target.sha256, sha);
  EXPECT_EQ(r->encryption, "device");
  EXPECT_EQ(std::string(AsString(r->wrapped_key)), "wrapped!");
}

TEST_F(DeviceApiClientTest, RefusesADeviceModeOfferWithoutAWrappedKey) {
  Answer("check", R"({"update": true, "version": "1.2.0", "target": {"name": "n", "length": 1,
    "sha256": ")" + std::string(64, 'b') +
                      R"("}, "url": "u", "tuf_url": "t", "encryption": "device"})");
  auto client = Client();
  auto r = client.Check(Request());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  EXPECT_NE(r.error().message().find("wrapped_key"), std::string::npos) << r.error().message();
}

TEST_F(DeviceApiClientTest, RefusesAnswersThatAreNotTheContract) {
  auto client = Client();
  for (const std::string& body :
       {std::string("not json"), std::string(R"({"update": "yes"})"),
        std::string(R"({"update": true, "version": "1.2.0", "target": {"name": "n",
          "length": -1, "sha256": "x"}, "url": "u", "tuf_url": "t", "encryption": "none"})")}) {
    Answer("check", body);
    auto r = client.Check(Request());
    ASSERT_FALSE(r) << body;
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << body << " -> " << r.error().ToString();
  }
}

TEST_F(DeviceApiClientTest, StopsAnEndlessAnswerAtTheBound) {
  auto client = Client("/endless", 64 * 1024);
  auto r = client.Check(Request());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kLimitExceeded);
  EXPECT_NE(r.error().message().find("longer than 65536 bytes"), std::string::npos);
}

TEST_F(DeviceApiClientTest, DoesNotFollowRedirects) {
  ASSERT_TRUE(WriteFileAtomic(server_->root() / "blob", AsBytes(R"({"stored": 1})")));
  auto client = Client("/redirect");
  auto r = client.Report({ReportEvent{1, "1.0.0", "offered", "", "", 1}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kIo);
  EXPECT_NE(r.error().message().find("POST /v1/report: HTTP 302"), std::string::npos)
      << r.error().message();
  ASSERT_TRUE(client.last_error());
  EXPECT_EQ(client.last_error()->http_status, 302);
  EXPECT_EQ(server_->Requests(), std::vector<std::string>{"/redirect/v1/report"});
}

TEST_F(DeviceApiClientTest, AMissingRouteIsNotFoundWithItsStatus) {
  auto client = Client();
  auto r = client.Enroll("enr_x", "linux");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(client.last_error()->http_status, 404);
  EXPECT_EQ(client.last_error()->error_code, "");  // the body was not the server's JSON
}

TEST_F(DeviceApiClientTest, RefusesBadServersAndBatchesWithoutARequest) {
  auto ftp = DeviceApiClient::Create(*identity_, {"ftp://127.0.0.1/", "io.example.app"});
  auto bad_app = DeviceApiClient::Create(*identity_, {server_->Url(), "../app"});
  ASSERT_FALSE(bad_app);
  EXPECT_EQ(bad_app.error().code(), ErrorCode::kInvalidArgument);
  ASSERT_FALSE(ftp);
  EXPECT_EQ(ftp.error().code(), ErrorCode::kInvalidArgument);
  auto client = Client();
  auto empty = client.Report({});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), ErrorCode::kInvalidArgument);
  auto too_many = client.Report(std::vector<ReportEvent>(1001, ReportEvent{1, "1", "offered"}));
  ASSERT_FALSE(too_many);
  EXPECT_EQ(too_many.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(server_->Requests().empty());
}

}  // namespace
}  // namespace airlock::client
