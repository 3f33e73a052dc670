// Shamir secret sharing over GF(2^8) (the AES field, x^8 + x^4 + x^3 + x + 1), byte by byte.
//
// A secret split with threshold k into n shares is recovered by any k of them; k-1 shares reveal
// nothing about it (every secret is equally likely). Shares carry no integrity protection: callers
// authenticate what they recover (backups do: the recovered key opens an AES-GCM box, else
// kDecryptFailed). Field arithmetic is constant-time (no tables, no secret-dependent branches).
#ifndef AIRLOCK_KEYS_SHAMIR_H_
#define AIRLOCK_KEYS_SHAMIR_H_

#include <cstdint>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace airlock::keys {

struct ShamirShare {
  uint8_t x = 0;  // 1..255, distinct per share
  Bytes y;        // same length as the secret
};

// GF(2^8) multiplication and inverse (Inverse(0) == 0). Constant-time.
uint8_t Gf256Mul(uint8_t a, uint8_t b);
uint8_t Gf256Inverse(uint8_t a);

// kInvalidArgument unless 2 <= k <= n <= 255 and the secret is not empty. Random coefficients come from
// crypto::RandomBytes (kCrypto if it fails).
[[nodiscard]] Result<std::vector<ShamirShare>> ShamirSplit(ByteSpan secret, int k, int n);
// Lagrange interpolation at 0 over the given shares (all used). kInvalidArgument for no shares, a zero
// or repeated x, or shares of different lengths. With fewer than k shares the result is garbage, not
// an error: the caller cannot tell (see the file comment).
[[nodiscard]] Result<Bytes> ShamirCombine(const std::vector<ShamirShare>& shares);

}  // namespace airlock::keys

#endif  // AIRLOCK_KEYS_SHAMIR_H_
