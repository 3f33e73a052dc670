// How the internal error codes and refusal reasons become the public ones (include/airlock/).
#ifndef AIRLOCK_SDK_STATUS_MAP_H_
#define AIRLOCK_SDK_STATUS_MAP_H_

#include <string>

#include "airlock/client.hpp"
#include "common/result.h"

namespace airlock::sdk {

ErrorCode PublicCode(airlock::ErrorCode code);
Error PublicError(const airlock::Error& error);
// The code that names what a refusal's reason code says failed (as `airlock-agent update`'s error
// line does).
ErrorCode RefusalCode(const std::string& reason);

}  // namespace airlock::sdk

#endif  // AIRLOCK_SDK_STATUS_MAP_H_
