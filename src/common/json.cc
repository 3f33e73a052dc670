#include "common/json.h"

#include <set>
#include <vector>

namespace airlock {

namespace {
// Thrown from the parser callback to stop at the depth bound; caught below, never leaves this file.
struct DepthExceeded {};
// Thrown from the parser callback at the element after the bound of a top-level array; caught
// below.
struct TooManyItems {};
// Thrown from the parser callback at a repeated object key; caught below.
struct DuplicateKey {
  std::string key;
};

Result<nlohmann::json> Parse(std::string_view text, size_t max_size, size_t max_depth,
                             bool refuse_duplicate_keys, size_t max_items = SIZE_MAX) {
  if (text.size() > max_size) {
    return MakeError(ErrorCode::kLimitExceeded, "JSON document of " + std::to_string(text.size()) +
                                                    " bytes exceeds the limit of " +
                                                    std::to_string(max_size));
  }
  using Event = nlohmann::json::parse_event_t;
  // The keys seen so far in each object being parsed, innermost last.
  std::vector<std::set<std::string>> open_objects;
  bool top_is_array = false;
  size_t items = 0;
  auto callback = [&](int depth, Event event, nlohmann::json& parsed) {
    const bool starts = event == Event::object_start || event == Event::array_start;
    if (starts && static_cast<size_t>(depth) >= max_depth) throw DepthExceeded{};
    // The callback's depth is the number of open containers: an element of the top-level array
    // starts (or is a value) at depth 1.
    if (depth == 0 && event == Event::array_start) top_is_array = true;
    if (top_is_array && depth == 1 && (starts || event == Event::value) && ++items > max_items) {
      throw TooManyItems{};
    }
    if (refuse_duplicate_keys) {
      if (event == Event::object_start) {
        open_objects.emplace_back();
      } else if (event == Event::object_end) {
        open_objects.pop_back();
      } else if (event == Event::key && !open_objects.empty()) {
        const auto& key = parsed.get_ref<const std::string&>();
        if (!open_objects.back().insert(key).second) throw DuplicateKey{key};
      }
    }
    return true;
  };
  try {
    nlohmann::json value =
        nlohmann::json::parse(text.begin(), text.end(), callback,
                              /*allow_exceptions=*/true, /*ignore_comments=*/false);
    return value;
  } catch (const DepthExceeded&) {
    return MakeError(ErrorCode::kLimitExceeded,
                     "JSON nests deeper than " + std::to_string(max_depth) + " levels");
  } catch (const TooManyItems&) {
    return MakeError(ErrorCode::kLimitExceeded,
                     "JSON array holds more than " + std::to_string(max_items) + " elements");
  } catch (const DuplicateKey& d) {
    nlohmann::json shown = d.key;  // escaped for printing; the parser gave valid UTF-8
    return MakeError(ErrorCode::kMalformed, "duplicate key " + shown.dump() + " in a JSON object");
  } catch (const nlohmann::json::exception& e) {
    return MakeError(ErrorCode::kMalformed, std::string("invalid JSON: ") + e.what());
  }
}

}  // namespace

Result<nlohmann::json> ParseJson(std::string_view text, size_t max_size, size_t max_depth) {
  return Parse(text, max_size, max_depth, /*refuse_duplicate_keys=*/false);
}

Result<nlohmann::json> ParseJsonBatch(std::string_view text, size_t max_size, size_t max_depth,
                                      size_t max_items) {
  return Parse(text, max_size, max_depth, /*refuse_duplicate_keys=*/false, max_items);
}

Result<nlohmann::json> ParseSignedJson(std::string_view text, size_t max_size, size_t max_depth) {
  return Parse(text, max_size, max_depth, /*refuse_duplicate_keys=*/true);
}

Result<std::string> GetString(const nlohmann::json& obj, std::string_view key, size_t max_length) {
  if (!obj.is_object()) return MakeError(ErrorCode::kMalformed, "expected a JSON object");
  auto it = obj.find(key);
  if (it == obj.end())
    return MakeError(ErrorCode::kMalformed, "missing field '" + std::string(key) + "'");
  if (!it->is_string()) {
    return MakeError(ErrorCode::kMalformed, "field '" + std::string(key) + "' is not a string");
  }
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() > max_length) {
    return MakeError(ErrorCode::kLimitExceeded, "field '" + std::string(key) + "' is too long");
  }
  return s;
}

Result<uint64_t> GetUint(const nlohmann::json& obj, std::string_view key) {
  if (!obj.is_object()) return MakeError(ErrorCode::kMalformed, "expected a JSON object");
  auto it = obj.find(key);
  if (it == obj.end())
    return MakeError(ErrorCode::kMalformed, "missing field '" + std::string(key) + "'");
  if (!it->is_number_unsigned()) {
    return MakeError(ErrorCode::kMalformed,
                     "field '" + std::string(key) + "' is not a non-negative integer");
  }
  return it->get<uint64_t>();
}

Result<const nlohmann::json*> GetArray(const nlohmann::json& obj, std::string_view key) {
  if (!obj.is_object()) return MakeError(ErrorCode::kMalformed, "expected a JSON object");
  auto it = obj.find(key);
  if (it == obj.end())
    return MakeError(ErrorCode::kMalformed, "missing field '" + std::string(key) + "'");
  if (!it->is_array()) {
    return MakeError(ErrorCode::kMalformed, "field '" + std::string(key) + "' is not an array");
  }
  return &*it;
}

Result<const nlohmann::json*> GetObject(const nlohmann::json& obj, std::string_view key) {
  if (!obj.is_object()) return MakeError(ErrorCode::kMalformed, "expected a JSON object");
  auto it = obj.find(key);
  if (it == obj.end())
    return MakeError(ErrorCode::kMalformed, "missing field '" + std::string(key) + "'");
  if (!it->is_object()) {
    return MakeError(ErrorCode::kMalformed, "field '" + std::string(key) + "' is not an object");
  }
  return &*it;
}

}  // namespace airlock
