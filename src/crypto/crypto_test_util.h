// Helpers shared by the crypto module's tests: test vector paths, hex literals and one RSA key.
#ifndef AIRLOCK_CRYPTO_CRYPTO_TEST_UTIL_H_
#define AIRLOCK_CRYPTO_CRYPTO_TEST_UTIL_H_

#include <cstdlib>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "common/bytes.h"
#include "crypto/keys.h"

namespace airlock::crypto::test_util {

// A file under tests/vectors.
inline std::string VectorPath(const std::string& rel) {
  return std::string(AIRLOCK_VECTORS_DIR) + "/" + rel;
}

// The bytes of a hex literal; a malformed one fails the test.
inline Bytes Hex(std::string_view hex) {
  auto b = HexDecode(hex);
  EXPECT_TRUE(b) << hex;
  return b ? *b : Bytes{};
}

// A 4096-bit RSA key is slow to make: one per test process, shared by every test that needs one.
inline const PrivateKey& RsaKey() {
  static const PrivateKey* key = [] {
    auto k = PrivateKey::Generate(KeyType::kRsa);
    if (!k) std::abort();
    return new PrivateKey(std::move(*k));
  }();
  return *key;
}

}  // namespace airlock::crypto::test_util

#endif  // AIRLOCK_CRYPTO_CRYPTO_TEST_UTIL_H_
