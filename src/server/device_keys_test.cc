// Device-mode key wrapping runs off the I/O threads (device_keys.h): a flood of first checks whose
// wraps are stuck in a slow vault cannot starve /healthz. Over real sockets, against a real
// HttpServer with two I/O threads.
#include "server/device_keys.h"

#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <gtest/gtest.h>

#include "server/http_server.h"
#include "server/metrics.h"
#include "server/server_api_test_fixture.h"

namespace airlock::server {
namespace {

using namespace testing_fixture;  // NOLINT(google-build-using-namespace): the shared fixture
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// One request on a fresh connection; a reply that does not come within 20 s fails the test instead
// of hanging it (that is what a starved server would do).
http::response<http::string_body> Send(uint16_t port, http::verb method, const std::string& target,
                                       const std::string& body,
                                       const std::vector<std::pair<std::string, std::string>>& headers) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.expires_after(std::chrono::seconds(20));
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req{method, target, 11};
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (method != http::verb::get) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
  }
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  return res;
}

class SlowWrapTest : public ServerApiTest {
 protected:
  // Every wrap blocks until the test opens the latch (after /healthz has answered).
  void CustomizeDeps(ServerApiDeps* deps) override {
    deps->wrap_threads = 2;
    deps->enroll_per_address = {1000, 0};
    deps->wrap_for_device = [this](const std::string& app_id, const std::string& sha256,
                                   const crypto::PublicKey& key) {
      ++wrap_calls_;
      latch_.wait();
      return repo_->WrapForDevice(app_id, api_internal::BlobPath(data_, sha256), key);
    };
  }
  void TearDown() override {
    Open();
    server_.reset();
  }
  void Open() {
    if (!opened_) release_.set_value();
    opened_ = true;
  }
  void StartServer() {
    AddHealthRoutes(&router_, &metrics_);
    ServerOptions options;
    options.address = "127.0.0.1";
    options.port = 0;
    options.threads = 2;
    options.access_log = false;
    server_ = std::make_unique<HttpServer>(options, &router_, &metrics_);
    ASSERT_TRUE(server_->Start());
  }
  http::response<http::string_body> SignedCheck(const std::string& device) {
    std::string body = CheckBody(device, "0.9.0").dump();
    auto sig = crypto::SignDeviceRequest(SigningKey(device), "POST", "/v1/check", device, now_,
                                         AsBytes(body));
    return Send(server_->port(), http::verb::post, "/v1/check", body,
                {{"X-Airlock-Device", sig->device_id},
                 {"X-Airlock-Timestamp", sig->timestamp},
                 {"X-Airlock-Signature", sig->signature}});
  }

  std::promise<void> release_;
  std::shared_future<void> latch_ = release_.get_future().share();
  bool opened_ = false;
  Metrics metrics_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(SlowWrapTest, AFloodOfFirstChecksCannotStarveHealthz) {
  ASSERT_NO_FATAL_FAILURE(PublishFirstRelease());  // encryption: device
  constexpr int kDevices = 32;
  std::vector<std::string> ids;
  for (int i = 0; i < kDevices; ++i) {
    ids.push_back("dev-" + std::to_string(i));
    ASSERT_EQ(Enroll(ids.back(), NewKey(crypto::KeyType::kX25519)).status, 201);
  }
  // The test's own steady clock never moves: no unrelated expiry can interfere.
  ASSERT_NO_FATAL_FAILURE(StartServer());

  // Every device's first check at once, while the vault is stuck: each is answered at once.
  std::vector<std::future<http::response<http::string_body>>> checks;
  for (const auto& id : ids) {
    checks.push_back(std::async(std::launch::async, [this, id] { return SignedCheck(id); }));
  }
  for (auto& f : checks) {
    auto res = f.get();
    ASSERT_EQ(res.result_int(), 200) << res.body();
    EXPECT_EQ(Json::parse(res.body()), (Json{{"update", false}, {"reason", "key_pending"}}));
    EXPECT_EQ(res[http::field::retry_after], "2");
  }
  // /healthz answers while every wrap is still blocked.
  auto health = Send(server_->port(), http::verb::get, "/healthz", "", {});
  EXPECT_EQ(health.result_int(), 200);
  EXPECT_LE(wrap_calls_.load(), 2);  // two key-service threads, both stuck in the vault

  // Now let the vault go: every device's key is wrapped exactly once and stored.
  Open();
  WaitForDeviceKeyWraps(device_routes_.get());
  EXPECT_EQ(wrap_calls_.load(), kDevices);
  const std::string sha = HexEncode(crypto::Sha256(AsBytes(bundles_["1.0.0"])));
  for (const auto& id : ids) {
    EXPECT_TRUE(store_->GetWrappedKey(kApp, id, sha)) << id;
    auto res = SignedCheck(id);
    ASSERT_EQ(res.result_int(), 200);
    Json reply = Json::parse(res.body());
    EXPECT_EQ(reply["update"], true);
    EXPECT_TRUE(reply["wrapped_key"].is_string());
  }
  EXPECT_EQ(wrap_calls_.load(), kDevices);  // checks after the wrap reuse it
}

}  // namespace
}  // namespace airlock::server
