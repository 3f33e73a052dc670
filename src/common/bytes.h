// Byte buffers and their text encodings.
#ifndef AIRLOCK_COMMON_BYTES_H_
#define AIRLOCK_COMMON_BYTES_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace airlock {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;

inline ByteSpan AsBytes(std::string_view s) {
  return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}
inline std::string_view AsString(ByteSpan b) {
  return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
}
inline Bytes ToBytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

// Lower-case hex.
std::string HexEncode(ByteSpan data);
// Accepts upper or lower case; kMalformed on odd length or a non-hex character.
Result<Bytes> HexDecode(std::string_view hex);
// The value of one hex digit (either case), or -1 for any other character.
int HexDigitValue(char c);

// True when every character of `text` is one of 0-9 a-f (the form HexEncode writes and digests and
// key ids are compared in); an empty text is trivially true. Upper case is not lower-case hex.
bool IsLowerHex(std::string_view text);
// The same and exactly `length` characters: IsLowerHex(text, 64) for a SHA-256 hex digest.
bool IsLowerHex(std::string_view text, size_t length);

// Appends `v` big-endian.
void AppendU32Be(Bytes& out, uint32_t v);
void AppendU64Be(Bytes& out, uint64_t v);
uint32_t ReadU32Be(const uint8_t* p);
uint64_t ReadU64Be(const uint8_t* p);

// Constant-time comparison for secrets and digests.
bool ConstantTimeEqual(ByteSpan a, ByteSpan b);

}  // namespace airlock

#endif  // AIRLOCK_COMMON_BYTES_H_
