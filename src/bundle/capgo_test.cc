#include "bundle/capgo.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <nlohmann/json.hpp>

#include "common/file.h"
#include "crypto/base64.h"
#include "crypto/hash.h"
#include "crypto/keys.h"
#include "crypto/ossl.h"
#include "crypto/random.h"
#include "crypto/rsa_raw.h"

namespace airlock::bundle::capgo {
namespace {

namespace fs = std::filesystem;

std::string Vector(const std::string& rel) {
  return std::string(AIRLOCK_VECTORS_DIR) + "/capgo/" + rel;
}

Bytes ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void WriteAll(const fs::path& path, const Bytes& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(out.good()) << path;
}

nlohmann::json ReadJson(const std::string& rel) {
  std::ifstream in(Vector(rel));
  EXPECT_TRUE(in) << rel;
  return nlohmann::json::parse(in);
}

bool IsEmptyDir(const fs::path& dir) { return fs::is_empty(dir); }

class CapgoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pub = crypto::PublicKey::FromFile(Vector("capgo_key_v2.pub.pem"));
    ASSERT_TRUE(pub) << pub.error().ToString();
    public_key_.emplace(std::move(*pub));
    auto priv = crypto::PrivateKey::FromFile(Vector("capgo_key_v2.pem"));
    ASSERT_TRUE(priv) << priv.error().ToString();
    private_key_.emplace(std::move(*priv));
    auto out_dir = ScopedTempDir::Create({}, "capgo-out-");
    ASSERT_TRUE(out_dir);
    out_dir_.emplace(std::move(*out_dir));
    auto work_dir = ScopedTempDir::Create({}, "capgo-work-");
    ASSERT_TRUE(work_dir);
    work_dir_.emplace(std::move(*work_dir));
    auto v3 = ReadJson("full/encrypt_out_v3.json");
    session_key_ = v3["ivSessionKey"].get<std::string>();
    checksum_ = v3["checksum"].get<std::string>();
  }

  const crypto::PublicKey& pub() { return *public_key_; }
  const crypto::PrivateKey& priv() { return *private_key_; }
  fs::path Out(const std::string& name = "out.zip") { return out_dir_->path() / name; }
  fs::path Work(const std::string& name) { return work_dir_->path() / name; }

  // A copy of the vector ciphertext with `mutate` applied, in the work directory.
  fs::path TamperedCopy(void (*mutate)(Bytes&)) {
    Bytes data = ReadAll(Vector("full/bundle_encrypted.zip"));
    mutate(data);
    fs::path p = Work("tampered.zip");
    WriteAll(p, data);
    return p;
  }

  // An RSA-2048 key that is not the vector's.
  static crypto::PrivateKey OtherRsa2048() {
    crypto::EvpPkeyPtr pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048}));
    EXPECT_TRUE(pkey);
    return crypto::PrivateKey(std::move(pkey), crypto::KeyType::kRsa);
  }

  std::optional<crypto::PublicKey> public_key_;
  std::optional<crypto::PrivateKey> private_key_;
  std::optional<ScopedTempDir> out_dir_;
  std::optional<ScopedTempDir> work_dir_;
  std::string session_key_;
  std::string checksum_;
};

// ---- Vectors made by the real Capgo CLI ----

TEST_F(CapgoTest, DecryptsCapgoCliBundleToTheExactZip) {
  auto r = DecryptFile(Vector("full/bundle_encrypted.zip"), pub(), session_key_, checksum_, Out());
  ASSERT_TRUE(r) << r.error().ToString();
  Bytes plain = ReadAll(Vector("full/bundle.zip"));
  EXPECT_EQ(ReadAll(Out()), plain);
  EXPECT_EQ(r->size, plain.size());
  auto zip_out = ReadJson("full/zip_out.json");
  EXPECT_EQ(HexEncode(r->sha256), zip_out["checksum"].get<std::string>());
}

