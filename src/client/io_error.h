// The kIo Error the client's file code returns for a failed system call: "WHAT PATH: strerror".
#ifndef AIRLOCK_CLIENT_IO_ERROR_H_
#define AIRLOCK_CLIENT_IO_ERROR_H_

#include <cstring>
#include <filesystem>
#include <string>

#include "common/result.h"

namespace airlock::client {

inline Error IoError(const std::string& what, const std::filesystem::path& path, int err) {
  return Error(ErrorCode::kIo, what + " " + path.string() + ": " + std::strerror(err));
}

}  // namespace airlock::client

#endif  // AIRLOCK_CLIENT_IO_ERROR_H_
