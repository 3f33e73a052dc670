#include "server/release_metrics.h"

#include <cstdio>
#include <vector>

#include "server/metrics.h"

namespace airlock::server {
namespace {

constexpr int64_t kActiveSeconds = 30 * 86400;

std::string Ratio(double value) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6g", value);
  return buf;
}

}  // namespace

Result<std::string> RenderReleaseMetrics(storage::Store* store, int64_t now) {
  std::string devices, adoption, success;
  size_t channels = 0;
  AIRLOCK_ASSIGN_OR_RETURN(auto apps, store->ListApps());
  for (const auto& app : apps) {
    AIRLOCK_ASSIGN_OR_RETURN(auto list, store->ListChannels(app.app_id));
    for (const auto& c : list) {
      if (!c.current_version || channels >= kMaxReleaseMetricChannels) continue;
      ++channels;
      AIRLOCK_ASSIGN_OR_RETURN(auto stats, store->GetReleaseStats(app.app_id, *c.current_version,
                                                                  now - kActiveSeconds, 0, 86400));
      const std::string labels = "app=\"" + EscapeLabel(app.app_id) + "\",channel=\"" +
                                 EscapeLabel(c.name) + "\",version=\"" +
                                 EscapeLabel(*c.current_version) + "\"";
      for (std::string_view step : storage::ReleaseStats::kSteps) {
        devices += "airlock_release_devices{" + labels + ",step=\"" + std::string(step) + "\"} " +
                   std::to_string(stats.Devices(step)) + "\n";
      }
      if (stats.active_devices > 0) {
        adoption += "airlock_release_adoption_ratio{" + labels + "} " +
                    Ratio(static_cast<double>(stats.on_release) / stats.active_devices) + "\n";
      }
      if (const auto rate = stats.SuccessRate()) {
        success += "airlock_release_success_ratio{" + labels + "} " + Ratio(*rate) + "\n";
      }
    }
  }
  std::string out;
  out +=
      "# HELP airlock_release_devices Devices that reported each step of a channel's current "
      "release.\n# TYPE airlock_release_devices gauge\n" +
      devices;
  out +=
      "# HELP airlock_release_adoption_ratio Share of active devices (seen in 30 days) on a "
      "channel's current release.\n# TYPE airlock_release_adoption_ratio gauge\n" +
      adoption;
  out +=
      "# HELP airlock_release_success_ratio Confirmed over confirmed, failed and rolled back, "
      "for a channel's current release.\n# TYPE airlock_release_success_ratio gauge\n" +
      success;
  return out;
}

}  // namespace airlock::server
