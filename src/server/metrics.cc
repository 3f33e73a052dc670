#include "server/metrics.h"

#include <algorithm>

#include "server/router.h"

namespace airlock::server {

std::string EscapeLabel(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void Metrics::SetRoutes(const std::vector<std::string>& labels) {
  routes_.clear();
  for (const std::string& label : labels) {
    routes_.push_back(std::make_unique<RouteCounters>());
    routes_.back()->label = label;
  }
  routes_.push_back(std::make_unique<RouteCounters>());
  routes_.back()->label = kUnmatchedLabel;
}

Metrics::RouteCounters* Metrics::Slot(int route_index) const {
  if (routes_.empty()) return nullptr;
  if (route_index < 0 || static_cast<size_t>(route_index) + 1 >= routes_.size()) {
    return routes_.back().get();
  }
  return routes_[route_index].get();
}

void Metrics::Record(int route_index, int status, uint64_t bytes, uint64_t duration_us) {
  bytes_sent_.fetch_add(bytes, std::memory_order_relaxed);
  RouteCounters* slot = Slot(route_index);
  if (slot == nullptr) return;
  status = std::clamp(status, 0, kMaxStatus - 1);
  slot->by_status[status].fetch_add(1, std::memory_order_relaxed);
  slot->duration_us.fetch_add(duration_us, std::memory_order_relaxed);
}

uint64_t Metrics::requests(int route_index, int status) const {
  RouteCounters* slot = Slot(route_index);
  if (slot == nullptr || status < 0 || status >= kMaxStatus) return 0;
  return slot->by_status[status].load(std::memory_order_relaxed);
}

std::string Metrics::Render() const {
  std::string out;
  out += "# HELP airlock_http_requests_total HTTP requests answered, by route and status.\n";
  out += "# TYPE airlock_http_requests_total counter\n";
  for (const auto& slot : routes_) {
    const std::string label = EscapeLabel(slot->label);
    for (int status = 0; status < kMaxStatus; ++status) {
      uint64_t n = slot->by_status[status].load(std::memory_order_relaxed);
      if (n == 0) continue;
      out += "airlock_http_requests_total{route=\"" + label + "\",status=\"" +
             std::to_string(status) + "\"} " + std::to_string(n) + "\n";
    }
  }
  out += "# HELP airlock_http_request_seconds_total Time spent answering, by route.\n";
  out += "# TYPE airlock_http_request_seconds_total counter\n";
  for (const auto& slot : routes_) {
    uint64_t us = slot->duration_us.load(std::memory_order_relaxed);
    if (us == 0) continue;
    out += "airlock_http_request_seconds_total{route=\"" + EscapeLabel(slot->label) + "\"} " +
           std::to_string(static_cast<double>(us) / 1e6) + "\n";
  }
  out += "# HELP airlock_http_requests_in_flight Requests being answered now.\n";
  out += "# TYPE airlock_http_requests_in_flight gauge\n";
  out += "airlock_http_requests_in_flight " + std::to_string(in_flight_.load()) + "\n";
  out += "# HELP airlock_http_connections_open Open client connections.\n";
  out += "# TYPE airlock_http_connections_open gauge\n";
  out += "airlock_http_connections_open " + std::to_string(open_connections_.load()) + "\n";
  out += "# HELP airlock_http_connections_total Client connections accepted.\n";
  out += "# TYPE airlock_http_connections_total counter\n";
  out += "airlock_http_connections_total " + std::to_string(connections_total_.load()) + "\n";
  out += "# HELP airlock_http_response_bytes_total Bytes sent (headers and bodies).\n";
  out += "# TYPE airlock_http_response_bytes_total counter\n";
  out += "airlock_http_response_bytes_total " + std::to_string(bytes_sent_.load()) + "\n";
  std::lock_guard lock(section_mu_);
  out += section_;
  return out;
}

void Metrics::SetSection(std::string text) {
  std::lock_guard lock(section_mu_);
  section_ = std::move(text);
}

void AddHealthRoutes(Router* router, const Metrics* metrics) {
  router->Add("GET", "/healthz",
              [](const Request&) { return JsonResponse(200, R"({"status":"ok"})"); });
  router->Add("GET", "/metrics", [metrics](const Request&) {
    Response response;
    response.SetHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    response.SetHeader("Cache-Control", "no-store");
    response.body = metrics->Render();
    return response;
  });
}

}  // namespace airlock::server
