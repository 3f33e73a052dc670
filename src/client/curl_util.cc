#include "client/curl_util.h"

#include <mutex>

namespace airlock::client {

// curl_global_init is not thread-safe and must run once before any handle exists. It is never
// undone (curl_global_cleanup at exit buys nothing and races other users).
void CurlGlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool HasHttpScheme(const std::string& url) {
  return url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
}

}  // namespace airlock::client
