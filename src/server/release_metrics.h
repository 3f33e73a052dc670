// Release statistics for GET /metrics (docs/operations/statistics.md): for each channel's current
// release, its funnel and adoption as Prometheus gauges. Labels are bounded: one release per
// channel (apps and channels are made by administrators), at most kMaxReleaseMetricChannels.
#ifndef AIRLOCK_SERVER_RELEASE_METRICS_H_
#define AIRLOCK_SERVER_RELEASE_METRICS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/result.h"
#include "storage/store.h"

namespace airlock::server {

inline constexpr size_t kMaxReleaseMetricChannels = 1000;

// The exposition lines (with HELP and TYPE) of every app's channels' current releases at `now`:
// airlock_release_devices{app,channel,version,step}, airlock_release_adoption_ratio and
// airlock_release_success_ratio{app,channel,version}. Devices seen within 30 days are active.
[[nodiscard]] Result<std::string> RenderReleaseMetrics(storage::Store* store, int64_t now);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_RELEASE_METRICS_H_
