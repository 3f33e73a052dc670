// TOTP (RFC 6238) over HOTP (RFC 4226), the second factor for key-custodian operations; base32
// (RFC 4648) secrets and otpauth:// URIs for authenticator apps.
//
// Error codes: a code that is not `digits` decimal digits is kMalformed; a well-formed code that
// matches no step in the window is kBadSignature (a TOTP code is a truncated HMAC that does not
// verify); a code for a step at or before the last accepted one (a replay) is kRollback. All
// functions are pure and thread-safe.
#ifndef AIRLOCK_ACCESS_TOTP_H_
#define AIRLOCK_ACCESS_TOTP_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"

namespace airlock::access {

enum class TotpAlgorithm { kSha1, kSha256, kSha512 };
std::string_view TotpAlgorithmName(TotpAlgorithm algorithm);      // "SHA1", "SHA256", "SHA512"
Result<TotpAlgorithm> ParseTotpAlgorithm(std::string_view name);  // case-insensitive

inline constexpr size_t kMaxTotpSecretSize = 128;

struct TotpParams {
  TotpAlgorithm algorithm = TotpAlgorithm::kSha1;
  int digits = 6;       // 6..8
  int64_t period = 30;  // seconds per step (X in RFC 6238)
  int64_t t0 = 0;       // unix time of step 0
  int window = 1;       // steps accepted either side of the current one (0..10)
};

// kInvalidArgument for digits outside 6..8, a period < 1, a window outside 0..10, an empty or
// oversized secret.
Result<void> ValidateTotpParams(const TotpParams& params, ByteSpan secret);

// HOTP value for `counter`, zero-padded to `digits` (RFC 4226 §5.3, HMAC through OpenSSL EVP_MAC).
Result<std::string> Hotp(ByteSpan secret, uint64_t counter, TotpAlgorithm algorithm, int digits);

// The step for a unix time: floor((time - t0) / period). kInvalidArgument before t0.
Result<int64_t> TotpStep(int64_t unix_time, const TotpParams& params);

// The TOTP code at `unix_time`.
Result<std::string> TotpCode(ByteSpan secret, int64_t unix_time, const TotpParams& params);

// Checks `code` against the steps current-window .. current+window, comparing in constant time, and
// returns the matched step. Steps <= `last_used_step` are refused (kRollback when the code matches
// one of them, so a replayed code is reported as such). The caller stores the returned step as the
// new last_used_step (AccessStore does this atomically).
Result<int64_t> TotpVerify(ByteSpan secret, std::string_view code, int64_t unix_time,
                           const TotpParams& params, std::optional<int64_t> last_used_step);

// RFC 4648 base32, upper case, without padding (what authenticator apps expect).
std::string Base32Encode(ByteSpan data);
// Accepts upper/lower case, optional '=' padding, and ignores spaces and '-'. kMalformed otherwise;
// kLimitExceeded beyond 1024 characters.
Result<Bytes> Base32Decode(std::string_view text);

// A fresh random secret: 20 bytes for SHA1, 32 for SHA256, 64 for SHA512 (the HMAC block-size
// recommendations of RFC 4226 / 6238). kCrypto if the CSPRNG fails.
Result<Bytes> GenerateTotpSecret(TotpAlgorithm algorithm);

// otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30
// (issuer and account percent-encoded).
std::string OtpauthUri(std::string_view issuer, std::string_view account, ByteSpan secret,
                       const TotpParams& params);

}  // namespace airlock::access

#endif  // AIRLOCK_ACCESS_TOTP_H_
