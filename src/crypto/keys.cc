#include "crypto/keys.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <system_error>

#include "common/canonical_json.h"
#include "common/file.h"
#include "crypto/hash.h"

namespace airlock::crypto {

namespace fs = std::filesystem;

namespace {

constexpr size_t kRawKeySize = 32;
constexpr int kMinRsaBits = 2048;
constexpr int kMaxRsaBits = 16384;

// A read-only memory BIO over `text` (no copy; `text` must outlive it).
BioPtr MemBio(std::string_view text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Everything written to a memory BIO, as a string.
std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  if (n <= 0 || data == nullptr) return {};
  return std::string(data, static_cast<size_t>(n));
}

// Decides which of our key types `pkey` is, rejecting algorithms, curves and sizes we do not accept.
Result<KeyType> Classify(const EVP_PKEY* pkey) {
  if (EVP_PKEY_is_a(pkey, "ED25519")) return KeyType::kEd25519;
  if (EVP_PKEY_is_a(pkey, "X25519")) return KeyType::kX25519;
  if (EVP_PKEY_is_a(pkey, "EC")) {
    char group[64] = {};
    size_t len = 0;
    // Explicit-parameter curves have no group name; we accept only the named P-256 curve.
    if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) !=
            1 ||
        (std::string_view(group, len) != "prime256v1" && std::string_view(group, len) != "P-256")) {
      ClearOsslErrors();
      return MakeError(ErrorCode::kUnsupported, "EC key is not on curve P-256");
    }
    return KeyType::kEcdsaP256;
  }
  if (EVP_PKEY_is_a(pkey, "RSA")) {
    int bits = EVP_PKEY_get_bits(pkey);
    if (bits < kMinRsaBits || bits > kMaxRsaBits) {
      return MakeError(ErrorCode::kUnsupported,
                       "RSA key of " + std::to_string(bits) + " bits is outside 2048..16384");
    }
    return KeyType::kRsa;
  }
  const char* name = EVP_PKEY_get0_type_name(pkey);
  return MakeError(ErrorCode::kUnsupported,
                   std::string("unsupported key algorithm ") + (name ? name : "(unknown)"));
}

// Password callback that refuses, so OpenSSL never prompts on a terminal for an encrypted PEM. It records
// that it was asked, which tells us the PEM is encrypted.
int RefusePassword(char* /*buf*/, int /*size*/, int /*rwflag*/, void* asked) {
  *static_cast<bool*>(asked) = true;
  return -1;
}

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

Result<EvpPkeyPtr> DecodePkcs1Public(std::string_view pem) {
  EVP_PKEY* raw = nullptr;
  OsslDecoderCtxPtr dctx(OSSL_DECODER_CTX_new_for_pkey(&raw, "PEM", "type-specific", "RSA",
                                                       EVP_PKEY_PUBLIC_KEY, nullptr, nullptr));
  if (!dctx) return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot create PEM decoder"));
  const unsigned char* data = reinterpret_cast<const unsigned char*>(pem.data());
  size_t len = pem.size();
  if (OSSL_DECODER_from_data(dctx.get(), &data, &len) != 1 || raw == nullptr) {
    EVP_PKEY_free(raw);
    return tl::unexpected(OsslError(ErrorCode::kMalformed, "RSA PUBLIC KEY PEM does not parse"));
  }
  return EvpPkeyPtr(raw);
}

Result<EvpPkeyPtr> RawKey(KeyType type, ByteSpan raw, bool is_private) {
  int id = 0;
  if (type == KeyType::kEd25519) {
    id = EVP_PKEY_ED25519;
  } else if (type == KeyType::kX25519) {
    id = EVP_PKEY_X25519;
  } else {
    return MakeError(ErrorCode::kInvalidArgument, "raw keys are only ed25519 or x25519");
  }
  if (raw.size() != kRawKeySize) {
    return MakeError(ErrorCode::kMalformed, "raw key is " + std::to_string(raw.size()) +
                                                " bytes, not 32");
  }
  EVP_PKEY* pkey = is_private ? EVP_PKEY_new_raw_private_key(id, nullptr, raw.data(), raw.size())
                              : EVP_PKEY_new_raw_public_key(id, nullptr, raw.data(), raw.size());
  if (pkey == nullptr) return tl::unexpected(OsslError(ErrorCode::kMalformed, "raw key rejected"));
  return EvpPkeyPtr(pkey);
}

