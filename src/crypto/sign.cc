#include "crypto/sign.h"

#include <openssl/rsa.h>

#include "crypto/ossl.h"

namespace airlock::crypto {

namespace {

constexpr int kMinRsaSigningBits = 3072;
constexpr int kPssSaltLength = 32;  // = SHA-256 output size, as TUF's rsassa-pss-sha256 expects

// The digest name for EVP_DigestSignInit_ex: none for ed25519 (it hashes internally, "pure" mode).
const char* DigestName(KeyType type) { return type == KeyType::kEd25519 ? nullptr : "SHA256"; }

Result<void> SetPss(EVP_PKEY_CTX* pctx, int salt_length) {
  if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, "SHA256", nullptr) != 1 ||
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, salt_length) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot set up RSA-PSS"));
  }
  return {};
}

}  // namespace

Result<Bytes> Sign(const PrivateKey& key, ByteSpan message) {
  if (key.type() == KeyType::kX25519) {
    return MakeError(ErrorCode::kInvalidArgument, "x25519 keys cannot sign");
  }
  if (key.type() == KeyType::kRsa && key.bits() < kMinRsaSigningBits) {
    return MakeError(ErrorCode::kInvalidArgument, "RSA signing keys must have at least 3072 bits, not " +
                                                      std::to_string(key.bits()));
  }
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (!ctx || EVP_DigestSignInit_ex(ctx.get(), &pctx, DigestName(key.type()), nullptr, nullptr,
                                    key.get(), nullptr) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot set up signing"));
  }
  if (key.type() == KeyType::kRsa) AIRLOCK_TRY(SetPss(pctx, kPssSaltLength));
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, DataOrEmpty(message), message.size()) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "signing failed"));
  }
  Bytes sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, DataOrEmpty(message), message.size()) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "signing failed"));
  }
  sig.resize(len);  // ECDSA DER signatures vary in length
  return sig;
}

Result<void> Verify(const PublicKey& key, ByteSpan message, ByteSpan signature) {
  if (key.type() == KeyType::kX25519) {
    return MakeError(ErrorCode::kInvalidArgument, "x25519 keys cannot verify signatures");
  }
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;  // owned by ctx
  if (!ctx || EVP_DigestVerifyInit_ex(ctx.get(), &pctx, DigestName(key.type()), nullptr, nullptr,
                                      key.get(), nullptr) != 1) {
    return tl::unexpected(OsslError(ErrorCode::kCrypto, "cannot set up verification"));
  }
  if (key.type() == KeyType::kRsa) AIRLOCK_TRY(SetPss(pctx, RSA_PSS_SALTLEN_AUTO));
  // Anything but 1 (0 = mismatch, negative = malformed signature) is a bad signature.
  if (EVP_DigestVerify(ctx.get(), DataOrEmpty(signature), signature.size(), DataOrEmpty(message),
                       message.size()) != 1) {
    ClearOsslErrors();
    return MakeError(ErrorCode::kBadSignature, "signature does not verify");
  }
  return {};
}

}  // namespace airlock::crypto
