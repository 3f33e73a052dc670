#include "access/totp.h"

#include <gtest/gtest.h>

namespace airlock::access {
namespace {

// RFC 6238 Appendix B: the seeds are the ASCII digits repeated to the HMAC's output size.
const std::string kSeed20 = "12345678901234567890";
const std::string kSeed32 = "12345678901234567890123456789012";
const std::string kSeed64 = "1234567890123456789012345678901234567890123456789012345678901234";

struct Vector {
  int64_t time;
  const char* sha1;
  const char* sha256;
  const char* sha512;
};

constexpr Vector kVectors[] = {
    {59, "94287082", "46119246", "90693936"},
    {1111111109, "07081804", "68084774", "25091201"},
    {1111111111, "14050471", "67062674", "99943326"},
    {1234567890, "89005924", "91819424", "93441116"},
    {2000000000, "69279037", "90698825", "38618901"},
    {20000000000, "65353130", "77737706", "47863826"},
};

TotpParams Params(TotpAlgorithm algorithm, int digits = 8) {
  TotpParams p;
  p.algorithm = algorithm;
  p.digits = digits;
  return p;
}

TEST(Totp, Rfc6238AppendixBSha1) {
  for (const Vector& v : kVectors) {
    auto code = TotpCode(AsBytes(kSeed20), v.time, Params(TotpAlgorithm::kSha1));
    ASSERT_TRUE(code) << code.error().ToString();
    EXPECT_EQ(*code, v.sha1) << "T=" << v.time;
  }
}

TEST(Totp, Rfc6238AppendixBSha256) {
  for (const Vector& v : kVectors) {
    auto code = TotpCode(AsBytes(kSeed32), v.time, Params(TotpAlgorithm::kSha256));
    ASSERT_TRUE(code) << code.error().ToString();
    EXPECT_EQ(*code, v.sha256) << "T=" << v.time;
  }
}

TEST(Totp, Rfc6238AppendixBSha512) {
  for (const Vector& v : kVectors) {
    auto code = TotpCode(AsBytes(kSeed64), v.time, Params(TotpAlgorithm::kSha512));
    ASSERT_TRUE(code) << code.error().ToString();
    EXPECT_EQ(*code, v.sha512) << "T=" << v.time;
  }
}

TEST(Totp, Rfc4226AppendixDHotpValues) {
  const char* expected[] = {"755224", "287082", "359152", "969429", "338314",
                            "254676", "287922", "162583", "399871", "520489"};
  for (uint64_t i = 0; i < 10; ++i) {
    auto code = Hotp(AsBytes(kSeed20), i, TotpAlgorithm::kSha1, 6);
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, expected[i]);
  }
}

TEST(Totp, SixDigitCodesAreTheLowDigits) {
  auto code = TotpCode(AsBytes(kSeed20), 59, Params(TotpAlgorithm::kSha1, 6));
  ASSERT_TRUE(code);
  EXPECT_EQ(*code, "287082");
}

TEST(Totp, VerifyAcceptsOneStepEitherSide) {
  TotpParams p = Params(TotpAlgorithm::kSha1, 6);
  const int64_t now = 1111111111;  // step 37037037
  for (int64_t delta : {-30, 0, 30}) {
    auto code = TotpCode(AsBytes(kSeed20), now + delta, p);
    ASSERT_TRUE(code);
    auto step = TotpVerify(AsBytes(kSeed20), *code, now, p, std::nullopt);
    ASSERT_TRUE(step) << "delta " << delta << ": " << step.error().ToString();
    EXPECT_EQ(*step, (now + delta) / 30);
  }
}

TEST(Totp, VerifyRefusesTwoStepsAway) {
  TotpParams p = Params(TotpAlgorithm::kSha1, 6);
  const int64_t now = 1111111111;
  for (int64_t delta : {-60, 60, 90}) {
    auto code = TotpCode(AsBytes(kSeed20), now + delta, p);
    ASSERT_TRUE(code);
    auto step = TotpVerify(AsBytes(kSeed20), *code, now, p, std::nullopt);
    ASSERT_FALSE(step) << "delta " << delta;
    EXPECT_EQ(step.error().code(), ErrorCode::kBadSignature);
  }
}

TEST(Totp, WindowZeroAcceptsOnlyTheCurrentStep) {
  TotpParams p = Params(TotpAlgorithm::kSha1, 6);
  p.window = 0;
  auto previous = TotpCode(AsBytes(kSeed20), 1111111111 - 30, p);
  ASSERT_TRUE(previous);
  auto r = TotpVerify(AsBytes(kSeed20), *previous, 1111111111, p, std::nullopt);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadSignature);
}

TEST(Totp, ReplayOfTheSameStepIsRefused) {
  TotpParams p = Params(TotpAlgorithm::kSha256, 6);
  auto code = TotpCode(AsBytes(kSeed32), 2000000000, p);
  ASSERT_TRUE(code);
  auto first = TotpVerify(AsBytes(kSeed32), *code, 2000000000, p, std::nullopt);
  ASSERT_TRUE(first);
  auto again = TotpVerify(AsBytes(kSeed32), *code, 2000000005, p, *first);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kRollback);
  // An older step within the window (the previous code) is refused as well.
  auto older = TotpCode(AsBytes(kSeed32), 2000000000 - 30, p);
  ASSERT_TRUE(older);
  auto r = TotpVerify(AsBytes(kSeed32), *older, 2000000000, p, *first);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kRollback);
  // The next step is fine.
  auto next = TotpCode(AsBytes(kSeed32), 2000000000 + 30, p);
  ASSERT_TRUE(next);
  EXPECT_TRUE(TotpVerify(AsBytes(kSeed32), *next, 2000000000 + 30, p, *first));
}

