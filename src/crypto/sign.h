// Signatures as TUF defines them:
//   ed25519:                 raw 64-byte signature over the message (RFC 8032, pure)
//   ecdsa-sha2-nistp256:     DER-encoded ECDSA signature over SHA-256(message)
//   rsassa-pss-sha256:       RSASSA-PSS, SHA-256, MGF1-SHA-256, salt length 32 when signing, any valid
//                            salt length accepted when verifying
// Signing with RSA requires at least 3072 bits (we generate 4096); verifying accepts 2048 and up.
#ifndef AIRLOCK_CRYPTO_SIGN_H_
#define AIRLOCK_CRYPTO_SIGN_H_

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/keys.h"

namespace airlock::crypto {

// kInvalidArgument for x25519 keys (they cannot sign) or too-small RSA keys.
[[nodiscard]] Result<Bytes> Sign(const PrivateKey& key, ByteSpan message);

// kBadSignature if the signature does not verify (including a malformed signature);
// kInvalidArgument for x25519 keys.
[[nodiscard]] Result<void> Verify(const PublicKey& key, ByteSpan message, ByteSpan signature);

}  // namespace airlock::crypto

#endif  // AIRLOCK_CRYPTO_SIGN_H_
