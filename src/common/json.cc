#include "common/json.h"

namespace airlock {

namespace {
// Thrown from the parser callback to stop at the depth bound; caught below, never leaves this file.
struct DepthExceeded {};
}  // namespace

Result<nlohmann::json> ParseJson(std::string_view text, size_t max_size, size_t max_depth) {
  if (text.size() > max_size) {
    return MakeError(ErrorCode::kLimitExceeded,
                     "JSON document of " + std::to_string(text.size()) + " bytes exceeds the limit of " +
                         std::to_string(max_size));
  }
  auto callback = [max_depth](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    if ((event == nlohmann::json::parse_event_t::object_start ||
         event == nlohmann::json::parse_event_t::array_start) &&
        static_cast<size_t>(depth) >= max_depth) {
      throw DepthExceeded{};
    }
    return true;
  };
  try {
    nlohmann::json value = nlohmann::json::parse(text.begin(), text.end(), callback,
                                                 /*allow_exceptions=*/true, /*ignore_comments=*/false);
    return value;
  } catch (const DepthExceeded&) {
    return MakeError(ErrorCode::kLimitExceeded,
                     "JSON nests deeper than " + std::to_string(max_depth) + " levels");
  } catch (const nlohmann::json::exception& e) {
    return MakeError(ErrorCode::kMalformed, std::string("invalid JSON: ") + e.what());
  }
}

Result<std::string> GetString(const nlohmann::json& obj, std::string_view key, size_t max_length) {
  if (!obj.is_object()) return MakeError(ErrorCode::kMalformed, "expected a JSON object");
  auto it = obj.find(key);
  if (it == obj.end()) return MakeError(ErrorCode::kMalformed, "missing field '" + std::string(key) + "'");
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
  if (it == obj.end()) return MakeError(ErrorCode::kMalformed, "missing field '" + std::string(key) + "'");
  if (!it->is_number_unsigned()) {
    return MakeError(ErrorCode::kMalformed,
                     "field '" + std::string(key) + "' is not a non-negative integer");
  }
  return it->get<uint64_t>();
}

Result<const nlohmann::json*> GetArray(const nlohmann::json& obj, std::string_view key) {
  if (!obj.is_object()) return MakeError(ErrorCode::kMalformed, "expected a JSON object");
  auto it = obj.find(key);
  if (it == obj.end()) return MakeError(ErrorCode::kMalformed, "missing field '" + std::string(key) + "'");
  if (!it->is_array()) {
    return MakeError(ErrorCode::kMalformed, "field '" + std::string(key) + "' is not an array");
  }
  return &*it;
}

Result<const nlohmann::json*> GetObject(const nlohmann::json& obj, std::string_view key) {
  if (!obj.is_object()) return MakeError(ErrorCode::kMalformed, "expected a JSON object");
  auto it = obj.find(key);
  if (it == obj.end()) return MakeError(ErrorCode::kMalformed, "missing field '" + std::string(key) + "'");
  if (!it->is_object()) {
    return MakeError(ErrorCode::kMalformed, "field '" + std::string(key) + "' is not an object");
  }
  return &*it;
}

}  // namespace airlock