TEST(Totp, WrongCodeIsRefused) {
  TotpParams p = Params(TotpAlgorithm::kSha1, 6);
  auto code = TotpCode(AsBytes(kSeed20), 1234567890, p);
  ASSERT_TRUE(code);
  std::string wrong = *code;
  wrong[0] = wrong[0] == '9' ? '0' : static_cast<char>(wrong[0] + 1);
  auto r = TotpVerify(AsBytes(kSeed20), wrong, 1234567890, p, std::nullopt);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadSignature);
  // The right code under another secret is wrong too.
  auto other = TotpVerify(AsBytes(kSeed32), *code, 1234567890, p, std::nullopt);
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code(), ErrorCode::kBadSignature);
}

TEST(Totp, MalformedCodesAreRefused) {
  TotpParams p = Params(TotpAlgorithm::kSha1, 6);
  for (std::string_view bad : {"", "12345", "1234567", "12a456", " 23456", "-12345"}) {
    auto r = TotpVerify(AsBytes(kSeed20), bad, 1234567890, p, std::nullopt);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << bad;
  }
}

TEST(Totp, RejectsBadParameters) {
  TotpParams p;
  p.digits = 5;
  EXPECT_EQ(TotpCode(AsBytes(kSeed20), 59, p).error().code(), ErrorCode::kInvalidArgument);
  p.digits = 9;
  EXPECT_EQ(TotpCode(AsBytes(kSeed20), 59, p).error().code(), ErrorCode::kInvalidArgument);
  p = TotpParams{};
  p.period = 0;
  EXPECT_EQ(TotpCode(AsBytes(kSeed20), 59, p).error().code(), ErrorCode::kInvalidArgument);
  p = TotpParams{};
  EXPECT_EQ(TotpCode(ByteSpan(), 59, p).error().code(), ErrorCode::kInvalidArgument);
  Bytes huge(kMaxTotpSecretSize + 1, 1);
  EXPECT_EQ(TotpCode(huge, 59, p).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(TotpCode(AsBytes(kSeed20), -1, p).error().code(), ErrorCode::kInvalidArgument);
}

TEST(Totp, Base32RoundTripsAndMatchesRfc4648) {
  // RFC 4648 §10 test vectors (without padding).
  EXPECT_EQ(Base32Encode(AsBytes("")), "");
  EXPECT_EQ(Base32Encode(AsBytes("f")), "MY");
  EXPECT_EQ(Base32Encode(AsBytes("fo")), "MZXQ");
  EXPECT_EQ(Base32Encode(AsBytes("foo")), "MZXW6");
  EXPECT_EQ(Base32Encode(AsBytes("foob")), "MZXW6YQ");
  EXPECT_EQ(Base32Encode(AsBytes("fooba")), "MZXW6YTB");
  EXPECT_EQ(Base32Encode(AsBytes("foobar")), "MZXW6YTBOI");
  EXPECT_EQ(Base32Encode(AsBytes(kSeed20)), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
  auto decoded = Base32Decode("mzxw6ytboi======");
  ASSERT_TRUE(decoded);
  EXPECT_EQ(AsString(*decoded), "foobar");
  auto spaced = Base32Decode("GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ");
  ASSERT_TRUE(spaced);
  EXPECT_EQ(AsString(*spaced), kSeed20);
}

TEST(Totp, Base32RejectsBadText) {
  EXPECT_EQ(Base32Decode("MZ1W").error().code(), ErrorCode::kMalformed);   // '1' not in alphabet
  EXPECT_EQ(Base32Decode("MZ=XW").error().code(), ErrorCode::kMalformed);  // data after padding
  EXPECT_EQ(Base32Decode("M").error().code(), ErrorCode::kMalformed);      // 5 bits: no byte
  EXPECT_EQ(Base32Decode("MZ").error().code(), ErrorCode::kMalformed);     // non-zero pad bits
  EXPECT_EQ(Base32Decode(std::string(1025, 'A')).error().code(), ErrorCode::kLimitExceeded);
}

TEST(Totp, OtpauthUriNamesEverythingAnAppNeeds) {
  TotpParams p = Params(TotpAlgorithm::kSha256, 8);
  std::string uri = OtpauthUri("Airlock Prod", "alice@example.com", AsBytes(kSeed20), p);
  EXPECT_EQ(uri,
            "otpauth://totp/Airlock%20Prod:alice%40example.com?secret="
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Airlock%20Prod&algorithm=SHA256&digits=8&"
            "period=30");
}

TEST(Totp, GeneratedSecretsHaveTheRecommendedSize) {
  auto a = GenerateTotpSecret(TotpAlgorithm::kSha1);
  auto b = GenerateTotpSecret(TotpAlgorithm::kSha1);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->size(), 20u);
  EXPECT_NE(*a, *b);
  EXPECT_EQ(GenerateTotpSecret(TotpAlgorithm::kSha512)->size(), 64u);
}

}  // namespace
}  // namespace airlock::access
