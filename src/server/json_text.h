// JSON string literals written by hand, for replies and log lines built without a DOM.
#ifndef AIRLOCK_SERVER_JSON_TEXT_H_
#define AIRLOCK_SERVER_JSON_TEXT_H_

#include <string>
#include <string_view>

namespace airlock::server {

// Appends `text` as a JSON string literal (quotes included) with exactly the bytes nlohmann::json's
// dump(-1, ' ', false, error_handler_t::replace) gives (invalid UTF-8 replaced by U+FFFD), so
// replies built by hand match the ones built with nlohmann. Text that needs no escaping (printable
// ASCII, checked eight bytes at a time) is appended as it is; anything else goes through nlohmann.
void AppendJsonString(std::string* out, std::string_view text);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_JSON_TEXT_H_
