#include "cli/http_client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "common/fd.h"
#include "common/file.h"
#include "common/json.h"

namespace airlock::cli {
namespace {

struct CurlEasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
using CurlEasyPtr = std::unique_ptr<CURL, CurlEasyDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

constexpr uint64_t kMaxCaFile = 16ull * 1024 * 1024;

bool HasHttpScheme(const std::string& url) {
  return url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0;
}

// The response body, in memory, bounded.
struct Sink {
  std::string* memory = nullptr;
  uint64_t max = 0;
  uint64_t written = 0;
  bool exceeded = false;
};

size_t WriteCallback(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  if (sink->written + n > sink->max) {
    sink->exceeded = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  sink->written += n;
  if (sink->memory != nullptr) sink->memory->append(data, n);
  return n;
}

struct Source {
  int fd = -1;
};

size_t ReadCallback(char* buffer, size_t size, size_t count, void* user) {
  auto* source = static_cast<Source*>(user);
  ssize_t n;
  do {
    n = ::read(source->fd, buffer, size * count);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return CURL_READFUNC_ABORT;
  return static_cast<size_t>(n);
}

struct Progress {
  std::string label;
  bool upload = false;
  int last_percent = -1;
  bool drawn = false;
};

std::string Mib(curl_off_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

int ProgressCallback(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                     curl_off_t ulnow) {
  auto* p = static_cast<Progress*>(user);
  const curl_off_t total = p->upload ? ultotal : dltotal;
  const curl_off_t now = p->upload ? ulnow : dlnow;
  if (total <= 0) return 0;
  const int percent = static_cast<int>(now * 100 / total);
  if (percent == p->last_percent) return 0;
  p->last_percent = percent;
  constexpr int kWidth = 30;
  const int filled = percent * kWidth / 100;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kWidth - filled), ' ');
  std::fprintf(stderr, "\r%s [%s] %3d%% %s/%s MiB", p->label.c_str(), bar.c_str(), percent,
               Mib(now).c_str(), Mib(total).c_str());
  std::fflush(stderr);
  p->drawn = true;
  return 0;
}

struct Transfer {
  std::string method;
  std::string url;
  std::optional<std::string> body;
  std::string content_type;
  std::map<std::string, std::string> headers;
  int upload_fd = -1;
  uint64_t upload_size = 0;
  Sink sink;
  std::string progress_label;  // empty: no bar (uploads only)
};

Result<long> Perform(Transfer& t, const std::string& server, const std::string& token,
                     const std::string& ca_file) {
  GlobalInitOnce();
  CurlEasyPtr curl(curl_easy_init());
  if (!curl) return MakeError(ErrorCode::kInternal, "curl_easy_init failed");
  CURL* h = curl.get();
  char error_buffer[CURL_ERROR_SIZE] = {0};
  SlistPtr headers;
  auto add_header = [&](const std::string& line) {
    curl_slist* next = curl_slist_append(headers.get(), line.c_str());
    if (next != nullptr) {
      (void)headers.release();
      headers.reset(next);
    }
  };
  if (!token.empty()) add_header("Authorization: Bearer " + token);
  if (t.body || t.upload_fd >= 0) add_header("Content-Type: " + t.content_type);
  add_header("Accept: application/json");
  add_header("Expect:");  // no 100-continue round trip
  for (const auto& [name, value] : t.headers) add_header(name + ": " + value);

  Source source{t.upload_fd};
  Progress progress{t.progress_label, /*upload=*/true};
  bool ok = curl_easy_setopt(h, CURLOPT_URL, t.url.c_str()) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 15L) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get()) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &WriteCallback) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_WRITEDATA, &t.sink) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error_buffer) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_USERAGENT, "airlock-cli/0.1") == CURLE_OK;
  if (ok && t.upload_fd >= 0) {
    ok = curl_easy_setopt(h, CURLOPT_POST, 1L) == CURLE_OK &&
         curl_easy_setopt(h, CURLOPT_READFUNCTION, &ReadCallback) == CURLE_OK &&
         curl_easy_setopt(h, CURLOPT_READDATA, &source) == CURLE_OK &&
         curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t.upload_size)) ==
             CURLE_OK;
    if (ok && t.method != "POST") {
      ok = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, t.method.c_str()) == CURLE_OK;
    }
  } else if (ok && t.body) {
    ok = curl_easy_setopt(h, CURLOPT_POSTFIELDS, t.body->data()) == CURLE_OK &&
         curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                          static_cast<curl_off_t>(t.body->size())) == CURLE_OK;
    if (ok && t.method != "POST") {
      ok = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, t.method.c_str()) == CURLE_OK;
    }
  } else if (ok && t.method != "GET") {
    ok = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, t.method.c_str()) == CURLE_OK;
  }
  if (ok && !ca_file.empty()) {
    ok = curl_easy_setopt(h, CURLOPT_CAINFO, ca_file.c_str()) == CURLE_OK &&
         curl_easy_setopt(h, CURLOPT_CAPATH, nullptr) == CURLE_OK;
  }
  if (ok && !t.progress_label.empty()) {
    ok = curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L) == CURLE_OK &&
         curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &ProgressCallback) == CURLE_OK &&
         curl_easy_setopt(h, CURLOPT_XFERINFODATA, &progress) == CURLE_OK;
  }
  if (!ok) return MakeError(ErrorCode::kInternal, "cannot set up the HTTP request");
  CURLcode rc = curl_easy_perform(h);
  if (progress.drawn) std::fputc('\n', stderr);
  if (t.sink.exceeded) {
    return MakeError(ErrorCode::kLimitExceeded, t.method + " " + t.url +
                                                    ": the answer is larger than " +
                                                    std::to_string(t.sink.max) + " bytes");
  }
  if (rc != CURLE_OK) {
    std::string why = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc);
    if (rc == CURLE_PEER_FAILED_VERIFICATION) {
      why += ca_file.empty() ? " (for a server with a private CA, pass --cacert FILE)"
                             : " (CA certificates from " + ca_file + ")";
    }
    return MakeError(ErrorCode::kIo, "cannot reach " + server + ": " + why);
  }
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

