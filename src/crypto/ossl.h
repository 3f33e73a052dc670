// RAII owners for OpenSSL handles and the one place OpenSSL errors become airlock::Error values.
#ifndef AIRLOCK_CRYPTO_OSSL_H_
#define AIRLOCK_CRYPTO_OSSL_H_

#include <memory>
#include <string>
#include <string_view>

#include <openssl/bio.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>

#include "common/bytes.h"
#include "common/result.h"

namespace airlock::crypto {

struct EvpPkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct EvpPkeyCtxFree { void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); } };
struct EvpMdCtxFree { void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); } };
struct EvpCipherCtxFree { void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); } };
struct BioFree { void operator()(BIO* p) const { BIO_free_all(p); } };
struct OsslDecoderCtxFree {
  void operator()(OSSL_DECODER_CTX* p) const { OSSL_DECODER_CTX_free(p); }
};
struct OsslEncoderCtxFree {
  void operator()(OSSL_ENCODER_CTX* p) const { OSSL_ENCODER_CTX_free(p); }
};

using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, EvpPkeyCtxFree>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree>;
using EvpCipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, EvpCipherCtxFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;
using OsslDecoderCtxPtr = std::unique_ptr<OSSL_DECODER_CTX, OsslDecoderCtxFree>;
using OsslEncoderCtxPtr = std::unique_ptr<OSSL_ENCODER_CTX, OsslEncoderCtxFree>;

// EVP wants a non-null pointer even for an empty message.
inline const uint8_t* DataOrEmpty(ByteSpan s) {
  static const uint8_t kEmpty = 0;
  return s.empty() ? &kEmpty : s.data();
}

// An Error with `code` whose message is `what` plus the first queued OpenSSL error (the queue is cleared).
Error OsslError(ErrorCode code, std::string_view what);

// Clears OpenSSL's thread-local error queue (after an expected failure).
void ClearOsslErrors();

}  // namespace airlock::crypto

#endif  // AIRLOCK_CRYPTO_OSSL_H_
