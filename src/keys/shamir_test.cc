#include "keys/shamir.h"

#include <gtest/gtest.h>

#include "keys/backup.h"

namespace airlock::keys {
namespace {

// Reference multiply with the textbook shift-and-reduce loop (branches are fine in a test).
uint8_t SlowMul(uint8_t a, uint8_t b) {
  uint8_t p = 0;
  while (b != 0) {
    if (b & 1) p ^= a;
    a = static_cast<uint8_t>((a & 0x80) ? ((a << 1) ^ 0x1b) : (a << 1));
    b >>= 1;
  }
  return p;
}

TEST(Gf256, MultiplyMatchesReferenceAndKnownAnswer) {
  EXPECT_EQ(Gf256Mul(0x57, 0x83), 0xc1);  // FIPS-197 section 4.2
  EXPECT_EQ(Gf256Mul(0x57, 0x13), 0xfe);
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      ASSERT_EQ(Gf256Mul(static_cast<uint8_t>(a), static_cast<uint8_t>(b)),
                SlowMul(static_cast<uint8_t>(a), static_cast<uint8_t>(b)));
    }
  }
}

TEST(Gf256, InverseOfEveryNonZeroElement) {
  EXPECT_EQ(Gf256Inverse(0), 0);
  for (int a = 1; a < 256; ++a) {
    EXPECT_EQ(Gf256Mul(static_cast<uint8_t>(a), Gf256Inverse(static_cast<uint8_t>(a))), 1) << a;
  }
}

TEST(Shamir, AnyKOfNRecoverAndKMinusOneDoNot) {
  const Bytes secret = {0, 1, 2, 3, 250, 251, 252, 253, 254, 255, 42, 7, 9, 11, 13, 17,
                        19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83};
  const int k = 3, n = 5;
  auto shares = ShamirSplit(secret, k, n);
  ASSERT_TRUE(shares);
  ASSERT_EQ(shares->size(), 5u);
  int subsets = 0;
  for (int mask = 0; mask < (1 << n); ++mask) {
    std::vector<ShamirShare> subset;
    for (int i = 0; i < n; ++i) {
      if (mask & (1 << i)) subset.push_back((*shares)[static_cast<size_t>(i)]);
    }
    if (subset.empty()) continue;
    auto got = ShamirCombine(subset);
    ASSERT_TRUE(got);
    if (static_cast<int>(subset.size()) >= k) {
      EXPECT_EQ(*got, secret) << "mask " << mask;
      ++subsets;
    } else {
      EXPECT_NE(*got, secret) << "mask " << mask;
    }
  }
  EXPECT_EQ(subsets, 16);  // C(5,3) + C(5,4) + C(5,5)
}

TEST(Shamir, SharesOfOneSecretDifferEachTime) {
  const Bytes secret(32, 0xaa);
  auto a = ShamirSplit(secret, 2, 3);
  auto b = ShamirSplit(secret, 2, 3);
  ASSERT_TRUE(a && b);
  EXPECT_NE((*a)[0].y, (*b)[0].y);
}

TEST(Shamir, RejectsBadParametersAndShares) {
  EXPECT_EQ(ShamirSplit(Bytes(4), 1, 3).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ShamirSplit(Bytes(4), 4, 3).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ShamirSplit(Bytes(4), 2, 256).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ShamirSplit(Bytes(), 2, 3).error().code(), ErrorCode::kInvalidArgument);
  auto shares = ShamirSplit(Bytes(4, 1), 2, 3);
  ASSERT_TRUE(shares);
  EXPECT_EQ(ShamirCombine({(*shares)[0], (*shares)[0]}).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(ShamirCombine({}).error().code(), ErrorCode::kInvalidArgument);
}

TEST(ShareSpec, Parses) {
  EXPECT_EQ(ParseShareSpec("3/5")->k, 3);
  EXPECT_EQ(ParseShareSpec("2-of-3")->n, 3);
  for (const char* bad : {"1/3", "4/3", "3/256", "a/b", "3", "3/5x", ""}) {
    EXPECT_EQ(ParseShareSpec(bad).error().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace airlock::keys
