// The C API as an app sees it: exact codes and messages, NULL handles and arguments, the state of
// a fresh install directory, and that what the library hands out is freed by its free functions.
#include "airlock/airlock.h"

#include <malloc.h>

#include <string>

#include <gtest/gtest.h>

#include "airlock/client.hpp"
#include "sdk/sdk_test_util.h"

namespace {

using airlock::sdk::testing::ScratchDir;

// The numbers are a published contract (airlock.h): they must never move.
static_assert(AIRLOCK_OK == 0 && AIRLOCK_E_INVALID_ARGUMENT == 1 && AIRLOCK_E_NOT_FOUND == 2 &&
              AIRLOCK_E_IO == 4 && AIRLOCK_E_MALFORMED == 5 && AIRLOCK_E_HASH_MISMATCH == 11 &&
              AIRLOCK_E_ROLLBACK == 13 && AIRLOCK_E_KEY_UNUSABLE == 17 &&
              AIRLOCK_E_NO_MEMORY == 20);
static_assert(static_cast<int>(airlock::sdk::ErrorCode::kHashMismatch) == AIRLOCK_E_HASH_MISMATCH &&
              static_cast<int>(airlock::sdk::ErrorCode::kNoMemory) == AIRLOCK_E_NO_MEMORY);

std::string TakeString(char* s) {
  std::string out = s == nullptr ? "(null)" : s;
  airlock_string_free(s);
  return out;
}

TEST(CApi, OpenOfAMissingConfigFileIsNotFoundWithItsPath) {
  ScratchDir dir;
  const std::string path = (dir.path() / "missing.toml").string();
  airlock_client_t* h = reinterpret_cast<airlock_client_t*>(0x1);
  char* message = nullptr;
  EXPECT_EQ(airlock_open(path.c_str(), &h, &message), AIRLOCK_E_NOT_FOUND);
  EXPECT_EQ(h, nullptr);
  EXPECT_EQ(TakeString(message), "config file " + path + " does not exist");
}

TEST(CApi, OpenRefusesAnUnknownKeyNamingIt) {
  ScratchDir dir;
  const std::string path = dir.WriteConfig("colour = \"blue\"\n");
  airlock_client_t* h = nullptr;
  char* message = nullptr;
  EXPECT_EQ(airlock_open(path.c_str(), &h, &message), AIRLOCK_E_INVALID_ARGUMENT);
  EXPECT_EQ(h, nullptr);
  EXPECT_EQ(TakeString(message), path + ": line 7: unknown key \"colour\"");
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "device")) << "nothing is created";
}

TEST(CApi, OpenOfBrokenTomlIsMalformedWithTheLine) {
  ScratchDir dir;
  const std::string path = dir.Write("agent.toml", "server = \"http://127.0.0.1:9\"\napp = \n");
  airlock_client_t* h = nullptr;
  char* message = nullptr;
  EXPECT_EQ(airlock_open(path.c_str(), &h, &message), AIRLOCK_E_MALFORMED);
  EXPECT_EQ(h, nullptr);
  EXPECT_EQ(TakeString(message).rfind(path + ":2: ", 0), 0u);
}

TEST(CApi, OpenRefusesNullArgumentsWithoutCrashing) {
  ScratchDir dir;
  const std::string path = dir.WriteConfig();
  char* message = nullptr;
  EXPECT_EQ(airlock_open(path.c_str(), nullptr, &message), AIRLOCK_E_INVALID_ARGUMENT);
  EXPECT_EQ(TakeString(message), "out is NULL");
  airlock_client_t* h = nullptr;
  EXPECT_EQ(airlock_open(nullptr, &h, &message), AIRLOCK_E_INVALID_ARGUMENT);
  EXPECT_EQ(TakeString(message), "config_path is NULL");
  EXPECT_EQ(airlock_open(nullptr, &h, nullptr), AIRLOCK_E_INVALID_ARGUMENT);  // no message asked
}

