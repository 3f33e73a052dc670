#include "keys/secret_box.h"

#include <argon2.h>
#include <openssl/crypto.h>

#include "crypto/ossl.h"
#include "crypto/random.h"

namespace airlock::keys {
namespace {
constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;

const uint8_t* DataOrEmpty(ByteSpan s) {
  static const uint8_t kEmpty = 0;
  return s.empty() ? &kEmpty : s.data();
}
}  // namespace

void WipeString(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

Result<Bytes> SealAesGcm(ByteSpan key, ByteSpan plaintext, ByteSpan aad) {
  if (key.size() != kSealKeySize) {
    return MakeError(ErrorCode::kInvalidArgument, "AES-256-GCM needs a 32-byte key");
  }
  Bytes out(kNonceSize + plaintext.size() + kTagSize);
  AIRLOCK_TRY(crypto::RandomFill(std::span<uint8_t>(out.data(), kNonceSize)));
  crypto::EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), out.data()) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, DataOrEmpty(aad), static_cast<int>(aad.size())) !=
          1 ||
      EVP_EncryptUpdate(ctx.get(), out.data() + kNonceSize, &len, DataOrEmpty(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + kNonceSize + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize),
                          out.data() + kNonceSize + plaintext.size()) != 1) {
    return tl::unexpected(crypto::OsslError(ErrorCode::kCrypto, "AES-256-GCM seal failed"));
  }
  return out;
}

Result<SecretBytes> OpenAesGcm(ByteSpan key, ByteSpan sealed, ByteSpan aad) {
  if (key.size() != kSealKeySize) {
    return MakeError(ErrorCode::kInvalidArgument, "AES-256-GCM needs a 32-byte key");
  }
  if (sealed.size() < kNonceSize + kTagSize) {
    return MakeError(ErrorCode::kDecryptFailed, "sealed data is too short");
  }
  const size_t ct_size = sealed.size() - kNonceSize - kTagSize;
  SecretBytes plain{Bytes(ct_size)};
  crypto::EvpCipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  uint8_t tag[kTagSize];
  std::copy(sealed.end() - kTagSize, sealed.end(), tag);
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), sealed.data()) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, DataOrEmpty(aad), static_cast<int>(aad.size())) !=
          1 ||
      EVP_DecryptUpdate(ctx.get(), plain.mutable_bytes().data(), &len,
                        DataOrEmpty(sealed.subspan(kNonceSize, ct_size)),
                        static_cast<int>(ct_size)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize), tag) != 1) {
    return tl::unexpected(crypto::OsslError(ErrorCode::kCrypto, "AES-256-GCM open failed"));
  }
  int final_len = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), plain.mutable_bytes().data() + len, &final_len) != 1) {
    crypto::ClearOsslErrors();
    return MakeError(ErrorCode::kDecryptFailed, "authentication failed (tampered or wrong key)");
  }
  return plain;
}

Result<SecretBytes> DeriveKeyArgon2id(std::string_view passphrase, ByteSpan salt,
                                      const KdfParams& params) {
  if (params.t_cost < 1 || params.t_cost > 64 || params.parallelism < 1 ||
      params.parallelism > 16 || params.m_cost_kib < 8 || params.m_cost_kib > 4u * 1024 * 1024 ||
      params.m_cost_kib < 8 * params.parallelism || salt.size() < 16) {
    return MakeError(ErrorCode::kInvalidArgument, "Argon2id parameters out of bounds");
  }
  SecretBytes out{Bytes(kSealKeySize)};
  const int rc = argon2id_hash_raw(params.t_cost, params.m_cost_kib, params.parallelism,
                                   passphrase.data(), passphrase.size(), salt.data(), salt.size(),
                                   out.mutable_bytes().data(), out.size());
  if (rc != ARGON2_OK) {
    return MakeError(ErrorCode::kCrypto,
                     std::string("Argon2id failed: ") + argon2_error_message(rc));
  }
  return out;
}

}  // namespace airlock::keys
