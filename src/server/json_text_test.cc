// AppendJsonString (server/json_text.h): the hand-built Capgo replies' strings are byte for byte
// what nlohmann's dump gives (invalid UTF-8 replaced the same way).
#include "server/json_text.h"

#include <random>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace airlock::server {
namespace {

using Json = nlohmann::json;

TEST(AppendJsonString, GivesTheBytesOfTheNlohmannDump) {
  const std::string cases[] = {"",
                               "plain ascii 1.0.0",
                               "quote \" and backslash \\ and slash /",
                               "control \x01\x1f\b\f\n\r\t and del \x7f",
                               std::string("nul \0 inside", 12),  // the NUL and the text after it
                               "utf-8 caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                               "invalid \xff\xfe utf-8 \xc3",
                               "truncated \xe2\x82",
                               "overlong \xc0\xaf"};
  for (const auto& text : cases) {
    std::string out = "x";
    AppendJsonString(&out, text);
    EXPECT_EQ(out, "x" + Json(text).dump(-1, ' ', false, Json::error_handler_t::replace)) << text;
  }
}

// The eight-bytes-at-a-time scan: every byte value at every position of strings around the word
// size, each compared with nlohmann's dump.
TEST(AppendJsonString, EveryByteAtEveryPositionMatchesTheNlohmannDump) {
  for (size_t length : {1u, 7u, 8u, 9u, 15u, 16u, 17u, 24u}) {
    for (size_t at = 0; at < length; ++at) {
      for (int byte = 0; byte < 256; ++byte) {
        std::string text(length, 'a');
        text[at] = static_cast<char>(byte);
        std::string out;
        AppendJsonString(&out, text);
        ASSERT_EQ(out, Json(text).dump(-1, ' ', false, Json::error_handler_t::replace))
            << "length " << length << " byte " << byte << " at " << at;
      }
    }
  }
}

// Random byte strings (fixed seed) biased towards UTF-8 lead and continuation bytes, escapes and
// runs of plain ASCII: every one gives nlohmann's bytes.
TEST(AppendJsonString, RandomBytesMatchTheNlohmannDump) {
  const std::string pieces[] = {"a",
                                "plain text ",
                                "\"",
                                "\\",
                                "\x01",
                                "\x1f",
                                "\x7f",
                                "\x80",
                                "\xbf",
                                "\xc2",
                                "\xc3\xa9",
                                "\xe2\x82",
                                "\xe2\x82\xac",
                                "\xed\xa0\x80",
                                "\xf0\x9f\x98\x80",
                                "\xf4\x90\x80\x80",
                                "\xf8",
                                "\xff",
                                "\xc0\xaf"};
  std::mt19937 rng(20261126);
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    const int count = static_cast<int>(rng() % 12);
    for (int k = 0; k < count; ++k) text += pieces[rng() % std::size(pieces)];
    std::string out;
    AppendJsonString(&out, text);
    ASSERT_EQ(out, Json(text).dump(-1, ' ', false, Json::error_handler_t::replace)) << round;
  }
}

}  // namespace
}  // namespace airlock::server
