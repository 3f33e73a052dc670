#include "common/flat_json.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "common/json.h"

namespace airlock {
namespace {

constexpr size_t kMax = 4096;

// Every member of `flat` reads exactly as the same member of the DOM ParseJson builds.
void ExpectSameAsDom(const FlatJsonObject& flat, const nlohmann::json& dom, const std::string& text) {
  ASSERT_TRUE(dom.is_object()) << text;
  EXPECT_EQ(flat.size(), dom.size()) << text;
  for (const auto& [key, value] : dom.items()) {
    const FlatJsonObject::Value* got = flat.find(key);
    ASSERT_NE(got, flat.end()) << text << " member " << key;
    EXPECT_EQ(got->is_null(), value.is_null()) << text << " " << key;
    EXPECT_EQ(got->is_string(), value.is_string()) << text << " " << key;
    EXPECT_EQ(got->is_boolean(), value.is_boolean()) << text << " " << key;
    EXPECT_EQ(got->is_number(), value.is_number()) << text << " " << key;
    EXPECT_EQ(got->is_number_integer(), value.is_number_integer()) << text << " " << key;
    EXPECT_EQ(got->is_number_unsigned(), value.is_number_unsigned()) << text << " " << key;
    EXPECT_EQ(got->is_number_float(), value.is_number_float()) << text << " " << key;
    if (value.is_string()) {
      EXPECT_EQ(got->get_ref<const std::string&>(), value.get<std::string>()) << text;
    }
    if (value.is_boolean()) {
      EXPECT_EQ(got->get<bool>(), value.get<bool>()) << text;
    }
    if (value.is_number_unsigned()) {
      EXPECT_EQ(got->get<uint64_t>(), value.get<uint64_t>()) << text;
    }
    if (value.is_number_integer()) {
      EXPECT_EQ(got->get<int64_t>(), value.get<int64_t>()) << text;
    }
    if (value.is_number_float()) {
      EXPECT_EQ(got->get<double>(), value.get<double>()) << text;
    }
  }
}

TEST(FlatJsonObject, ReadsFlatObjectsExactlyAsTheDom) {
  const std::vector<std::string> texts = {
      R"({})",
      " \t\r\n{ \"a\" : \"x\" } \n",
      R"({"app_id":"com.example.app","device_id":"3f2a9c4e-0000-4000-8000-00000000be0c","version":"1.2.3","native_version":"1.0.0","platform":"android"})",
      R"({"s":"","t":true,"f":false,"n":null})",
      R"({"esc":"a\"b\\c\/d\b\f\n\r\t","utf8":"hé é € 😀 ","\\":"backslash key"})",
      "{\"max\":\"\xf4\x8f\xbf\xbf\",\"min3\":\"\xe0\xa0\x80\",\"pre_surrogate\":\"\xed\x9f\xbf\"}",
      R"({"long":")" + std::string(3000, 'x') + R"("})",
  };
  FlatJsonObject flat;  // one object for every text: storage reuse must not leak members
  for (const auto& text : texts) {
    auto dom = ParseJson(text, kMax);
    ASSERT_TRUE(dom) << text;
    ASSERT_TRUE(flat.Parse(text, kMax)) << text;
    ExpectSameAsDom(flat, *dom, text);
  }
  // After a bigger object, a smaller one shows only its own members.
  ASSERT_TRUE(flat.Parse(R"({"a":true,"b":null,"c":"3"})", kMax));
  ASSERT_TRUE(flat.Parse(R"({"c":"x"})", kMax));
  EXPECT_EQ(flat.size(), 1u);
  EXPECT_EQ(flat.find("a"), flat.end());
  EXPECT_EQ(flat.find("b"), flat.end());
  ASSERT_NE(flat.find("c"), flat.end());
  EXPECT_EQ(flat.find("c")->get_ref<const std::string&>(), "x");
}

