// Secret bytes (content keys, session keys, derived keys) wiped with OPENSSL_cleanse when destroyed
// or reassigned, so every return path, error paths included, leaves no copy behind in this buffer.
// The one secret-bytes type: keys::SecretBytes (keys/secret_box.h) is an alias of it; it lives here
// because crypto and bundle cannot depend on keys.
#ifndef AIRLOCK_CRYPTO_SECRET_BYTES_H_
#define AIRLOCK_CRYPTO_SECRET_BYTES_H_

#include <openssl/crypto.h>

#include <utility>

#include "common/bytes.h"

namespace airlock::crypto {

// Move-only. Never grow the buffer in place (a reallocation would leave an unwiped copy): build it
// at its final size, or move a finished Bytes in.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(Bytes b) : bytes_(std::move(b)) {}
  SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) {
    other.bytes_.clear();
  }
  SecretBytes& operator=(SecretBytes&& other) noexcept {
    if (this != &other) {
      Wipe();
      bytes_ = std::move(other.bytes_);
      other.bytes_.clear();
    }
    return *this;
  }
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes() { Wipe(); }

  const Bytes& get() const { return bytes_; }
  Bytes& mutable_bytes() { return bytes_; }
  ByteSpan span() const { return bytes_; }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  void Wipe() {
    if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
    bytes_.clear();
  }

 private:
  Bytes bytes_;
};

}  // namespace airlock::crypto

#endif  // AIRLOCK_CRYPTO_SECRET_BYTES_H_
