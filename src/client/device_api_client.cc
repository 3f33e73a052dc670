#include "client/device_api_client.h"

#include <algorithm>
#include <cctype>
#include <ctime>

#include <nlohmann/json.hpp>

#include "client/http.h"
#include "common/json.h"
#include "crypto/base64.h"
#include "crypto/device_request.h"

namespace airlock::client {
namespace {

constexpr size_t kMaxReportEvents = 1000;  // the server's bound per request
constexpr int64_t kDefaultKeyPendingRetry = 2;
constexpr int64_t kMaxRetryAfter = 3600;

ErrorCode CodeForStatus(long status) {
  switch (status) {
    case 400:
    case 413:
      return ErrorCode::kInvalidArgument;
    case 401:
    case 403:
      return ErrorCode::kKeyUnusable;
    case 404:
      return ErrorCode::kNotFound;
    case 409:
      return ErrorCode::kAlreadyExists;
    case 429:
      return ErrorCode::kLimitExceeded;
    default:
      return ErrorCode::kIo;
  }
}

bool IsLowerHex64(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<CheckResult> ParseCheck(const std::string& body, int64_t retry_after) {
  AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json j, ParseJson(body, 1 << 20));
  if (!j.is_object() || !j.contains("update") || !j["update"].is_boolean()) {
    return MakeError(ErrorCode::kMalformed, "the answer has no boolean \"update\"");
  }
  CheckResult r;
  r.update = j["update"].get<bool>();
  if (!r.update) {
    AIRLOCK_ASSIGN_OR_RETURN(r.reason, GetString(j, "reason", 64));
    if (r.key_pending()) {
      r.retry_after_seconds =
          retry_after > 0 ? std::min(retry_after, kMaxRetryAfter) : kDefaultKeyPendingRetry;
    }
    return r;
  }
  AIRLOCK_ASSIGN_OR_RETURN(r.version, GetString(j, "version", 256));
  if (j.contains("channel") && j["channel"].is_string()) r.channel = j["channel"];
  if (j.contains("rollback")) {
    if (!j["rollback"].is_boolean()) {
      return MakeError(ErrorCode::kMalformed, "\"rollback\" is not a boolean");
    }
    r.rollback = j["rollback"].get<bool>();
  }
  AIRLOCK_ASSIGN_OR_RETURN(const nlohmann::json* target, GetObject(j, "target"));
  AIRLOCK_ASSIGN_OR_RETURN(r.target.name, GetString(*target, "name", 1024));
  AIRLOCK_ASSIGN_OR_RETURN(r.target.length, GetUint(*target, "length"));
  AIRLOCK_ASSIGN_OR_RETURN(r.target.sha256, GetString(*target, "sha256", 64));
  if (!IsLowerHex64(r.target.sha256)) {
    return MakeError(ErrorCode::kMalformed, "target sha256 is not 64 lower-case hex digits");
  }
  AIRLOCK_ASSIGN_OR_RETURN(r.url, GetString(j, "url", 4096));
  AIRLOCK_ASSIGN_OR_RETURN(r.tuf_url, GetString(j, "tuf_url", 4096));
  AIRLOCK_ASSIGN_OR_RETURN(r.encryption, GetString(j, "encryption", 32));
  if (r.encryption == "device") {
    AIRLOCK_ASSIGN_OR_RETURN(std::string wrapped, GetString(j, "wrapped_key", 4096));
    auto decoded = crypto::Base64Decode(wrapped);
    if (!decoded || decoded->empty()) {
      return MakeError(ErrorCode::kMalformed, "wrapped_key is not base64 of a wrapped key");
    }
    r.wrapped_key = std::move(*decoded);
  }
  if (auto deltas = j.find("deltas"); deltas != j.end()) {
    if (!deltas->is_array()) return MakeError(ErrorCode::kMalformed, "\"deltas\" is not an array");
    for (const nlohmann::json& d : *deltas) {
      if (r.deltas.size() == 8) break;
      if (!d.is_object()) return MakeError(ErrorCode::kMalformed, "a delta is not an object");
      CheckDelta delta;
      AIRLOCK_ASSIGN_OR_RETURN(delta.base_version, GetString(d, "base_version", 256));
      AIRLOCK_ASSIGN_OR_RETURN(delta.method, GetString(d, "method", 16));
      AIRLOCK_ASSIGN_OR_RETURN(delta.target.name, GetString(d, "name", 1024));
      AIRLOCK_ASSIGN_OR_RETURN(delta.target.length, GetUint(d, "length"));
      AIRLOCK_ASSIGN_OR_RETURN(delta.target.sha256, GetString(d, "sha256", 64));
      AIRLOCK_ASSIGN_OR_RETURN(delta.url, GetString(d, "url", 4096));
      if (!IsLowerHex64(delta.target.sha256)) {
        return MakeError(ErrorCode::kMalformed, "delta sha256 is not 64 lower-case hex digits");
      }
      r.deltas.push_back(std::move(delta));
    }
  }
  return r;
}

// Never throws: invalid UTF-8 (an OS error text in a detail, a version from a config file) is
// replaced rather than aborting the request.
std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

Result<DeviceApiClient> DeviceApiClient::Create(const DeviceIdentity& identity,
                                                DeviceApiOptions options) {
  while (!options.server.empty() && options.server.back() == '/') options.server.pop_back();
  if (!HasHttpScheme(options.server)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the server URL must start with http:// or https://: " + options.server);
  }
  // The server's identifier rule: 1..128 bytes of [A-Za-z0-9._-].
  const bool app_ok =
      !options.app_id.empty() && options.app_id.size() <= 128 &&
      std::all_of(options.app_id.begin(), options.app_id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
      });
  if (!app_ok) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the app id must be 1 to 128 bytes of [A-Za-z0-9._-]: " + options.app_id);
  }
  if (!options.clock) options.clock = [] { return static_cast<int64_t>(::time(nullptr)); };
  return DeviceApiClient(&identity, std::move(options));
}

