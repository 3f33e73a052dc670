#include "crypto/hash.h"

#include <gtest/gtest.h>

#include "common/file.h"

namespace airlock::crypto {
namespace {

Bytes Range(uint8_t first, size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(first + i);
  return b;
}

TEST(Sha256, MatchesFips180Vectors) {
  EXPECT_EQ(HexEncode(Sha256(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexEncode(Sha256(AsBytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(HexEncode(Sha256(ByteSpan())),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha512, MatchesFips180Vector) {
  EXPECT_EQ(HexEncode(Sha512(AsBytes("abc"))),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
  EXPECT_EQ(Sha512(AsBytes("abc")).size(), kSha512Size);
}

TEST(Hasher, StreamingEqualsOneShot) {
  Bytes data = Range(0, 1000);
  for (size_t split : {size_t{1}, size_t{63}, size_t{64}, size_t{999}}) {
    Hasher h256 = Hasher::Sha256();
    Hasher h512 = Hasher::Sha512();
    for (size_t off = 0; off < data.size(); off += split) {
      ByteSpan piece = ByteSpan(data).subspan(off, std::min(split, data.size() - off));
      h256.Update(piece);
      h512.Update(piece);
    }
    EXPECT_EQ(h256.Finish(), Sha256(data)) << split;
    EXPECT_EQ(h512.Finish(), Sha512(data)) << split;
  }
  Hasher empty = Hasher::Sha256();
  EXPECT_EQ(empty.Finish(), Sha256(ByteSpan()));
}

TEST(Sha256File, HashesContentsAndReportsSize) {
  auto dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir);
  auto path = dir->path() / "f";
  Bytes data = Range(3, 3 * 1000 * 1000);  // spans several read blocks
  ASSERT_TRUE(WriteFileAtomic(path, data));
  uint64_t size = 0;
  auto digest = Sha256File(path, &size);
  ASSERT_TRUE(digest) << digest.error().ToString();
  EXPECT_EQ(*digest, Sha256(data));
  EXPECT_EQ(size, data.size());

  auto missing = Sha256File(dir->path() / "missing");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

struct HkdfVector {
  const char* name;
  Bytes ikm, salt, info;
  size_t length;
  const char* okm;
};

TEST(HkdfSha256, MatchesRfc5869TestCases1To3) {
  const HkdfVector vectors[] = {
      {"A.1", Bytes(22, 0x0b), Range(0x00, 13), Range(0xf0, 10), 42,
       "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"},
      {"A.2", Range(0x00, 80), Range(0x60, 80), Range(0xb0, 80), 82,
       "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09"
       "da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87"},
      {"A.3", Bytes(22, 0x0b), Bytes{}, Bytes{}, 42,
       "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"},
  };
  for (const HkdfVector& v : vectors) {
    auto okm = HkdfSha256(v.ikm, v.salt, v.info, v.length);
    ASSERT_TRUE(okm) << v.name << ": " << okm.error().ToString();
    EXPECT_EQ(HexEncode(*okm), v.okm) << v.name;
  }
}

// Regression: an empty salt span (null data pointer) made OpenSSL 3.0 fail the derivation.
TEST(HkdfSha256, EmptySaltEqualsZeroSalt) {
  Bytes ikm(22, 0x0b);
  auto empty = HkdfSha256(ikm, ByteSpan(), AsBytes("info"), 32);
  auto zeros = HkdfSha256(ikm, Bytes(32, 0), AsBytes("info"), 32);
  ASSERT_TRUE(empty) << empty.error().ToString();
  ASSERT_TRUE(zeros);
  EXPECT_EQ(*empty, *zeros);
}

TEST(HkdfSha256, BoundsOutputLength) {
  Bytes ikm(32, 1);
  for (size_t bad : {size_t{0}, size_t{255 * 32 + 1}}) {
    auto r = HkdfSha256(ikm, {}, {}, bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
  auto max = HkdfSha256(ikm, {}, {}, 255 * 32);
  ASSERT_TRUE(max);
  EXPECT_EQ(max->size(), 255u * 32u);
  // A shorter output is a prefix of a longer one (same PRK, same info).
  EXPECT_EQ(Bytes(max->begin(), max->begin() + 40), *HkdfSha256(ikm, {}, {}, 40));
}

}  // namespace
}  // namespace airlock::crypto
