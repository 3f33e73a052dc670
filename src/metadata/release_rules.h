// The release rules a target's signed `custom` carries (docs/formats/tuf-repository.md, "Release
// rules"). The targets key signs them, so the server, the CLI and devices all read them the same way
// and none of them takes the server's word for where a release may go:
//   app_id, version      which app and release the target is;
//   channels             the channels the release may be made current on (absent: none);
//   security_floor       a counter: a release carries the highest floor signed so far, and nothing
//                        below the highest floor seen is installed or rolled back to (absent: 0);
//   rollback_allowed     whether a channel may be rolled back to it (absent: no).
// Absent fields take the safe value; a present field of the wrong type is an error (fail closed).
#ifndef AIRLOCK_METADATA_RELEASE_RULES_H_
#define AIRLOCK_METADATA_RELEASE_RULES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace airlock::metadata {

struct ReleaseRules {
  std::string app_id;   // empty when absent
  std::string version;  // empty when absent
  std::vector<std::string> channels;
  uint64_t security_floor = 0;
  bool rollback_allowed = false;

  bool NamesChannel(std::string_view channel) const;
  // Writes the fields into `custom` (keeps other fields).
  void WriteTo(nlohmann::json* custom) const;
};

// kMalformed ("custom.channels must be an array of strings", ...) for a field of the wrong type or a
// custom that is not an object (absent custom: pass an empty object).
[[nodiscard]] Result<ReleaseRules> ReadReleaseRules(const nlohmann::json& custom);

}  // namespace airlock::metadata

#endif  // AIRLOCK_METADATA_RELEASE_RULES_H_
