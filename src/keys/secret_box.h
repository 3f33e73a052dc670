// Small sealing helpers shared by the file vault and backups: AES-256-GCM with a random nonce,
// Argon2id key derivation, and secret buffers wiped on destruction.
//
// Sealed form: nonce (12) || ciphertext || tag (16).
#ifndef AIRLOCK_KEYS_SECRET_BOX_H_
#define AIRLOCK_KEYS_SECRET_BOX_H_

#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/secret_bytes.h"
#include "keys/key_store.h"

namespace airlock::keys {

// Bytes wiped (OPENSSL_cleanse) when destroyed or reassigned: the one secret-bytes type.
using SecretBytes = crypto::SecretBytes;

// Wipes a string holding a secret (passphrase, PEM) and clears it.
void WipeString(std::string& s);

inline constexpr size_t kSealKeySize = 32;
inline constexpr size_t kSealOverhead = 12 + 16;

// kInvalidArgument if `key` is not 32 bytes; kCrypto if OpenSSL fails.
[[nodiscard]] Result<Bytes> SealAesGcm(ByteSpan key, ByteSpan plaintext, ByteSpan aad);
// kDecryptFailed if `sealed` does not authenticate under key and aad (or is shorter than the overhead).
[[nodiscard]] Result<SecretBytes> OpenAesGcm(ByteSpan key, ByteSpan sealed, ByteSpan aad);

// Argon2id(passphrase, salt) -> 32 bytes. kInvalidArgument for parameters outside sane bounds
// (t 1..64, m 8 KiB..4 GiB, p 1..16, m >= 8p, salt >= 16 bytes); kCrypto if libargon2 fails.
[[nodiscard]] Result<SecretBytes> DeriveKeyArgon2id(std::string_view passphrase, ByteSpan salt,
                                                    const KdfParams& params);

}  // namespace airlock::keys

#endif  // AIRLOCK_KEYS_SECRET_BOX_H_
