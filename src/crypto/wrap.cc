#include "crypto/wrap.h"

#include <openssl/crypto.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <cstdint>

#include "crypto/hash.h"
#include "crypto/ossl.h"
#include "crypto/random.h"
#include "crypto/secret_bytes.h"

namespace airlock::crypto {

namespace {

constexpr size_t kX25519Size = 32;
constexpr size_t kWrapNonceSize = 12;
constexpr size_t kTagSize = 16;
constexpr size_t kKekSize = 32;
constexpr size_t kX25519Overhead = kX25519Size + kWrapNonceSize + kTagSize;
// Content keys are 16-64 bytes; anything much larger is a usage error (and bounds untrusted input).
constexpr size_t kMaxWrappedKeySize = 1024;
constexpr std::string_view kHkdfInfo = "airlock/v1/x25519-wrap";
constexpr size_t kOaepOverhead = 2 * 32 + 2;  // 2 * SHA-256 size + 2

// X25519(own, peer). kCrypto if OpenSSL fails; the all-zero output (a low-order peer point, which
// OpenSSL itself also refuses) is reported as the caller chooses via `bad_peer_code`.
Result<SecretBytes> X25519Shared(EVP_PKEY* own, EVP_PKEY* peer, ErrorCode bad_peer_code) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, own, nullptr));
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot set up X25519"));
  }
  if (EVP_PKEY_derive_set_peer(ctx.get(), peer) != 1) {
    return tl::unexpected(OsslError(bad_peer_code, "X25519 peer key rejected"));
  }
  Bytes shared(kX25519Size);
  size_t len = shared.size();
  if (EVP_PKEY_derive(ctx.get(), shared.data(), &len) != 1 || len != kX25519Size) {
    OPENSSL_cleanse(shared.data(), shared.size());
    return tl::unexpected(OsslError(bad_peer_code, "X25519 key agreement failed"));
  }
  SecretBytes secret(std::move(shared));
  if (ConstantTimeEqual(secret.get(), Bytes(kX25519Size, 0))) {
    return MakeError(bad_peer_code, "X25519 shared secret is all zero (low-order point)");
  }
  return secret;
}

Result<SecretBytes> DeriveKek(const SecretBytes& shared, ByteSpan eph_pub, ByteSpan recipient_pub) {
  Bytes salt(eph_pub.begin(), eph_pub.end());
  salt.insert(salt.end(), recipient_pub.begin(), recipient_pub.end());
  AIRLOCK_ASSIGN_OR_RETURN(Bytes kek, HkdfSha256(shared.get(), salt, AsBytes(kHkdfInfo), kKekSize));
  return SecretBytes(std::move(kek));
}

Result<Bytes> RawPublicOf(EVP_PKEY* pkey) {
  Bytes out(kX25519Size);
  size_t len = out.size();
  if (EVP_PKEY_get_raw_public_key(pkey, out.data(), &len) != 1 || len != kX25519Size) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot export X25519 public key"));
  }
  return out;
}

// AES-256-GCM seal: appends ciphertext || tag to `out`.
Result<void> GcmSeal(const Bytes& kek, ByteSpan nonce, ByteSpan aad, ByteSpan plaintext, Bytes& out) {
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, kek.data(), nonce.data()) != 1 ||
      (!aad.empty() &&
       EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1)) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot set up AES-GCM"));
  }
  size_t start = out.size();
  out.resize(start + plaintext.size() + kTagSize);
  int outl = 0;
  if (EVP_EncryptUpdate(ctx.get(), out.data() + start, &outl, DataOrEmpty(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + start + outl, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize),
                          out.data() + start + plaintext.size()) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "AES-GCM encryption failed"));
  }
  return {};
}

// AES-256-GCM open of ciphertext || tag. kDecryptFailed if the tag does not verify.
Result<Bytes> GcmOpen(const Bytes& kek, ByteSpan nonce, ByteSpan aad, ByteSpan sealed) {
  ByteSpan ct = sealed.first(sealed.size() - kTagSize);
  uint8_t tag[kTagSize];
  std::copy(sealed.end() - kTagSize, sealed.end(), tag);
  EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, kek.data(), nonce.data()) != 1 ||
      (!aad.empty() &&
       EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1)) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot set up AES-GCM"));
  }
  Bytes out(ct.size());
  int outl = 0;
  if (EVP_DecryptUpdate(ctx.get(), out.data(), &outl, DataOrEmpty(ct), static_cast<int>(ct.size())) !=
          1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize), tag) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "AES-GCM decryption failed"));
  }
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + outl, &len) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    ClearOsslErrors();
    return MakeError(ErrorCode::kDecryptFailed, "wrapped key does not authenticate");
  }
  return out;
}

