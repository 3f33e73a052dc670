// The C++ API as an app sees it (include/airlock/client.hpp only): exact codes and messages, a
// Config built in code, the state of a fresh install directory.
#include "airlock/client.hpp"

#include <gtest/gtest.h>

#include "sdk/sdk_test_util.h"

namespace {

using airlock::sdk::Client;
using airlock::sdk::Config;
using airlock::sdk::ErrorCode;
using airlock::sdk::testing::ScratchDir;

Config ValidConfig(const ScratchDir& dir) {
  Config c;
  c.server = "http://127.0.0.1:9/";
  c.app = "io.example.sdk";
  c.channel = "beta";
  c.install_dir = (dir.path() / "device").string();
  c.trusted_root = (dir.path() / "root.json").string();
  return c;
}

TEST(SdkClient, OpenOfAMissingConfigFileIsNotFound) {
  ScratchDir dir;
  const std::string path = (dir.path() / "missing.toml").string();
  auto opened = Client::Open(path);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(opened.error().ToString(),
            "not_found: config file " + path + " does not exist");
}

TEST(SdkClient, OpenOfAConfigStructNamesTheMissingField) {
  ScratchDir dir;
  Config c = ValidConfig(dir);
  c.trusted_root.clear();
  auto opened = Client::Open(c);
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(opened.error().message(), "config: trusted_root must not be empty");
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "device")) << "nothing is created";
}

TEST(SdkClient, OpenOfAConfigStructRefusesBadValues) {
  ScratchDir dir;
  struct Case {
    void (*edit)(Config&);
    const char* message;
  } cases[] = {
      {[](Config& c) { c.server = "ftp://127.0.0.1"; },
       "config: server must be an http:// or https:// URL"},
      {[](Config& c) { c.app = "io/example"; },
       "config: app and channel must be 1 to 128 characters of A-Z a-z 0-9 . _ -"},
      {[](Config& c) { c.health_timeout_seconds = 0; },
       "config: health_timeout_seconds must be 1 s to 30 days"},
      {[](Config& c) { c.crash_loop_limit = 101; }, "config: crash_loop_limit must be 1 to 100"},
      {[](Config& c) { c.builtin_version = "one"; },
       "config: native_version and builtin_version must be semver versions"},
  };
  for (const Case& k : cases) {
    Config c = ValidConfig(dir);
    k.edit(c);
    auto opened = Client::Open(c);
    ASSERT_FALSE(opened) << k.message;
    EXPECT_EQ(opened.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(opened.error().message(), k.message);
  }
}

TEST(SdkClient, StatusOfAFreshInstallDirIsTheBuiltInRelease) {
  ScratchDir dir;
  auto client = Client::Open(ValidConfig(dir));
  ASSERT_TRUE(client) << client.error().ToString();
  auto status = client->Status();
  ASSERT_TRUE(status) << status.error().ToString();
  EXPECT_EQ(status->app, "io.example.sdk");
  EXPECT_EQ(status->version, "0.0.0");
  EXPECT_EQ(status->release, "");
  EXPECT_EQ(status->state, "idle");
  EXPECT_TRUE(status->failed.empty());
  EXPECT_TRUE(std::filesystem::is_directory(dir.path() / "device"));
}

TEST(SdkClient, ConfirmOfAnUnknownReleaseIsNotFound) {
  ScratchDir dir;
  auto client = Client::Open(dir.WriteConfig());
  ASSERT_TRUE(client) << client.error().ToString();
  auto confirmed = client->Confirm("1.0.0-0000000000000000");
  ASSERT_FALSE(confirmed);
  EXPECT_EQ(confirmed.error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(confirmed.error().message(),
            "confirmation for release 1.0.0-0000000000000000 ignored: it is not awaiting "
            "confirmation (none does, state idle)");
  EXPECT_EQ(client->Status()->state, "idle");
}

TEST(SdkClient, CheckAndFlushBeforeEnrollingAreNotFound) {
  ScratchDir dir;
  auto client = Client::Open(dir.WriteConfig());
  ASSERT_TRUE(client) << client.error().ToString();
  auto offer = client->Check();
  ASSERT_FALSE(offer);
  EXPECT_EQ(offer.error().code(), ErrorCode::kNotFound);
  auto flushed = client->FlushReports();
  ASSERT_FALSE(flushed);
  EXPECT_EQ(flushed.error().code(), ErrorCode::kNotFound);
}

TEST(SdkClient, AMovedClientKeepsItsInstallDir) {
  ScratchDir dir;
  auto opened = Client::Open(dir.WriteConfig());
  ASSERT_TRUE(opened);
  Client client = std::move(opened).value();
  Client other = std::move(client);
  EXPECT_EQ(other.Status()->version, "1.0.0");
}

}  // namespace