Result<DeviceApiClient::Response> DeviceApiClient::Post(const std::string& path,
                                                        const std::string& body) {
  last_error_.reset();
  const std::string what = "POST " + path;
  AIRLOCK_ASSIGN_OR_RETURN(
      crypto::DeviceRequestSignature sig,
      crypto::SignDeviceRequest(identity_->signing_key, "POST", path, identity_->device_id,
                                options_.clock(), AsBytes(body)));
  HttpRequest request;
  request.method = "POST";
  request.url = options_.server + path;
  request.headers = {{"Content-Type", "application/json"},
                     {std::string(crypto::kDeviceIdHeader), sig.device_id},
                     {std::string(crypto::kDeviceTimestampHeader), sig.timestamp},
                     {std::string(crypto::kDeviceSignatureHeader), sig.signature}};
  request.body = body;
  request.user_agent = options_.user_agent;
  request.max_redirects = 0;       // a redirect is an error (below), never followed
  request.read_error_body = true;  // the server's JSON error says why
  request.max_body = options_.max_response_bytes;
  request.connect_timeout = options_.connect_timeout;
  request.total_timeout = options_.request_timeout;
  Response response;
  bool exceeded = false;
  auto answer = HttpExchange(request, [&](ByteSpan chunk) -> Result<void> {
    if (chunk.size() > options_.max_response_bytes - response.body.size()) {
      exceeded = true;
      return MakeError(ErrorCode::kLimitExceeded, "response too large");
    }
    response.body.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
    return {};
  });
  if (exceeded || (!answer && answer.error().code() == ErrorCode::kLimitExceeded)) {
    last_error_ = ApiError{answer ? answer->status : 0, "", "response too large", 0};
    return MakeError(ErrorCode::kLimitExceeded, what + ": response is longer than " +
                                                    std::to_string(options_.max_response_bytes) +
                                                    " bytes");
  }
  if (!answer) {
    last_error_ = ApiError{0, "", answer.error().message(), 0};
    return MakeError(ErrorCode::kIo,
                     what + " to " + options_.server + ": " + answer.error().message());
  }
  response.status = answer->status;
  response.retry_after_seconds = answer->retry_after_seconds;
  if (response.status >= 200 && response.status <= 299) return response;

  ApiError err{response.status, "", "", response.retry_after_seconds};
  auto parsed = ParseJson(response.body, options_.max_response_bytes);
  if (parsed && parsed->is_object()) {
    if (parsed->contains("error") && (*parsed)["error"].is_string()) {
      err.error_code = (*parsed)["error"].get<std::string>().substr(0, 64);
    }
    if (parsed->contains("message") && (*parsed)["message"].is_string()) {
      err.message = (*parsed)["message"].get<std::string>().substr(0, 512);
    }
  }
  std::string message = what + ": HTTP " + std::to_string(response.status);
  if (!err.error_code.empty()) message += " " + err.error_code;
  if (!err.message.empty()) message += ": " + err.message;
  if (err.retry_after_seconds > 0) {
    message += " (retry after " + std::to_string(err.retry_after_seconds) + " s)";
  }
  last_error_ = err;
  return MakeError(CodeForStatus(response.status), message);
}

