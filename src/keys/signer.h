// A crypto::Signer over a key in a key store, used through KeyManager: every signature is authorized
// by the manager's gate and appended to the usage log exactly as `airlock key sign` is (operation
// "sign", ok / denied / failed), so a bundle or metadata signed with a key URI leaves the same record.
//
// Errors from Sign() are KeyManager::Sign's: kKeyUnusable unless the key is active (suspended,
// retired, revoked, compromised), the gate's codes, kIo if the usage record cannot be written (then
// no signature is returned).
#ifndef AIRLOCK_KEYS_SIGNER_H_
#define AIRLOCK_KEYS_SIGNER_H_

#include <memory>
#include <string>

#include "crypto/signer.h"
#include "keys/lifecycle.h"

namespace airlock::keys {

class KeyStoreSigner final : public crypto::Signer {
 public:
  // Reads the public key of `name` through `manager` (kNotFound if absent; kInvalidArgument for a
  // key that cannot sign, e.g. x25519). The manager (and its store, sink and gate) must outlive the
  // signer. Not thread-safe.
  [[nodiscard]] static Result<std::unique_ptr<KeyStoreSigner>> Create(KeyManager& manager,
                                                                      OperationContext ctx,
                                                                      std::string name);

  const crypto::PublicKey& Public() const override { return public_; }
  [[nodiscard]] Result<Bytes> Sign(ByteSpan message) override;
  const std::string& name() const { return name_; }

 private:
  KeyStoreSigner(KeyManager& manager, OperationContext ctx, std::string name,
                 crypto::PublicKey pub)
      : manager_(manager), ctx_(std::move(ctx)), name_(std::move(name)), public_(std::move(pub)) {}

  KeyManager& manager_;
  OperationContext ctx_;
  std::string name_;
  crypto::PublicKey public_;
};

}  // namespace airlock::keys

#endif  // AIRLOCK_KEYS_SIGNER_H_
