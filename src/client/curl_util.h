// Small libcurl helpers shared by the client's transports (CurlFetcher, DeviceApiClient,
// DownloadFile): RAII for libcurl's handles and the one-time global initialisation.
#ifndef AIRLOCK_CLIENT_CURL_UTIL_H_
#define AIRLOCK_CLIENT_CURL_UTIL_H_

#include <curl/curl.h>

#include <memory>
#include <string>

namespace airlock::client {

struct CurlEasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
using CurlEasyPtr = std::unique_ptr<CURL, CurlEasyDeleter>;

struct CurlSlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlSlistPtr = std::unique_ptr<curl_slist, CurlSlistDeleter>;

// curl_global_init, once per process, before the first handle (thread-safe through call_once).
void CurlGlobalInitOnce();

// True for URLs starting with http:// or https:// (the only schemes the client uses).
bool HasHttpScheme(const std::string& url);

}  // namespace airlock::client

#endif  // AIRLOCK_CLIENT_CURL_UTIL_H_
