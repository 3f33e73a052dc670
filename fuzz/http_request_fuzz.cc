// Fuzzes airlockd's HTTP request handling end to end: the input is the raw bytes of one client
// connection ("@OWNER@" / "@ENROLL@" replaced by real tokens, server_fixture.h), sent over a
// loopback connection to the real HttpServer (Beast's parser, the header and body limits, upload
// streaming, percent-decoding, routing, the handlers) serving airlockd's routes. The client sends
// everything, shuts its write side and reads until the server closes: every input must end with the
// connection closed (no hang: SO_RCVTIMEO turns one into a crash) and the server still answering.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/http_server.h"
#include "server_fixture.h"

namespace {

using namespace airlock;

// The server lives as long as the process (destroying it at exit would race the fixture's own
// teardown); the static pointer keeps it reachable, so LeakSanitizer does not take it for a leak.
uint16_t Port() {
  static server::HttpServer* const http = [] {
    auto& fixture = fuzz::FuzzServer::Get();
    server::ServerOptions options;
    options.address = "127.0.0.1";
    options.port = 0;
    options.threads = 1;
    options.access_log = false;
    options.read_timeout = std::chrono::milliseconds(2000);
    options.upload_dir = fuzz::ScratchDir() / "data" / "tmp";
    std::filesystem::create_directories(options.upload_dir);
    options.log_sink = [](std::string_view) {};
    auto* started = new server::HttpServer(options, &fixture.router(), fixture.metrics());
    if (!started->Start()) std::abort();
    return started;
  }();
  return http->port();
}

// Sends `bytes` on a new connection and reads until the server closes it; false on a hang.
bool Exchange(const std::string& bytes, std::string* reply) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) std::abort();
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(Port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) std::abort();
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server may close early (a refused header): fine
    sent += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  bool closed = false;
  char buf[16384];
  while (true) {
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      closed = true;
      break;
    }
    if (n < 0) break;  // timeout
    if (reply->size() < (1 << 20)) reply->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return closed;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string request =
      fuzz::FuzzServer::Get().Expand(std::string(reinterpret_cast<const char*>(data), size));
  std::string reply;
  if (!Exchange(request, &reply)) __builtin_trap();  // the server kept a finished client waiting
  // Whatever the server answered starts with a status line.
  if (!reply.empty() && reply.rfind("HTTP/1.", 0) != 0) __builtin_trap();
  return 0;
}
