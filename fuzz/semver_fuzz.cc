// Fuzzes Semver::Parse (device versions arrive in /v1/check, Capgo bodies and bundle headers): what
// parses must print and parse back equal, and the order must be a strict weak order on the pair.
#include <compare>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/semver.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // Two versions separated by the first '\n' (the second may be empty).
  size_t nl = text.find('\n');
  std::string_view a_text = text.substr(0, nl);
  std::string_view b_text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  auto a = airlock::Semver::Parse(a_text);
  auto b = airlock::Semver::Parse(b_text);
  if (a) {
    auto again = airlock::Semver::Parse(a->ToString());
    if (!again || airlock::Compare(*again, *a) != 0 || again->build != a->build) __builtin_trap();
  }
  if (a && b) {
    auto ab = airlock::Compare(*a, *b);
    auto ba = airlock::Compare(*b, *a);
    if ((ab < 0) != (ba > 0) || (ab == 0) != (ba == 0)) __builtin_trap();
  }
  return 0;
}
