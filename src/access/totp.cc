#include "access/totp.h"

#include <array>
#include <cctype>
#include <memory>

#include "crypto/hash.h"
#include "crypto/ossl.h"
#include "crypto/random.h"

namespace airlock::access {

namespace {

const char* DigestName(TotpAlgorithm algorithm) {
  switch (algorithm) {
    case TotpAlgorithm::kSha1:
      return "SHA1";
    case TotpAlgorithm::kSha256:
      return "SHA256";
    case TotpAlgorithm::kSha512:
      return "SHA512";
  }
  return "SHA1";
}

Result<Bytes> Hmac(TotpAlgorithm algorithm, ByteSpan key, ByteSpan message) {
  return crypto::Hmac(DigestName(algorithm), key, message);
}

constexpr std::string_view kBase32Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

bool IsUnreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (IsUnreserved(c)) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace

std::string_view TotpAlgorithmName(TotpAlgorithm algorithm) { return DigestName(algorithm); }

Result<TotpAlgorithm> ParseTotpAlgorithm(std::string_view name) {
  std::string upper;
  for (char c : name)
    upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  if (upper == "SHA1") return TotpAlgorithm::kSha1;
  if (upper == "SHA256") return TotpAlgorithm::kSha256;
  if (upper == "SHA512") return TotpAlgorithm::kSha512;
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown TOTP algorithm '" + std::string(name.substr(0, 32)) + "'");
}

Result<void> ValidateTotpParams(const TotpParams& params, ByteSpan secret) {
  if (params.digits < 6 || params.digits > 8) {
    return MakeError(ErrorCode::kInvalidArgument, "TOTP digits must be 6, 7 or 8");
  }
  if (params.period < 1)
    return MakeError(ErrorCode::kInvalidArgument, "TOTP period must be >= 1 s");
  if (params.window < 0 || params.window > 10) {
    return MakeError(ErrorCode::kInvalidArgument, "TOTP window must be 0..10 steps");
  }
  if (secret.empty() || secret.size() > kMaxTotpSecretSize) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "TOTP secret must be 1.." + std::to_string(kMaxTotpSecretSize) + " bytes");
  }
  return {};
}

Result<std::string> Hotp(ByteSpan secret, uint64_t counter, TotpAlgorithm algorithm, int digits) {
  if (digits < 6 || digits > 8) {
    return MakeError(ErrorCode::kInvalidArgument, "HOTP digits must be 6, 7 or 8");
  }
  Bytes message;
  AppendU64Be(message, counter);
  AIRLOCK_ASSIGN_OR_RETURN(Bytes mac, Hmac(algorithm, secret, message));
  // Dynamic truncation, RFC 4226 §5.3.
  size_t offset = mac.back() & 0x0f;
  uint32_t binary = (static_cast<uint32_t>(mac[offset] & 0x7f) << 24) |
                    (static_cast<uint32_t>(mac[offset + 1]) << 16) |
                    (static_cast<uint32_t>(mac[offset + 2]) << 8) | mac[offset + 3];
  uint32_t modulus = 1;
  for (int i = 0; i < digits; ++i) modulus *= 10;
  std::string code = std::to_string(binary % modulus);
  return std::string(static_cast<size_t>(digits) - code.size(), '0') + code;
}

Result<int64_t> TotpStep(int64_t unix_time, const TotpParams& params) {
  if (params.period < 1)
    return MakeError(ErrorCode::kInvalidArgument, "TOTP period must be >= 1 s");
  if (unix_time < params.t0) return MakeError(ErrorCode::kInvalidArgument, "time before TOTP T0");
  return (unix_time - params.t0) / params.period;
}

Result<std::string> TotpCode(ByteSpan secret, int64_t unix_time, const TotpParams& params) {
  AIRLOCK_TRY(ValidateTotpParams(params, secret));
  AIRLOCK_ASSIGN_OR_RETURN(int64_t step, TotpStep(unix_time, params));
  return Hotp(secret, static_cast<uint64_t>(step), params.algorithm, params.digits);
}