Result<Bytes> WrapX25519(const PublicKey& recipient, ByteSpan key, ByteSpan aad) {
  EvpPkeyPtr eph(EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"));
  if (!eph) return tl::unexpected(OsslError(ErrorCode::kCrypto, "ephemeral key generation failed"));
  AIRLOCK_ASSIGN_OR_RETURN(Bytes eph_pub, RawPublicOf(eph.get()));
  AIRLOCK_ASSIGN_OR_RETURN(Bytes recipient_pub, RawPublicOf(recipient.get()));
  AIRLOCK_ASSIGN_OR_RETURN(
      SecretBytes shared, X25519Shared(eph.get(), recipient.get(), ErrorCode::kInvalidArgument));
  AIRLOCK_ASSIGN_OR_RETURN(SecretBytes kek, DeriveKek(shared, eph_pub, recipient_pub));
  Bytes out = std::move(eph_pub);
  out.reserve(kX25519Overhead + key.size());
  out.resize(kX25519Size + kWrapNonceSize);
  AIRLOCK_TRY(RandomFill(std::span<uint8_t>(out.data() + kX25519Size, kWrapNonceSize)));
  const Bytes nonce(out.begin() + kX25519Size, out.end());
  AIRLOCK_TRY(GcmSeal(kek.get(), nonce, aad, key, out));
  return out;
}

Result<Bytes> UnwrapX25519(const PrivateKey& recipient, ByteSpan wrapped, ByteSpan aad) {
  if (wrapped.size() <= kX25519Overhead || wrapped.size() > kX25519Overhead + kMaxWrappedKeySize) {
    return MakeError(ErrorCode::kMalformed,
                     "X25519-wrapped key has the wrong length (" + std::to_string(wrapped.size()) + ")");
  }
  ByteSpan eph_pub = wrapped.first(kX25519Size);
  ByteSpan nonce = wrapped.subspan(kX25519Size, kWrapNonceSize);
  ByteSpan sealed = wrapped.subspan(kX25519Size + kWrapNonceSize);
  EvpPkeyPtr eph(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, eph_pub.data(), eph_pub.size()));
  if (!eph) return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot load ephemeral key"));
  AIRLOCK_ASSIGN_OR_RETURN(Bytes recipient_pub, RawPublicOf(recipient.get()));
  // A low-order ephemeral key can only come from tampering: report it like any failed authentication.
  AIRLOCK_ASSIGN_OR_RETURN(
      SecretBytes shared, X25519Shared(recipient.get(), eph.get(), ErrorCode::kDecryptFailed));
  AIRLOCK_ASSIGN_OR_RETURN(SecretBytes kek, DeriveKek(shared, eph_pub, recipient_pub));
  return GcmOpen(kek.get(), nonce, aad, sealed);
}

// RSAES-OAEP SHA-256 / MGF1-SHA-256 with `aad` as the label.
Result<EvpPkeyCtxPtr> OaepCtx(EVP_PKEY* pkey, bool encrypt, ByteSpan aad) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  if (!ctx || (encrypt ? EVP_PKEY_encrypt_init(ctx.get()) : EVP_PKEY_decrypt_init(ctx.get())) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx.get(), "SHA256", nullptr) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx.get(), "SHA256", nullptr) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot set up RSA-OAEP"));
  }
  if (!aad.empty()) {
    // set0 takes ownership of an OPENSSL_malloc'd label, but only on success.
    auto* label = static_cast<unsigned char*>(OPENSSL_memdup(aad.data(), aad.size()));
    if (label == nullptr) return MakeError(ErrorCode::kCrypto, "out of memory");
    if (EVP_PKEY_CTX_set0_rsa_oaep_label(ctx.get(), label, static_cast<int>(aad.size())) != 1) {
      OPENSSL_free(label);
      return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot set OAEP label"));
    }
  }
  return ctx;
}

