// Fuzzes manifest parsing and the path rules.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bundle/manifest.h"
#include "common/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)airlock::bundle::ValidateBundlePath(text);
  auto json = airlock::ParseJson(text, 1 << 20);
  if (!json) return 0;
  auto manifest = airlock::bundle::ManifestFromJson(*json);
  if (manifest) {
    for (const auto& e : *manifest) {
      if (!airlock::bundle::ValidateBundlePath(e.path)) __builtin_trap();  // accepted paths are safe
    }
  }
  return 0;
}
