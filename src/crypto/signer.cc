#include "crypto/signer.h"

#include <utility>

#include "crypto/sign.h"

namespace airlock::crypto {

Signer::~Signer() = default;

std::string Signer::KeyId() const { return Public().KeyId(); }

PrivateKeySigner::PrivateKeySigner(PrivateKey&& key)
    : owned_(std::move(key)), key_(&*owned_), public_(key_->Public()) {}

PrivateKeySigner::PrivateKeySigner(const PrivateKey& key) : key_(&key), public_(key.Public()) {}

Result<Bytes> PrivateKeySigner::Sign(ByteSpan message) { return crypto::Sign(*key_, message); }

}  // namespace airlock::crypto