Result<Bytes> WrapRsa(const PublicKey& recipient, ByteSpan key, ByteSpan aad) {
  const size_t modulus_bytes = static_cast<size_t>(EVP_PKEY_get_size(recipient.get()));
  if (key.size() + kOaepOverhead > modulus_bytes) {
    return MakeError(ErrorCode::kInvalidArgument, "key is too long for RSA-OAEP with this key");
  }
  AIRLOCK_ASSIGN_OR_RETURN(EvpPkeyCtxPtr ctx, OaepCtx(recipient.get(), /*encrypt=*/true, aad));
  size_t len = 0;
  if (EVP_PKEY_encrypt(ctx.get(), nullptr, &len, key.data(), key.size()) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "RSA-OAEP encryption failed"));
  }
  Bytes out(len);
  if (EVP_PKEY_encrypt(ctx.get(), out.data(), &len, key.data(), key.size()) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "RSA-OAEP encryption failed"));
  }
  out.resize(len);
  return out;
}

Result<Bytes> UnwrapRsa(const PrivateKey& recipient, ByteSpan wrapped, ByteSpan aad) {
  const size_t modulus_bytes = static_cast<size_t>(EVP_PKEY_get_size(recipient.get()));
  if (wrapped.size() != modulus_bytes) {
    return MakeError(ErrorCode::kMalformed, "RSA-wrapped key is " + std::to_string(wrapped.size()) +
                                                " bytes, the key needs " +
                                                std::to_string(modulus_bytes));
  }
  AIRLOCK_ASSIGN_OR_RETURN(EvpPkeyCtxPtr ctx, OaepCtx(recipient.get(), /*encrypt=*/false, aad));
  size_t len = 0;
  if (EVP_PKEY_decrypt(ctx.get(), nullptr, &len, wrapped.data(), wrapped.size()) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "RSA-OAEP decryption failed"));
  }
  Bytes out(len);
  if (EVP_PKEY_decrypt(ctx.get(), out.data(), &len, wrapped.data(), wrapped.size()) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    ClearOsslErrors();
    return MakeError(ErrorCode::kDecryptFailed, "wrapped key does not decrypt under this key");
  }
  out.resize(len);
  return out;
}

}  // namespace

Result<std::string> WrapAlgorithm(KeyType type) {
  switch (type) {
    case KeyType::kX25519: return std::string("x25519-hkdf-sha256-aes256gcm");
    case KeyType::kRsa: return std::string("rsa-oaep-sha256");
    default: break;
  }
  return MakeError(ErrorCode::kInvalidArgument,
                   std::string(KeyTypeName(type)) + " keys cannot wrap keys");
}

Result<Bytes> WrapKey(const PublicKey& recipient, ByteSpan key, ByteSpan aad) {
  AIRLOCK_TRY(WrapAlgorithm(recipient.type()));
  if (key.empty() || key.size() > kMaxWrappedKeySize) {
    return MakeError(ErrorCode::kInvalidArgument, "key to wrap must be 1..1024 bytes");
  }
  if (aad.size() > static_cast<size_t>(INT32_MAX)) {
    return MakeError(ErrorCode::kInvalidArgument, "aad too long");
  }
  if (recipient.type() == KeyType::kX25519) return WrapX25519(recipient, key, aad);
  return WrapRsa(recipient, key, aad);
}

Result<void> CheckWrapRecipient(const PublicKey& recipient) {
  const Bytes zero(32, 0);
  AIRLOCK_TRY(WrapKey(recipient, zero, {}));
  return {};
}

Result<Bytes> UnwrapKey(const PrivateKey& recipient, ByteSpan wrapped, ByteSpan aad) {
  AIRLOCK_TRY(WrapAlgorithm(recipient.type()));
  if (aad.size() > static_cast<size_t>(INT32_MAX)) {
    return MakeError(ErrorCode::kInvalidArgument, "aad too long");
  }
  if (recipient.type() == KeyType::kX25519) return UnwrapX25519(recipient, wrapped, aad);
  return UnwrapRsa(recipient, wrapped, aad);
}

}  // namespace airlock::crypto
