// Durations in configuration and on the command line: "3600s", "90m", "12h", "30d", "2w", "1y".
#ifndef AIRLOCK_COMMON_DURATION_H_
#define AIRLOCK_COMMON_DURATION_H_

#include <cstdint>
#include <string_view>

#include "common/result.h"

namespace airlock {

inline constexpr int64_t kSecondsPerDay = 86400;
inline constexpr int64_t kMaxDurationSeconds = 100 * 365 * kSecondsPerDay;

struct DurationRule {
  int64_t max_seconds = kMaxDurationSeconds;
  bool bare_seconds = false;  // a plain number ("45") is seconds
};

// A positive whole number and one unit (s, m, h, d, w, y = 365 days) -> seconds, at most
// rule.max_seconds. kInvalidArgument naming the text otherwise.
[[nodiscard]] Result<int64_t> ParseDuration(std::string_view text, DurationRule rule = {});

}  // namespace airlock

#endif  // AIRLOCK_COMMON_DURATION_H_
