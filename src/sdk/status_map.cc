#include "sdk/status_map.h"

#include "agent/agent.h"

namespace airlock::sdk {

// A switch rather than a cast: the public numbers are a stable contract and must not move when an
// internal code is added or reordered.
ErrorCode PublicCode(airlock::ErrorCode code) {
  using In = airlock::ErrorCode;
  switch (code) {
    case In::kInvalidArgument:
      return ErrorCode::kInvalidArgument;
    case In::kNotFound:
      return ErrorCode::kNotFound;
    case In::kAlreadyExists:
      return ErrorCode::kAlreadyExists;
    case In::kIo:
      return ErrorCode::kIo;
    case In::kMalformed:
      return ErrorCode::kMalformed;
    case In::kUnsupported:
      return ErrorCode::kUnsupported;
    case In::kLimitExceeded:
      return ErrorCode::kLimitExceeded;
    case In::kUnsafePath:
      return ErrorCode::kUnsafePath;
    case In::kBadSignature:
      return ErrorCode::kBadSignature;
    case In::kWrongKey:
      return ErrorCode::kWrongKey;
    case In::kHashMismatch:
      return ErrorCode::kHashMismatch;
    case In::kExpired:
      return ErrorCode::kExpired;
    case In::kRollback:
      return ErrorCode::kRollback;
    case In::kDecryptFailed:
      return ErrorCode::kDecryptFailed;
    case In::kTruncated:
      return ErrorCode::kTruncated;
    case In::kTrailingData:
      return ErrorCode::kTrailingData;
    case In::kKeyUnusable:
      return ErrorCode::kKeyUnusable;
    case In::kCrypto:
      return ErrorCode::kCrypto;
    case In::kInternal:
      return ErrorCode::kInternal;
  }
  return ErrorCode::kInternal;
}

Error PublicError(const airlock::Error& error) {
  return Error(PublicCode(error.code()), error.message());
}

ErrorCode RefusalCode(const std::string& reason) { return PublicCode(agent::RefusalCode(reason)); }

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kAlreadyExists:
      return "already_exists";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kMalformed:
      return "malformed";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kLimitExceeded:
      return "limit_exceeded";
    case ErrorCode::kUnsafePath:
      return "unsafe_path";
    case ErrorCode::kBadSignature:
      return "bad_signature";
    case ErrorCode::kWrongKey:
      return "wrong_key";
    case ErrorCode::kHashMismatch:
      return "hash_mismatch";
    case ErrorCode::kExpired:
      return "expired";
    case ErrorCode::kRollback:
      return "rollback";
    case ErrorCode::kDecryptFailed:
      return "decrypt_failed";
    case ErrorCode::kTruncated:
      return "truncated";
    case ErrorCode::kTrailingData:
      return "trailing_data";
    case ErrorCode::kKeyUnusable:
      return "key_unusable";
    case ErrorCode::kCrypto:
      return "crypto";
    case ErrorCode::kInternal:
      return "internal";
    case ErrorCode::kNoMemory:
      return "no_memory";
  }
  return "unknown";
}

}  // namespace airlock::sdk
