#include "crypto/device_request.h"

#include <gtest/gtest.h>

#include "crypto/hash.h"

namespace airlock::crypto {
namespace {

constexpr int64_t kNow = 1'800'000'000;

class DeviceRequestTest : public ::testing::Test {
 protected:
  PrivateKey key_ = *PrivateKey::Generate(KeyType::kEd25519);
  std::string body_ = R"({"app_id":"a","device_id":"dev-1"})";

  Result<void> VerifyWith(const DeviceRequestSignature& s, std::string_view method = "POST",
                          std::string_view path = "/v1/check", std::string_view body = {},
                          int64_t now = kNow) {
    return VerifyDeviceRequest(key_.Public(), method, path, s.device_id, s.timestamp, s.signature,
                               AsBytes(body.empty() ? std::string_view(body_) : body), now);
  }
};

TEST_F(DeviceRequestTest, CanonicalStringIsExactlyAsDocumented) {
  std::string body = "{}";
  EXPECT_EQ(DeviceRequestCanonical("POST", "/v1/check", "dev-1", "1800000000", AsBytes(body)),
            "airlock-device-request-v1\nPOST\n/v1/check\ndev-1\n1800000000\n" +
                HexEncode(Sha256(AsBytes(body))));
}

TEST_F(DeviceRequestTest, SignedRequestVerifiesWithinTheWindow) {
  auto s = SignDeviceRequest(key_, "POST", "/v1/check", "dev-1", kNow, AsBytes(body_));
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(s->timestamp, "1800000000");
  EXPECT_TRUE(VerifyWith(*s));
  EXPECT_TRUE(VerifyWith(*s, "POST", "/v1/check", {}, kNow + kDeviceRequestWindow));
  EXPECT_TRUE(VerifyWith(*s, "POST", "/v1/check", {}, kNow - kDeviceRequestWindow));
}

TEST_F(DeviceRequestTest, RejectsEveryChangedPart) {
  auto s = *SignDeviceRequest(key_, "POST", "/v1/check", "dev-1", kNow, AsBytes(body_));
  EXPECT_EQ(VerifyWith(s, "GET").error().code(), ErrorCode::kBadSignature);
  EXPECT_EQ(VerifyWith(s, "POST", "/v1/report").error().code(), ErrorCode::kBadSignature);
  EXPECT_EQ(VerifyWith(s, "POST", "/v1/check", R"({"app_id":"a","device_id":"dev-2"})")
                .error()
                .code(),
            ErrorCode::kBadSignature);
  auto other_device = s;
  other_device.device_id = "dev-2";
  EXPECT_EQ(VerifyWith(other_device).error().code(), ErrorCode::kBadSignature);
  auto other_time = s;
  other_time.timestamp = "1800000001";
  EXPECT_EQ(VerifyWith(other_time).error().code(), ErrorCode::kBadSignature);
  auto other_key = *PrivateKey::Generate(KeyType::kEd25519);
  EXPECT_EQ(VerifyDeviceRequest(other_key.Public(), "POST", "/v1/check", s.device_id, s.timestamp,
                                s.signature, AsBytes(body_), kNow)
                .error()
                .code(),
            ErrorCode::kBadSignature);
}

TEST_F(DeviceRequestTest, RejectsTimestampsOutsideTheWindowAsExpired) {
  auto s = *SignDeviceRequest(key_, "POST", "/v1/check", "dev-1", kNow, AsBytes(body_));
  auto late = VerifyWith(s, "POST", "/v1/check", {}, kNow + kDeviceRequestWindow + 1);
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code(), ErrorCode::kExpired);
  EXPECT_EQ(VerifyWith(s, "POST", "/v1/check", {}, kNow - kDeviceRequestWindow - 1).error().code(),
            ErrorCode::kExpired);
}

TEST_F(DeviceRequestTest, RejectsMalformedTimestampAndSignature) {
  auto s = *SignDeviceRequest(key_, "POST", "/v1/check", "dev-1", kNow, AsBytes(body_));
  for (std::string bad : {"", "-1", "+1800000000", "1800000000.0", " 1800000000",
                          "18000000000000000000000", "0x6b49d200"}) {
    auto t = s;
    t.timestamp = bad;
    EXPECT_EQ(VerifyWith(t).error().code(), ErrorCode::kMalformed) << bad;
  }
  for (std::string bad : {"", "not base64!", "AAAA"}) {
    auto t = s;
    t.signature = bad;
    EXPECT_EQ(VerifyWith(t).error().code(), ErrorCode::kMalformed) << bad;
  }
}

TEST_F(DeviceRequestTest, OnlyEd25519KeysSignAndVerify) {
  auto x = *PrivateKey::Generate(KeyType::kX25519);
  EXPECT_EQ(SignDeviceRequest(x, "POST", "/v1/check", "d", kNow, {}).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(VerifyDeviceRequest(x.Public(), "POST", "/v1/check", "d", "1", "AAAA", {}, kNow)
                .error()
                .code(),
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace airlock::crypto
