// Fuzzes TUF targets metadata parsing (envelope, strict shapes, keys), then exercises what a client does
// with a parsed targets: re-serialization, canonical JSON and signature counting.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "metadata/metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace md = airlock::metadata;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = md::ParseMetadata<md::Targets>(text);
  if (!parsed) return 0;
  (void)parsed->signed_data.ToJson();
  (void)parsed->ToBytes();
  (void)parsed->CanonicalSigned();
  (void)md::CheckExpiry(parsed->signed_data, 0, "fuzz");
  const md::Targets& t = parsed->signed_data;
  for (const auto& [path, file] : t.targets) {
    (void)file.Verify(airlock::AsBytes(path));
    if (t.delegations) (void)t.delegations->RolesForTarget(path);
    if (!file.hashes.empty()) (void)md::ConsistentTargetPath(path, file.hashes.begin()->second);
  }
  if (t.delegations) {
    for (const auto& role : t.delegations->roles) {
      (void)t.VerifyDelegate(role.name, *parsed);
      if (role.paths) {
        for (const auto& pattern : *role.paths) (void)md::MatchesPathPattern(pattern, role.name);
      }
    }
  }
  return 0;
}
