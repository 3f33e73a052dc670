// Fuzzes key-file parsing (PEM: SPKI, PKCS#8, PKCS#1).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "crypto/keys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto pub = airlock::crypto::PublicKey::FromPem(text);
  if (pub) (void)pub->KeyId();
  auto priv = airlock::crypto::PrivateKey::FromPem(text);
  if (priv) (void)priv->Public().KeyId();
  return 0;
}
