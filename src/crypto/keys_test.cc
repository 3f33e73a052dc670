#include "crypto/keys.h"

#include <sys/stat.h>

#include <openssl/pem.h>

#include <gtest/gtest.h>

#include "common/canonical_json.h"
#include "common/file.h"
#include "crypto/crypto_test_util.h"
#include "crypto/hash.h"

namespace airlock::crypto {
namespace {

using test_util::RsaKey;
using test_util::VectorPath;

namespace fs = std::filesystem;

// A fresh key, except RSA, which shares RsaKey().
Result<PrivateKey> GenerateOrShare(KeyType type) {
  if (type != KeyType::kRsa) return PrivateKey::Generate(type);
  EVP_PKEY_up_ref(RsaKey().get());
  return PrivateKey(EvpPkeyPtr(RsaKey().get()), KeyType::kRsa);
}

// A PEM made directly with OpenSSL, for key kinds Airlock itself never produces.
std::string PrivatePemOf(EVP_PKEY* pkey, const EVP_CIPHER* cipher = nullptr, bool traditional = false) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  static unsigned char kPass[] = "password";
  int ok = traditional ? PEM_write_bio_PrivateKey_traditional(bio.get(), pkey, cipher, kPass, 8,
                                                              nullptr, nullptr)
                       : PEM_write_bio_PrivateKey(bio.get(), pkey, cipher, kPass, 8, nullptr, nullptr);
  EXPECT_EQ(ok, 1);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string PublicPemOf(EVP_PKEY* pkey) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_PUBKEY(bio.get(), pkey), 1);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

TEST(ParseKeyType, AcceptsCliNames) {
  EXPECT_EQ(*ParseKeyType("ed25519"), KeyType::kEd25519);
  EXPECT_EQ(*ParseKeyType("ecdsa-p256"), KeyType::kEcdsaP256);
  EXPECT_EQ(*ParseKeyType("rsa-4096"), KeyType::kRsa);
  EXPECT_EQ(*ParseKeyType("rsa"), KeyType::kRsa);
  EXPECT_EQ(*ParseKeyType("x25519"), KeyType::kX25519);
  for (KeyType t : {KeyType::kEd25519, KeyType::kEcdsaP256, KeyType::kRsa, KeyType::kX25519}) {
    EXPECT_EQ(*ParseKeyType(KeyTypeName(t)), t);
  }
}

TEST(ParseKeyType, RejectsUnknownNames) {
  for (const char* bad : {"", "dsa", "ED25519", "rsa-2048", "ecdsa", "ed448"}) {
    auto r = ParseKeyType(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(KeyId, MatchesTufDefinitionForKnownEd25519Key) {
  // RFC 8032 section 7.1 TEST 1 public key.
  auto raw = HexDecode("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  ASSERT_TRUE(raw);
  auto key = PublicKey::FromRaw(KeyType::kEd25519, *raw);
  ASSERT_TRUE(key) << key.error().ToString();
  const std::string canonical =
      R"({"keytype":"ed25519","keyval":{"public":"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"},"scheme":"ed25519"})";
  EXPECT_EQ(*CanonicalJson(key->TufJson()), canonical);
  EXPECT_EQ(key->KeyId(), HexEncode(Sha256(AsBytes(canonical))));
  // Computed independently (Python hashlib over the string above).
  EXPECT_EQ(key->KeyId(), "74c181c7ad8a0855d4b55e44d2ba87aabdddb196832571f15f92fece332e4916");
}

TEST(KeyId, PemKeysKeepRawNewlinesInCanonicalJson) {
  auto key = PrivateKey::Generate(KeyType::kEcdsaP256);
  ASSERT_TRUE(key);
  PublicKey pub = key->Public();
  std::string pem = pub.ToPem();
  ASSERT_EQ(pem.rfind("-----BEGIN PUBLIC KEY-----\n", 0), 0u);
  const std::string canonical =
      R"({"keytype":"ecdsa","keyval":{"public":")" + pem + R"("},"scheme":"ecdsa-sha2-nistp256"})";
  EXPECT_EQ(pub.KeyId(), HexEncode(Sha256(AsBytes(canonical))));
  EXPECT_EQ(key->KeyId(), pub.KeyId());
  EXPECT_EQ(pub.TufJson()["keyval"]["public"], pem);
}

TEST(KeyId, RsaAndX25519UseTheirTufNames) {
  PublicKey rsa = RsaKey().Public();
  EXPECT_EQ(rsa.TufKeyType(), "rsa");
  EXPECT_EQ(rsa.TufScheme(), "rsassa-pss-sha256");
  EXPECT_EQ(rsa.TufJson()["keyval"]["public"], rsa.ToPem());
  auto x = PrivateKey::Generate(KeyType::kX25519);
  ASSERT_TRUE(x);
  PublicKey xp = x->Public();
  EXPECT_EQ(xp.TufKeyType(), "x25519");
  EXPECT_EQ(xp.TufScheme(), "x25519-hkdf-sha256-aes256gcm");
  EXPECT_EQ(xp.TufJson()["keyval"]["public"], HexEncode(*xp.RawPublic()));
  EXPECT_EQ(xp.KeyId().size(), 64u);
}

class KeyRoundTrip : public ::testing::TestWithParam<KeyType> {};

TEST_P(KeyRoundTrip, ThroughPemFiles) {
  KeyType type = GetParam();
  auto generated = GenerateOrShare(type);
  ASSERT_TRUE(generated) << generated.error().ToString();
  const PrivateKey& key = *generated;
  EXPECT_EQ(key.type(), type);
  if (type == KeyType::kRsa) {
    EXPECT_EQ(key.bits(), 4096);
  }
  if (type == KeyType::kEcdsaP256) {
    EXPECT_EQ(key.bits(), 256);
  }

  auto dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir);
  fs::path base = dir->path() / "signer";
  auto wrote = WriteKeyPair(key, base);
  ASSERT_TRUE(wrote) << wrote.error().ToString();

  struct stat st {};
  ASSERT_EQ(::stat((base.string() + ".key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat((base.string() + ".pub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);

  auto key_text = ReadTextFile(base.string() + ".key", kMaxPemSize);
  ASSERT_TRUE(key_text);
  EXPECT_EQ(key_text->rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);  // PKCS#8, unencrypted

  auto loaded = PrivateKey::FromFile(base.string() + ".key");
  ASSERT_TRUE(loaded) << loaded.error().ToString();
  EXPECT_EQ(loaded->type(), type);
  EXPECT_TRUE(loaded->Public().Equals(key.Public()));
  EXPECT_EQ(loaded->ToPem(), key.ToPem());

  auto pub = PublicKey::FromFile(base.string() + ".pub");
  ASSERT_TRUE(pub) << pub.error().ToString();
  EXPECT_EQ(pub->type(), type);
  EXPECT_TRUE(pub->Equals(key.Public()));
  EXPECT_EQ(pub->KeyId(), key.KeyId());
  EXPECT_EQ(pub->ToPem(), key.Public().ToPem());

  // Never overwritten.
  auto again = WriteKeyPair(key, base);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code(), ErrorCode::kAlreadyExists);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, KeyRoundTrip,
                         ::testing::Values(KeyType::kEd25519, KeyType::kEcdsaP256, KeyType::kRsa,
                                           KeyType::kX25519),
                         [](const auto& info) {
                           std::string n(KeyTypeName(info.param));
                           for (char& c : n) if (c == '-') c = '_';
                           return n;
                         });

TEST(WriteKeyPair, RefusesWhenOnlyThePublicHalfExists) {
  auto dir = ScopedTempDir::Create();
  ASSERT_TRUE(dir);
  fs::path base = dir->path() / "k";
  ASSERT_TRUE(WriteFileAtomic(base.string() + ".pub", AsBytes("x")));
  auto key = PrivateKey::Generate(KeyType::kEd25519);
  ASSERT_TRUE(key);
  auto r = WriteKeyPair(*key, base);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kAlreadyExists);
  EXPECT_FALSE(fs::exists(base.string() + ".key"));
}

TEST(PublicKey, DifferentKeysAreNotEqual) {
  auto a = PrivateKey::Generate(KeyType::kEd25519);
  auto b = PrivateKey::Generate(KeyType::kEd25519);
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(a->Public().Equals(b->Public()));
  EXPECT_NE(a->KeyId(), b->KeyId());
}

TEST(CapgoKeys, LoadsPkcs1PrivateAndPublicPem) {
  auto priv = PrivateKey::FromFile(VectorPath("capgo/capgo_key_v2.pem"));
  ASSERT_TRUE(priv) << priv.error().ToString();
  EXPECT_EQ(priv->type(), KeyType::kRsa);
  EXPECT_EQ(priv->bits(), 2048);

  auto pkcs1 = PublicKey::FromFile(VectorPath("capgo/capgo_key_v2.pub.pem"));
  ASSERT_TRUE(pkcs1) << pkcs1.error().ToString();
  auto spki = PublicKey::FromFile(VectorPath("capgo/pub_spki.pem"));
  ASSERT_TRUE(spki) << spki.error().ToString();
  EXPECT_EQ(pkcs1->type(), KeyType::kRsa);
  EXPECT_EQ(pkcs1->bits(), 2048);
  EXPECT_TRUE(pkcs1->Equals(*spki));
  EXPECT_TRUE(pkcs1->Equals(priv->Public()));

  // Writing PKCS#1 gives back the file the Capgo CLI wrote, and SPKI the SPKI file.
  auto pkcs1_text = ReadTextFile(VectorPath("capgo/capgo_key_v2.pub.pem"), kMaxPemSize);
  auto spki_text = ReadTextFile(VectorPath("capgo/pub_spki.pem"), kMaxPemSize);
  ASSERT_TRUE(pkcs1_text && spki_text);
  std::string written = pkcs1->ToPkcs1Pem();
  EXPECT_EQ(written.rfind("-----BEGIN RSA PUBLIC KEY-----\n", 0), 0u);
  EXPECT_EQ(written, *pkcs1_text);
  EXPECT_EQ(pkcs1->ToPem(), *spki_text);
  auto reparsed = PublicKey::FromPem(written);
  ASSERT_TRUE(reparsed);
  EXPECT_TRUE(reparsed->Equals(*spki));
}

TEST(PublicKey, Pkcs1PemIsEmptyForNonRsa) {
  auto key = PrivateKey::Generate(KeyType::kEd25519);
  ASSERT_TRUE(key);
  EXPECT_EQ(key->Public().ToPkcs1Pem(), "");
}

TEST(PublicKey, RejectsGarbageAsMalformed) {
  auto priv_pem = PrivateKey::Generate(KeyType::kEd25519)->ToPem();
  const std::string cases[] = {
      "",
      "hello",
      "-----BEGIN PUBLIC KEY-----\nnot base64!!\n-----END PUBLIC KEY-----\n",
      "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
      "-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n",
      priv_pem,  // a private key is not a public key
  };
  for (const std::string& pem : cases) {
    auto r = PublicKey::FromPem(pem);
    ASSERT_FALSE(r) << pem;
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << pem;
  }
}

TEST(PublicKey, RejectsOversizedPem) {
  std::string pem = RsaKey().Public().ToPem();
  pem += std::string(kMaxPemSize, '\n');
  auto r = PublicKey::FromPem(pem);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kLimitExceeded);
  auto p = PrivateKey::FromPem(pem);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code(), ErrorCode::kLimitExceeded);
}

TEST(PublicKey, RejectsOtherAlgorithmsCurvesAndSizes) {
  EvpPkeyPtr p384(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384"));
  EvpPkeyPtr k256(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "secp256k1"));
  EvpPkeyPtr rsa1024(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(1024)));
  EvpPkeyPtr ed448(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED448"));
  EvpPkeyPtr x448(EVP_PKEY_Q_keygen(nullptr, nullptr, "X448"));
  for (EVP_PKEY* k : {p384.get(), k256.get(), rsa1024.get(), ed448.get(), x448.get()}) {
    ASSERT_NE(k, nullptr);
    auto pub = PublicKey::FromPem(PublicPemOf(k));
    ASSERT_FALSE(pub) << EVP_PKEY_get0_type_name(k);
    EXPECT_EQ(pub.error().code(), ErrorCode::kUnsupported) << pub.error().ToString();
    auto priv = PrivateKey::FromPem(PrivatePemOf(k));
    ASSERT_FALSE(priv) << EVP_PKEY_get0_type_name(k);
    EXPECT_EQ(priv.error().code(), ErrorCode::kUnsupported) << priv.error().ToString();
  }
}

TEST(PrivateKey, RejectsEncryptedPemWithoutPrompting) {
  auto key = PrivateKey::Generate(KeyType::kEcdsaP256);
  ASSERT_TRUE(key);
  std::string pkcs8 = PrivatePemOf(key->get(), EVP_aes_256_cbc());
  ASSERT_NE(pkcs8.find("BEGIN ENCRYPTED PRIVATE KEY"), std::string::npos);
  std::string traditional = PrivatePemOf(key->get(), EVP_aes_256_cbc(), /*traditional=*/true);
  ASSERT_NE(traditional.find("Proc-Type: 4,ENCRYPTED"), std::string::npos);
  for (const std::string& pem : {pkcs8, traditional}) {
    auto r = PrivateKey::FromPem(pem);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code(), ErrorCode::kUnsupported) << r.error().ToString();
  }
}

TEST(PrivateKey, LoadsTraditionalRsaPem) {
  std::string pem = PrivatePemOf(RsaKey().get(), nullptr, /*traditional=*/true);
  ASSERT_EQ(pem.rfind("-----BEGIN RSA PRIVATE KEY-----", 0), 0u);
  auto r = PrivateKey::FromPem(pem);
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(r->type(), KeyType::kRsa);
  EXPECT_TRUE(r->Public().Equals(RsaKey().Public()));
}

TEST(PrivateKey, RejectsGarbageAsMalformed) {
  std::string pub_pem = PrivateKey::Generate(KeyType::kEd25519)->Public().ToPem();
  for (const std::string& pem :
       {std::string(), std::string("junk"), pub_pem,
        std::string("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")}) {
    auto r = PrivateKey::FromPem(pem);
    ASSERT_FALSE(r) << pem;
    EXPECT_EQ(r.error().code(), ErrorCode::kMalformed) << pem;
  }
}

TEST(KeyFiles, MissingFileIsNotFound) {
  auto r = PrivateKey::FromFile("/nonexistent/airlock/key.pem");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  auto p = PublicKey::FromFile("/nonexistent/airlock/key.pub");
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().code(), ErrorCode::kNotFound);
}

