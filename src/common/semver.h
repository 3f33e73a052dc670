// Semantic versions (semver.org 2.0.0): parsing, validation and precedence.
#ifndef AIRLOCK_COMMON_SEMVER_H_
#define AIRLOCK_COMMON_SEMVER_H_

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace airlock {

inline constexpr size_t kMaxSemverLength = 256;

struct Semver {
  uint64_t major = 0;
  uint64_t minor = 0;
  uint64_t patch = 0;
  std::vector<std::string> prerelease;  // dot-separated identifiers after '-'
  std::string build;                    // after '+', ignored for precedence

  // kInvalidArgument unless `text` is a valid semver 2.0.0 string of at most kMaxSemverLength bytes
  // (no leading zeros in numeric parts, no 'v' prefix, numbers fit in 64 bits).
  static Result<Semver> Parse(std::string_view text);
  std::string ToString() const;
};

// Precedence per semver.org section 11 (build metadata ignored).
std::strong_ordering Compare(const Semver& a, const Semver& b);

}  // namespace airlock

#endif  // AIRLOCK_COMMON_SEMVER_H_
