// Standard base64 (RFC 4648 section 4, with padding) via OpenSSL's EVP encoder.
#ifndef AIRLOCK_CRYPTO_BASE64_H_
#define AIRLOCK_CRYPTO_BASE64_H_

#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"

namespace airlock::crypto {

std::string Base64Encode(ByteSpan data);
// Strict: no whitespace, length a multiple of 4, correct padding. kMalformed otherwise.
Result<Bytes> Base64Decode(std::string_view text);

}  // namespace airlock::crypto

#endif  // AIRLOCK_CRYPTO_BASE64_H_
