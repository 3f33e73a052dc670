// Test harness (not part of any library): runs the real airlockd and airlock binaries
// ($AIRLOCK_BIN_DIR) as child processes on 127.0.0.1, and a small libcurl HTTP helper. Shared by
// the end-to-end tests in this directory.
#ifndef AIRLOCK_TESTS_E2E_AIRLOCKD_PROCESS_H_
#define AIRLOCK_TESTS_E2E_AIRLOCKD_PROCESS_H_

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/file.h"

namespace airlock::e2e {

namespace fs = std::filesystem;

inline fs::path BinDir() {
  const char* dir = std::getenv("AIRLOCK_BIN_DIR");
  return dir != nullptr ? fs::path(dir) : fs::path(".");
}

struct Output {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `argv` with `env` added to the environment; stdout and stderr captured through files.
inline Output RunCommand(const std::vector<std::string>& argv, const fs::path& work,
                         const std::map<std::string, std::string>& env = {}) {
  const fs::path out_file = work / "cmd.out";
  const fs::path err_file = work / "cmd.err";
  pid_t pid = fork();
  if (pid == 0) {
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    int out = open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int in = open("/dev/null", O_RDONLY);
    dup2(out, 1);
    dup2(err, 2);
    dup2(in, 0);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  Output o;
  int status = 0;
  waitpid(pid, &status, 0);
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  o.out = ReadTextFile(out_file, 16 << 20).value_or("");
  o.err = ReadTextFile(err_file, 16 << 20).value_or("");
  return o;
}

inline int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

struct HttpResult {
  long status = 0;
  std::string body;
};

inline size_t Append(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

inline HttpResult Http(const std::string& method, const std::string& url,
                       const std::string& body = "", const std::string& token = "",
                       const std::vector<std::string>& extra = {}) {
  HttpResult r;
  std::unique_ptr<CURL, void (*)(CURL*)> h(curl_easy_init(), curl_easy_cleanup);
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  for (const std::string& line : extra) headers = curl_slist_append(headers, line.c_str());
  if (!token.empty())
    headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  curl_easy_setopt(h.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(h.get(), CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h.get(), CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(h.get(), CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(h.get(), CURLOPT_TIMEOUT, 60L);
  if (method == "POST") {
    curl_easy_setopt(h.get(), CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  if (curl_easy_perform(h.get()) == CURLE_OK) {
    curl_easy_getinfo(h.get(), CURLINFO_RESPONSE_CODE, &r.status);
  }
  curl_slist_free_all(headers);
  return r;
}

// A running airlockd, stopped (SIGTERM, then waited for) on destruction.
class Airlockd {
 public:
  ~Airlockd() { Stop(); }

  // Starts on a free port; retries with another port if that one was taken in between. Readiness:
  // /healthz answers 200 (bounded number of polls).
  ::testing::AssertionResult Start(const fs::path& data, const std::string& database,
                                   const fs::path& log) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      const int port = PickFreePort();
      if (port <= 0) return ::testing::AssertionFailure() << "no free port";
      url_ = "http://127.0.0.1:" + std::to_string(port);
      std::vector<std::string> argv = {(BinDir() / "airlockd").string(),
                                       "--data",
                                       data.string(),
                                       "--listen",
                                       "127.0.0.1:" + std::to_string(port),
                                       "--public-url",
                                       url_,
                                       "--threads",
                                       "2"};
      if (!database.empty()) {
        argv.push_back("--database");
        argv.push_back(database);
      }
      pid_ = fork();
      if (pid_ == 0) {
        int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        std::vector<char*> args;
        for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        execv(args[0], args.data());
        _exit(127);
      }
      for (int i = 0; i < 500; ++i) {
        if (Http("GET", url_ + "/healthz").status == 200) return ::testing::AssertionSuccess();
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          break;
        }
        timespec poll_interval{0, 20 * 1000 * 1000};
        nanosleep(&poll_interval, nullptr);
      }
      Stop();
      const std::string text = ReadTextFile(log, 1 << 20).value_or("");
      if (text.find("in use") == std::string::npos) {
        return ::testing::AssertionFailure() << "airlockd did not start:\n" << text;
      }
    }
    return ::testing::AssertionFailure() << "airlockd found no free port";
  }

  void Stop() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      waitpid(pid_, &status, 0);
      pid_ = -1;
    }
  }

  const std::string& url() const { return url_; }

 private:
  pid_t pid_ = -1;
  std::string url_;
};

}  // namespace airlock::e2e

#endif  // AIRLOCK_TESTS_E2E_AIRLOCKD_PROCESS_H_
