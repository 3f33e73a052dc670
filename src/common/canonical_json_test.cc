#include "common/canonical_json.h"

#include <gtest/gtest.h>

namespace airlock {
namespace {

using nlohmann::json;

TEST(CanonicalJson, SortsKeysAndDropsWhitespace) {
  json v = json::parse(R"({ "b": 1, "a": [true, false, null], "c": { "z": "x", "y": -5 } })");
  EXPECT_EQ(*CanonicalJson(v), R"({"a":[true,false,null],"b":1,"c":{"y":-5,"z":"x"}})");
}

TEST(CanonicalJson, SortsKeysByByteValue) {
  json v;
  v["b"] = 1;
  v["B"] = 2;
  v["a"] = 3;
  v["\xc3\xa9"] = 4;  // U+00E9 as UTF-8: bytes above every ASCII key
  v["_"] = 5;
  v["aa"] = 6;
  EXPECT_EQ(*CanonicalJson(v), "{\"B\":2,\"_\":5,\"a\":3,\"aa\":6,\"b\":1,\"\xc3\xa9\":4}");
}

TEST(CanonicalJson, EscapesOnlyQuoteAndBackslash) {
  json v = "a\"b\\c\nd\te/\x01";
  // Newline, tab, '/' and control bytes stay raw (OLPC canonical JSON), as a PEM key's newlines do.
  EXPECT_EQ(*CanonicalJson(v), "\"a\\\"b\\\\c\nd\te/\x01\"");
  json pem = {{"public", "-----BEGIN PUBLIC KEY-----\nABC\n-----END PUBLIC KEY-----\n"}};
  EXPECT_EQ(*CanonicalJson(pem),
            "{\"public\":\"-----BEGIN PUBLIC KEY-----\nABC\n-----END PUBLIC KEY-----\n\"}");
}

TEST(CanonicalJson, WritesIntegersExactly) {
  json v = json::array({0, -1, 42, INT64_MIN, UINT64_MAX});
  EXPECT_EQ(*CanonicalJson(v), "[0,-1,42,-9223372036854775808,18446744073709551615]");
}

TEST(CanonicalJson, RejectsFloatsAnywhere) {
  for (const json& v : {json(1.5), json::array({1, 2.0}), json{{"a", {{"b", 0.1}}}}}) {
    auto r = CanonicalJson(v);
    ASSERT_FALSE(r) << v.dump();
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
}

TEST(CanonicalJson, EmptyContainers) {
  EXPECT_EQ(*CanonicalJson(json::object()), "{}");
  EXPECT_EQ(*CanonicalJson(json::array()), "[]");
  EXPECT_EQ(*CanonicalJson(json("")), "\"\"");
}

TEST(CanonicalJson, MatchesSecuresystemslibForTufKey) {
  // securesystemslib.formats.encode_canonical of this key dict gives exactly this string.
  json key = {{"keytype", "ed25519"},
              {"scheme", "ed25519"},
              {"keyval", {{"public", "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"}}}};
  EXPECT_EQ(*CanonicalJson(key),
            R"({"keytype":"ed25519","keyval":{"public":"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"},"scheme":"ed25519"})");
}

}  // namespace
}  // namespace airlock
