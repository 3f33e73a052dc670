// Fuzzes TUF snapshot metadata parsing (envelope, strict shapes, keys), then exercises what a client does
// with a parsed snapshot: re-serialization, canonical JSON and signature counting.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "metadata/metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace md = airlock::metadata;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = md::ParseMetadata<md::Snapshot>(text);
  if (!parsed) return 0;
  (void)parsed->signed_data.ToJson();
  (void)parsed->ToBytes();
  (void)parsed->CanonicalSigned();
  (void)md::CheckExpiry(parsed->signed_data, 0, "fuzz");
  for (const auto& [name, meta] : parsed->signed_data.meta) {
    (void)meta.Verify(airlock::AsBytes(name));
  }
  return 0;
}
