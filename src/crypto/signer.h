// A signer: something that produces signatures for one public key without the caller holding the
// private key. PrivateKeySigner wraps an in-memory crypto::PrivateKey (PEM key files); key stores
// (keys/signer.h) sign inside a vault or HSM and record every use.
//
// Sign() returns exactly crypto::Sign's format for the key's type (TUF formats, see crypto/sign.h),
// so a signature verifies with crypto::Verify(Public(), message, signature) whichever signer made it.
// Sign() is non-const: a store-backed signer may log, count or refuse (a suspended key answers
// kKeyUnusable). Not thread-safe.
#ifndef AIRLOCK_CRYPTO_SIGNER_H_
#define AIRLOCK_CRYPTO_SIGNER_H_

#include <optional>
#include <string>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/keys.h"

namespace airlock::crypto {

class Signer {
 public:
  virtual ~Signer();

  virtual const PublicKey& Public() const = 0;
  // TUF key id of Public().
  std::string KeyId() const;
  // kInvalidArgument if the key cannot sign (x25519); the backend's codes otherwise.
  [[nodiscard]] virtual Result<Bytes> Sign(ByteSpan message) = 0;
};

// Signs with an in-memory private key (crypto::Sign). Constructed from an rvalue it owns the key;
// from an lvalue it borrows it (the key must then outlive the signer). Neither copyable nor movable.
class PrivateKeySigner final : public Signer {
 public:
  explicit PrivateKeySigner(PrivateKey&& key);
  explicit PrivateKeySigner(const PrivateKey& key);
  PrivateKeySigner(const PrivateKeySigner&) = delete;
  PrivateKeySigner& operator=(const PrivateKeySigner&) = delete;

  const PublicKey& Public() const override { return public_; }
  Result<Bytes> Sign(ByteSpan message) override;
  const PrivateKey& key() const { return *key_; }

 private:
  std::optional<PrivateKey> owned_;
  const PrivateKey* key_;
  PublicKey public_;
};

}  // namespace airlock::crypto

#endif  // AIRLOCK_CRYPTO_SIGNER_H_