// The plugin's own contract cases (tests/vectors/capgo/plugin_calc_key_id.json) and the key the
// real Capgo CLI made: the key id is what the plugin sends as `key_id`.
TEST_F(CapgoTest, KeyIdMatchesThePluginsCalcKeyId) {
  std::ifstream in(Vector("plugin_calc_key_id.json"));
  const nlohmann::json cases = nlohmann::json::parse(in);
  ASSERT_FALSE(cases["calcKeyId"].empty());
  for (const auto& c : cases["calcKeyId"]) {
    auto key = crypto::PublicKey::FromPem(c["input"]["publicKeyPem"].get<std::string>());
    ASSERT_TRUE(key) << key.error().ToString();
    EXPECT_EQ(KeyId(*key), c["expect"]["keyId"].get<std::string>()) << c["id"];
  }
  // The SPKI form of the CLI's key gives the id of its PKCS#1 form.
  auto spki = crypto::PublicKey::FromFile(Vector("pub_spki.pem"));
  ASSERT_TRUE(spki);
  EXPECT_EQ(KeyId(*spki), KeyId(*public_key_));
  EXPECT_EQ(KeyId(*public_key_).size(), 20u);
  EXPECT_EQ(KeyId(*public_key_).rfind("MIIBCgKCAQEA", 0), 0u);
}

TEST_F(CapgoTest, SpkiPublicKeyWorksLikePkcs1) {
  auto spki = crypto::PublicKey::FromFile(Vector("pub_spki.pem"));
  ASSERT_TRUE(spki) << spki.error().ToString();
  auto r = DecryptFile(Vector("full/bundle_encrypted.zip"), *spki, session_key_, checksum_, Out());
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(ReadAll(Out()), ReadAll(Vector("full/bundle.zip")));
}

TEST_F(CapgoTest, SessionKeyRecoversTheVectorKeyAndIv) {
  auto manifest = ReadJson("delta/manifest.json");
  auto s = ParseSessionKey(session_key_, pub());
  ASSERT_TRUE(s) << s.error().ToString();
  EXPECT_EQ(HexEncode(s->key.get()), manifest["aes_key_hex_FOR_TESTS_ONLY"].get<std::string>());
  EXPECT_EQ(HexEncode(s->iv), manifest["iv_hex"].get<std::string>());
}

TEST_F(CapgoTest, ChecksumRecoversSha256OfPlainZip) {
  auto digest = ParseChecksum(checksum_, pub());
  ASSERT_TRUE(digest) << digest.error().ToString();
  EXPECT_EQ(HexEncode(*digest), ReadJson("full/zip_out.json")["checksum"].get<std::string>());
}

TEST_F(CapgoTest, UpperCaseHexChecksumIsAccepted) {
  std::string upper = checksum_;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto digest = ParseChecksum(upper, pub());
  ASSERT_TRUE(digest) << digest.error().ToString();
  EXPECT_EQ(digest->size(), kDigestSize);
}

// ---- Legacy and unsigned checksums ----

TEST_F(CapgoTest, RefusesLegacyBase64Checksum) {
  auto legacy = ReadJson("full/encrypt_out_v2_legacy_checksum.json");
  auto digest = ParseChecksum(legacy["checksum"].get<std::string>(), pub());
  ASSERT_FALSE(digest);
  EXPECT_EQ(digest.error().code(), ErrorCode::kUnsupported);
  EXPECT_NE(digest.error().message().find("legacy Capgo v2 checksum"), std::string::npos);
  EXPECT_NE(digest.error().message().find("re-encrypt"), std::string::npos);

  auto r = DecryptFile(Vector("full/bundle_encrypted_v2run.zip"), pub(),
                       legacy["ivSessionKey"].get<std::string>(),
                       legacy["checksum"].get<std::string>(), Out());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnsupported);
  EXPECT_TRUE(IsEmptyDir(out_dir_->path()));
}

// Documents what the legacy block holds (found from the vector): base64-decode of the hex sha256,
// 48 bytes, so it can never be compared to a digest directly.
TEST_F(CapgoTest, LegacyChecksumBlockHoldsBase64DecodedHex) {
  auto legacy = ReadJson("full/encrypt_out_v2_legacy_checksum.json");
  auto block = crypto::Base64Decode(legacy["checksum"].get<std::string>());
  ASSERT_TRUE(block);
  auto payload = crypto::RsaPkcs1Type1Recover(pub(), *block);
  ASSERT_TRUE(payload) << payload.error().ToString();
  EXPECT_EQ(crypto::Base64Encode(*payload),
            ReadJson("full/zip_out.json")["checksum"].get<std::string>());
}

