// Fuzzes FlatJsonObject::Parse (the no-DOM fast path of /v1/check and Capgo /updates bodies) against
// nlohmann::json: whatever the fast path accepts nlohmann must parse to an object with the same
// members; and AppendJsonString (server/json_text.h) must give exactly nlohmann's dump.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/flat_json.h"
#include "server/json_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  airlock::FlatJsonObject flat;
  if (flat.Parse(text, 1 << 16)) {
    auto dom = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (dom.is_discarded() || !dom.is_object()) __builtin_trap();
    for (const auto& [key, value] : dom.items()) {
      const auto* member = flat.find(key);
      if (member == nullptr) __builtin_trap();
      if (value.is_string()) {
        if (!member->is_string() || member->get_ref<const std::string&>() != value.get<std::string>())
          __builtin_trap();
      } else if (value.is_boolean()) {
        if (!member->is_boolean() || member->get<bool>() != value.get<bool>()) __builtin_trap();
      } else if (value.is_null()) {
        if (!member->is_null()) __builtin_trap();
      }
    }
  }
  std::string out;
  airlock::server::AppendJsonString(&out, text);
  std::string expected =
      nlohmann::json(std::string(text)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (out != expected) __builtin_trap();
  return 0;
}
