// Reading a TOML configuration file (airlockd's and the agent's): bounded in size, a regular file,
// and a parse error reported as "FILE:LINE: what".
#ifndef AIRLOCK_COMMON_TOML_FILE_H_
#define AIRLOCK_COMMON_TOML_FILE_H_

#include <cstdint>
#include <filesystem>

#include <toml++/toml.h>

#include "common/result.h"

namespace airlock {

inline constexpr uint64_t kMaxConfigFileBytes = 1 << 20;

// kNotFound "config file F does not exist"; kInvalidArgument when F is not a regular file;
// kLimitExceeded past 1 MiB; kIo when it cannot be read; kMalformed "F:LINE: what" for TOML errors.
[[nodiscard]] Result<toml::table> ReadTomlFile(const std::filesystem::path& path);

}  // namespace airlock

#endif  // AIRLOCK_COMMON_TOML_FILE_H_