TEST_F(CapgoTest, RefusesUnsignedSha256Checksum) {
  std::string bare = ReadJson("full/zip_out.json")["checksum"].get<std::string>();
  auto digest = ParseChecksum(bare, pub());
  ASSERT_FALSE(digest);
  EXPECT_EQ(digest.error().code(), ErrorCode::kUnsupported);
  EXPECT_NE(digest.error().message().find("proves nothing"), std::string::npos);

  auto r = DecryptFile(Vector("full/bundle_encrypted.zip"), pub(), session_key_, bare, Out());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kUnsupported);
  EXPECT_TRUE(IsEmptyDir(out_dir_->path()));
}

TEST_F(CapgoTest, RejectsMalformedChecksums) {
  for (const std::string& bad : {std::string(), std::string("not a checksum!"), std::string("abc"),
                                 std::string(kMaxFieldText + 2, 'a'),
                                 std::string("QUJD")}) {  // base64 of "ABC": not a block
    auto digest = ParseChecksum(bad, pub());
    ASSERT_FALSE(digest) << bad;
    EXPECT_EQ(digest.error().code(), ErrorCode::kMalformed) << bad.substr(0, 40);
  }
}

TEST_F(CapgoTest, TamperedOrMisSizedHexChecksumIsBadSignature) {
  std::string tampered = checksum_;
  tampered[100] = tampered[100] == '0' ? '1' : '0';
  auto digest = ParseChecksum(tampered, pub());
  ASSERT_FALSE(digest);
  EXPECT_EQ(digest.error().code(), ErrorCode::kBadSignature);

  auto short_block = ParseChecksum(checksum_.substr(0, 510), pub());
  ASSERT_FALSE(short_block);
  EXPECT_EQ(short_block.error().code(), ErrorCode::kBadSignature);
}

// ---- Session keys ----

TEST_F(CapgoTest, RejectsMalformedSessionKeys) {
  const std::string iv = session_key_.substr(0, session_key_.find(':'));
  const std::string block = session_key_.substr(session_key_.find(':') + 1);
  const std::string iv15 = crypto::Base64Encode(Bytes(15, 0x11));
  const std::string iv17 = crypto::Base64Encode(Bytes(17, 0x11));
  const std::string cases[] = {
      "",                                   // empty
      iv + block,                           // no colon
      iv + ":" + block + ":",               // two colons
      iv + "::" + block,                    // two colons
      ":" + block,                          // empty IV
      iv + ":",                             // empty block
      "!!!!" + iv.substr(4) + ":" + block,  // bad base64 in the IV
      iv + ":" + block.substr(1),           // base64 length not a multiple of 4
      iv + ":" + " " + block.substr(1),     // whitespace
      iv15 + ":" + block,                   // 15-byte IV
      iv17 + ":" + block,                   // 17-byte IV
      std::string(kMaxFieldText + 1, 'A'),  // too long
  };
  for (const std::string& text : cases) {
    auto s = ParseSessionKey(text, pub());
    ASSERT_FALSE(s) << text;
    EXPECT_EQ(s.error().code(), ErrorCode::kMalformed)
        << text.substr(0, 60) << ": " << s.error().message();
  }
}

TEST_F(CapgoTest, SessionKeyUnderAnotherKeyIsBadSignature) {
  crypto::PrivateKey other = OtherRsa2048();
  auto s = ParseSessionKey(session_key_, other.Public());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kBadSignature);
  EXPECT_NE(s.error().message().find("does not decrypt with this public key"), std::string::npos);

  auto r = DecryptFile(Vector("full/bundle_encrypted.zip"), other.Public(), session_key_, checksum_,
                       Out());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadSignature);
  EXPECT_NE(r.error().message().find("session key does not decrypt"), std::string::npos);
  EXPECT_TRUE(IsEmptyDir(out_dir_->path()));
}

