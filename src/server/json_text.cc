#include "server/json_text.h"

#include <cstdint>
#include <cstring>

#include <nlohmann/json.hpp>

namespace airlock::server {

namespace {

// True when none of the 8 bytes in `word` needs escaping (each is printable ASCII other than '"'
// and '\\'): the classic "has a zero byte / has a byte less than n" bit tricks, bytes >= 0x80
// caught by the high bits.
bool EightPlainBytes(uint64_t word) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  const uint64_t below_space = (word - kOnes * 0x20) & ~word;
  const uint64_t quote = word ^ (kOnes * '"');
  const uint64_t backslash = word ^ (kOnes * '\\');
  const uint64_t has_quote = (quote - kOnes) & ~quote;
  const uint64_t has_backslash = (backslash - kOnes) & ~backslash;
  return ((below_space | has_quote | has_backslash | word) & kHigh) == 0;
}

bool PlainByte(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

bool AllPlain(std::string_view text) {
  size_t i = 0;
  for (; i + 8 <= text.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, text.data() + i, 8);
    if (!EightPlainBytes(word)) return false;
  }
  for (; i < text.size(); ++i) {
    if (!PlainByte(static_cast<unsigned char>(text[i]))) return false;
  }
  return true;
}

}  // namespace

void AppendJsonString(std::string* out, std::string_view text) {
  if (AllPlain(text)) {  // nothing to escape: nlohmann would write the bytes as they are
    out->reserve(out->size() + text.size() + 2);
    out->push_back('"');
    out->append(text);
    out->push_back('"');
    return;
  }
  // Escapes, control characters, UTF-8 (valid or not): nlohmann itself, so the bytes are its own.
  out->append(nlohmann::json(std::string(text))
                  .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

}  // namespace airlock::server
