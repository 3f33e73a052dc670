#include "crypto/base64.h"

#include <openssl/evp.h>

namespace airlock::crypto {

std::string Base64Encode(ByteSpan data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  // EVP_EncodeBlock takes an int length; chunk by multiples of 3 to stay in range for huge inputs.
  size_t in_off = 0, out_off = 0;
  constexpr size_t kStep = 3 * (1 << 28);
  while (in_off < data.size()) {
    size_t n = std::min(kStep, data.size() - in_off);
    int w = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data() + out_off),
                            data.data() + in_off, static_cast<int>(n));
    in_off += n;
    out_off += static_cast<size_t>(w);
  }
  out.resize(out_off);
  return out;
}

Result<Bytes> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return MakeError(ErrorCode::kMalformed, "base64 length is not a multiple of 4");
  if (text.size() > (1u << 30)) return MakeError(ErrorCode::kLimitExceeded, "base64 text too long");
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
              c == '/' || (c == '=' && i + 2 >= text.size());
    if (!ok) return MakeError(ErrorCode::kMalformed, "base64 text has an invalid character");
  }
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') ++pad;
  if (text.size() >= 2 && text[text.size() - 2] == '=') {
    if (text.back() != '=') return MakeError(ErrorCode::kMalformed, "base64 padding is misplaced");
    ++pad;
  }
  if (pad > 0) {
    // Canonical form only: the bits of the last data character that fall past the end of the data must be
    // zero, or several texts would decode to the same bytes.
    char last = text[text.size() - 1 - pad];
    int v = last >= 'A' && last <= 'Z'   ? last - 'A'
            : last >= 'a' && last <= 'z' ? last - 'a' + 26
            : last >= '0' && last <= '9' ? last - '0' + 52
            : last == '+'                ? 62
                                         : 63;
    if ((v & (pad == 1 ? 0x03 : 0x0f)) != 0) {
      return MakeError(ErrorCode::kMalformed, "base64 text has non-zero padding bits");
    }
  }
  Bytes out(text.size() / 4 * 3);
  int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return MakeError(ErrorCode::kMalformed, "base64 text does not decode");
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

}  // namespace airlock::crypto