TEST(CApi, EveryCallOnANullHandleIsInvalidArgument) {
  airlock_install_status_t* status = nullptr;
  airlock_outcome_t* outcome = nullptr;
  airlock_offer_t* offer = nullptr;
  EXPECT_EQ(airlock_get_status(nullptr, &status), AIRLOCK_E_INVALID_ARGUMENT);
  EXPECT_EQ(airlock_update(nullptr, &outcome), AIRLOCK_E_INVALID_ARGUMENT);
  EXPECT_EQ(airlock_check(nullptr, &offer), AIRLOCK_E_INVALID_ARGUMENT);
  EXPECT_EQ(airlock_enroll(nullptr, nullptr), AIRLOCK_E_INVALID_ARGUMENT);
  EXPECT_EQ(airlock_confirm(nullptr, "1.0.0-0000000000000000"), AIRLOCK_E_INVALID_ARGUMENT);
  EXPECT_EQ(airlock_rollback(nullptr), AIRLOCK_E_INVALID_ARGUMENT);
  EXPECT_EQ(airlock_flush_reports(nullptr, nullptr), AIRLOCK_E_INVALID_ARGUMENT);
  EXPECT_EQ(airlock_set_progress_callback(nullptr, nullptr, nullptr), AIRLOCK_E_INVALID_ARGUMENT);
  EXPECT_EQ(status, nullptr);
  EXPECT_EQ(outcome, nullptr);
  EXPECT_EQ(offer, nullptr);
  EXPECT_STREQ(airlock_last_error(nullptr), "the airlock_client_t handle is NULL");
  airlock_close(nullptr);
  airlock_install_status_free(nullptr);
  airlock_outcome_free(nullptr);
  airlock_offer_free(nullptr);
  airlock_string_free(nullptr);
}

TEST(CApi, ConfigInitGivesTheDefaultsOfTheCppConfig) {
  airlock_config_t c;
  airlock_config_init(&c);
  const airlock::sdk::Config defaults;
  EXPECT_EQ(c.struct_size, sizeof(airlock_config_t));
  EXPECT_EQ(c.server, nullptr);
  EXPECT_EQ(c.health_timeout_seconds, defaults.health_timeout_seconds);
  EXPECT_EQ(c.crash_loop_limit, defaults.crash_loop_limit);
  EXPECT_EQ(c.platform, defaults.platform);
  EXPECT_EQ(c.native_version, defaults.native_version);
  EXPECT_EQ(c.builtin_version, defaults.builtin_version);
  EXPECT_EQ(c.builtin_dir, nullptr);
}

TEST(CApi, OpenConfigOpensTheInstallDirOfAConfigBuiltInCode) {
  ScratchDir dir;
  const std::string install_dir = (dir.path() / "device").string();
  const std::string root = (dir.path() / "root.json").string();
  airlock_config_t c;
  airlock_config_init(&c);
  c.server = "http://127.0.0.1:9";
  c.app = "io.example.sdk";
  c.channel = "beta";
  c.install_dir = install_dir.c_str();
  c.trusted_root = root.c_str();
  c.builtin_version = "2.0.0";
  airlock_client_t* h = nullptr;
  char* message = nullptr;
  ASSERT_EQ(airlock_open_config(&c, &h, &message), AIRLOCK_OK) << TakeString(message);
  airlock_install_status_t* s = nullptr;
  ASSERT_EQ(airlock_get_status(h, &s), AIRLOCK_OK) << airlock_last_error(h);
  EXPECT_STREQ(s->version, "2.0.0");
  EXPECT_STREQ(s->state, "idle");
  airlock_install_status_free(s);
  airlock_close(h);
  EXPECT_TRUE(std::filesystem::is_directory(install_dir));
}

TEST(CApi, OpenConfigNamesTheMissingFieldAndRefusesAnUninitializedStruct) {
  ScratchDir dir;
  const std::string install_dir = (dir.path() / "device").string();
  airlock_config_t c;
  airlock_config_init(&c);
  c.server = "http://127.0.0.1:9";
  c.app = "io.example.sdk";
  c.channel = "beta";
  c.install_dir = install_dir.c_str();
  airlock_client_t* h = nullptr;
  char* message = nullptr;
  EXPECT_EQ(airlock_open_config(&c, &h, &message), AIRLOCK_E_INVALID_ARGUMENT);
  EXPECT_EQ(h, nullptr);
  EXPECT_EQ(TakeString(message), "config: trusted_root must not be empty");
  c.trusted_root = "root.json";
  c.struct_size = 8;
  EXPECT_EQ(airlock_open_config(&c, &h, &message), AIRLOCK_E_INVALID_ARGUMENT);
  EXPECT_EQ(TakeString(message), "config: struct_size 8 is not this library's (" +
                                     std::to_string(sizeof(airlock_config_t)) +
                                     "): fill the struct with airlock_config_init");
  EXPECT_EQ(airlock_open_config(nullptr, &h, &message), AIRLOCK_E_INVALID_ARGUMENT);
  EXPECT_EQ(TakeString(message), "config is NULL");
  EXPECT_EQ(h, nullptr);
  EXPECT_FALSE(std::filesystem::exists(install_dir)) << "nothing is created";
}

class CApiOpen : public ::testing::Test {
 protected:
  void SetUp() override {
    char* message = nullptr;
    ASSERT_EQ(airlock_open(dir_.WriteConfig().c_str(), &h_, &message), AIRLOCK_OK)
        << TakeString(message);
    ASSERT_NE(h_, nullptr);
    EXPECT_EQ(message, nullptr);
  }
  void TearDown() override { airlock_close(h_); }

