// Bounded JSON parsing for untrusted input (nlohmann-json underneath).
#ifndef AIRLOCK_COMMON_JSON_H_
#define AIRLOCK_COMMON_JSON_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace airlock {

inline constexpr size_t kDefaultMaxJsonDepth = 32;

// Parses `text` as one JSON value. kLimitExceeded if it is longer than `max_size` bytes or nests deeper
// than `max_depth`; kMalformed if it is not valid JSON (including invalid UTF-8 and trailing garbage).
[[nodiscard]] Result<nlohmann::json> ParseJson(std::string_view text, size_t max_size,
                                               size_t max_depth = kDefaultMaxJsonDepth);

// ParseJson for batch bodies: also kLimitExceeded as soon as a top-level array holds more than
// `max_items` elements, so an element bound is enforced while parsing, not after building the rest.
[[nodiscard]] Result<nlohmann::json> ParseJsonBatch(std::string_view text, size_t max_size,
                                                    size_t max_depth, size_t max_items);

// ParseJson for signed JSON (bundle headers, TUF metadata): also kMalformed, naming the key, if any
// object at any depth has the same key twice (compared after unescaping, so "\u0061" and "a" are
// one key). A plain parse keeps the last value, so a duplicate lets a verifier and a reader that
// keeps the first see different documents under one signature.
[[nodiscard]] Result<nlohmann::json> ParseSignedJson(std::string_view text, size_t max_size,
                                                     size_t max_depth = kDefaultMaxJsonDepth);

// Typed field access for validating parsed objects; each returns kMalformed naming `key` when the field
// is missing or of the wrong type.
[[nodiscard]] Result<std::string> GetString(const nlohmann::json& obj, std::string_view key,
                                            size_t max_length = 4096);
[[nodiscard]] Result<uint64_t> GetUint(const nlohmann::json& obj, std::string_view key);
[[nodiscard]] Result<const nlohmann::json*> GetArray(const nlohmann::json& obj, std::string_view key);
[[nodiscard]] Result<const nlohmann::json*> GetObject(const nlohmann::json& obj, std::string_view key);

}  // namespace airlock

#endif  // AIRLOCK_COMMON_JSON_H_
