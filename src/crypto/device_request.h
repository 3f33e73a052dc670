// Device request signatures: how a device proves possession of its Ed25519 signing key on every
// device API request (docs/api/server-api.md, "Device authentication"). Linked by the server (which
// verifies) and by device code (which signs); depends on crypto only.
//
// A signed request carries three headers:
//   X-Airlock-Device:    the device id (the body's device_id)
//   X-Airlock-Timestamp: Unix seconds, decimal digits only
//   X-Airlock-Signature: base64 (RFC 4648, padded) of the raw 64-byte Ed25519 signature over
// the canonical string (UTF-8, '\n' separated, no trailing newline):
//   airlock-device-request-v1
//   <METHOD>              upper case, e.g. POST
//   <PATH>                e.g. /v1/check (no query)
//   <device id>
//   <timestamp>           exactly the header's text
//   <hex SHA-256 of the body bytes>   64 lower-case hex digits
#ifndef AIRLOCK_CRYPTO_DEVICE_REQUEST_H_
#define AIRLOCK_CRYPTO_DEVICE_REQUEST_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/keys.h"

namespace airlock::crypto {

inline constexpr std::string_view kDeviceIdHeader = "X-Airlock-Device";
inline constexpr std::string_view kDeviceTimestampHeader = "X-Airlock-Timestamp";
inline constexpr std::string_view kDeviceSignatureHeader = "X-Airlock-Signature";
// A request is accepted while |now - timestamp| <= this many seconds.
inline constexpr int64_t kDeviceRequestWindow = 300;

// The string a device signs (see above).
std::string DeviceRequestCanonical(std::string_view method, std::string_view path,
                                   std::string_view device_id, std::string_view timestamp,
                                   ByteSpan body);

struct DeviceRequestSignature {
  std::string device_id;
  std::string timestamp;  // decimal Unix seconds
  std::string signature;  // base64
};

// Signs a request with the device's Ed25519 key. kInvalidArgument for another key type.
[[nodiscard]] Result<DeviceRequestSignature> SignDeviceRequest(const PrivateKey& key,
                                                               std::string_view method,
                                                               std::string_view path,
                                                               std::string_view device_id,
                                                               int64_t timestamp, ByteSpan body);

// Checks a request's signature headers under the device's Ed25519 public key at time `now`.
// kMalformed: the timestamp is not 1 to 19 decimal digits or the signature is not base64 of 64
// bytes; kExpired: the timestamp is more than `window` seconds from `now`; kBadSignature: the
// signature does not verify; kInvalidArgument: `key` is not Ed25519.
[[nodiscard]] Result<void> VerifyDeviceRequest(const PublicKey& key, std::string_view method,
                                               std::string_view path, std::string_view device_id,
                                               std::string_view timestamp,
                                               std::string_view signature, ByteSpan body,
                                               int64_t now, int64_t window = kDeviceRequestWindow);

}  // namespace airlock::crypto

#endif  // AIRLOCK_CRYPTO_DEVICE_REQUEST_H_