TEST_F(CapgoTest, TamperedSessionKeyBlockIsBadSignature) {
  size_t colon = session_key_.find(':');
  std::string tampered = session_key_;
  tampered[colon + 20] = tampered[colon + 20] == 'A' ? 'B' : 'A';
  auto s = ParseSessionKey(tampered, pub());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kBadSignature);

  // A block of the wrong size (one byte short) cannot come from this key either.
  Bytes block = *crypto::Base64Decode(session_key_.substr(colon + 1));
  block.pop_back();
  auto short_block =
      ParseSessionKey(session_key_.substr(0, colon + 1) + crypto::Base64Encode(block), pub());
  ASSERT_FALSE(short_block);
  EXPECT_EQ(short_block.error().code(), ErrorCode::kBadSignature);
}

TEST_F(CapgoTest, SessionKeyHoldingWrongKeyLengthIsMalformed) {
  auto block = crypto::RsaPkcs1Type1Sign(priv(), Bytes(32, 0x42));  // an AES-256-sized key
  ASSERT_TRUE(block);
  std::string text =
      session_key_.substr(0, session_key_.find(':') + 1) + crypto::Base64Encode(*block);
  auto s = ParseSessionKey(text, pub());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kMalformed);
}

// ---- Tampered payloads ----

TEST_F(CapgoTest, FlippedMiddleByteIsHashMismatch) {
  fs::path p = TamperedCopy([](Bytes& d) { d[d.size() / 2] ^= 0x01; });
  auto r = DecryptFile(p, pub(), session_key_, checksum_, Out());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch);
  EXPECT_NE(r.error().message().find("checksum mismatch"), std::string::npos);
  EXPECT_TRUE(IsEmptyDir(out_dir_->path()));
}

// Flipping a bit in the last ciphertext block turns the whole last plaintext block to noise; with
// this vector its padding no longer checks (a deterministic outcome for this fixed input).
TEST_F(CapgoTest, FlippedLastBlockIsBadPadding) {
  fs::path p = TamperedCopy([](Bytes& d) { d[d.size() - 1] ^= 0x01; });
  auto r = DecryptFile(p, pub(), session_key_, checksum_, Out());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kDecryptFailed);
  EXPECT_NE(r.error().message().find("padding"), std::string::npos);
  EXPECT_TRUE(IsEmptyDir(out_dir_->path()));
}

// Flipping the last byte of the second-to-last block flips exactly the last padding byte: 0x08 in
// this vector (784 = 776 + 8) becomes 0x09, which is invalid padding.
TEST_F(CapgoTest, FlippedPaddingByteIsBadPadding) {
  fs::path p = TamperedCopy([](Bytes& d) { d[d.size() - 17] ^= 0x01; });
  auto r = DecryptFile(p, pub(), session_key_, checksum_, Out());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kDecryptFailed);
  EXPECT_TRUE(IsEmptyDir(out_dir_->path()));
}

TEST_F(CapgoTest, PayloadOfWrongSizeIsMalformed) {
  fs::path odd = TamperedCopy([](Bytes& d) { d.pop_back(); });
  auto r = DecryptFile(odd, pub(), session_key_, checksum_, Out());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);

  fs::path empty = TamperedCopy([](Bytes& d) { d.clear(); });
  r = DecryptFile(empty, pub(), session_key_, checksum_, Out());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kMalformed);
  EXPECT_TRUE(IsEmptyDir(out_dir_->path()));
}

// Dropping the last block leaves a shorter ciphertext whose final plaintext block is zip data, so
// its last byte is not valid padding for this vector.
TEST_F(CapgoTest, TruncatedByOneBlockFails) {
  fs::path p = TamperedCopy([](Bytes& d) { d.erase(d.end() - 16, d.end()); });
  auto r = DecryptFile(p, pub(), session_key_, checksum_, Out());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kDecryptFailed);
  EXPECT_TRUE(IsEmptyDir(out_dir_->path()));
}