TEST(RawKeys, RoundTripAndValidate) {
  auto seed = HexDecode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
  ASSERT_TRUE(seed);
  auto priv = PrivateKey::FromRaw(KeyType::kEd25519, *seed);
  ASSERT_TRUE(priv) << priv.error().ToString();
  EXPECT_EQ(HexEncode(*priv->Public().RawPublic()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");

  auto short_key = PublicKey::FromRaw(KeyType::kEd25519, ByteSpan(seed->data(), 31));
  ASSERT_FALSE(short_key);
  EXPECT_EQ(short_key.error().code(), ErrorCode::kMalformed);
  auto rsa_raw = PublicKey::FromRaw(KeyType::kRsa, *seed);
  ASSERT_FALSE(rsa_raw);
  EXPECT_EQ(rsa_raw.error().code(), ErrorCode::kInvalidArgument);
  auto rsa_priv_raw = PrivateKey::FromRaw(KeyType::kEcdsaP256, *seed);
  ASSERT_FALSE(rsa_priv_raw);
  EXPECT_EQ(rsa_priv_raw.error().code(), ErrorCode::kInvalidArgument);

  auto no_raw = RsaKey().Public().RawPublic();
  ASSERT_FALSE(no_raw);
  EXPECT_EQ(no_raw.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace airlock::crypto
