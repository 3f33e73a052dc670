#include "common/bytes.h"

#include <gtest/gtest.h>

namespace airlock {
namespace {

TEST(Hex, EncodesLowerCase) {
  EXPECT_EQ(HexEncode(Bytes{}), "");
  EXPECT_EQ(HexEncode(Bytes{0x00, 0x01, 0xab, 0xff}), "0001abff");
}

TEST(Hex, DecodesEitherCaseAndRoundTrips) {
  auto b = HexDecode("0001AbFf");
  ASSERT_TRUE(b);
  EXPECT_EQ(*b, (Bytes{0x00, 0x01, 0xab, 0xff}));
  Bytes all(256);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint8_t>(i);
  EXPECT_EQ(*HexDecode(HexEncode(all)), all);
  EXPECT_EQ(*HexDecode(""), Bytes{});
}

TEST(Hex, RejectsOddLengthAndNonHexAsMalformed) {
  for (const char* bad : {"0", "abc", "0g", "zz", " 01", "01 ", "0x01", "+1"}) {
    auto r = HexDecode(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << bad;
  }
}

TEST(IsLowerHex, AcceptsOnlyDigitsAndLowerCaseAToF) {
  EXPECT_TRUE(IsLowerHex("0123456789abcdef"));
  EXPECT_TRUE(IsLowerHex(""));
  EXPECT_TRUE(IsLowerHex(HexEncode(ToBytes("\x00\xff airlock"))));
  for (const char* bad : {"ABCDEF", "0A", "g", "0x01", " 01", "01 ", "-1", "ab\n"}) {
    EXPECT_FALSE(IsLowerHex(bad)) << bad;
  }
  EXPECT_FALSE(IsLowerHex(std::string_view("ab\0c", 4)));
}

TEST(IsLowerHex, LengthFormAlsoRequiresTheExactLength) {
  const std::string digest(64, 'a');
  EXPECT_TRUE(IsLowerHex(digest, 64));
  EXPECT_FALSE(IsLowerHex(digest.substr(0, 63), 64));
  EXPECT_FALSE(IsLowerHex(digest + "0", 64));
  EXPECT_FALSE(IsLowerHex(std::string(63, 'a') + "A", 64));
  EXPECT_TRUE(IsLowerHex("", 0));
  EXPECT_FALSE(IsLowerHex("", 64));
}

TEST(BigEndian, AppendsAndReads) {
  Bytes out;
  AppendU32Be(out, 0x01020304u);
  AppendU64Be(out, 0x1122334455667788ull);
  EXPECT_EQ(out, (Bytes{1, 2, 3, 4, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}));
  EXPECT_EQ(ReadU32Be(out.data()), 0x01020304u);
  EXPECT_EQ(ReadU64Be(out.data() + 4), 0x1122334455667788ull);
  Bytes max;
  AppendU32Be(max, 0xffffffffu);
  AppendU64Be(max, ~0ull);
  EXPECT_EQ(ReadU32Be(max.data()), 0xffffffffu);
  EXPECT_EQ(ReadU64Be(max.data() + 4), ~0ull);
}

TEST(ConstantTimeEqual, ComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEqual(Bytes{}, Bytes{}));
  EXPECT_TRUE(ConstantTimeEqual(Bytes{1, 2, 3}, Bytes{1, 2, 3}));
  EXPECT_FALSE(ConstantTimeEqual(Bytes{1, 2, 3}, Bytes{1, 2, 4}));
  EXPECT_FALSE(ConstantTimeEqual(Bytes{0x80, 2, 3}, Bytes{0, 2, 3}));
  EXPECT_FALSE(ConstantTimeEqual(Bytes{1, 2, 3}, Bytes{1, 2}));
  EXPECT_FALSE(ConstantTimeEqual(Bytes{}, Bytes{0}));
}

TEST(StringViews, ConvertWithoutChange) {
  std::string s("a\0b", 3);
  EXPECT_EQ(AsString(AsBytes(s)), s);
  EXPECT_EQ(ToBytes(s), (Bytes{'a', 0, 'b'}));
}

}  // namespace
}  // namespace airlock
