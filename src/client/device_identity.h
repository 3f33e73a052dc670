// The device's identity: its id and its two private keys, made on the device and kept under one
// directory (e.g. INSTALL_DIR/identity/):
//   device_id     the device id, a UUID v4 from the CSPRNG (text, one line)
//   x25519.key    PKCS#8 PEM, mode 0600: device-mode content keys are wrapped to its public half
//   ed25519.key   PKCS#8 PEM, mode 0600: signs every device API request
// The directory is mode 0700 and appears whole or not at all: it is built in a private staging
// directory beside it (mkdtemp 0700; files created 0600 before any byte is written, fsynced) and
// renamed into place, so no private key is readable by anyone else at any instant and a crash
// leaves either no identity or a complete one.
//
// Not yet: keys held in a PKCS#11 token (the issue allows it; the seam is this header: a
// token-backed DeviceIdentity would sign through crypto::Signer instead of holding a PrivateKey).
#ifndef AIRLOCK_CLIENT_DEVICE_IDENTITY_H_
#define AIRLOCK_CLIENT_DEVICE_IDENTITY_H_

#include <filesystem>
#include <string>

#include "common/result.h"
#include "crypto/keys.h"

namespace airlock::client {

struct DeviceIdentity {
  std::string device_id;
  crypto::PrivateKey wrap_key;     // X25519
  crypto::PrivateKey signing_key;  // Ed25519

  // 64 lower-case hex digits of the raw public keys, as /v1/enroll wants them.
  std::string WrapPublicKeyHex() const;
  std::string SigningPublicKeyHex() const;
};

// A random UUID v4 (RFC 4122 / 9562 layout, lower-case), from crypto::RandomFill. kCrypto if the
// generator fails.
[[nodiscard]] Result<std::string> NewDeviceId();

// Loads the identity under `dir`. kNotFound if `dir` does not exist. Refuses (kInvalidArgument,
// naming the file and its mode) a private key file that is not a regular file owned by this user
// with no group or other permission bits, or a symlink; kMalformed for a device id that is not a
// UUID or a key that does not parse; kUnsupported for a key of the wrong type.
[[nodiscard]] Result<DeviceIdentity> LoadDeviceIdentity(const std::filesystem::path& dir);

// Loads the identity under `dir`, or creates it (parent directories too) when `dir` does not
// exist. Two processes racing to create it end with the same identity (the loser loads the
// winner's). Errors as LoadDeviceIdentity, plus kIo.
[[nodiscard]] Result<DeviceIdentity> LoadOrCreateDeviceIdentity(const std::filesystem::path& dir);

}  // namespace airlock::client

#endif  // AIRLOCK_CLIENT_DEVICE_IDENTITY_H_
