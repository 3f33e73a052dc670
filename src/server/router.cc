#include "server/router.h"

#include <strings.h>
#include <algorithm>

#include <nlohmann/json.hpp>

namespace airlock::server {
namespace {

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::vector<std::string> SplitPattern(std::string_view pattern) {
  std::vector<std::string> parts;
  size_t pos = 1;  // skip the leading '/'
  while (pos <= pattern.size()) {
    size_t end = pattern.find('/', pos);
    if (end == std::string_view::npos) end = pattern.size();
    if (end > pos) parts.emplace_back(pattern.substr(pos, end - pos));
    pos = end + 1;
  }
  return parts;
}

}  // namespace

std::string_view Request::Param(std::string_view name) const {
  for (const auto& [key, value] : params) {
    if (key == name) return value;
  }
  return {};
}

void Response::SetHeader(std::string_view name, std::string_view value) {
  for (auto& [key, old] : headers) {
    if (IEquals(key, name)) {
      old = std::string(value);
      return;
    }
  }
  headers.emplace_back(std::string(name), std::string(value));
}

std::string_view Response::GetHeader(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (IEquals(key, name)) return value;
  }
  return {};
}

Response JsonError(int status, std::string_view code, std::string_view message) {
  nlohmann::json body = {{"error", code}, {"message", message}};
  // Replace invalid UTF-8 (a message may quote a request path) instead of throwing.
  return JsonResponse(status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

Response JsonResponse(int status, std::string json_text) {
  Response response;
  response.status = status;
  response.headers.emplace_back("Content-Type", "application/json");
  response.body = std::move(json_text);
  return response;
}

void Router::Add(std::string method, std::string_view pattern, Handler handler) {
  Add(std::move(method), pattern, RouteHandlers{std::move(handler), {}});
}

void Router::Add(std::string method, std::string_view pattern, RouteHandlers handlers) {
  for (const Route& route : routes_) {
    if (route.method == method && route.pattern == pattern) return;
  }
  routes_.push_back(Route{std::move(method), std::string(pattern), SplitPattern(pattern),
                          std::move(handlers.handler), false, 0, std::move(handlers.check)});
}

void Router::AddUpload(std::string method, std::string_view pattern, uint64_t max_bytes,
                       Handler handler) {
  AddUpload(std::move(method), pattern, max_bytes, RouteHandlers{std::move(handler), {}});
}

void Router::AddUpload(std::string method, std::string_view pattern, uint64_t max_bytes,
                       RouteHandlers handlers) {
  for (const Route& route : routes_) {
    if (route.method == method && route.pattern == pattern) return;
  }
  routes_.push_back(Route{std::move(method), std::string(pattern), SplitPattern(pattern),
                          std::move(handlers.handler), true, max_bytes, std::move(handlers.check)});
}

bool Router::MatchParts(const Route& route, const std::vector<std::string>& segments,
                        std::vector<std::pair<std::string, std::string>>* params,
                        std::string* rest) {
  const auto& parts = route.parts;
  params->clear();
  rest->clear();
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    if (part == "*" && i + 1 == parts.size()) {
      if (i >= segments.size()) return false;
      for (size_t j = i; j < segments.size(); ++j) {
        if (j > i) rest->push_back('/');
        rest->append(segments[j]);
      }
      return true;
    }
    if (i >= segments.size()) return false;
    if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
      if (segments[i].empty()) return false;
      params->emplace_back(part.substr(1, part.size() - 2), segments[i]);
    } else if (part != segments[i]) {
      return false;
    }
  }
  return parts.size() == segments.size();
}

Router::Match Router::Find(Request* request) const {
  Match match;
  std::vector<std::pair<std::string, std::string>> params;
  std::string rest;
  std::vector<std::string> allowed;
  const bool head = request->method == "HEAD";
  int get_index = -1;
  for (size_t i = 0; i < routes_.size(); ++i) {
    const Route& route = routes_[i];
    if (!MatchParts(route, request->segments, &params, &rest)) continue;
    if (route.method == request->method) {
      match.kind = Match::Kind::kFound;
      match.handler = &route.handler;
      if (route.check) match.check = &route.check;
      match.route_index = static_cast<int>(i);
      match.upload = route.upload;
      match.max_upload_bytes = route.max_upload_bytes;
      request->params = std::move(params);
      request->rest = std::move(rest);
      return match;
    }
    if (head && route.method == "GET" && get_index < 0) get_index = static_cast<int>(i);
    if (std::find(allowed.begin(), allowed.end(), route.method) == allowed.end()) {
      allowed.push_back(route.method);
      if (route.method == "GET") allowed.push_back("HEAD");
    }
  }
  if (get_index >= 0) {
    const Route& route = routes_[get_index];
    MatchParts(route, request->segments, &request->params, &request->rest);
    match.kind = Match::Kind::kFound;
    match.handler = &route.handler;
    if (route.check) match.check = &route.check;
    match.route_index = get_index;
    match.upload = route.upload;
    match.max_upload_bytes = route.max_upload_bytes;
    return match;
  }
  if (!allowed.empty()) {
    match.kind = Match::Kind::kMethodNotAllowed;
    for (const std::string& method : allowed) {
      if (!match.allow.empty()) match.allow += ", ";
      match.allow += method;
    }
  }
  return match;
}

std::vector<std::string> Router::Labels() const {
  std::vector<std::string> labels;
  labels.reserve(routes_.size());
  for (const Route& route : routes_) labels.push_back(route.method + " " + route.pattern);
  return labels;
}

}  // namespace airlock::server
