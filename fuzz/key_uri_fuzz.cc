// Fuzzes key URIs (file: and pkcs11:, from CLI options and airlockd's config) and Shamir share specs:
// a parsed URI must print canonically and parse back to the same URI.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "keys/backup.h"
#include "keys/key_uri.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)airlock::keys::LooksLikeKeyUri(text);
  (void)airlock::keys::IsValidStoredKeyName(text);
  auto uri = airlock::keys::ParseKeyUri(text);
  if (uri) {
    std::string canonical = uri->ToString();
    auto again = airlock::keys::ParseKeyUri(canonical);
    if (!again || again->ToString() != canonical || again->key_name != uri->key_name ||
        again->path != uri->path || again->token != uri->token ||
        again->attributes != uri->attributes || again->query != uri->query)
      __builtin_trap();
    (void)airlock::keys::ParseKeyUri(uri->StoreUri());
  }
  auto spec = airlock::keys::ParseShareSpec(text);
  if (spec && !(2 <= spec->k && spec->k <= spec->n && spec->n <= 255)) __builtin_trap();
  return 0;
}
