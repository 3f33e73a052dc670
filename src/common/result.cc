#include "common/result.h"

namespace airlock {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kAlreadyExists: return "already_exists";
    case ErrorCode::kIo: return "io";
    case ErrorCode::kMalformed: return "malformed";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kLimitExceeded: return "limit_exceeded";
    case ErrorCode::kUnsafePath: return "unsafe_path";
    case ErrorCode::kBadSignature: return "bad_signature";
    case ErrorCode::kWrongKey: return "wrong_key";
    case ErrorCode::kHashMismatch: return "hash_mismatch";
    case ErrorCode::kExpired: return "expired";
    case ErrorCode::kRollback: return "rollback";
    case ErrorCode::kDecryptFailed: return "decrypt_failed";
    case ErrorCode::kTruncated: return "truncated";
    case ErrorCode::kTrailingData: return "trailing_data";
    case ErrorCode::kKeyUnusable: return "key_unusable";
    case ErrorCode::kCrypto: return "crypto";
    case ErrorCode::kInternal: return "internal";
  }
  return "unknown";
}

bool IsVerificationFailure(ErrorCode code) {
  switch (code) {
    case ErrorCode::kMalformed:
    case ErrorCode::kUnsupported:
    case ErrorCode::kLimitExceeded:
    case ErrorCode::kUnsafePath:
    case ErrorCode::kBadSignature:
    case ErrorCode::kWrongKey:
    case ErrorCode::kHashMismatch:
    case ErrorCode::kExpired:
    case ErrorCode::kRollback:
    case ErrorCode::kDecryptFailed:
    case ErrorCode::kTruncated:
    case ErrorCode::kTrailingData:
      return true;
    default:
      return false;
  }
}

Error Error::WithContext(std::string_view context) const {
  std::string m(context);
  m += ": ";
  m += message_;
  return Error(code_, std::move(m));
}

std::string Error::ToString() const {
  std::string s(ErrorCodeName(code_));
  s += ": ";
  s += message_;
  return s;
}

}  // namespace airlock