TEST_F(CapgoTest, MissingInputIsNotFound) {
  auto r = DecryptFile(Work("nope.zip"), pub(), session_key_, checksum_, Out());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(IsEmptyDir(out_dir_->path()));
}

// ---- Encryption ----

TEST_F(CapgoTest, EncryptThenDecryptRoundTrips) {
  fs::path enc = Work("enc.zip");
  auto e = EncryptFile(Vector("full/bundle.zip"), priv(), enc);
  ASSERT_TRUE(e) << e.error().ToString();
  Bytes plain = ReadAll(Vector("full/bundle.zip"));
  EXPECT_EQ(e->plain_size, plain.size());
  EXPECT_EQ(e->encrypted_size, (plain.size() / 16 + 1) * 16);
  EXPECT_EQ(fs::file_size(enc), e->encrypted_size);
  EXPECT_EQ(e->checksum.size(), 512u);
  EXPECT_EQ(e->sha256, crypto::Sha256(plain));

  auto d = DecryptFile(enc, pub(), e->session_key, e->checksum, Out());
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_EQ(ReadAll(Out()), plain);
}

TEST_F(CapgoTest, EncryptUsesFreshKeyAndIvEachTime) {
  auto a = EncryptFile(Vector("full/bundle.zip"), priv(), Work("a.zip"));
  auto b = EncryptFile(Vector("full/bundle.zip"), priv(), Work("b.zip"));
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->session_key, b->session_key);
  EXPECT_NE(ReadAll(Work("a.zip")), ReadAll(Work("b.zip")));
  auto ka = ParseSessionKey(a->session_key, pub());
  auto kb = ParseSessionKey(b->session_key, pub());
  ASSERT_TRUE(ka && kb);
  EXPECT_NE(ka->key.get(), kb->key.get());
  EXPECT_NE(ka->iv, kb->iv);
  // Type-1 padding is deterministic: the same digest gives the same checksum.
  EXPECT_EQ(a->checksum, b->checksum);
}

// Opens our output the way @capgo/capacitor-updater does, with OpenSSL directly and none of this
// module or the crypto module: EVP_PKEY_verify_recover (PKCS#1 padding, no digest) on both blocks,
// then AES-128-CBC with PKCS#7.
TEST_F(CapgoTest, OutputOpensTheWayThePluginDoes) {
  fs::path enc = Work("enc.zip");
  auto e = EncryptFile(Vector("full/bundle.zip"), priv(), enc);
  ASSERT_TRUE(e) << e.error().ToString();

  crypto::BioPtr bio(BIO_new_file(Vector("pub_spki.pem").c_str(), "r"));
  ASSERT_TRUE(bio);
  crypto::EvpPkeyPtr pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  ASSERT_TRUE(pkey);
  auto recover = [&](const Bytes& block) {
    crypto::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(pkey.get(), nullptr));
    EXPECT_EQ(EVP_PKEY_verify_recover_init(ctx.get()), 1);
    EXPECT_EQ(EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING), 1);
    Bytes out(256);
    size_t out_len = out.size();
    EXPECT_EQ(EVP_PKEY_verify_recover(ctx.get(), out.data(), &out_len, block.data(), block.size()),
              1);
    out.resize(out_len);
    return out;
  };
  auto b64 = [](const std::string& s) {
    Bytes out(s.size() / 4 * 3);
    int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(s.data()),
                            static_cast<int>(s.size()));
    EXPECT_GE(n, 0);
    size_t pad = (s.size() >= 1 && s.back() == '=') + (s.size() >= 2 && s[s.size() - 2] == '=');
    out.resize(static_cast<size_t>(n) - pad);
    return out;
  };
  auto unhex = [](const std::string& s) {
    Bytes out;
    for (size_t i = 0; i + 1 < s.size(); i += 2) {
      out.push_back(static_cast<uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16)));
    }
    return out;
  };

  size_t colon = e->session_key.find(':');
  Bytes iv = b64(e->session_key.substr(0, colon));
  Bytes key = recover(b64(e->session_key.substr(colon + 1)));
  ASSERT_EQ(iv.size(), 16u);
  ASSERT_EQ(key.size(), 16u);

  Bytes ciphertext = ReadAll(enc);
  crypto::EvpCipherCtxPtr cctx(EVP_CIPHER_CTX_new());
  ASSERT_EQ(EVP_DecryptInit_ex(cctx.get(), EVP_aes_128_cbc(), nullptr, key.data(), iv.data()), 1);
  Bytes plain(ciphertext.size() + 16);
  int n1 = 0, n2 = 0;
  ASSERT_EQ(EVP_DecryptUpdate(cctx.get(), plain.data(), &n1, ciphertext.data(),
                              static_cast<int>(ciphertext.size())),
            1);
  ASSERT_EQ(EVP_DecryptFinal_ex(cctx.get(), plain.data() + n1, &n2), 1);
  plain.resize(static_cast<size_t>(n1 + n2));
  Bytes expected = ReadAll(Vector("full/bundle.zip"));
  EXPECT_EQ(plain, expected);

  Bytes digest(32);
  unsigned int digest_len = 0;
  ASSERT_EQ(EVP_Digest(expected.data(), expected.size(), digest.data(), &digest_len, EVP_sha256(),
                       nullptr),
            1);
  EXPECT_EQ(recover(unhex(e->checksum)), digest);
}

