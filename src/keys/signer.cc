#include "keys/signer.h"

#include <utility>

namespace airlock::keys {

Result<std::unique_ptr<KeyStoreSigner>> KeyStoreSigner::Create(KeyManager& manager,
                                                               OperationContext ctx,
                                                               std::string name) {
  auto pub = manager.PublicKey(ctx, name);
  if (!pub) return tl::unexpected(pub.error().WithContext("key " + name));
  if (pub->type() == crypto::KeyType::kX25519) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "key " + name + " is an x25519 key, which cannot sign");
  }
  // Not make_unique: the constructor is private.
  return std::unique_ptr<KeyStoreSigner>(
      new KeyStoreSigner(manager, std::move(ctx), std::move(name), std::move(*pub)));
}

Result<Bytes> KeyStoreSigner::Sign(ByteSpan message) {
  // Through the manager, never the store directly: the manager gates and records the use.
  return manager_.Sign(ctx_, name_, message);
}

}  // namespace airlock::keys
