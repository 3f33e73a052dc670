#include "server/config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace airlock::server {
namespace {

using ::testing::HasSubstr;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/airlockd_config_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path Write(const std::string& text) {
    std::filesystem::path path = dir_ / "airlockd.toml";
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
  std::filesystem::path dir_;
};

TEST_F(ConfigTest, LoadsEveryKey) {
  auto config = LoadConfig(Write(R"(# airlockd settings
data = "/srv/airlock"
listen = "0.0.0.0:8443"
threads = 4
database = "postgresql://airlock@db/airlock"
public_url = "https://updates.example.com/"
max_body = 2097152
max_upload = 1073741824
max_uploads = 8
tls_cert = "/etc/airlock/cert.pem"
tls_key = "/etc/airlock/key.pem"
access_log = false
cache_ttl_ms = 250
vault = "pkcs11:token=airlock"
vault_passphrase_file = "/run/secrets/vault"
timestamp_expiry = 3600
snapshot_expiry = 604800
)"));
  ASSERT_TRUE(config) << config.error().ToString();
  EXPECT_EQ(config->data, "/srv/airlock");
  EXPECT_EQ(config->listen, "0.0.0.0:8443");
  EXPECT_EQ(config->threads, 4u);
  EXPECT_EQ(config->database, "postgresql://airlock@db/airlock");
  EXPECT_EQ(config->public_url, "https://updates.example.com");  // trailing '/' dropped
  EXPECT_EQ(config->max_body, 2097152u);
  EXPECT_EQ(config->max_upload, 1073741824u);
  EXPECT_EQ(config->max_uploads, 8u);
  EXPECT_EQ(config->tls_cert, "/etc/airlock/cert.pem");
  EXPECT_EQ(config->tls_key, "/etc/airlock/key.pem");
  EXPECT_FALSE(config->access_log);
  EXPECT_EQ(config->cache_ttl_ms, 250);
  EXPECT_EQ(config->vault, "pkcs11:token=airlock");
  EXPECT_EQ(config->vault_passphrase_file, "/run/secrets/vault");
  EXPECT_EQ(config->timestamp_expiry, 3600);
  EXPECT_EQ(config->snapshot_expiry, 604800);
  EXPECT_TRUE(ValidateConfig(*config));
}

TEST_F(ConfigTest, AbsentKeysKeepDefaults) {
  auto config = LoadConfig(Write("data = \"d\"\n"));
  ASSERT_TRUE(config);
  ServerConfig defaults;
  EXPECT_EQ(config->listen, defaults.listen);
  EXPECT_EQ(config->max_upload, defaults.max_upload);
  EXPECT_EQ(config->max_uploads, 4u);
  EXPECT_TRUE(config->access_log);
  EXPECT_EQ(config->timestamp_expiry, 86400);
}

TEST_F(ConfigTest, UnknownKeyIsNamedWithItsLine) {
  auto config = LoadConfig(Write("data = \"d\"\n\nlisten_port = 80\n"));
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(config.error().message(), HasSubstr(":3: unknown key \"listen_port\""));
}

TEST_F(ConfigTest, TableIsAnUnknownKey) {
  auto config = LoadConfig(Write("[server]\ndata = \"d\"\n"));
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(config.error().message(), HasSubstr("unknown key \"server\""));
}

TEST_F(ConfigTest, WrongTypeIsNamedWithItsLine) {
  struct Case {
    std::string text;
    std::string expected;
  } cases[] = {
      {"threads = \"4\"\n", ":1: threads must be an integer"},
      {"data = \"d\"\naccess_log = \"off\"\n", ":2: access_log must be a boolean"},
      {"listen = 8080\n", ":1: listen must be a string"},
      {"max_body = 1.5\n", ":1: max_body must be an integer"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    auto config = LoadConfig(Write(c.text));
    ASSERT_FALSE(config);
    EXPECT_EQ(config.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(config.error().message(), HasSubstr(c.expected));
  }
}

TEST_F(ConfigTest, BadValuesAreRefused) {
  struct Case {
    std::string text;
    std::string expected;
  } cases[] = {
      {"threads = -1\n", "threads: must be between 0 and 1024"},
      {"threads = 5000\n", "threads: must be between 0 and 1024"},
      {"listen = \"localhost\"\n", "listen: wants HOST:PORT"},
      {"listen = \"h:99999\"\n", "listen: wants HOST:PORT"},
      {"public_url = \"ftp://x\"\n", "public_url: must start with http:// or https://"},
      {"vault = \"s3://bucket\"\n", "vault: "},
      {"timestamp_expiry = 10\n", "timestamp_expiry: must be between 60"},
      {"max_upload = 0\n", "max_upload: must be between 1"},
      {"max_uploads = 0\n", "max_uploads: must be between 1 and 1024"},
      {"cache_ttl_ms = -5\n", "cache_ttl_ms: must be between 0"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    auto config = LoadConfig(Write(c.text));
    ASSERT_FALSE(config);
    EXPECT_EQ(config.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_THAT(config.error().message(), HasSubstr(c.expected));
  }
}

TEST_F(ConfigTest, NotTomlIsMalformedWithLine) {
  auto config = LoadConfig(Write("data = \"d\"\nthreads = = 3\n"));
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().code(), ErrorCode::kMalformed);
  EXPECT_THAT(config.error().message(), HasSubstr("airlockd.toml:2:"));
}

TEST_F(ConfigTest, MissingAndOversizedFiles) {
  auto missing = LoadConfig(dir_ / "nope.toml");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
  auto big = LoadConfig(Write("# " + std::string((1 << 20) + 10, 'x') + "\n"));
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().code(), ErrorCode::kLimitExceeded);
}

TEST_F(ConfigTest, FlagsOverrideTheFile) {
  auto config = LoadConfig(Write("data = \"d\"\nthreads = 4\naccess_log = true\n"));
  ASSERT_TRUE(config);
  ASSERT_TRUE(SetConfigValue(&*config, "threads", "2"));
  ASSERT_TRUE(SetConfigValue(&*config, "access_log", "off"));
  ASSERT_TRUE(SetConfigValue(&*config, "data", "/other"));
  EXPECT_EQ(config->threads, 2u);
  EXPECT_FALSE(config->access_log);
  EXPECT_EQ(config->data, "/other");

  auto bad = SetConfigValue(&*config, "threads", "two");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_THAT(bad.error().message(), HasSubstr("threads"));
  auto onoff = SetConfigValue(&*config, "access_log", "maybe");
  ASSERT_FALSE(onoff);
  EXPECT_THAT(onoff.error().message(), HasSubstr("on or off"));
  EXPECT_FALSE(SetConfigValue(&*config, "colour", "blue"));
  EXPECT_EQ(config->threads, 2u);  // failed sets change nothing
}

TEST(ValidateConfig, CrossFieldRules) {
  ServerConfig config;
  auto no_data = ValidateConfig(config);
  ASSERT_FALSE(no_data);
  EXPECT_THAT(no_data.error().message(), HasSubstr("data"));
  config.data = "d";
  EXPECT_TRUE(ValidateConfig(config));
  config.tls_cert = "c.pem";
  auto half_tls = ValidateConfig(config);
  ASSERT_FALSE(half_tls);
  EXPECT_THAT(half_tls.error().message(), HasSubstr("tls_key"));
  config.tls_key = "k.pem";
  EXPECT_TRUE(ValidateConfig(config));
  config.snapshot_expiry = 100;
  config.timestamp_expiry = 200;
  EXPECT_FALSE(ValidateConfig(config));
}

TEST(ParseListen, Forms) {
  std::string host;
  uint16_t port = 0;
  EXPECT_TRUE(ParseListen("127.0.0.1:8080", &host, &port));
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 8080);
  EXPECT_TRUE(ParseListen("[::1]:0", &host, &port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 0);
  EXPECT_FALSE(ParseListen(":80", &host, &port));
  EXPECT_FALSE(ParseListen("h:", &host, &port));
  EXPECT_FALSE(ParseListen("h:1x", &host, &port));
}

}  // namespace
}  // namespace airlock::server