// ---- Encryption through a CapgoSigner (a key in a vault or HSM) ----

TEST_F(CapgoTest, SignerEncryptsLikeTheKeyAndCallsItTwice) {
  std::vector<size_t> calls;
  CapgoSigner signer{[&](ByteSpan data) {
                       calls.push_back(data.size());
                       return crypto::RsaPkcs1Type1Sign(priv(), data);
                     },
                     pub()};
  fs::path enc = Work("enc.zip");
  auto e = EncryptFile(Vector("full/bundle.zip"), signer, enc);
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_EQ(calls, (std::vector<size_t>{kAesKeySize, kDigestSize}));  // session key, then checksum
  // The checksum is deterministic, so equal to the one made with the key file.
  auto with_key = EncryptFile(Vector("full/bundle.zip"), priv(), Work("enc2.zip"));
  ASSERT_TRUE(with_key);
  EXPECT_EQ(e->checksum, with_key->checksum);
  auto d = DecryptFile(enc, pub(), e->session_key, e->checksum, Out());
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_EQ(ReadAll(Out()), ReadAll(Vector("full/bundle.zip")));
}

TEST_F(CapgoTest, SignerErrorsAreReturnedAndNothingIsWritten) {
  int calls = 0;
  CapgoSigner refusing{[&](ByteSpan) -> Result<Bytes> {
                         ++calls;
                         return MakeError(ErrorCode::kKeyUnusable, "key capgo is suspended");
                       },
                       pub()};
  auto e = EncryptFile(Vector("full/bundle.zip"), refusing, Out());
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code(), ErrorCode::kKeyUnusable);
  EXPECT_EQ(calls, 1);  // refused at the session key, before the payload
  EXPECT_TRUE(IsEmptyDir(out_dir_->path()));

  // Fails on the checksum (second call): the output is still not written.
  calls = 0;
  CapgoSigner second_fails{[&](ByteSpan data) -> Result<Bytes> {
                             if (++calls == 2) return MakeError(ErrorCode::kIo, "audit log full");
                             return crypto::RsaPkcs1Type1Sign(priv(), data);
                           },
                           pub()};
  e = EncryptFile(Vector("full/bundle.zip"), second_fails, Out());
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code(), ErrorCode::kIo);
  EXPECT_TRUE(IsEmptyDir(out_dir_->path()));
}