Result<int64_t> TotpVerify(ByteSpan secret, std::string_view code, int64_t unix_time,
                           const TotpParams& params, std::optional<int64_t> last_used_step) {
  AIRLOCK_TRY(ValidateTotpParams(params, secret));
  if (code.size() != static_cast<size_t>(params.digits)) {
    return MakeError(ErrorCode::kMalformed,
                     "TOTP code must be " + std::to_string(params.digits) + " digits");
  }
  for (char c : code) {
    if (c < '0' || c > '9')
      return MakeError(ErrorCode::kMalformed, "TOTP code must be digits only");
  }
  AIRLOCK_ASSIGN_OR_RETURN(int64_t now_step, TotpStep(unix_time, params));
  // Every step in the window is computed and compared (constant time per comparison), so the time
  // taken does not reveal which step matched. The newest matching step wins.
  std::optional<int64_t> matched;
  for (int64_t step = now_step - params.window; step <= now_step + params.window; ++step) {
    if (step < 0) continue;
    AIRLOCK_ASSIGN_OR_RETURN(std::string expected, Hotp(secret, static_cast<uint64_t>(step),
                                                        params.algorithm, params.digits));
    if (ConstantTimeEqual(AsBytes(expected), AsBytes(code))) matched = step;
  }
  if (!matched) return MakeError(ErrorCode::kBadSignature, "TOTP code does not match");
  if (last_used_step && *matched <= *last_used_step) {
    return MakeError(ErrorCode::kRollback, "TOTP code already used (replay)");
  }
  return *matched;
}

std::string Base32Encode(ByteSpan data) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (uint8_t byte : data) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out.push_back(kBase32Alphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(kBase32Alphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

Result<Bytes> Base32Decode(std::string_view text) {
  if (text.size() > 1024)
    return MakeError(ErrorCode::kLimitExceeded, "base32 text over 1024 chars");
  Bytes out;
  uint32_t buffer = 0;
  int bits = 0;
  bool padding = false;
  for (char raw : text) {
    if (raw == ' ' || raw == '-') continue;
    if (raw == '=') {
      padding = true;
      continue;
    }
    if (padding) return MakeError(ErrorCode::kMalformed, "base32: data after padding");
    char c = static_cast<char>(std::toupper(static_cast<unsigned char>(raw)));
    size_t value = kBase32Alphabet.find(c);
    if (value == std::string_view::npos) {
      return MakeError(ErrorCode::kMalformed, "base32: invalid character");
    }
    buffer = (buffer << 5) | static_cast<uint32_t>(value);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<uint8_t>((buffer >> (bits - 8)) & 0xff));
      bits -= 8;
    }
  }
  // Leftover bits (fewer than 5 after a full group) must be zero, so each secret has one spelling.
  if (bits >= 5 || (buffer & ((1u << bits) - 1)) != 0) {
    return MakeError(ErrorCode::kMalformed, "base32: non-canonical trailing bits");
  }
  return out;
}

Result<Bytes> GenerateTotpSecret(TotpAlgorithm algorithm) {
  size_t size = algorithm == TotpAlgorithm::kSha1     ? 20
                : algorithm == TotpAlgorithm::kSha256 ? 32
                                                      : 64;
  return crypto::RandomBytes(size);
}

std::string OtpauthUri(std::string_view issuer, std::string_view account, ByteSpan secret,
                       const TotpParams& params) {
  std::string label = PercentEncode(issuer) + ":" + PercentEncode(account);
  return "otpauth://totp/" + label + "?secret=" + Base32Encode(secret) +
         "&issuer=" + PercentEncode(issuer) +
         "&algorithm=" + std::string(TotpAlgorithmName(params.algorithm)) +
         "&digits=" + std::to_string(params.digits) + "&period=" + std::to_string(params.period);
}

}  // namespace airlock::access
