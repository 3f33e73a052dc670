#include "common/json.h"

#include <gtest/gtest.h>

namespace airlock {
namespace {

TEST(ParseJson, ParsesObject) {
  auto r = ParseJson(R"({"a":1,"b":"x"})", 1024);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ((*r)["a"], 1);
}

TEST(ParseJson, RejectsOversizedInput) {
  auto r = ParseJson(std::string(2000, ' ') + "1", 1000);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kLimitExceeded);
}

TEST(ParseJson, RejectsDeepNesting) {
  std::string deep(100, '[');
  deep += std::string(100, ']');
  auto r = ParseJson(deep, 1 << 20, 32);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kLimitExceeded);
  // Exactly at the bound is fine.
  std::string ok(31, '[');
  ok += std::string(31, ']');
  EXPECT_TRUE(ParseJson(ok, 1 << 20, 32));
}

TEST(ParseJson, RejectsGarbageTrailingDataAndBadUtf8) {
  for (std::string bad : {"", "{", "{\"a\":}", "[1,2] x", "\"\xff\"", "nul"}) {
    auto r = ParseJson(bad, 1024);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << bad;
  }
}

TEST(JsonFields, ReportMissingAndMistypedFields) {
  auto j = nlohmann::json::parse(R"({"s":"v","n":5,"neg":-1,"a":[],"o":{}})");
  EXPECT_EQ(*GetString(j, "s"), "v");
  EXPECT_EQ(*GetUint(j, "n"), 5u);
  EXPECT_EQ(GetUint(j, "neg").error().code(), ErrorCode::kMalformed);
  EXPECT_EQ(GetString(j, "n").error().code(), ErrorCode::kMalformed);
  EXPECT_EQ(GetString(j, "missing").error().message(), "missing field 'missing'");
  EXPECT_EQ(GetString(j, "s", 0).error().code(), ErrorCode::kLimitExceeded);
  EXPECT_TRUE(GetArray(j, "a"));
  EXPECT_FALSE(GetArray(j, "o"));
  EXPECT_TRUE(GetObject(j, "o"));
}

}  // namespace
}  // namespace airlock
