// Asymmetric keys: generation, PEM files (PKCS#8 private, SPKI public), TUF key ids.
//
// Key types and their TUF names:
//   kEd25519   keytype "ed25519", scheme "ed25519", keyval.public = hex of the raw 32-byte key
//   kEcdsaP256 keytype "ecdsa",   scheme "ecdsa-sha2-nistp256", keyval.public = SPKI PEM
//   kRsa       keytype "rsa",     scheme "rsassa-pss-sha256",   keyval.public = SPKI PEM
//   kX25519    keytype "x25519",  scheme "x25519-hkdf-sha256-aes256gcm" (Airlock's own; not a TUF signing
//              key), keyval.public = hex of the raw 32-byte key
// The key id is the lower-case hex SHA-256 of the canonical JSON of {keytype, scheme, keyval:{public}},
// as the TUF specification defines it.
#ifndef AIRLOCK_CRYPTO_KEYS_H_
#define AIRLOCK_CRYPTO_KEYS_H_

#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/ossl.h"

namespace airlock::crypto {

enum class KeyType { kEd25519, kEcdsaP256, kRsa, kX25519 };

// "ed25519", "ecdsa-p256", "rsa-4096" (also "rsa"), "x25519" -> KeyType; kInvalidArgument otherwise.
Result<KeyType> ParseKeyType(std::string_view name);
// The CLI spelling: "ed25519", "ecdsa-p256", "rsa", "x25519".
std::string_view KeyTypeName(KeyType type);

// Largest PEM text we parse (a 16384-bit RSA private key is ~13 KiB).
inline constexpr size_t kMaxPemSize = 64 * 1024;

class PublicKey {
 private:
  static EVP_PKEY* UpRef(EVP_PKEY* p) {
    if (p != nullptr) EVP_PKEY_up_ref(p);
    return p;
  }

 public:
  // Parses an SPKI PEM ("BEGIN PUBLIC KEY") or a PKCS#1 RSA public key ("BEGIN RSA PUBLIC KEY").
  // kMalformed if it does not parse, kUnsupported for other algorithms or curves, or RSA outside
  // 2048..16384 bits.
  static Result<PublicKey> FromPem(std::string_view pem);
  static Result<PublicKey> FromFile(const std::filesystem::path& path);
  // Raw 32-byte ed25519 / x25519 public key.
  static Result<PublicKey> FromRaw(KeyType type, ByteSpan raw);

  KeyType type() const { return type_; }
  int bits() const;
  std::string ToPem() const;          // SPKI PEM
  std::string ToPkcs1Pem() const;     // "BEGIN RSA PUBLIC KEY" (RSA only; empty otherwise)
  Result<Bytes> RawPublic() const;    // ed25519 / x25519 only
  std::string TufKeyType() const;
  std::string TufScheme() const;
  nlohmann::json TufJson() const;     // {"keytype":..,"scheme":..,"keyval":{"public":..}}
  std::string KeyId() const;          // TUF key id (hex)
  bool Equals(const PublicKey& other) const;

  EVP_PKEY* get() const { return pkey_.get(); }
  // Takes ownership; type must already be checked to be one we support.
  PublicKey(EvpPkeyPtr pkey, KeyType type) : pkey_(std::move(pkey)), type_(type) {}
  // Public keys are immutable, so copies share the OpenSSL object (reference counted).
  PublicKey(const PublicKey& other) : pkey_(UpRef(other.pkey_.get())), type_(other.type_) {}
  PublicKey& operator=(const PublicKey& other) {
    if (this != &other) {
      pkey_ = EvpPkeyPtr(UpRef(other.pkey_.get()));
      type_ = other.type_;
    }
    return *this;
  }
  PublicKey(PublicKey&&) noexcept = default;
  PublicKey& operator=(PublicKey&&) noexcept = default;

 private:
  EvpPkeyPtr pkey_;
  KeyType type_;
};

class PrivateKey {
 public:
  // Generates with the OpenSSL default CSPRNG. RSA keys are 4096 bits.
  static Result<PrivateKey> Generate(KeyType type);
  // An RSA key of `bits` (2048..16384, else kInvalidArgument), e = 65537. For formats that fix a
  // smaller size than Generate's 4096 (Capgo encryption keys are RSA-2048).
  static Result<PrivateKey> GenerateRsa(int bits);
  // Parses PKCS#8 PEM ("BEGIN PRIVATE KEY") or traditional PKCS#1 ("BEGIN RSA PRIVATE KEY").
  // Encrypted PEM is rejected with kUnsupported. kMalformed if it does not parse.
  static Result<PrivateKey> FromPem(std::string_view pem);
  static Result<PrivateKey> FromFile(const std::filesystem::path& path);
  // Raw 32-byte ed25519 seed (RFC 8032 secret key) / x25519 scalar. kInvalidArgument for other types,
  // kMalformed if not 32 bytes.
  static Result<PrivateKey> FromRaw(KeyType type, ByteSpan raw);

  KeyType type() const { return type_; }
  int bits() const;
  std::string ToPem() const;  // unencrypted PKCS#8 PEM
  // Unencrypted traditional PEM ("BEGIN RSA PRIVATE KEY", PKCS#1; Capgo's capgo_key_v2.pem). RSA
  // only; empty otherwise.
  std::string ToPkcs1Pem() const;
  PublicKey Public() const;
  std::string KeyId() const { return Public().KeyId(); }

  EVP_PKEY* get() const { return pkey_.get(); }
  PrivateKey(EvpPkeyPtr pkey, KeyType type) : pkey_(std::move(pkey)), type_(type) {}

 private:
  EvpPkeyPtr pkey_;
  KeyType type_;
};

// Writes `base`.key (PKCS#8, mode 0600) and `base`.pub (SPKI, 0644) atomically. kAlreadyExists if either
// exists (keys are never silently overwritten).
Result<void> WriteKeyPair(const PrivateKey& key, const std::filesystem::path& base);

}  // namespace airlock::crypto

#endif  // AIRLOCK_CRYPTO_KEYS_H_