Result<EnrollResult> DeviceApiClient::Enroll(const std::string& enrollment_token,
                                             const std::string& platform) {
  nlohmann::json body = {{"app_id", options_.app_id},
                         {"device_id", identity_->device_id},
                         {"public_key", identity_->WrapPublicKeyHex()},
                         {"signing_key", identity_->SigningPublicKeyHex()},
                         {"platform", platform}};
  if (!enrollment_token.empty()) body["enrollment_token"] = enrollment_token;
  AIRLOCK_ASSIGN_OR_RETURN(Response response, Post("/v1/enroll", Dump(body)));
  auto parsed = ParseJson(response.body, options_.max_response_bytes);
  if (!parsed) return tl::unexpected(parsed.error().WithContext("POST /v1/enroll answer"));
  auto status = GetString(*parsed, "status", 32);
  if (!status) return tl::unexpected(status.error().WithContext("POST /v1/enroll answer"));
  EnrollResult r;
  r.created = response.status == 201;
  if (*status == "active") {
    r.status = EnrollStatus::kActive;
  } else if (*status == "pending") {
    r.status = EnrollStatus::kPending;
  } else {
    return MakeError(ErrorCode::kMalformed, "POST /v1/enroll answer: unknown status " + *status);
  }
  return r;
}

Result<CheckResult> DeviceApiClient::Check(const CheckRequest& request) {
  nlohmann::json body = {{"app_id", options_.app_id},
                         {"device_id", identity_->device_id},
                         {"version", request.version},
                         {"native_version", request.native_version},
                         {"platform", request.platform}};
  if (!request.channel.empty()) body["channel"] = request.channel;
  AIRLOCK_ASSIGN_OR_RETURN(Response response, Post("/v1/check", Dump(body)));
  auto parsed = ParseCheck(response.body, response.retry_after_seconds);
  if (!parsed) return tl::unexpected(parsed.error().WithContext("POST /v1/check answer"));
  return parsed;
}

Result<uint64_t> DeviceApiClient::Report(const std::vector<ReportEvent>& events) {
  if (events.empty() || events.size() > kMaxReportEvents) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "a report carries 1 to " + std::to_string(kMaxReportEvents) + " events, not " +
                         std::to_string(events.size()));
  }
  nlohmann::json list = nlohmann::json::array();
  for (const ReportEvent& e : events) {
    nlohmann::json item = {
        {"seq", e.seq}, {"version", e.version}, {"kind", e.kind}, {"occurred_at", e.occurred_at}};
    if (!e.reason_code.empty()) item["reason_code"] = e.reason_code;
    if (!e.detail.empty()) item["detail"] = e.detail;
    list.push_back(std::move(item));
  }
  const nlohmann::json body = {
      {"app_id", options_.app_id}, {"device_id", identity_->device_id}, {"events", list}};
  AIRLOCK_ASSIGN_OR_RETURN(Response response, Post("/v1/report", Dump(body)));
  auto parsed = ParseJson(response.body, options_.max_response_bytes);
  if (!parsed) return tl::unexpected(parsed.error().WithContext("POST /v1/report answer"));
  auto stored = GetUint(*parsed, "stored");
  if (!stored) return tl::unexpected(stored.error().WithContext("POST /v1/report answer"));
  return *stored;
}

}  // namespace airlock::client
