#include "crypto/wrap.h"

#include <openssl/rsa.h>

#include <gtest/gtest.h>

#include "crypto/crypto_test_util.h"
#include "crypto/hash.h"

namespace airlock::crypto {
namespace {

using test_util::Hex;
using test_util::RsaKey;
using test_util::VectorPath;

// X25519 through EVP_PKEY_derive on raw keys.
Bytes X25519(ByteSpan scalar, ByteSpan u) {
  EvpPkeyPtr priv(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, scalar.data(), scalar.size()));
  EvpPkeyPtr peer(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, u.data(), u.size()));
  EXPECT_TRUE(priv && peer);
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, priv.get(), nullptr));
  EXPECT_EQ(EVP_PKEY_derive_init(ctx.get()), 1);
  EXPECT_EQ(EVP_PKEY_derive_set_peer(ctx.get(), peer.get()), 1);
  Bytes out(32);
  size_t len = out.size();
  EXPECT_EQ(EVP_PKEY_derive(ctx.get(), out.data(), &len), 1);
  return out;
}

const Bytes kContentKey = Bytes(32, 0x42);
const Bytes kWrapAad = ToBytes("airlock bundle 1.2.3");

TEST(X25519, MatchesRfc7748ScalarMultVectors) {
  // RFC 7748 section 5.2.
  EXPECT_EQ(HexEncode(X25519(Hex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
                             Hex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"))),
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
  EXPECT_EQ(HexEncode(X25519(Hex("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d"),
                             Hex("e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493"))),
            "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957");
}

TEST(X25519, MatchesRfc7748DiffieHellmanExample) {
  // RFC 7748 section 6.1.
  Bytes alice = Hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  Bytes bob = Hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  auto alice_key = PrivateKey::FromRaw(KeyType::kX25519, alice);
  auto bob_key = PrivateKey::FromRaw(KeyType::kX25519, bob);
  ASSERT_TRUE(alice_key && bob_key);
  Bytes alice_pub = *alice_key->Public().RawPublic();
  Bytes bob_pub = *bob_key->Public().RawPublic();
  EXPECT_EQ(HexEncode(alice_pub), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  EXPECT_EQ(HexEncode(bob_pub), "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  const char* shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
  EXPECT_EQ(HexEncode(X25519(alice, bob_pub)), shared);
  EXPECT_EQ(HexEncode(X25519(bob, alice_pub)), shared);
}

TEST(WrapAlgorithm, NamesWrappingTypes) {
  EXPECT_EQ(*WrapAlgorithm(KeyType::kX25519), "x25519-hkdf-sha256-aes256gcm");
  EXPECT_EQ(*WrapAlgorithm(KeyType::kRsa), "rsa-oaep-sha256");
  for (KeyType t : {KeyType::kEd25519, KeyType::kEcdsaP256}) {
    auto r = WrapAlgorithm(t);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
}

TEST(WrapX25519, RoundTrips) {
  auto recipient = PrivateKey::Generate(KeyType::kX25519);
  ASSERT_TRUE(recipient);
  auto wrapped = WrapKey(recipient->Public(), kContentKey, kWrapAad);
  ASSERT_TRUE(wrapped) << wrapped.error().ToString();
  EXPECT_EQ(wrapped->size(), 32u + 12u + kContentKey.size() + 16u);
  auto key = UnwrapKey(*recipient, *wrapped, kWrapAad);
  ASSERT_TRUE(key) << key.error().ToString();
  EXPECT_EQ(*key, kContentKey);
  // Fresh ephemeral key and nonce each time.
  EXPECT_NE(*WrapKey(recipient->Public(), kContentKey, kWrapAad), *wrapped);
  // Empty aad works too.
  auto no_aad = WrapKey(recipient->Public(), kContentKey, ByteSpan());
  ASSERT_TRUE(no_aad);
  EXPECT_EQ(*UnwrapKey(*recipient, *no_aad, ByteSpan()), kContentKey);
}

// A low-order X25519 point (here: zero) yields no shared secret: nothing can be wrapped to it, and
// CheckWrapRecipient says so before anything secret is used.
TEST(WrapX25519, LowOrderPublicKeysAreRefused) {
  auto zero = PublicKey::FromRaw(KeyType::kX25519, Bytes(32, 0));
  ASSERT_TRUE(zero) << zero.error().ToString();
  auto wrapped = WrapKey(*zero, kContentKey, kWrapAad);
  ASSERT_FALSE(wrapped);
  auto checked = CheckWrapRecipient(*zero);
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().code(), wrapped.error().code());
  auto good = PrivateKey::Generate(KeyType::kX25519);
  ASSERT_TRUE(good);
  EXPECT_TRUE(CheckWrapRecipient(good->Public()));
}

TEST(WrapX25519, MatchesTheDocumentedConstruction) {
  // Build a wrapped key by hand, exactly as wrap.h describes, and check UnwrapKey opens it. The
  // ephemeral key is RFC 7748's Alice and the recipient Bob, so the shared secret is known.
  Bytes eph_priv = Hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  Bytes eph_pub = Hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  Bytes bob_pub = Hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  auto bob = PrivateKey::FromRaw(
      KeyType::kX25519, Hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"));
  ASSERT_TRUE(bob);
  Bytes shared = X25519(eph_priv, bob_pub);
  Bytes salt = eph_pub;
  salt.insert(salt.end(), bob_pub.begin(), bob_pub.end());
  auto kek = HkdfSha256(shared, salt, AsBytes("airlock/v1/x25519-wrap"), 32);
  ASSERT_TRUE(kek);
  Bytes nonce(12, 0x07);

  Bytes ct(kContentKey.size());
  Bytes tag(16);
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  ASSERT_EQ(EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, kek->data(), nonce.data()), 1);
  ASSERT_EQ(EVP_EncryptUpdate(ctx.get(), nullptr, &len, kWrapAad.data(),
                              static_cast<int>(kWrapAad.size())),
            1);
  ASSERT_EQ(EVP_EncryptUpdate(ctx.get(), ct.data(), &len, kContentKey.data(),
                              static_cast<int>(kContentKey.size())),
            1);
  ASSERT_EQ(EVP_EncryptFinal_ex(ctx.get(), ct.data() + len, &len), 1);
  ASSERT_EQ(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, tag.data()), 1);

  Bytes wrapped = eph_pub;
  wrapped.insert(wrapped.end(), nonce.begin(), nonce.end());
  wrapped.insert(wrapped.end(), ct.begin(), ct.end());
  wrapped.insert(wrapped.end(), tag.begin(), tag.end());
  auto key = UnwrapKey(*bob, wrapped, kWrapAad);
  ASSERT_TRUE(key) << key.error().ToString();
  EXPECT_EQ(*key, kContentKey);
}

TEST(WrapX25519, RejectsWrongKeyAadAndTampering) {
  auto recipient = PrivateKey::Generate(KeyType::kX25519);
  auto other = PrivateKey::Generate(KeyType::kX25519);
  ASSERT_TRUE(recipient && other);
  auto wrapped = WrapKey(recipient->Public(), kContentKey, kWrapAad);
  ASSERT_TRUE(wrapped);

  auto wrong_key = UnwrapKey(*other, *wrapped, kWrapAad);
  ASSERT_FALSE(wrong_key);
  EXPECT_EQ(wrong_key.error().code(), ErrorCode::kDecryptFailed);
  auto wrong_aad = UnwrapKey(*recipient, *wrapped, ToBytes("airlock bundle 1.2.4"));
  ASSERT_FALSE(wrong_aad);
  EXPECT_EQ(wrong_aad.error().code(), ErrorCode::kDecryptFailed);

  // A flipped bit in the ephemeral key, the nonce, the ciphertext and the tag.
  for (size_t pos : {size_t{0}, size_t{31}, size_t{32}, size_t{43}, size_t{44}, wrapped->size() - 1}) {
    Bytes bad = *wrapped;
    bad[pos] ^= 0x01;
    auto r = UnwrapKey(*recipient, bad, kWrapAad);
    ASSERT_FALSE(r) << pos;
    EXPECT_EQ(r.error().code(), ErrorCode::kDecryptFailed) << pos;
  }
}

TEST(WrapX25519, RejectsWrongShapeAsMalformed) {
  auto recipient = PrivateKey::Generate(KeyType::kX25519);
  ASSERT_TRUE(recipient);
  auto wrapped = WrapKey(recipient->Public(), kContentKey, kWrapAad);
  ASSERT_TRUE(wrapped);
  for (size_t n : {size_t{0}, size_t{32}, size_t{60}}) {
    auto r = UnwrapKey(*recipient, ByteSpan(wrapped->data(), n), kWrapAad);
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << n;
  }
  Bytes huge(100000, 0);
  auto r = UnwrapKey(*recipient, huge, kWrapAad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
}

TEST(WrapX25519, RejectsLowOrderPoints) {
  // u = 0 and u = 1 are low-order points: X25519 with them is all zero.
  auto recipient = PrivateKey::Generate(KeyType::kX25519);
  ASSERT_TRUE(recipient);
  auto wrapped = WrapKey(recipient->Public(), kContentKey, kWrapAad);
  ASSERT_TRUE(wrapped);
  for (uint8_t u0 : {0, 1}) {
    Bytes bad = *wrapped;
    std::fill(bad.begin(), bad.begin() + 32, 0);
    bad[0] = u0;
    auto r = UnwrapKey(*recipient, bad, kWrapAad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kDecryptFailed);

    Bytes low(32, 0);
    low[0] = u0;
    auto pub = PublicKey::FromRaw(KeyType::kX25519, low);
    ASSERT_TRUE(pub);
    auto w = WrapKey(*pub, kContentKey, kWrapAad);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().code(), ErrorCode::kInvalidArgument);
  }
}

TEST(WrapKey, RejectsKeysThatCannotWrapAndBadKeySizes) {
  auto ed = PrivateKey::Generate(KeyType::kEd25519);
  auto ec = PrivateKey::Generate(KeyType::kEcdsaP256);
  ASSERT_TRUE(ed && ec);
  for (const PrivateKey* k : {&*ed, &*ec}) {
    auto w = WrapKey(k->Public(), kContentKey, kWrapAad);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error().code(), ErrorCode::kInvalidArgument);
    auto u = UnwrapKey(*k, Bytes(100, 0), kWrapAad);
    ASSERT_FALSE(u);
    EXPECT_EQ(u.error().code(), ErrorCode::kInvalidArgument);
  }
  auto x = PrivateKey::Generate(KeyType::kX25519);
  ASSERT_TRUE(x);
  auto empty = WrapKey(x->Public(), ByteSpan(), kWrapAad);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code(), ErrorCode::kInvalidArgument);
}

TEST(WrapRsa, RoundTripsWithAadAsOaepLabel) {
  PublicKey pub = RsaKey().Public();
  auto wrapped = WrapKey(pub, kContentKey, kWrapAad);
  ASSERT_TRUE(wrapped) << wrapped.error().ToString();
  EXPECT_EQ(wrapped->size(), 512u);
  auto key = UnwrapKey(RsaKey(), *wrapped, kWrapAad);
  ASSERT_TRUE(key) << key.error().ToString();
  EXPECT_EQ(*key, kContentKey);

  // Independently: OpenSSL OAEP-SHA256/MGF1-SHA256 with the aad as label opens it.
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, RsaKey().get(), nullptr));
  ASSERT_EQ(EVP_PKEY_decrypt_init(ctx.get()), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx.get(), "SHA256", nullptr), 1);
  ASSERT_EQ(EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx.get(), "SHA256", nullptr), 1);
  auto* label = static_cast<unsigned char*>(OPENSSL_memdup(kWrapAad.data(), kWrapAad.size()));
  ASSERT_EQ(EVP_PKEY_CTX_set0_rsa_oaep_label(ctx.get(), label, static_cast<int>(kWrapAad.size())),
            1);
  Bytes out(512);
  size_t len = out.size();
  ASSERT_EQ(EVP_PKEY_decrypt(ctx.get(), out.data(), &len, wrapped->data(), wrapped->size()), 1);
  out.resize(len);
  EXPECT_EQ(out, kContentKey);

  // Empty aad (no label) works too.
  auto no_aad = WrapKey(pub, kContentKey, ByteSpan());
  ASSERT_TRUE(no_aad);
  EXPECT_EQ(*UnwrapKey(RsaKey(), *no_aad, ByteSpan()), kContentKey);
}

