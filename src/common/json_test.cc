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

TEST(ParseJsonBatch, CountsOnlyTheTopLevelArraysElements) {
  // Three elements of every shape; the nested array's and object's members do not count.
  auto r = ParseJsonBatch(R"([1, {"a":[1,2,3,4],"b":{"c":1}}, [5,6,7,8]])", 1024, 32, 3);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->size(), 3u);
  // An object, or a scalar, has no element bound.
  EXPECT_TRUE(ParseJsonBatch(R"({"a":1,"b":2,"c":3,"d":4})", 1024, 32, 3));
  EXPECT_TRUE(ParseJsonBatch("7", 1024, 32, 0));
  for (std::string over :
       {"[1,2,3,4]", R"([{},{},{},{}])", "[[],[],[],[]]", R"(["a","b","c",null])"}) {
    auto refused = ParseJsonBatch(over, 1024, 32, 3);
    ASSERT_FALSE(refused) << over;
    EXPECT_EQ(refused.error().code(), ErrorCode::kLimitExceeded);
    EXPECT_EQ(refused.error().message(), "JSON array holds more than 3 elements");
  }
}

TEST(ParseJsonBatch, StopsAtTheElementAfterTheBound) {
  // The text after the fourth element is not JSON: the limit is reported, so the parser stopped
  // there instead of building (and then refusing) the rest.
  auto r = ParseJsonBatch("[{},{},{},{}, this is not json", 1024, 32, 3);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kLimitExceeded);
  // The bound does not hide other errors before it.
  auto bad = ParseJsonBatch("[{},x", 1024, 32, 3);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code(), ErrorCode::kMalformed);
}

TEST(ParseJson, RejectsGarbageTrailingDataAndBadUtf8) {
  for (std::string bad : {"", "{", "{\"a\":}", "[1,2] x", "\"\xff\"", "nul"}) {
    auto r = ParseJson(bad, 1024);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << bad;
  }
}

TEST(ParseSignedJson, RefusesDuplicateKeysAtAnyDepth) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"version":1,"version":2})", "\"version\""},
      {R"({"a":{"b":[{"c":1,"c":1}]}})", "\"c\""},
      {R"({"signed":{"x":1},"signed":{"x":1}})", "\"signed\""},
      // Equal once unescaped: still one key given twice.
      {R"({"version":1,"\u0076ersion":1})", "\"version\""},
  };
  for (const auto& [text, named] : cases) {
    auto r = ParseSignedJson(text, 1024);
    ASSERT_FALSE(r) << text;
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << text;
    EXPECT_NE(r.error().message().find(std::string("duplicate key ") + named), std::string::npos)
        << r.error().message();
    // The plain parse keeps the last value, which is why signed JSON must not use it.
    EXPECT_TRUE(ParseJson(text, 1024)) << text;
  }
}

TEST(ParseSignedJson, AcceptsTheSameKeyInDifferentObjects) {
  auto r = ParseSignedJson(R"({"a":{"k":1},"b":{"k":2},"c":[{"k":3},{"k":4}],"k":5})", 1024);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ((*r)["c"][1]["k"], 4);
  // The other bounds still hold.
  std::string deep(100, '[');
  deep += std::string(100, ']');
  auto d = ParseSignedJson(deep, 1 << 20, 32);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().code(), ErrorCode::kLimitExceeded);
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
