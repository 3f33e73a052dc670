// Alert notifications: a webhook POST signed with HMAC-SHA256 (docs/operations/alerts.md,
// "Webhooks"), and the log. Retries and back-off are the Monitor's (the state is in the database,
// so a restart loses no pending notification).
#ifndef AIRLOCK_MONITOR_NOTIFIER_H_
#define AIRLOCK_MONITOR_NOTIFIER_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace airlock::monitor {

// The headers a webhook carries: X-Airlock-Timestamp: <unix seconds> and
// X-Airlock-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>.
inline constexpr std::string_view kTimestampHeader = "X-Airlock-Timestamp";
inline constexpr std::string_view kSignatureHeader = "X-Airlock-Signature";
// "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body).
Result<std::string> WebhookSignature(std::string_view secret, int64_t timestamp,
                                     std::string_view body);

class Notifier {
 public:
  virtual ~Notifier() = default;
  // Delivers one JSON body. kIo when the receiver cannot be reached or answers other than 2xx.
  [[nodiscard]] virtual Result<void> Send(std::string_view body, int64_t timestamp) = 0;
};

struct WebhookOptions {
  std::string url;     // http:// or https://
  std::string secret;  // HMAC key (at least 16 bytes)
  int64_t timeout_seconds = 10;
};

// POSTs with libcurl. Thread-compatible (one Send at a time per object).
class WebhookNotifier final : public Notifier {
 public:
  // kInvalidArgument for a URL that is not http(s) or a secret shorter than 16 bytes.
  static Result<WebhookNotifier> Create(WebhookOptions options);
  Result<void> Send(std::string_view body, int64_t timestamp) override;

 private:
  explicit WebhookNotifier(WebhookOptions options) : options_(std::move(options)) {}
  WebhookOptions options_;
};

}  // namespace airlock::monitor

#endif  // AIRLOCK_MONITOR_NOTIFIER_H_