  ScratchDir dir_;
  airlock_client_t* h_ = nullptr;
};

TEST_F(CApiOpen, StatusOfAFreshInstallDirIsTheBuiltInRelease) {
  airlock_install_status_t* s = nullptr;
  ASSERT_EQ(airlock_get_status(h_, &s), AIRLOCK_OK) << airlock_last_error(h_);
  EXPECT_STREQ(s->app, "io.example.sdk");
  EXPECT_STREQ(s->version, "1.0.0");
  EXPECT_STREQ(s->release, "");
  EXPECT_STREQ(s->state, "idle");
  EXPECT_STREQ(s->last_good_release, "");
  EXPECT_STREQ(s->last_rollback_reason, "");
  EXPECT_EQ(s->highest_security_floor, 0u);
  EXPECT_EQ(s->failed_count, 0u);
  EXPECT_EQ(s->failed, nullptr);
  airlock_install_status_free(s);
  EXPECT_STREQ(airlock_last_error(h_), "");
}

TEST_F(CApiOpen, ConfirmOfAnUnknownReleaseIsNotFoundAndChangesNothing) {
  EXPECT_EQ(airlock_confirm(h_, "1.0.0-0000000000000000"), AIRLOCK_E_NOT_FOUND);
  EXPECT_STREQ(airlock_last_error(h_),
               "confirmation for release 1.0.0-0000000000000000 ignored: it is not awaiting "
               "confirmation (none does, state idle)");
  airlock_install_status_t* s = nullptr;
  ASSERT_EQ(airlock_get_status(h_, &s), AIRLOCK_OK);
  EXPECT_STREQ(s->state, "idle");
  EXPECT_STREQ(s->release, "");
  airlock_install_status_free(s);
  EXPECT_EQ(airlock_confirm(h_, nullptr), AIRLOCK_E_INVALID_ARGUMENT);
  EXPECT_STREQ(airlock_last_error(h_), "release_id is NULL");
}

TEST_F(CApiOpen, UpdateBeforeEnrollingIsNotFoundAndSaysToEnroll) {
  airlock_outcome_t* outcome = nullptr;
  EXPECT_EQ(airlock_update(h_, &outcome), AIRLOCK_E_NOT_FOUND);
  EXPECT_EQ(outcome, nullptr);
  EXPECT_STREQ(airlock_last_error(h_),
               "this device has no identity yet: run `airlock-agent enroll` first");
  EXPECT_EQ(airlock_update(h_, nullptr), AIRLOCK_E_INVALID_ARGUMENT);
  EXPECT_STREQ(airlock_last_error(h_), "out is NULL");
}

TEST_F(CApiOpen, RollbackWithNothingInstalledIsNotFound) {
  EXPECT_EQ(airlock_rollback(h_), AIRLOCK_E_NOT_FOUND);
  EXPECT_STRNE(airlock_last_error(h_), "");
}

// What the library hands out is released by its free functions: a thousand rounds of status
// structs and error strings leave the heap where it was (a leak of either would grow it by
// hundreds of kilobytes).
TEST_F(CApiOpen, StructsAndStringsAreReleasedByTheirFreeFunctions) {
  const std::string missing = (dir_.path() / "missing.toml").string();
  const auto round = [&] {
    airlock_install_status_t* s = nullptr;
    ASSERT_EQ(airlock_get_status(h_, &s), AIRLOCK_OK);
    airlock_install_status_free(s);
    airlock_client_t* none = nullptr;
    char* message = nullptr;
    ASSERT_EQ(airlock_open(missing.c_str(), &none, &message), AIRLOCK_E_NOT_FOUND);
    airlock_string_free(message);
  };
  for (int i = 0; i < 50; ++i) round();  // warm up caches and allocator pools
  const size_t before = mallinfo2().uordblks;
  for (int i = 0; i < 1000; ++i) round();
  const size_t after = mallinfo2().uordblks;
  EXPECT_LT(after, before + 32 * 1024) << "in-use heap grew from " << before << " to " << after;
}

TEST(CApi, StatusNamesAreTheDocumentedOnes) {
  EXPECT_STREQ(airlock_status_name(AIRLOCK_OK), "ok");
  EXPECT_STREQ(airlock_status_name(AIRLOCK_E_NOT_FOUND), "not_found");
  EXPECT_STREQ(airlock_status_name(AIRLOCK_E_HASH_MISMATCH), "hash_mismatch");
  EXPECT_STREQ(airlock_status_name(AIRLOCK_E_NO_MEMORY), "no_memory");
  EXPECT_STREQ(airlock_status_name(static_cast<airlock_status_t>(21)), "unknown");  // unassigned
  EXPECT_STREQ(airlock_version(), airlock::sdk::Version());
}

}  // namespace