TEST(WrapRsa, RejectsWrongAadKeyAndTampering) {
  auto wrapped = WrapKey(RsaKey().Public(), kContentKey, kWrapAad);
  ASSERT_TRUE(wrapped);
  auto wrong_aad = UnwrapKey(RsaKey(), *wrapped, ToBytes("other"));
  ASSERT_FALSE(wrong_aad);
  EXPECT_EQ(wrong_aad.error().code(), ErrorCode::kDecryptFailed);
  Bytes bad = *wrapped;
  bad[200] ^= 0x80;
  auto tampered = UnwrapKey(RsaKey(), bad, kWrapAad);
  ASSERT_FALSE(tampered);
  EXPECT_EQ(tampered.error().code(), ErrorCode::kDecryptFailed);

  // A 2048-bit recipient (accepted), and the wrong key for the 4096-bit wrapping (wrong length).
  auto capgo = PrivateKey::FromFile(VectorPath("capgo/capgo_key_v2.pem"));
  ASSERT_TRUE(capgo);
  auto small = WrapKey(capgo->Public(), kContentKey, kWrapAad);
  ASSERT_TRUE(small);
  EXPECT_EQ(small->size(), 256u);
  EXPECT_EQ(*UnwrapKey(*capgo, *small, kWrapAad), kContentKey);
  auto wrong_len = UnwrapKey(*capgo, *wrapped, kWrapAad);
  ASSERT_FALSE(wrong_len);
  EXPECT_EQ(wrong_len.error().code(), ErrorCode::kMalformed);
  Bytes same_len(256, 0x01);
  auto wrong = UnwrapKey(*capgo, same_len, kWrapAad);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code(), ErrorCode::kDecryptFailed);

  // Too long for OAEP under 2048 bits (256 - 66 = 190 bytes max).
  auto too_long = WrapKey(capgo->Public(), Bytes(191, 1), kWrapAad);
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace airlock::crypto
