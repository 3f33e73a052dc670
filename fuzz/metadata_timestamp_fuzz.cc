// Fuzzes TUF timestamp metadata parsing (envelope, strict shapes, keys), then exercises what a client does
// with a parsed timestamp: re-serialization, canonical JSON and signature counting.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "metadata/metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace md = airlock::metadata;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = md::ParseMetadata<md::Timestamp>(text);
  if (!parsed) return 0;
  (void)parsed->signed_data.ToJson();
  (void)parsed->ToBytes();
  (void)parsed->CanonicalSigned();
  (void)md::CheckExpiry(parsed->signed_data, 0, "fuzz");
  (void)parsed->signed_data.snapshot_meta.Verify(airlock::AsBytes(text));
  return 0;
}