std::string AbsoluteUrl(const std::string& server, const std::string& url_or_path) {
  return HasHttpScheme(url_or_path) ? url_or_path : server + url_or_path;
}

}  // namespace

Error ServerError(const std::string& method, const std::string& path, const HttpResponse& r) {
  std::string code;
  std::string message;
  if (auto j = ParseJson(r.body, 64 * 1024); j && j->is_object()) {
    if (j->contains("error") && (*j)["error"].is_string()) code = (*j)["error"].get<std::string>();
    if (j->contains("message") && (*j)["message"].is_string()) {
      message = (*j)["message"].get<std::string>();
    }
  }
  std::string text = method + " " + path + ": HTTP " + std::to_string(r.status);
  if (!code.empty()) text += " " + code;
  if (!message.empty()) text += ": " + message;
  if (code.empty() && message.empty() && !r.body.empty() && r.body.size() <= 200 &&
      r.body.find('\n') == std::string::npos) {
    text += ": " + r.body;
  }
  ErrorCode ec = ErrorCode::kIo;
  switch (r.status) {
    case 401:
    case 403:
      ec = ErrorCode::kWrongKey;
      break;
    case 404:
      ec = ErrorCode::kNotFound;
      break;
    case 409:
      ec = ErrorCode::kAlreadyExists;
      break;
    case 422:
      ec = ErrorCode::kBadSignature;
      break;
    default:
      break;
  }
  return Error(ec, text);
}

Result<HttpClient> HttpClient::Create(std::string server, std::string token,
                                      std::string ca_file) {
  while (!server.empty() && server.back() == '/') server.pop_back();
  if (server.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "--server URL (or $AIRLOCK_SERVER) is required");
  }
  if (!HasHttpScheme(server)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "--server must be an http:// or https:// URL, got " + server);
  }
  for (char c : token) {
    if (c == '\r' || c == '\n' || static_cast<unsigned char>(c) < 0x20) {
      return MakeError(ErrorCode::kInvalidArgument, "the API token holds a control character");
    }
  }
  std::string ca_source = "--cacert";
  for (const char* variable : {"CURL_CA_BUNDLE", "SSL_CERT_FILE"}) {
    const char* value = std::getenv(variable);
    if (!ca_file.empty() || value == nullptr || *value == '\0') continue;
    ca_file = value;
    ca_source = std::string("$") + variable;
  }
  if (!ca_file.empty()) {
    // Read now, so that a typo is named as such and not as a certificate error later.
    auto pem = ReadTextFile(ca_file, kMaxCaFile);
    if (!pem) return tl::unexpected(pem.error().WithContext("CA file from " + ca_source));
  }
  return HttpClient(std::move(server), std::move(token), std::move(ca_file));
}

Result<HttpResponse> HttpClient::Request(const std::string& method, const std::string& path,
                                         const std::optional<std::string>& body,
                                         const std::string& content_type, uint64_t max_body) {
  Transfer t;
  t.method = method;
  t.url = AbsoluteUrl(server_, path);
  t.body = body;
  t.content_type = content_type;
  HttpResponse response;
  t.sink.memory = &response.body;
  t.sink.max = max_body;
  AIRLOCK_ASSIGN_OR_RETURN(response.status, Perform(t, server_, token_, ca_file_));
  return response;
}

Result<nlohmann::json> HttpClient::Json(const std::string& method, const std::string& path,
                                        const std::optional<nlohmann::json>& body) {
  std::optional<std::string> text;
  if (body) text = body->dump();
  AIRLOCK_ASSIGN_OR_RETURN(HttpResponse r, Request(method, path, text));
  if (r.status < 200 || r.status > 299) return tl::unexpected(ServerError(method, path, r));
  auto j = ParseJson(r.body, kMaxJsonBody);
  if (!j) {
    return tl::unexpected(
        Error(ErrorCode::kMalformed,
              method + " " + path + ": the server's answer is not JSON: " + j.error().message()));
  }
  return std::move(*j);
}

Result<HttpResponse> HttpClient::Upload(const std::string& path, const std::filesystem::path& file,
                                        const std::map<std::string, std::string>& headers,
                                        const std::string& label) {
  uint64_t size = 0;
  AIRLOCK_ASSIGN_OR_RETURN(UniqueFd fd, OpenForRead(file, &size));
  Transfer t;
  t.method = "POST";
  t.url = AbsoluteUrl(server_, path);
  t.content_type = "application/octet-stream";
  t.headers = headers;
  t.upload_fd = fd.get();
  t.upload_size = size;
  HttpResponse response;
  t.sink.memory = &response.body;
  t.sink.max = kMaxJsonBody;
  if (!label.empty() && isatty(STDERR_FILENO)) t.progress_label = label;
  AIRLOCK_ASSIGN_OR_RETURN(response.status, Perform(t, server_, token_, ca_file_));
  return response;
}

}  // namespace airlock::cli
