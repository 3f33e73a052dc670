// Helpers shared by the fuzz targets: a per-process scratch directory and writing input to a file
// there (for parsers that read a path).
#ifndef AIRLOCK_FUZZ_FUZZ_UTIL_H_
#define AIRLOCK_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "common/file.h"

namespace airlock::fuzz {

// A private directory for this process, removed at exit.
inline const std::filesystem::path& ScratchDir() {
  static std::optional<ScopedTempDir> dir = [] {
    auto created = ScopedTempDir::Create({}, "airlock-fuzz-");
    if (!created) std::abort();
    return std::optional<ScopedTempDir>(std::move(*created));
  }();
  return dir->path();
}

// Writes `data` to ScratchDir()/name (replacing it) and returns the path.
inline std::filesystem::path WriteInput(const std::string& name, const uint8_t* data, size_t size) {
  std::filesystem::path p = ScratchDir() / name;
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) std::abort();
  return p;
}

}  // namespace airlock::fuzz

#endif  // AIRLOCK_FUZZ_FUZZ_UTIL_H_
