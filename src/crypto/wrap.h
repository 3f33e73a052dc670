// Wrapping a symmetric key (a bundle's content key) to a recipient's public key.
//
// X25519 recipients (ECIES style), wrapped form = eph_pub (32) || nonce (12) || ciphertext || tag (16):
//   shared = X25519(eph_priv, recipient_pub)
//   kek    = HKDF-SHA256(ikm = shared, salt = eph_pub || recipient_pub, info = "airlock/v1/x25519-wrap", 32)
//   AES-256-GCM(kek, nonce, aad) over the key.
// RSA recipients (4096 bits; 2048..16384 accepted): RSAES-OAEP with SHA-256 and MGF1-SHA-256, with `aad`
//   as the OAEP label (so the binding to the context holds for both kinds).
#ifndef AIRLOCK_CRYPTO_WRAP_H_
#define AIRLOCK_CRYPTO_WRAP_H_

#include <string_view>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/keys.h"

namespace airlock::crypto {

// The algorithm name recorded beside a wrapped key: "x25519-hkdf-sha256-aes256gcm" or "rsa-oaep-sha256".
// kInvalidArgument for key types that cannot wrap.
Result<std::string> WrapAlgorithm(KeyType type);

// kInvalidArgument if the recipient key cannot wrap (ed25519, ecdsa).
[[nodiscard]] Result<Bytes> WrapKey(const PublicKey& recipient, ByteSpan key, ByteSpan aad);

// Whether a key can be wrapped to `recipient` at all: a trial wrap of a zero key. Fails as WrapKey
// does, e.g. for an X25519 public key of low order (the key agreement yields no secret). Cheap: one
// key agreement, no secret involved.
[[nodiscard]] Result<void> CheckWrapRecipient(const PublicKey& recipient);

// kDecryptFailed if `wrapped` was not made for this key and aad (or was altered); kMalformed if it has the
// wrong shape; kInvalidArgument if the key cannot unwrap.
[[nodiscard]] Result<Bytes> UnwrapKey(const PrivateKey& recipient, ByteSpan wrapped, ByteSpan aad);

}  // namespace airlock::crypto

#endif  // AIRLOCK_CRYPTO_WRAP_H_
