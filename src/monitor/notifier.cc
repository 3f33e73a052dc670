#include "monitor/notifier.h"

#include <curl/curl.h>

#include <memory>
#include <mutex>

#include "common/bytes.h"
#include "crypto/hash.h"

namespace airlock::monitor {
namespace {

// The same RAII as client/curl_util.h; the monitor is server side and does not link the client.
struct CurlEasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

size_t Discard(char*, size_t size, size_t n, void*) { return size * n; }

}  // namespace

Result<std::string> WebhookSignature(std::string_view secret, int64_t timestamp,
                                     std::string_view body) {
  std::string message = std::to_string(timestamp) + "." + std::string(body);
  AIRLOCK_ASSIGN_OR_RETURN(Bytes mac, crypto::Hmac("SHA256", AsBytes(secret), AsBytes(message)));
  return "sha256=" + HexEncode(mac);
}

Result<WebhookNotifier> WebhookNotifier::Create(WebhookOptions options) {
  if (options.url.rfind("http://", 0) != 0 && options.url.rfind("https://", 0) != 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "webhook URL must start with http:// or https://");
  }
  if (options.secret.size() < 16) {
    return MakeError(ErrorCode::kInvalidArgument, "webhook secret must be at least 16 bytes");
  }
  return WebhookNotifier(std::move(options));
}

Result<void> WebhookNotifier::Send(std::string_view body, int64_t timestamp) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  AIRLOCK_ASSIGN_OR_RETURN(std::string signature,
                           WebhookSignature(options_.secret, timestamp, body));
  std::unique_ptr<CURL, CurlEasyDeleter> curl(curl_easy_init());
  if (!curl) return MakeError(ErrorCode::kIo, "curl_easy_init failed");
  std::unique_ptr<curl_slist, CurlSlistDeleter> headers;
  for (const std::string& h : {std::string("Content-Type: application/json"),
                               std::string(kTimestampHeader) + ": " + std::to_string(timestamp),
                               std::string(kSignatureHeader) + ": " + signature}) {
    curl_slist* next = curl_slist_append(headers.get(), h.c_str());
    if (next == nullptr) return MakeError(ErrorCode::kIo, "curl_slist_append failed");
    (void)headers.release();
    headers.reset(next);
  }
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, options_.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, static_cast<long>(options_.timeout_seconds));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Discard);
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    return MakeError(ErrorCode::kIo, std::string("webhook: ") + curl_easy_strerror(rc));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299) {
    return MakeError(ErrorCode::kIo, "webhook answered HTTP " + std::to_string(status));
  }
  return {};
}

}  // namespace airlock::monitor