fs::path WithSuffix(const fs::path& base, const char* suffix) {
  return fs::path(base.string() + suffix);
}

}  // namespace

Result<KeyType> ParseKeyType(std::string_view name) {
  if (name == "ed25519") return KeyType::kEd25519;
  if (name == "ecdsa-p256") return KeyType::kEcdsaP256;
  if (name == "rsa-4096" || name == "rsa") return KeyType::kRsa;
  if (name == "x25519") return KeyType::kX25519;
  return MakeError(ErrorCode::kInvalidArgument, "unknown key type \"" + std::string(name) + "\"");
}

std::string_view KeyTypeName(KeyType type) {
  switch (type) {
    case KeyType::kEd25519: return "ed25519";
    case KeyType::kEcdsaP256: return "ecdsa-p256";
    case KeyType::kRsa: return "rsa";
    case KeyType::kX25519: return "x25519";
  }
  return "unknown";
}

// ---- PublicKey ----

Result<PublicKey> PublicKey::FromPem(std::string_view pem) {
  if (pem.size() > kMaxPemSize) {
    return MakeError(ErrorCode::kLimitExceeded, "public key PEM is larger than 64 KiB");
  }
  EvpPkeyPtr pkey;
  if (Contains(pem, "-----BEGIN RSA PUBLIC KEY-----")) {
    AIRLOCK_ASSIGN_OR_RETURN(pkey, DecodePkcs1Public(pem));
  } else {
    BioPtr bio = MemBio(pem);
    if (!bio) return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot create BIO"));
    pkey.reset(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (!pkey) return tl::unexpected(OsslError(ErrorCode::kMalformed, "public key PEM does not parse"));
  }
  AIRLOCK_ASSIGN_OR_RETURN(KeyType type, Classify(pkey.get()));
  return PublicKey(std::move(pkey), type);
}

Result<PublicKey> PublicKey::FromFile(const fs::path& path) {
  AIRLOCK_ASSIGN_OR_RETURN(std::string pem, ReadTextFile(path, kMaxPemSize));
  auto key = FromPem(pem);
  if (!key) return tl::unexpected(key.error().WithContext(path.string()));
  return key;
}

Result<PublicKey> PublicKey::FromRaw(KeyType type, ByteSpan raw) {
  AIRLOCK_ASSIGN_OR_RETURN(EvpPkeyPtr pkey, RawKey(type, raw, /*is_private=*/false));
  return PublicKey(std::move(pkey), type);
}

int PublicKey::bits() const { return EVP_PKEY_get_bits(pkey_.get()); }

std::string PublicKey::ToPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), pkey_.get()) != 1) {
    ClearOsslErrors();
    return {};
  }
  return BioContents(bio.get());
}

std::string PublicKey::ToPkcs1Pem() const {
  if (type_ != KeyType::kRsa) return {};
  OsslEncoderCtxPtr ectx(OSSL_ENCODER_CTX_new_for_pkey(pkey_.get(), EVP_PKEY_PUBLIC_KEY, "PEM",
                                                       "type-specific", nullptr));
  unsigned char* data = nullptr;
  size_t len = 0;
  if (!ectx || OSSL_ENCODER_to_data(ectx.get(), &data, &len) != 1) {
    ClearOsslErrors();
    return {};
  }
  std::string out(reinterpret_cast<const char*>(data), len);
  OPENSSL_free(data);
  return out;
}

