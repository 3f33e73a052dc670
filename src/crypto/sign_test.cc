#include "crypto/sign.h"

#include <openssl/err.h>
#include <openssl/rsa.h>

#include <gtest/gtest.h>

#include "crypto/crypto_test_util.h"
namespace airlock::crypto {
namespace {

using test_util::Hex;
using test_util::RsaKey;
using test_util::VectorPath;

struct Rfc8032Vector {
  const char* name;
  const char* secret;
  const char* public_key;
  const char* message;
  const char* signature;
};

// RFC 8032 section 7.1, TEST 1-3.
const Rfc8032Vector kRfc8032[] = {
    {"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
     "d25bf5f0595bbe24655141438e7a100b"},
    {"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c"
     "387b2eaeb4302aeeb00d291612bb0c00"},
    {"TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc659"
     "4a7c15e9716ed28dc027beceea1ec40a"},
};

TEST(Ed25519, MatchesRfc8032Vectors) {
  for (const Rfc8032Vector& v : kRfc8032) {
    SCOPED_TRACE(v.name);
    auto priv = PrivateKey::FromRaw(KeyType::kEd25519, Hex(v.secret));
    ASSERT_TRUE(priv) << priv.error().ToString();
    EXPECT_EQ(HexEncode(*priv->Public().RawPublic()), v.public_key);
    Bytes message = Hex(v.message);
    auto sig = Sign(*priv, message);
    ASSERT_TRUE(sig) << sig.error().ToString();
    EXPECT_EQ(HexEncode(*sig), v.signature);

    auto pub = PublicKey::FromRaw(KeyType::kEd25519, Hex(v.public_key));
    ASSERT_TRUE(pub);
    EXPECT_TRUE(Verify(*pub, message, Hex(v.signature)));
    Bytes bad = Hex(v.signature);
    bad[10] ^= 0x40;
    auto r = Verify(*pub, message, bad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kBadSignature);
  }
}

class SignVerify : public ::testing::TestWithParam<KeyType> {
 protected:
  PrivateKey Key() {
    if (GetParam() == KeyType::kRsa) {
      EVP_PKEY_up_ref(RsaKey().get());
      return PrivateKey(EvpPkeyPtr(RsaKey().get()), KeyType::kRsa);
    }
    auto k = PrivateKey::Generate(GetParam());
    if (!k) ADD_FAILURE() << k.error().ToString();
    return std::move(*k);
  }
};

TEST_P(SignVerify, RoundTripsAndRejectsTampering) {
  PrivateKey key = Key();
  PublicKey pub = key.Public();
  const Bytes message = ToBytes("targets.json contents");
  auto sig = Sign(key, message);
  ASSERT_TRUE(sig) << sig.error().ToString();
  EXPECT_TRUE(Verify(pub, message, *sig));

  // Wrong message.
  Bytes other = message;
  other.back() ^= 1;
  auto r = Verify(pub, other, *sig);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadSignature);

  // Every flipped byte position class: first, middle, last.
  for (size_t pos : {size_t{0}, sig->size() / 2, sig->size() - 1}) {
    Bytes bad = *sig;
    bad[pos] ^= 0x01;
    auto b = Verify(pub, message, bad);
    ASSERT_FALSE(b) << pos;
    EXPECT_EQ(b.error().code(), ErrorCode::kBadSignature) << pos;
  }

  // Malformed signatures: empty, truncated, extended, garbage.
  Bytes extended = *sig;
  extended.push_back(0);
  for (const Bytes& bad : {Bytes{}, Bytes(sig->begin(), sig->end() - 1), extended, Bytes(7, 0x30)}) {
    auto b = Verify(pub, message, bad);
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error().code(), ErrorCode::kBadSignature);
    EXPECT_EQ(ERR_peek_error(), 0u);  // the error queue is left clean
  }

  // Another key of the same type.
  auto other_key = GetParam() == KeyType::kRsa ? PrivateKey::FromFile(VectorPath("capgo/capgo_key_v2.pem"))
                                               : PrivateKey::Generate(GetParam());
  ASSERT_TRUE(other_key);
  auto w = Verify(other_key->Public(), message, *sig);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code(), ErrorCode::kBadSignature);

  // Empty message works too.
  auto empty_sig = Sign(key, ByteSpan());
  ASSERT_TRUE(empty_sig);
  EXPECT_TRUE(Verify(pub, ByteSpan(), *empty_sig));
}

