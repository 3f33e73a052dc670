// Request counters for GET /metrics (Prometheus text format 0.0.4).
//
// Counters are relaxed atomics indexed by route and status code, so recording a request takes no
// lock. SetRoutes must be called once, before any Record (HttpServer::Start does it); after that
// every method is thread-safe.
#ifndef AIRLOCK_SERVER_METRICS_H_
#define AIRLOCK_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace airlock::server {

class Router;

class Metrics {
 public:
  // Route label used for requests that matched no route (400, 404, 405, 413, ...).
  static constexpr const char* kUnmatchedLabel = "unmatched";

  // One label per route index (Router::Labels()); index -1 in Record means "unmatched".
  void SetRoutes(const std::vector<std::string>& labels);

  // A response with `status` (clamped into 0..599) for `route_index` was sent: `bytes` of header
  // and body, `duration_us` from the end of reading the request header to the end of the write.
  void Record(int route_index, int status, uint64_t bytes, uint64_t duration_us);
  void ConnectionOpened() {
    connections_total_.fetch_add(1, std::memory_order_relaxed);
    open_connections_.fetch_add(1, std::memory_order_relaxed);
  }
  void ConnectionClosed() { open_connections_.fetch_sub(1, std::memory_order_relaxed); }
  void RequestStarted() { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void RequestFinished() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }

  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  uint64_t requests(int route_index, int status) const;

  // The exposition text: the counters, then the section set by SetSection (complete lines with
  // their HELP and TYPE, e.g. RenderReleaseMetrics; release_metrics.h).
  std::string Render() const;
  void SetSection(std::string text);

 private:
  static constexpr int kMaxStatus = 600;
  struct RouteCounters {
    std::string label;
    std::array<std::atomic<uint64_t>, kMaxStatus> by_status{};
    std::atomic<uint64_t> duration_us{0};
  };
  RouteCounters* Slot(int route_index) const;

  std::vector<std::unique_ptr<RouteCounters>> routes_;  // last one is "unmatched"
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> open_connections_{0};
  std::atomic<uint64_t> connections_total_{0};
  std::atomic<uint64_t> bytes_sent_{0};
  mutable std::mutex section_mu_;
  std::string section_;  // guarded by section_mu_
};

// Prometheus label value escaping (backslash, double quote, newline).
std::string EscapeLabel(const std::string& value);

// Adds GET /healthz ({"status":"ok"}) and GET /metrics (metrics->Render()) to `router`. `metrics`
// must outlive the router.
void AddHealthRoutes(Router* router, const Metrics* metrics);

}  // namespace airlock::server

#endif  // AIRLOCK_SERVER_METRICS_H_