Result<Bytes> PublicKey::RawPublic() const {
  if (type_ != KeyType::kEd25519 && type_ != KeyType::kX25519) {
    return MakeError(ErrorCode::kInvalidArgument, "only ed25519 and x25519 keys have a raw form");
  }
  Bytes out(kRawKeySize);
  size_t len = out.size();
  if (EVP_PKEY_get_raw_public_key(pkey_.get(), out.data(), &len) != 1 || len != kRawKeySize) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot export raw public key"));
  }
  return out;
}

std::string PublicKey::TufKeyType() const {
  switch (type_) {
    case KeyType::kEd25519: return "ed25519";
    case KeyType::kEcdsaP256: return "ecdsa";
    case KeyType::kRsa: return "rsa";
    case KeyType::kX25519: return "x25519";
  }
  return {};
}

std::string PublicKey::TufScheme() const {
  switch (type_) {
    case KeyType::kEd25519: return "ed25519";
    case KeyType::kEcdsaP256: return "ecdsa-sha2-nistp256";
    case KeyType::kRsa: return "rsassa-pss-sha256";
    case KeyType::kX25519: return "x25519-hkdf-sha256-aes256gcm";
  }
  return {};
}

nlohmann::json PublicKey::TufJson() const {
  std::string pub;
  if (type_ == KeyType::kEd25519 || type_ == KeyType::kX25519) {
    auto raw = RawPublic();
    if (raw) pub = HexEncode(*raw);
  } else {
    pub = ToPem();
  }
  return nlohmann::json{{"keytype", TufKeyType()},
                        {"scheme", TufScheme()},
                        {"keyval", nlohmann::json{{"public", pub}}}};
}

std::string PublicKey::KeyId() const {
  // Canonical JSON of strings-only objects cannot fail.
  auto canonical = CanonicalJson(TufJson());
  if (!canonical) return {};
  return HexEncode(Sha256(AsBytes(*canonical)));
}

bool PublicKey::Equals(const PublicKey& other) const {
  return type_ == other.type_ && EVP_PKEY_eq(pkey_.get(), other.pkey_.get()) == 1;
}

// ---- PrivateKey ----

Result<PrivateKey> PrivateKey::Generate(KeyType type) {
  EVP_PKEY* pkey = nullptr;
  switch (type) {
    case KeyType::kEd25519: pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"); break;
    case KeyType::kEcdsaP256: pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"); break;
    case KeyType::kRsa:  // e = 65537 is OpenSSL's default exponent.
      pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(4096));
      break;
    case KeyType::kX25519: pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"); break;
  }
  if (pkey == nullptr) return tl::unexpected(OsslError(ErrorCode::kCrypto, "key generation failed"));
  return PrivateKey(EvpPkeyPtr(pkey), type);
}

Result<PrivateKey> PrivateKey::GenerateRsa(int bits) {
  if (bits < kMinRsaBits || bits > kMaxRsaBits) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "RSA key size " + std::to_string(bits) + " is outside 2048..16384");
  }
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(bits));
  if (pkey == nullptr)
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "RSA key generation failed"));
  return PrivateKey(EvpPkeyPtr(pkey), KeyType::kRsa);
}

Result<PrivateKey> PrivateKey::FromPem(std::string_view pem) {
  if (pem.size() > kMaxPemSize) {
    return MakeError(ErrorCode::kLimitExceeded, "private key PEM is larger than 64 KiB");
  }
  if (Contains(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----") || Contains(pem, "Proc-Type: 4,ENCRYPTED")) {
    return MakeError(ErrorCode::kUnsupported, "encrypted private key PEM is not supported");
  }
  BioPtr bio = MemBio(pem);
  if (!bio) return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot create BIO"));
  bool asked_password = false;
  EvpPkeyPtr pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, &RefusePassword, &asked_password));
  if (!pkey) {
    if (asked_password) {
      ClearOsslErrors();
      return MakeError(ErrorCode::kUnsupported, "encrypted private key PEM is not supported");
    }
    return tl::unexpected(OsslError(ErrorCode::kMalformed, "private key PEM does not parse"));
  }
  AIRLOCK_ASSIGN_OR_RETURN(KeyType type, Classify(pkey.get()));
  return PrivateKey(std::move(pkey), type);
}

