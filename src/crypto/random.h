// The operating system's CSPRNG through OpenSSL's RAND_bytes. Fails closed: an error, never weak bytes.
#ifndef AIRLOCK_CRYPTO_RANDOM_H_
#define AIRLOCK_CRYPTO_RANDOM_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/bytes.h"
#include "common/result.h"

namespace airlock::crypto {

// Fills `out`. kCrypto if the generator fails (the buffer is then zeroed and must not be used).
[[nodiscard]] Result<void> RandomFill(std::span<uint8_t> out);
[[nodiscard]] Result<Bytes> RandomBytes(size_t n);

}  // namespace airlock::crypto

#endif  // AIRLOCK_CRYPTO_RANDOM_H_
