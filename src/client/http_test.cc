// The device's TLS checks (client/http.h) against a real HTTPS server on 127.0.0.1.
#include "client/http.h"


#include <cstdlib>
#include <memory>

#include <gtest/gtest.h>

#include "client/test_http_server.h"
#include "common/file.h"
#include "crypto/test_cert.h"

namespace airlock::client {
namespace {

namespace fs = std::filesystem;
using crypto::testing::MakeSelfSignedCert;

class HttpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = std::make_unique<ScopedTempDir>(*ScopedTempDir::Create());
    ASSERT_TRUE(
        MakeSelfSignedCert(tmp_->path() / "cert.pem", tmp_->path() / "key.pem", "IP:127.0.0.1"));
    fs::create_directories(tmp_->path() / "www");
    ASSERT_TRUE(WriteFileAtomic(tmp_->path() / "www" / "blob", AsBytes("signed bytes")));
    server_ = std::make_unique<testing::NodeHttpServer>(
        tmp_->path() / "www", tmp_->path() / "cert.pem", tmp_->path() / "key.pem");
    if (!server_->ok()) GTEST_SKIP() << "node is not installed";
  }
  void TearDown() override { ::unsetenv("SSL_CERT_FILE"); }

  // GET `url`; the body in `body`.
  Result<HttpResponse> Get(const std::string& url) {
    HttpRequest request;
    request.url = url;
    body_.clear();
    return HttpExchange(request, [this](ByteSpan chunk) -> Result<void> {
      body_.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
      return {};
    });
  }

  std::unique_ptr<ScopedTempDir> tmp_;
  std::unique_ptr<testing::NodeHttpServer> server_;
  std::string body_;
};

TEST_F(HttpsTest, FetchesFromAServerWhoseCertificateIsTrustedForItsAddress) {
  ASSERT_EQ(::setenv("SSL_CERT_FILE", (tmp_->path() / "cert.pem").c_str(), 1), 0);
  auto r = Get(server_->Url("/blob"));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(body_, "signed bytes");
}

TEST_F(HttpsTest, RefusesAServerTheTrustStoreDoesNotVouchFor) {
  // The system's trust store: the self-signed certificate is in no CA's name.
  auto r = Get(server_->Url("/blob"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kIo);
  EXPECT_NE(r.error().message().find("TLS handshake failed"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(body_, "");
  EXPECT_TRUE(server_->Requests().empty());  // not one HTTP byte was sent
}

TEST_F(HttpsTest, RefusesATrustedCertificateIssuedForAnotherName) {
  // Trusted, but for 127.0.0.1 only: "localhost" is another name.
  ASSERT_EQ(::setenv("SSL_CERT_FILE", (tmp_->path() / "cert.pem").c_str(), 1), 0);
  auto r = Get(server_->Url("/blob", "localhost"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kIo);
  EXPECT_NE(r.error().message().find("TLS handshake failed"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(body_, "");
  EXPECT_TRUE(server_->Requests().empty());
}

TEST(Http, RefusesOtherSchemesAndMethods) {
  HttpRequest request;
  request.url = "ftp://127.0.0.1/blob";
  auto sink = [](ByteSpan) -> Result<void> { return {}; };
  EXPECT_EQ(HttpExchange(request, sink).error().code(), ErrorCode::kInvalidArgument);
  request.url = "http://127.0.0.1:1/blob";
  request.method = "DELETE";
  EXPECT_EQ(HttpExchange(request, sink).error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace airlock::client
