#include "crypto/device_request.h"

#include <charconv>

#include "crypto/base64.h"
#include "crypto/hash.h"
#include "crypto/sign.h"

namespace airlock::crypto {

namespace {

constexpr std::string_view kDomain = "airlock-device-request-v1";
constexpr size_t kEd25519SignatureSize = 64;
constexpr size_t kMaxTimestampDigits = 19;

}  // namespace

std::string DeviceRequestCanonical(std::string_view method, std::string_view path,
                                   std::string_view device_id, std::string_view timestamp,
                                   ByteSpan body) {
  std::string out;
  out.reserve(kDomain.size() + method.size() + path.size() + device_id.size() + timestamp.size() +
              2 * kSha256Size + 5);
  out += kDomain;
  for (std::string_view part : {method, path, device_id, timestamp}) {
    out += '\n';
    out += part;
  }
  out += '\n';
  out += HexEncode(Sha256(body));
  return out;
}

Result<DeviceRequestSignature> SignDeviceRequest(const PrivateKey& key, std::string_view method,
                                                 std::string_view path, std::string_view device_id,
                                                 int64_t timestamp, ByteSpan body) {
  if (key.type() != KeyType::kEd25519) {
    return MakeError(ErrorCode::kInvalidArgument, "device requests are signed with Ed25519 keys");
  }
  DeviceRequestSignature out{std::string(device_id), std::to_string(timestamp), {}};
  std::string canonical = DeviceRequestCanonical(method, path, device_id, out.timestamp, body);
  AIRLOCK_ASSIGN_OR_RETURN(Bytes sig, Sign(key, AsBytes(canonical)));
  out.signature = Base64Encode(sig);
  return out;
}

Result<void> VerifyDeviceRequest(const PublicKey& key, std::string_view method,
                                 std::string_view path, std::string_view device_id,
                                 std::string_view timestamp, std::string_view signature,
                                 ByteSpan body, int64_t now, int64_t window) {
  if (key.type() != KeyType::kEd25519) {
    return MakeError(ErrorCode::kInvalidArgument, "device requests are verified with Ed25519 keys");
  }
  int64_t when = 0;
  bool digits = !timestamp.empty() && timestamp.size() <= kMaxTimestampDigits;
  for (char c : timestamp) digits = digits && c >= '0' && c <= '9';
  if (!digits || std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), when).ec !=
                     std::errc()) {
    return MakeError(ErrorCode::kMalformed, "timestamp must be decimal Unix seconds");
  }
  // Both are far from INT64 limits (now is a real clock, when has at most 19 digits but is >= 0),
  // so the difference cannot overflow.
  if (when > now + window || when < now - window) {
    return MakeError(ErrorCode::kExpired, "timestamp is more than " + std::to_string(window) +
                                              " seconds from the server's clock");
  }
  auto sig = Base64Decode(signature);
  if (!sig || sig->size() != kEd25519SignatureSize) {
    return MakeError(ErrorCode::kMalformed, "signature must be base64 of 64 bytes");
  }
  std::string canonical = DeviceRequestCanonical(method, path, device_id, timestamp, body);
  return Verify(key, AsBytes(canonical), *sig);
}

}  // namespace airlock::crypto
