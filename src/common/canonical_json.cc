#include "common/canonical_json.h"

namespace airlock {

namespace {

void AppendString(std::string& out, const std::string& s) {
  out.push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

Result<void> Append(std::string& out, const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::null: out += "null"; return {};
    case nlohmann::json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; return {};
    case nlohmann::json::value_t::number_integer: out += std::to_string(v.get<int64_t>()); return {};
    case nlohmann::json::value_t::number_unsigned: out += std::to_string(v.get<uint64_t>()); return {};
    case nlohmann::json::value_t::string: AppendString(out, v.get_ref<const std::string&>()); return {};
    case nlohmann::json::value_t::array: {
      out.push_back('[');
      bool first = true;
      for (const auto& e : v) {
        if (!first) out.push_back(',');
        first = false;
        AIRLOCK_TRY(Append(out, e));
      }
      out.push_back(']');
      return {};
    }
    case nlohmann::json::value_t::object: {
      // nlohmann::json's object_t is a std::map, already ordered by byte value.
      out.push_back('{');
      bool first = true;
      for (const auto& [key, e] : v.items()) {
        if (!first) out.push_back(',');
        first = false;
        AppendString(out, key);
        out.push_back(':');
        AIRLOCK_TRY(Append(out, e));
      }
      out.push_back('}');
      return {};
    }
    case nlohmann::json::value_t::number_float:
      return MakeError(ErrorCode::kInvalidArgument, "canonical JSON cannot hold floating-point numbers");
    case nlohmann::json::value_t::binary:
    case nlohmann::json::value_t::discarded:
      break;
  }
  return MakeError(ErrorCode::kInvalidArgument, "value has no canonical JSON form");
}

}  // namespace

Result<std::string> CanonicalJson(const nlohmann::json& value) {
  std::string out;
  AIRLOCK_TRY(Append(out, value));
  return out;
}

}  // namespace airlock
