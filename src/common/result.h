// Result<T>: the error-as-value type used across Airlock. Every fallible function returns one; nothing of
// ours throws across a module boundary.
#ifndef AIRLOCK_COMMON_RESULT_H_
#define AIRLOCK_COMMON_RESULT_H_

#include <string>
#include <string_view>
#include <utility>

#include <tl/expected.hpp>

namespace airlock {

// Error codes, narrowest first. Tests assert the exact code.
enum class ErrorCode {
  kInvalidArgument,     // caller passed a bad value (usage error, bad semver, unknown key type)
  kNotFound,            // a named file, key or entry does not exist
  kAlreadyExists,       // refusing to overwrite something that exists
  kIo,                  // the operating system refused a read, write, rename, ...
  kMalformed,           // untrusted input does not parse (bad magic, bad JSON, bad PEM, bad base64)
  kUnsupported,         // well-formed but of a version, algorithm or key type we do not accept
  kLimitExceeded,       // a size, count or depth bound on untrusted input was hit
  kUnsafePath,          // an archive or manifest path could escape the output folder
  kBadSignature,        // a signature does not verify under the expected key
  kWrongKey,            // the key given is not the one the data names (signer or recipient)
  kHashMismatch,        // content does not match the digest or size it was committed to
  kExpired,             // signed metadata is past its expiry time (TUF freeze attack)
  kRollback,            // a version, or security floor, is lower than one already trusted (rollback)
  kDecryptFailed,       // authenticated decryption failed (tampered ciphertext or wrong key)
  kTruncated,           // input ends before the data it declares
  kTrailingData,        // data after the declared end
  kKeyUnusable,         // the key exists but its lifecycle state (suspended, retired, revoked,
                        // compromised) forbids this use; resume or rotate it
  kCrypto,              // the crypto library failed for a reason that is not the input's fault
  kInternal,            // a bug: an invariant of ours does not hold
};

std::string_view ErrorCodeName(ErrorCode code);

// True for codes that mean "the input failed a security or integrity check" (exit status 1 in the CLI).
bool IsVerificationFailure(ErrorCode code);

class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Returns a copy whose message is "context: message" (context added on the way up).
  Error WithContext(std::string_view context) const;
  // "code_name: message", for logs.
  std::string ToString() const;

 private:
  ErrorCode code_;
  std::string message_;
};

template <typename T>
using Result = tl::expected<T, Error>;

inline tl::unexpected<Error> MakeError(ErrorCode code, std::string message) {
  return tl::unexpected<Error>(Error(code, std::move(message)));
}

}  // namespace airlock

#define AIRLOCK_CONCAT_INNER_(a, b) a##b
#define AIRLOCK_CONCAT_(a, b) AIRLOCK_CONCAT_INNER_(a, b)

// Returns the error of `expr` (a Result) from the enclosing function, if any.
#define AIRLOCK_TRY(expr)                                    \
  do {                                                       \
    auto&& airlock_try_result_ = (expr);                     \
    if (!airlock_try_result_) {                              \
      return tl::unexpected(airlock_try_result_.error());    \
    }                                                        \
  } while (false)

// Like AIRLOCK_TRY, prefixing the error message with `context`.
#define AIRLOCK_TRY_CTX(expr, context)                                        \
  do {                                                                        \
    auto&& airlock_try_result_ = (expr);                                      \
    if (!airlock_try_result_) {                                               \
      return tl::unexpected(airlock_try_result_.error().WithContext(context)); \
    }                                                                         \
  } while (false)

#define AIRLOCK_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                   \
  if (!tmp) {                                          \
    return tl::unexpected(std::move(tmp).error());     \
  }                                                    \
  lhs = std::move(*tmp)

// AIRLOCK_ASSIGN_OR_RETURN(auto x, Foo()); declares x from Foo()'s value or returns its error.
#define AIRLOCK_ASSIGN_OR_RETURN(lhs, expr) \
  AIRLOCK_ASSIGN_OR_RETURN_IMPL_(AIRLOCK_CONCAT_(airlock_result_, __LINE__), lhs, expr)

#endif  // AIRLOCK_COMMON_RESULT_H_