TEST_F(CapgoTest, SignerWhosePrivateHalfDoesNotMatchIsWrongKey) {
  crypto::PrivateKey other = OtherRsa2048();
  CapgoSigner mismatched{[&](ByteSpan data) { return crypto::RsaPkcs1Type1Sign(other, data); },
                         pub()};
  auto e = EncryptFile(Vector("full/bundle.zip"), mismatched, Out());
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code(), ErrorCode::kWrongKey);
  EXPECT_TRUE(IsEmptyDir(out_dir_->path()));

  auto ed = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
  ASSERT_TRUE(ed);
  CapgoSigner not_rsa{[&](ByteSpan data) { return crypto::RsaPkcs1Type1Sign(priv(), data); },
                      ed->Public()};
  EXPECT_EQ(EncryptFile(Vector("full/bundle.zip"), not_rsa, Out()).error().code(),
            ErrorCode::kUnsupported);
  EXPECT_EQ(SignerFromPrivateKey(*ed).error().code(), ErrorCode::kUnsupported);
  EXPECT_TRUE(IsEmptyDir(out_dir_->path()));
}

TEST_F(CapgoTest, EncryptRefusesNonRsaKey) {
  auto ed = crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
  ASSERT_TRUE(ed);
  auto e = EncryptFile(Vector("full/bundle.zip"), *ed, Out());
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code(), ErrorCode::kUnsupported);
  EXPECT_TRUE(IsEmptyDir(out_dir_->path()));

  auto s = ParseSessionKey(session_key_, ed->Public());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kUnsupported);
}

TEST_F(CapgoTest, EncryptMissingInputIsNotFoundAndWritesNothing) {
  auto e = EncryptFile(Work("missing.zip"), priv(), Out());
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(IsEmptyDir(out_dir_->path()));
}

TEST_F(CapgoTest, EncryptedWithOtherKeyDoesNotOpenUnderVectorKey) {
  crypto::PrivateKey other = OtherRsa2048();
  fs::path enc = Work("enc.zip");
  auto e = EncryptFile(Vector("full/bundle.zip"), other, enc);
  ASSERT_TRUE(e) << e.error().ToString();
  auto r = DecryptFile(enc, pub(), e->session_key, e->checksum, Out());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kBadSignature);
  EXPECT_TRUE(IsEmptyDir(out_dir_->path()));
  auto ok = DecryptFile(enc, other.Public(), e->session_key, e->checksum, Out());
  ASSERT_TRUE(ok) << ok.error().ToString();
}

TEST_F(CapgoTest, EmptyZipRoundTrips) {
  fs::path empty = Work("empty.zip");
  WriteAll(empty, {});
  auto e = EncryptFile(empty, priv(), Work("enc.zip"));
  ASSERT_TRUE(e) << e.error().ToString();
  EXPECT_EQ(e->encrypted_size, 16u);
  auto d = DecryptFile(Work("enc.zip"), pub(), e->session_key, e->checksum, Out());
  ASSERT_TRUE(d) << d.error().ToString();
  EXPECT_EQ(d->size, 0u);
  EXPECT_TRUE(fs::exists(Out()));
}

// ---- Manifest (delta) files ----

class CapgoManifestTest : public CapgoTest {
 protected:
  std::string FileHash(const std::string& name) {
    const nlohmann::json manifest = ReadJson("delta/manifest.json");
    for (const auto& entry : manifest["manifest"]) {
      if (entry["file_name"] == name) return entry["file_hash"].get<std::string>();
    }
    ADD_FAILURE() << name;
    return {};
  }
};

TEST_F(CapgoManifestTest, DecryptsPlainEntriesToTheDistFiles) {
  auto session =
      ParseSessionKey(ReadJson("delta/manifest.json")["ivSessionKey"].get<std::string>(), pub());
  ASSERT_TRUE(session) << session.error().ToString();
  for (const std::string name : {"index.html", "assets/app.js"}) {
    fs::path out = Out(fs::path(name).filename().string());
    auto r = DecryptManifestFile(Vector("delta/files/" + name), pub(), *session, name,
                                 FileHash(name), out);
    ASSERT_TRUE(r) << name << ": " << r.error().ToString();
    EXPECT_EQ(ReadAll(out), ReadAll(Vector("dist/" + name))) << name;
  }
}

TEST_F(CapgoManifestTest, EntryWithAnotherEntrysHashIsHashMismatch) {
  auto session = ParseSessionKey(session_key_, pub());
  ASSERT_TRUE(session);
  auto r = DecryptManifestFile(Vector("delta/files/index.html"), pub(), *session, "index.html",
                               FileHash("assets/app.js"), Out());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch);
  EXPECT_TRUE(IsEmptyDir(out_dir_->path()));
}

