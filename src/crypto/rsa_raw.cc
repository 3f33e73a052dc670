#include "crypto/rsa_raw.h"

#include <openssl/rsa.h>

#include "crypto/ossl.h"

namespace airlock::crypto {

namespace {
// PKCS#1 v1.5 padding overhead: 00 01, at least 8 bytes of FF, 00.
constexpr size_t kPkcs1Overhead = 11;

Result<EvpPkeyCtxPtr> NewCtx(EVP_PKEY* pkey) {
  EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  if (!ctx) return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot create RSA context"));
  return ctx;
}
}  // namespace

Result<Bytes> RsaPkcs1Type1Sign(const PrivateKey& key, ByteSpan payload) {
  if (key.type() != KeyType::kRsa) {
    return MakeError(ErrorCode::kInvalidArgument, "raw PKCS#1 signing needs an RSA key");
  }
  const size_t modulus_bytes = static_cast<size_t>(EVP_PKEY_get_size(key.get()));
  if (payload.size() + kPkcs1Overhead > modulus_bytes) {
    return MakeError(ErrorCode::kInvalidArgument, "payload of " + std::to_string(payload.size()) +
                                                      " bytes is too long for the RSA key");
  }
  AIRLOCK_ASSIGN_OR_RETURN(EvpPkeyCtxPtr ctx, NewCtx(key.get()));
  // No signature digest is set, so the provider pads the payload as given (no DigestInfo): the
  // "private-key encrypt" of RSA_private_encrypt, without the deprecated API.
  if (EVP_PKEY_sign_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot set up raw RSA signing"));
  }
  static const uint8_t kEmpty = 0;
  const uint8_t* in = payload.empty() ? &kEmpty : payload.data();
  size_t len = 0;
  if (EVP_PKEY_sign(ctx.get(), nullptr, &len, in, payload.size()) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "raw RSA signing failed"));
  }
  Bytes out(len);
  if (EVP_PKEY_sign(ctx.get(), out.data(), &len, in, payload.size()) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "raw RSA signing failed"));
  }
  out.resize(len);
  return out;
}

Result<Bytes> RsaPkcs1Type1Recover(const PublicKey& key, ByteSpan block) {
  if (key.type() != KeyType::kRsa) {
    return MakeError(ErrorCode::kInvalidArgument, "raw PKCS#1 recovery needs an RSA key");
  }
  const size_t modulus_bytes = static_cast<size_t>(EVP_PKEY_get_size(key.get()));
  if (block.size() != modulus_bytes) {
    return MakeError(ErrorCode::kBadSignature, "RSA block is " + std::to_string(block.size()) +
                                                   " bytes, the key needs " +
                                                   std::to_string(modulus_bytes));
  }
  AIRLOCK_ASSIGN_OR_RETURN(EvpPkeyCtxPtr ctx, NewCtx(key.get()));
  if (EVP_PKEY_verify_recover_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot set up RSA recovery"));
  }
  size_t len = 0;
  if (EVP_PKEY_verify_recover(ctx.get(), nullptr, &len, block.data(), block.size()) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "RSA recovery failed"));
  }
  Bytes out(len);
  if (EVP_PKEY_verify_recover(ctx.get(), out.data(), &len, block.data(), block.size()) != 1) {
    ClearOsslErrors();
    return MakeError(ErrorCode::kBadSignature, "RSA block does not decode under this key");
  }
  out.resize(len);
  return out;
}

}  // namespace airlock::crypto
