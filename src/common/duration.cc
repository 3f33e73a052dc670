#include "common/duration.h"

#include <string>

namespace airlock {

Result<int64_t> ParseDuration(std::string_view text, DurationRule rule) {
  auto bad = [&] {
    return MakeError(ErrorCode::kInvalidArgument,
                     "bad duration '" + std::string(text.substr(0, 32)) +
                         "' (want a positive number and a unit: s, m, h, d, w or y, e.g. 30d)");
  };
  if (text.empty() || text.size() > 20) return bad();
  int64_t unit = 0;
  std::string_view number = text.substr(0, text.size() - 1);
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = kSecondsPerDay;
      break;
    case 'w':
      unit = 7 * kSecondsPerDay;
      break;
    case 'y':
      unit = 365 * kSecondsPerDay;
      break;
    default:
      if (!rule.bare_seconds) return bad();
      unit = 1;
      number = text;
  }
  if (number.empty()) return bad();
  int64_t n = 0;
  for (char c : number) {
    if (c < '0' || c > '9') return bad();
    n = n * 10 + (c - '0');
    if (n > rule.max_seconds) return bad();
  }
  if (n == 0 || n > rule.max_seconds / unit) return bad();
  return n * unit;
}

}  // namespace airlock
