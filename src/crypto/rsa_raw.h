// Raw RSA PKCS#1 v1.5 type-1 blocks (00 01 FF..FF 00 || payload, no DigestInfo): a "private-key encrypt"
// that the holder of the public key reverses. Capgo's encryption v2 uses these for its session key and
// checksum; nothing else in Airlock should.
#ifndef AIRLOCK_CRYPTO_RSA_RAW_H_
#define AIRLOCK_CRYPTO_RSA_RAW_H_

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/keys.h"

namespace airlock::crypto {

// kInvalidArgument if `key` is not RSA or payload is longer than modulus_bytes - 11.
[[nodiscard]] Result<Bytes> RsaPkcs1Type1Sign(const PrivateKey& key, ByteSpan payload);

// Recovers the payload. kBadSignature if the block does not decode under this key (wrong key, tampered,
// wrong length); kInvalidArgument if `key` is not RSA.
[[nodiscard]] Result<Bytes> RsaPkcs1Type1Recover(const PublicKey& key, ByteSpan block);

}  // namespace airlock::crypto

#endif  // AIRLOCK_CRYPTO_RSA_RAW_H_
