#include "keys/shamir.h"

#include <openssl/crypto.h>

#include "crypto/random.h"

namespace airlock::keys {

// Russian-peasant multiplication with masks instead of branches: 8 rounds whatever the inputs.
uint8_t Gf256Mul(uint8_t a, uint8_t b) {
  uint8_t product = 0;
  for (int i = 0; i < 8; ++i) {
    product ^= static_cast<uint8_t>(-(b & 1) & a);
    const uint8_t carry = static_cast<uint8_t>(-(a >> 7));
    a = static_cast<uint8_t>((a << 1) ^ (carry & 0x1b));
    b >>= 1;
  }
  return product;
}

// a^254 = a^-1 in GF(2^8) (and 0 for 0), by a fixed square-and-multiply chain.
uint8_t Gf256Inverse(uint8_t a) {
  uint8_t result = 1;
  uint8_t power = a;  // a^(2^i)
  for (int i = 1; i < 8; ++i) {
    power = Gf256Mul(power, power);  // a^(2^i)
    result = Gf256Mul(result, power);  // accumulates a^(2+4+...+128) = a^254
  }
  return result;
}

Result<std::vector<ShamirShare>> ShamirSplit(ByteSpan secret, int k, int n) {
  if (k < 2 || k > n || n > 255) {
    return MakeError(ErrorCode::kInvalidArgument, "Shamir needs 2 <= K <= N <= 255");
  }
  if (secret.empty()) return MakeError(ErrorCode::kInvalidArgument, "empty secret");
  std::vector<ShamirShare> shares(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    shares[static_cast<size_t>(i)].x = static_cast<uint8_t>(i + 1);
    shares[static_cast<size_t>(i)].y.resize(secret.size());
  }
  // coefficients[j] for j = 1..k-1, per secret byte; wiped afterwards.
  Bytes coefficients(static_cast<size_t>(k - 1));
  for (size_t b = 0; b < secret.size(); ++b) {
    AIRLOCK_TRY(crypto::RandomFill(coefficients));
    for (auto& share : shares) {
      // Horner: ((c_{k-1} x + c_{k-2}) x + ... + c_1) x + secret
      uint8_t y = 0;
      for (size_t j = coefficients.size(); j > 0; --j) {
        y = Gf256Mul(static_cast<uint8_t>(y ^ coefficients[j - 1]), share.x);
      }
      share.y[b] = static_cast<uint8_t>(y ^ secret[b]);
    }
  }
  OPENSSL_cleanse(coefficients.data(), coefficients.size());
  return shares;
}

Result<Bytes> ShamirCombine(const std::vector<ShamirShare>& shares) {
  if (shares.empty()) return MakeError(ErrorCode::kInvalidArgument, "no shares");
  const size_t size = shares[0].y.size();
  for (size_t i = 0; i < shares.size(); ++i) {
    if (shares[i].x == 0 || shares[i].y.size() != size || size == 0) {
      return MakeError(ErrorCode::kInvalidArgument, "bad share");
    }
    for (size_t j = 0; j < i; ++j) {
      if (shares[i].x == shares[j].x) {
        return MakeError(ErrorCode::kInvalidArgument, "the same share was given twice");
      }
    }
  }
  // Lagrange basis at 0: l_i = prod_{j != i} x_j / (x_j - x_i); subtraction is XOR in GF(2^8).
  std::vector<uint8_t> basis(shares.size());
  for (size_t i = 0; i < shares.size(); ++i) {
    uint8_t num = 1, den = 1;
    for (size_t j = 0; j < shares.size(); ++j) {
      if (j == i) continue;
      num = Gf256Mul(num, shares[j].x);
      den = Gf256Mul(den, static_cast<uint8_t>(shares[j].x ^ shares[i].x));
    }
    basis[i] = Gf256Mul(num, Gf256Inverse(den));
  }
  Bytes secret(size, 0);
  for (size_t b = 0; b < size; ++b) {
    uint8_t v = 0;
    for (size_t i = 0; i < shares.size(); ++i) v ^= Gf256Mul(basis[i], shares[i].y[b]);
    secret[b] = v;
  }
  return secret;
}

}  // namespace airlock::keys
