// SHA-256 / SHA-512 (one-shot and streaming), HMAC and HKDF-SHA256 (RFC 5869).
#ifndef AIRLOCK_CRYPTO_HASH_H_
#define AIRLOCK_CRYPTO_HASH_H_

#include <cstdint>
#include <filesystem>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/ossl.h"

namespace airlock::crypto {

enum class HashAlgorithm { kSha256, kSha512 };

inline constexpr size_t kSha256Size = 32;
inline constexpr size_t kSha512Size = 64;

Bytes Sha256(ByteSpan data);
Bytes Sha512(ByteSpan data);

// Streaming hash. Movable, not copyable, not thread-safe.
class Hasher {
 public:
  static Hasher Sha256();
  static Hasher Sha512();
  void Update(ByteSpan data);
  // Returns the digest; the hasher must not be used afterwards.
  Bytes Finish();

 private:
  explicit Hasher(const EVP_MD* md);
  EvpMdCtxPtr ctx_;
};

// SHA-256 of a file's contents, streamed (constant memory). kNotFound / kIo.
Result<Bytes> Sha256File(const std::filesystem::path& path, uint64_t* size_out = nullptr);

// HMAC (RFC 2104) with the OpenSSL digest named `digest` ("SHA1", "SHA256", "SHA512"), through
// EVP_MAC. kCrypto if OpenSSL refuses (an unknown digest name).
Result<Bytes> Hmac(std::string_view digest, ByteSpan key, ByteSpan message);

// HKDF-SHA256 (RFC 5869), extract then expand to `length` bytes (at most 255*32).
Result<Bytes> HkdfSha256(ByteSpan ikm, ByteSpan salt, ByteSpan info, size_t length);

}  // namespace airlock::crypto

#endif  // AIRLOCK_CRYPTO_HASH_H_