INSTANTIATE_TEST_SUITE_P(SigningTypes, SignVerify,
                         ::testing::Values(KeyType::kEd25519, KeyType::kEcdsaP256, KeyType::kRsa),
                         [](const auto& info) {
                           std::string n(KeyTypeName(info.param));
                           for (char& c : n) if (c == '-') c = '_';
                           return n;
                         });

TEST(Sign, Ed25519AndRsaPssShapes) {
  auto ed = PrivateKey::Generate(KeyType::kEd25519);
  ASSERT_TRUE(ed);
  auto sig = Sign(*ed, ToBytes("m"));
  ASSERT_TRUE(sig);
  EXPECT_EQ(sig->size(), 64u);
  // ed25519 is deterministic; RSA-PSS is randomized (salt), yet both verify.
  EXPECT_EQ(*Sign(*ed, ToBytes("m")), *sig);
  auto a = Sign(RsaKey(), ToBytes("m"));
  auto b = Sign(RsaKey(), ToBytes("m"));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->size(), 512u);
  EXPECT_NE(*a, *b);
}

TEST(Sign, EcdsaSignatureIsDer) {
  auto ec = PrivateKey::Generate(KeyType::kEcdsaP256);
  ASSERT_TRUE(ec);
  auto sig = Sign(*ec, ToBytes("m"));
  ASSERT_TRUE(sig);
  ASSERT_GE(sig->size(), 8u);
  EXPECT_EQ((*sig)[0], 0x30);  // DER SEQUENCE
  EXPECT_EQ((*sig)[1], sig->size() - 2);
  // A raw r||s (64-byte) form is rejected.
  auto r = Verify(ec->Public(), ToBytes("m"), Bytes(64, 0x11));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadSignature);
}

TEST(Sign, RefusesX25519AndSmallRsa) {
  auto x = PrivateKey::Generate(KeyType::kX25519);
  ASSERT_TRUE(x);
  auto s = Sign(*x, ToBytes("m"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  auto v = Verify(x->Public(), ToBytes("m"), Bytes(64, 0));
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code(), ErrorCode::kInvalidArgument);

  // 2048-bit RSA: verification only.
  auto capgo = PrivateKey::FromFile(VectorPath("capgo/capgo_key_v2.pem"));
  ASSERT_TRUE(capgo);
  auto small = Sign(*capgo, ToBytes("m"));
  ASSERT_FALSE(small);
  EXPECT_EQ(small.error().code(), ErrorCode::kInvalidArgument);
}

TEST(Verify, AcceptsAnyPssSaltLengthFrom2048BitKeys) {
  // A PSS signature with a 20-byte salt, made directly with OpenSSL by a 2048-bit key.
  auto capgo = PrivateKey::FromFile(VectorPath("capgo/capgo_key_v2.pem"));
  ASSERT_TRUE(capgo);
  const Bytes message = ToBytes("hello");
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  ASSERT_EQ(EVP_DigestSignInit_ex(ctx.get(), &pctx, "SHA256", nullptr, nullptr, capgo->get(), nullptr),
            1);
  ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", nullptr), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 20), 1);
  Bytes sig(256);
  size_t len = sig.size();
  ASSERT_EQ(EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()), 1);
  sig.resize(len);
  auto pub = PublicKey::FromFile(VectorPath("capgo/capgo_key_v2.pub.pem"));
  ASSERT_TRUE(pub);
  EXPECT_TRUE(Verify(*pub, message, sig));

  // PKCS#1 v1.5 signatures are not PSS: rejected.
  ctx.reset(EVP_MD_CTX_new());
  ASSERT_EQ(EVP_DigestSignInit_ex(ctx.get(), &pctx, "SHA256", nullptr, nullptr, capgo->get(), nullptr),
            1);
  len = sig.size();
  ASSERT_EQ(EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()), 1);
  auto r = Verify(*pub, message, sig);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadSignature);
}

}  // namespace
}  // namespace airlock::crypto
