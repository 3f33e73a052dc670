// Fuzzes the parsers for Capgo's untrusted text fields: the session key ("base64(IV):base64(block)")
// and the checksum / manifest file_hash (hex block; legacy base64 and bare sha256 refused). The input
// is fed to both. The public key is the Capgo vector's (a public key, so fine to embed), so that seeds
// taken from the vectors reach the RSA recovery and the length checks after it.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "bundle/capgo.h"
#include "crypto/keys.h"

namespace {

constexpr std::string_view kCapgoVectorPublicKey = R"(-----BEGIN RSA PUBLIC KEY-----
MIIBCgKCAQEAxnu8GaHmMrN9LWcQ7qKBWpCATZrD23D3d/tD5MELxp6bhHXc1f2c
1MOMYlrMxqtI2wqLZW5pdDL87HcyVY86tto4ppZEb0GO8p6QP/G3pT8Bw5d21tPU
E1ZhpUkoOMoDdOYeWTUXak1IwwqVnAatZKVdSDVBWbDkvrGdxZRIryf2R88Fx6B8
9UwGgI4ZGD18XqZG7WoZ+BgE/7/GyPsiZNzfuL/yl5OB3oVZiE6anebvzAYa0BA9
/ihy/1ggOmK0wWQEjIPj1enWUI7Dzi2YMNtmC8ZdefDHWl8/H6z6lEOV9ESkJ/fG
LywcZ0wCtRkMTKg0YpvEhaUYyaVrCCaI1QIDAQAB
-----END RSA PUBLIC KEY-----
)";

const airlock::crypto::PublicKey& Key() {
  static const airlock::crypto::PublicKey* key = [] {
    auto parsed = airlock::crypto::PublicKey::FromPem(kCapgoVectorPublicKey);
    if (!parsed) std::abort();  // the embedded key must parse; anything else is a harness bug
    return new airlock::crypto::PublicKey(std::move(*parsed));
  }();
  return *key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)airlock::bundle::capgo::ParseSessionKey(text, Key());
  auto digest = airlock::bundle::capgo::ParseChecksum(text, Key());
  if (digest && digest->size() != airlock::bundle::capgo::kDigestSize) std::abort();
  return 0;
}
