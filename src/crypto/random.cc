#include "crypto/random.h"

#include <climits>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "crypto/ossl.h"

namespace airlock::crypto {

Result<void> RandomFill(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    int n = static_cast<int>(std::min<size_t>(out.size() - done, INT_MAX));
    if (RAND_bytes(out.data() + done, n) != 1) {
      OPENSSL_cleanse(out.data(), out.size());
      return tl::unexpected(OsslError(ErrorCode::kCrypto, "random generator failed"));
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

Result<Bytes> RandomBytes(size_t n) {
  Bytes out(n);
  AIRLOCK_TRY(RandomFill(out));
  return out;
}

}  // namespace airlock::crypto
