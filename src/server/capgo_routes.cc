#include "server/capgo_routes.h"

#include <cctype>
#include <optional>

#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "common/json.h"

namespace airlock::server {
namespace {

std::optional<std::string> DecodeComponent(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      int hi = HexDigitValue(in[i + 1]);
      int lo = HexDigitValue(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A short printable bounded key piece, or empty.
std::string KeyPiece(std::string_view value, size_t max_length) {
  if (value.empty() || value.size() > max_length) return "";
  for (unsigned char c : value) {
    if (c < 0x21 || c > 0x7e) return "";
  }
  return Lower(value);
}

Response ToResponse(CapgoReply reply) {
  Response response = JsonResponse(reply.status, std::move(reply.body));
  for (auto& [name, value] : reply.headers) response.SetHeader(name, value);
  return response;
}

template <typename Fn>
Handler Limited(CapgoRateLimiter* limiter, Fn fn) {
  return [limiter, fn = std::move(fn)](const Request& request) -> Response {
    if (limiter != nullptr) {
      if (auto refused = limiter->Check(CapgoRateKey(request))) return ToResponse(std::move(*refused));
    }
    return ToResponse(fn(request));
  };
}

}  // namespace

std::vector<std::pair<std::string, std::string>> DecodeQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    auto name = DecodeComponent(pair.substr(0, eq));
    auto value = DecodeComponent(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (name && value) out.emplace_back(std::move(*name), std::move(*value));
  }
  return out;
}

namespace {

// The rate-limit key from an object's device_id (else app_id), else the peer address.
template <typename Object>
std::string RateKeyFromObject(const Object* obj, const Request& request) {
  std::string device;
  std::string app;
  if (obj != nullptr && obj->is_object()) {
    auto id = obj->find("device_id");
    if (id != obj->end() && id->is_string()) {
      device = KeyPiece(id->template get_ref<const std::string&>(), kCapgoMaxDeviceIdLength);
    }
    auto app_id = obj->find("app_id");
    if (app_id != obj->end() && app_id->is_string()) {
      app = KeyPiece(app_id->template get_ref<const std::string&>(), kCapgoMaxAppIdLength);
    }
  }
  if (!device.empty()) return "device:" + device;
  if (!app.empty()) return "app:" + app;
  return "addr:" + request.remote;
}

std::string RateKeyFromJson(const Result<nlohmann::json>& json, const Request& request) {
  const nlohmann::json* obj = nullptr;
  if (json) {
    // /stats may send an array; its first event names the device.
    obj = &*json;
    if (obj->is_array() && !obj->empty()) obj = &(*obj)[0];
  }
  return RateKeyFromObject(obj, request);
}

}  // namespace

std::string CapgoRateKey(const Request& request) {
  if (request.method != "GET") {
    return RateKeyFromJson(ParseJson(request.body, kCapgoMaxBodyBytes, kCapgoMaxJsonDepth), request);
  }
  std::string device;
  std::string app;
  for (const auto& [name, value] : DecodeQuery(request.query)) {
    if (name == "device_id") device = KeyPiece(value, kCapgoMaxDeviceIdLength);
    if (name == "app_id") app = KeyPiece(value, kCapgoMaxAppIdLength);
  }
  if (!device.empty()) return "device:" + device;
  if (!app.empty()) return "app:" + app;
  return "addr:" + request.remote;
}

std::string CapgoStatsRateKey(const Request& request) {
  return "stats:" +
         RateKeyFromJson(ParseCapgoStatsJson(request.body), request);
}

void AddCapgoRoutes(Router* router, CapgoServices services) {
  CapgoRateLimiter* limiter = services.limiter;
  CapgoReleaseCatalog* catalog = services.catalog;
  CapgoStatsSink* stats = services.stats;
  CapgoChannelRegistry* channels = services.channels;
  // The hot route: the body is parsed once, for the rate-limit key and for the handler (same key and
  // same reply as Limited + HandleCapgoUpdates).
  router->Add("POST", "/updates", [limiter, catalog](const Request& request) -> Response {
    // Plugin check-ins are flat objects: read without a DOM (common/flat_json.h); anything else
    // goes through ParseJson, which gives the same key and reply for the bodies both accept.
    thread_local FlatJsonObject flat;
    if (flat.Parse(request.body, kCapgoMaxBodyBytes)) {
      if (limiter != nullptr) {
        if (auto refused = limiter->Check(RateKeyFromObject(&flat, request))) {
          return ToResponse(std::move(*refused));
        }
      }
      return ToResponse(HandleCapgoUpdatesFlat(flat, *catalog));
    }
    auto json = ParseJson(request.body, kCapgoMaxBodyBytes, kCapgoMaxJsonDepth);
    if (limiter != nullptr) {
      if (auto refused = limiter->Check(RateKeyFromJson(json, request))) {
        return ToResponse(std::move(*refused));
      }
    }
    return ToResponse(HandleCapgoUpdatesParsed(json, request.body, *catalog));
  });
  // Stats have their own buckets: a device that was refused a check with 429 sends one
  // rate_limit_reached event (CapgoUpdater.java sendRateLimitStatistic), which must not be refused
  // by the same bucket, or the plugin retries it on every flush.
  // A body of up to 1 MiB is parsed once, for the key and for the handler (as CapgoStatsRateKey).
  router->Add("POST", "/stats", [limiter, stats](const Request& request) -> Response {
    auto json = ParseCapgoStatsJson(request.body);
    if (limiter != nullptr) {
      if (auto refused = limiter->Check("stats:" + RateKeyFromJson(json, request))) {
        return ToResponse(std::move(*refused));
      }
    }
    return ToResponse(HandleCapgoStatsParsed(json, request.body, *stats));
  });
  const std::pair<const char*, CapgoChannelMethod> methods[] = {
      {"POST", CapgoChannelMethod::kPost},
      {"PUT", CapgoChannelMethod::kPut},
      {"GET", CapgoChannelMethod::kGet},
      {"DELETE", CapgoChannelMethod::kDelete},
  };
  for (const auto& [name, method] : methods) {
    router->Add(name, "/channel_self",
                Limited(limiter, [channels, method = method](const Request& request) {
                  std::vector<std::pair<std::string, std::string>> query;
                  if (method == CapgoChannelMethod::kGet) query = DecodeQuery(request.query);
                  return HandleCapgoChannelSelf(method, request.body, query, *channels);
                }));
  }
}

}  // namespace airlock::server