TEST(FlatJsonObject, RefusesEverythingElseSoTheCallerUsesParseJson) {
  const std::vector<std::string> texts = {
      "",
      " ",
      "5",
      R"("x")",
      "null",
      "[]",
      R"([{"a":1}])",
      R"({"a":{}})",
      R"({"a":[1]})",
      R"({"a":{"b":1}})",
      R"({"a":1,"a":2})",  // repeated key: the DOM keeps one, ParseJson decides which
      R"({"a":1} x)",
      R"({"a":1}{"b":2})",
      R"({"a":1,})",
      R"({"a":})",
      R"({'a':1})",
      R"({"a":1 /* comment */})",
      "{\"a\":\"\xff\"}",          // invalid UTF-8
      "{\"a\":\"\xc3\"}",          // truncated UTF-8
      "{\"a\":\"\x01\"}",          // unescaped control character
      R"({"a":"\ud800"})",         // lone surrogate
      R"({"a":1e400})",            // out of range
      R"({"a":01})",
      R"({"a":tru})",
      // Valid JSON outside the subset (ParseJson answers for these):
      R"({"n":1})",
      R"({"n":-1})",
      R"({"n":1.5})",
      R"({"n":18446744073709551615})",
      R"({"n":-0})",
      R"({"u":"\u00e9"})",
      R"({"u":"\ud83d\ude00"})",
      R"({"\u0061":"key escape"})",
      "\xef\xbb\xbf{\"bom\":true}",
      std::string("{\"a\":\"b\"}\0", 10),        // NUL after the object
      std::string("{\"a\":\"b\0c\"}", 11),       // NUL inside a string
      "{\"a\":\"\xc0\xaf\"}",                    // overlong '/'
      "{\"a\":\"\xe0\x80\xaf\"}",               // overlong, three bytes
      "{\"a\":\"\xed\xa0\x80\"}",               // UTF-16 surrogate encoded in UTF-8
      "{\"a\":\"\xf4\x90\x80\x80\"}",          // above U+10FFFF
      "{\"a\":\"\x80\"}",                         // lone continuation byte
      "{\"a\":\"\x7f\x1f\"}",                    // control character after DEL
      "{\"a\":\"x\\\"}",                         // escape at the end
      "{\"a\":\"\\x\"}",                         // unknown escape
  };
  FlatJsonObject flat;
  for (const auto& text : texts) {
    ASSERT_TRUE(flat.Parse(R"({"stale":true})", kMax));
    EXPECT_FALSE(flat.Parse(text, kMax)) << text;
    EXPECT_EQ(flat.size(), 0u) << text;
    EXPECT_EQ(flat.find("stale"), flat.end()) << text;
  }
}

// RapidJSON's SSE2 scan lets an unescaped 0x1a..0x1f through when it lies in a 16-byte block of a
// long string (fuzz/corpus/flat_json_fuzz/crash-*); ParseJson refuses these bodies, so must Parse.
TEST(FlatJsonObject, RefusesControlBytesInLongStringsAsParseJsonDoes) {
  FlatJsonObject flat;
  for (char c = 0x01; c < 0x20; ++c) {
    for (size_t at = 0; at < 40; ++at) {
      std::string value(40, 'x');
      value[at] = c;
      std::string text = R"({"app_id":"com.example.app","device_id":")" + value + R"("})";
      EXPECT_FALSE(flat.Parse(text, kMax)) << "byte " << int(c) << " at " << at;
      auto dom = ParseJson(text, kMax);
      ASSERT_FALSE(dom) << "byte " << int(c) << " at " << at;
      EXPECT_EQ(dom.error().code(), ErrorCode::kMalformed);
      std::string key = R"({")" + value + R"(":"v"})";
      EXPECT_FALSE(flat.Parse(key, kMax)) << "key byte " << int(c) << " at " << at;
    }
  }
}

TEST(FlatJsonObject, RefusesTooLargeOrTooManyMembers) {
  FlatJsonObject flat;
  std::string text = R"({"a":")" + std::string(100, 'x') + R"("})";
  EXPECT_TRUE(flat.Parse(text, text.size()));
  EXPECT_FALSE(flat.Parse(text, text.size() - 1));

  std::string many = "{";
  for (size_t i = 0; i <= FlatJsonObject::kMaxMembers; ++i) {
    if (i > 0) many += ",";
    many += "\"k" + std::to_string(i) + "\":true";
  }
  many += "}";
  ASSERT_TRUE(ParseJson(many, 1 << 20));  // valid JSON, just more members than the fast path takes
  EXPECT_FALSE(flat.Parse(many, 1 << 20));
}


// Differential check on mutated check-in bodies (a fixed seed, so a failure reproduces): whenever the
// fast path accepts a text, ParseJson accepts it too and reads every member the same.
TEST(FlatJsonObject, AcceptsOnlyWhatParseJsonAcceptsOnMutatedBodies) {
  const std::string seed =
      R"({"app_id":"com.example.app","device_id":"3f2a-be0c","version_name":"1.0.0","b":true,"z":null,"e":"café\n\"q\""})";
  const std::string alphabet = std::string("{}[]\":,\\ 0123456789-+.eEtrufalsnu\x01\x7f\xc3\xa9\xff\xed\xa0\xf4\x90", 42) +
                               std::string(1, '\0');
  std::mt19937 rng(20261126);
  FlatJsonObject flat;
  size_t accepted = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text = seed;
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      size_t at = rng() % (text.size() + 1);
      char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0: text.insert(text.begin() + static_cast<std::ptrdiff_t>(at), c); break;
        case 1: if (at < text.size()) text.erase(at, 1); break;
        default: if (at < text.size()) text[at] = c; break;
      }
    }
    if (!flat.Parse(text, kMax)) continue;
    ++accepted;
    auto dom = ParseJson(text, kMax);
    ASSERT_TRUE(dom) << text;
    ExpectSameAsDom(flat, *dom, text);
  }
  EXPECT_GT(accepted, 1000u);  // the loop exercised the accepting side too
  EXPECT_LT(accepted, 20000u);  // and the refusing side
}

}  // namespace
}  // namespace airlock
