// Internal to the metadata module (metadata.cc, envelope.cc): the JSON field helpers both the role
// documents and the signed envelope parse with. Not for use outside src/metadata.
#ifndef AIRLOCK_METADATA_METADATA_JSON_H_
#define AIRLOCK_METADATA_METADATA_JSON_H_

#include <cstddef>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/result.h"

namespace airlock::metadata::metadata_internal {

// Strings in metadata (key ids, hashes, names, paths, PEM keys) are bounded by this; the document
// size bounds the rest.
inline constexpr size_t kMaxStringLength = 64 * 1024;

// Copies `obj` without `known` members: what we keep as unrecognized fields.
nlohmann::json Rest(const nlohmann::json& obj, std::initializer_list<std::string_view> known);

// Starts a written object from the unrecognized fields (known fields overwrite on a clash).
nlohmann::json Base(const nlohmann::json& unrecognized);

// A string member of at most kMaxStringLength; kMalformed otherwise.
Result<std::string> Str(const nlohmann::json& obj, std::string_view key);

// True if `v` holds a floating-point number anywhere (canonical JSON has none).
bool ContainsFloat(const nlohmann::json& v);

}  // namespace airlock::metadata::metadata_internal

#endif  // AIRLOCK_METADATA_METADATA_JSON_H_
