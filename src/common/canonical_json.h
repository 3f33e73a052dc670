// Canonical JSON as TUF uses it (OLPC canonical JSON, as in securesystemslib's encode_canonical): object keys
// sorted by byte value, no insignificant whitespace, strings escaping only '"' and '\\', integers only.
#ifndef AIRLOCK_COMMON_CANONICAL_JSON_H_
#define AIRLOCK_COMMON_CANONICAL_JSON_H_

#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace airlock {

// kInvalidArgument if `value` holds a floating-point number (not representable canonically).
Result<std::string> CanonicalJson(const nlohmann::json& value);

}  // namespace airlock

#endif  // AIRLOCK_COMMON_CANONICAL_JSON_H_
