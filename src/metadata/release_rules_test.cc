#include "metadata/release_rules.h"

#include <gtest/gtest.h>

namespace airlock::metadata {
namespace {

using Json = nlohmann::json;

TEST(ReleaseRules, AbsentFieldsTakeTheSafeValues) {
  auto r = ReadReleaseRules(Json::object());
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_TRUE(r->channels.empty());  // offered nowhere
  EXPECT_FALSE(r->NamesChannel("production"));
  EXPECT_EQ(r->security_floor, 0u);
  EXPECT_FALSE(r->rollback_allowed);
  EXPECT_TRUE(ReadReleaseRules(Json()));  // a target without custom
}

TEST(ReleaseRules, ReadsAndWritesEveryField) {
  ReleaseRules in;
  in.app_id = "com.example.app";
  in.version = "1.2.3";
  in.channels = {"production", "beta"};
  in.security_floor = 7;
  in.rollback_allowed = true;
  Json custom = {{"format", "zip"}};
  in.WriteTo(&custom);
  EXPECT_EQ(custom["format"], "zip");  // other fields kept
  auto out = ReadReleaseRules(custom);
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_EQ(out->app_id, in.app_id);
  EXPECT_EQ(out->version, in.version);
  EXPECT_EQ(out->channels, in.channels);
  EXPECT_EQ(out->security_floor, 7u);
  EXPECT_TRUE(out->rollback_allowed);
  EXPECT_TRUE(out->NamesChannel("beta"));
  EXPECT_FALSE(out->NamesChannel("Beta"));
}

TEST(ReleaseRules, FieldsOfTheWrongTypeFailClosed) {
  const Json bad[] = {
      Json::array(),
      {{"channels", "production"}},
      {{"channels", {"production", 1}}},
      {{"channels", {""}}},
      {{"security_floor", -1}},
      {{"security_floor", 1.5}},
      {{"security_floor", "2"}},
      {{"rollback_allowed", "true"}},
      {{"rollback_allowed", 1}},
      {{"version", 1}},
      {{"app_id", nullptr}},
  };
  for (const Json& custom : bad) {
    auto r = ReadReleaseRules(custom);
    ASSERT_FALSE(r) << custom.dump();
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << custom.dump();
  }
}

}  // namespace
}  // namespace airlock::metadata
