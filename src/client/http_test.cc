// The device's TLS checks (client/http.h) against a real HTTPS server on 127.0.0.1.
#include "client/http.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <memory>

#include <gtest/gtest.h>

#include "client/test_http_server.h"
#include "common/file.h"

namespace airlock::client {
namespace {

namespace fs = std::filesystem;

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};

// A self-signed P-256 certificate (its own CA) for the subject alternative name `san` (e.g.
// "IP:127.0.0.1"), written as PEM files.
bool MakeSelfSignedCert(const fs::path& cert_file, const fs::path& key_file, const char* san) {
  std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  std::unique_ptr<X509, X509Free> cert(X509_new());
  if (!key || !cert) return false;
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("airlock test"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, san},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr) return false;
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return false;
  std::unique_ptr<BIO, BioFree> cert_out(BIO_new_file(cert_file.c_str(), "w"));
  std::unique_ptr<BIO, BioFree> key_out(BIO_new_file(key_file.c_str(), "w"));
  return cert_out && key_out && PEM_write_bio_X509(cert_out.get(), cert.get()) == 1 &&
         PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0, nullptr,
                                  nullptr) == 1;
}

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