TEST_F(CapgoManifestTest, BrotliEntryFromTheCapgoCliDecompressesToTheDistFile) {
  auto session = ParseSessionKey(session_key_, pub());
  ASSERT_TRUE(session);
  auto r = DecryptManifestFile(Vector("delta/files/assets/style.css.br"), pub(), *session,
                               "assets/style.css.br", FileHash("assets/style.css.br"), Out("css"));
  ASSERT_TRUE(r) << r.error().ToString();
  EXPECT_EQ(ReadAll(Out("css")), ReadAll(Vector("dist/assets/style.css")));
  EXPECT_EQ(r->size, 16411u);
}

TEST_F(CapgoManifestTest, BrotliEntryUnderAPlainNameIsHashMismatch) {
  // The same bytes named without ".br" are not decompressed: their hash is not the file's.
  auto session = ParseSessionKey(session_key_, pub());
  ASSERT_TRUE(session);
  auto r = DecryptManifestFile(Vector("delta/files/assets/style.css.br"), pub(), *session,
                               "assets/style.css", FileHash("assets/style.css.br"), Out());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code(), ErrorCode::kHashMismatch);
  EXPECT_TRUE(IsEmptyDir(out_dir_->path()));
}

TEST_F(CapgoManifestTest, EncryptedFilesOpenAsTheCapgoCliFilesDo) {
  auto signer = SignerFromPrivateKey(priv());
  ASSERT_TRUE(signer);
  auto session = ParseSessionKey(session_key_, pub());
  ASSERT_TRUE(session);
  // A large compressible file gets ".br"; a small one and an incompressible one do not.
  const fs::path big = Out("big.css"), small = Out("small.html"), noise = Out("noise.bin");
  std::string css;
  for (int i = 0; i < 2000; ++i) css += ".c" + std::to_string(i) + "{color:red}\n";
  ASSERT_TRUE(WriteFileAtomic(big, ToBytes(css)));
  ASSERT_TRUE(WriteFileAtomic(small, ToBytes("<html></html>")));
  ASSERT_TRUE(WriteFileAtomic(noise, *crypto::RandomBytes(20000)));
  struct Case {
    fs::path plain;
    std::string name, want_name;
  };
  for (const Case& c :
       {Case{big, "assets/big.css", "assets/big.css.br"}, Case{small, "index.html", "index.html"},
        Case{noise, "assets/noise.bin", "assets/noise.bin"}}) {
    const fs::path enc = Out(c.plain.filename().string() + ".enc");
    auto file = EncryptManifestFile(c.plain, c.name, *session, *signer, enc);
    ASSERT_TRUE(file) << c.name << ": " << file.error().ToString();
    EXPECT_EQ(file->file_name, c.want_name);
    const fs::path back = Out(c.plain.filename().string() + ".back");
    auto opened = DecryptManifestFile(enc, pub(), *session, file->file_name, file->file_hash, back);
    ASSERT_TRUE(opened) << c.name << ": " << opened.error().ToString();
    EXPECT_EQ(ReadAll(back), ReadAll(c.plain)) << c.name;
  }
  EXPECT_LT(fs::file_size(Out("big.css.enc")), css.size() / 4);
}

TEST_F(CapgoManifestTest, UnsafeNameIsRefusedBeforeAnythingIsWritten) {
  auto signer = SignerFromPrivateKey(priv());
  ASSERT_TRUE(signer);
  auto session = ParseSessionKey(session_key_, pub());
  ASSERT_TRUE(session);
  ASSERT_TRUE(WriteFileAtomic(Out("f"), ToBytes("x")));
  auto file = EncryptManifestFile(Out("f"), "../escape.js", *session, *signer, Out("f.enc"));
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().code(), ErrorCode::kUnsafePath);
  EXPECT_FALSE(fs::exists(Out("f.enc")));
}

}  // namespace
}  // namespace airlock::bundle::capgo
