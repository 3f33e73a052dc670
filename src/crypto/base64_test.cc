#include "crypto/base64.h"

#include <gtest/gtest.h>

namespace airlock::crypto {
namespace {

TEST(Base64, MatchesRfc4648Section10Vectors) {
  const std::pair<const char*, const char*> vectors[] = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},     {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(AsBytes(plain)), encoded) << plain;
    auto decoded = Base64Decode(encoded);
    ASSERT_TRUE(decoded) << encoded << ": " << decoded.error().ToString();
    EXPECT_EQ(AsString(*decoded), plain) << encoded;
  }
}

TEST(Base64, RoundTripsBinaryOfEveryLength) {
  Bytes all(256);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint8_t>(255 - i);
  for (size_t n = 0; n <= all.size(); ++n) {
    ByteSpan in(all.data(), n);
    std::string text = Base64Encode(in);
    EXPECT_EQ(text.size(), 4 * ((n + 2) / 3));
    auto back = Base64Decode(text);
    ASSERT_TRUE(back) << n;
    EXPECT_EQ(Bytes(in.begin(), in.end()), *back) << n;
  }
  EXPECT_EQ(Base64Encode(Bytes{0xfb, 0xff}), "+/8=");  // the two non-alphanumeric characters
}

TEST(Base64, RejectsNonStrictInputAsMalformed) {
  for (const char* bad : {"Zg=", "Zg", "Z", "Zm9v\n", " Zm9v", "Zm9v Zm9v", "Zm 9", "Zg=a", "Z===",
                          "====", "=Zm9", "Zm=v", "Zm9v====", "Zm(v", "Zm9-", "Zm9_", "Zg==Zg=="}) {
    auto r = Base64Decode(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << bad;
  }
}

// Regression: "Zh==" used to decode to the same byte as "Zg==" (non-zero bits after the data).
TEST(Base64, RejectsNonCanonicalPaddingBits) {
  for (const char* bad : {"Zh==", "Zv==", "Zm9=", "Zm+=", "AB==", "AAB="}) {
    auto r = Base64Decode(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << bad;
  }
  EXPECT_EQ(*Base64Decode("AA=="), Bytes{0});
  EXPECT_EQ(*Base64Decode("AAA="), (Bytes{0, 0}));
  EXPECT_EQ(*Base64Decode("/w=="), Bytes{0xff});
  EXPECT_EQ(*Base64Decode("//8="), (Bytes{0xff, 0xff}));
}

}  // namespace
}  // namespace airlock::crypto
