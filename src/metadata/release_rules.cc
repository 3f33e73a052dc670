#include "metadata/release_rules.h"

#include <algorithm>
#include <utility>

namespace airlock::metadata {

bool ReleaseRules::NamesChannel(std::string_view channel) const {
  return std::find(channels.begin(), channels.end(), channel) != channels.end();
}

void ReleaseRules::WriteTo(nlohmann::json* custom) const {
  if (!custom->is_object()) *custom = nlohmann::json::object();
  if (!app_id.empty()) (*custom)["app_id"] = app_id;
  if (!version.empty()) (*custom)["version"] = version;
  (*custom)["channels"] = channels;
  (*custom)["security_floor"] = security_floor;
  (*custom)["rollback_allowed"] = rollback_allowed;
}

Result<ReleaseRules> ReadReleaseRules(const nlohmann::json& custom) {
  if (custom.is_null()) return ReleaseRules{};
  if (!custom.is_object()) return MakeError(ErrorCode::kMalformed, "custom is not an object");
  ReleaseRules r;
  for (auto [field, out] : {std::pair{"app_id", &r.app_id}, std::pair{"version", &r.version}}) {
    auto it = custom.find(field);
    if (it == custom.end()) continue;
    if (!it->is_string()) {
      return MakeError(ErrorCode::kMalformed, std::string("custom.") + field + " is not a string");
    }
    *out = it->get<std::string>();
  }
  if (auto it = custom.find("channels"); it != custom.end()) {
    if (!it->is_array()) {
      return MakeError(ErrorCode::kMalformed, "custom.channels must be an array of strings");
    }
    for (const nlohmann::json& c : *it) {
      if (!c.is_string() || c.get<std::string>().empty()) {
        return MakeError(ErrorCode::kMalformed,
                         "custom.channels must be an array of non-empty strings");
      }
      r.channels.push_back(c.get<std::string>());
    }
  }
  if (auto it = custom.find("security_floor"); it != custom.end()) {
    if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<int64_t>() >= 0)) {
      return MakeError(ErrorCode::kMalformed,
                       "custom.security_floor must be a non-negative integer");
    }
    r.security_floor = it->get<uint64_t>();
  }
  if (auto it = custom.find("rollback_allowed"); it != custom.end()) {
    if (!it->is_boolean()) {
      return MakeError(ErrorCode::kMalformed, "custom.rollback_allowed must be true or false");
    }
    r.rollback_allowed = it->get<bool>();
  }
  return r;
}

}  // namespace airlock::metadata
