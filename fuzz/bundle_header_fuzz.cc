// Fuzzes the parsers a bundle reader runs on untrusted bytes: the header JSON and the signature block.
#include <cstddef>
#include <cstdint>

#include "bundle/bundle.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  airlock::ByteSpan input(data, size);
  auto header = airlock::bundle::ParseHeader(input);
  if (header) {
    // Whatever parses must serialise and parse back to the same header.
    std::string again = airlock::bundle::HeaderToJson(*header).dump();
    auto reparsed = airlock::bundle::ParseHeader(airlock::AsBytes(again));
    if (!reparsed || reparsed->files != header->files || reparsed->app_id != header->app_id) __builtin_trap();
  }
  (void)airlock::bundle::ParseSignatureBlock(input);
  return 0;
}