Result<PrivateKey> PrivateKey::FromFile(const fs::path& path) {
  AIRLOCK_ASSIGN_OR_RETURN(std::string pem, ReadTextFile(path, kMaxPemSize));
  auto key = FromPem(pem);
  OPENSSL_cleanse(pem.data(), pem.size());
  if (!key) return tl::unexpected(key.error().WithContext(path.string()));
  return key;
}

Result<PrivateKey> PrivateKey::FromRaw(KeyType type, ByteSpan raw) {
  AIRLOCK_ASSIGN_OR_RETURN(EvpPkeyPtr pkey, RawKey(type, raw, /*is_private=*/true));
  return PrivateKey(std::move(pkey), type);
}

int PrivateKey::bits() const { return EVP_PKEY_get_bits(pkey_.get()); }

std::string PrivateKey::ToPem() const {
  // A secure-heap BIO, so the intermediate copy of the key is wiped when freed.
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), pkey_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    ClearOsslErrors();
    return {};
  }
  return BioContents(bio.get());
}

std::string PrivateKey::ToPkcs1Pem() const {
  if (type_ != KeyType::kRsa) return {};
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio || PEM_write_bio_PrivateKey_traditional(bio.get(), pkey_.get(), nullptr, nullptr, 0,
                                                   nullptr, nullptr) != 1) {
    ClearOsslErrors();
    return {};
  }
  return BioContents(bio.get());
}

PublicKey PrivateKey::Public() const {
  // Round-trip through SPKI DER so the PublicKey holds no private material.
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(pkey_.get(), &der);
  if (len > 0) {
    const unsigned char* p = der;
    EVP_PKEY* pub = d2i_PUBKEY(nullptr, &p, len);
    OPENSSL_free(der);
    if (pub != nullptr) return PublicKey(EvpPkeyPtr(pub), type_);
  }
  // Allocation failure only: share the handle rather than fail (it still verifies and encrypts).
  ClearOsslErrors();
  EVP_PKEY_up_ref(pkey_.get());
  return PublicKey(EvpPkeyPtr(pkey_.get()), type_);
}

Result<void> WriteKeyPair(const PrivateKey& key, const fs::path& base) {
  const fs::path key_path = WithSuffix(base, ".key");
  const fs::path pub_path = WithSuffix(base, ".pub");
  for (const fs::path& p : {key_path, pub_path}) {
    std::error_code ec;
    // symlink_status: a dangling symlink also counts as existing.
    fs::file_status st = fs::symlink_status(p, ec);
    if (fs::exists(st)) {
      return MakeError(ErrorCode::kAlreadyExists, p.string() + " already exists");
    }
  }
  std::string private_pem = key.ToPem();
  if (private_pem.empty()) return MakeError(ErrorCode::kCrypto, "cannot encode private key");
  std::string public_pem = key.Public().ToPem();
  if (public_pem.empty()) return MakeError(ErrorCode::kCrypto, "cannot encode public key");
  auto wrote_key = WriteFileAtomic(key_path, AsBytes(private_pem), 0600);
  OPENSSL_cleanse(private_pem.data(), private_pem.size());
  AIRLOCK_TRY(wrote_key);
  auto wrote_pub = WriteFileAtomic(pub_path, AsBytes(public_pem), 0644);
  if (!wrote_pub) {
    // Do not leave half a pair behind; we just created the key file (it did not exist above).
    std::error_code ec;
    fs::remove(key_path, ec);
    return tl::unexpected(wrote_pub.error());
  }
  return {};
}

}  // namespace airlock::crypto
