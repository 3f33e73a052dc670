// Test helper (not part of the library): a static HTTP server on 127.0.0.1, port 0, run with
// Node.js (python3 is not guaranteed on a fresh Debian 12). Serves files under `root`, logs each
// request path to `root`/../requests.log (with " range=bytes=N-" when a Range was asked for), and
// has three attack endpoints: paths starting with /endless or ending in ".endless" (an endless
// body), /slow (one byte, then silence) and paths starting with /redirect (302 to /blob). Any
// method is answered alike (a POST to /v1/check gets the file `root`/v1/check). Files honour
// "Range: bytes=N-" (206, or 416 past the end) unless the URL has "?norange" (then 200, the whole
// file); "?truncate" announces the whole length, sends the first half and drops the connection.
// Given a certificate and key it serves HTTPS (the device's TLS checks, client/http_test.cc).
#ifndef AIRLOCK_CLIENT_TEST_HTTP_SERVER_H_
#define AIRLOCK_CLIENT_TEST_HTTP_SERVER_H_

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace airlock::client::testing {

inline constexpr const char* kNodeServerScript = R"JS(
const http = require('http'), fs = require('fs'), path = require('path');
const root = process.argv[1], log = process.argv[2];
const handler = (req, res) => {
  fs.appendFileSync(log, req.url + (req.headers['range'] ? ' range=' + req.headers['range'] : '') + '\n');
  if (req.url.startsWith('/redirect')) { res.writeHead(302, {'Location': '/blob'}); res.end(); return; }
  if (req.url.startsWith('/endless') || req.url.endsWith('.endless')) {
    res.writeHead(200);
    const chunk = Buffer.alloc(65536, 120);
    const pump = () => { while (res.write(chunk)) {} };
    res.on('drain', pump); pump();
    req.on('close', () => res.destroy());
    return;
  }
  if (req.url === '/slow') { res.writeHead(200); res.write('x'); return; }
  let p;
  try { p = path.join(root, decodeURIComponent(req.url.split('?')[0])); } catch (e) { p = ''; }
  if (!p.startsWith(root)) { res.writeHead(403); res.end(); return; }
  fs.readFile(p, (err, data) => {
    if (err) { res.writeHead(404); res.end('not found'); return; }
    if (req.url.includes('?truncate')) {
      res.writeHead(200, {'Content-Length': data.length});
      res.write(data.subarray(0, Math.floor(data.length / 2)), () => res.destroy());
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers['range'] || '');
    if (m && !req.url.includes('?norange')) {
      const start = Number(m[1]);
      if (start >= data.length) {
        res.writeHead(416, {'Content-Range': 'bytes */' + data.length}); res.end(); return;
      }
      res.writeHead(206, {'Content-Length': data.length - start,
                          'Content-Range': 'bytes ' + start + '-' + (data.length - 1) + '/' +
                                           data.length});
      res.end(data.subarray(start));
      return;
    }
    res.writeHead(200, {'Content-Length': data.length}); res.end(data);
  });
};
const server = process.argv[3]
    ? require('https').createServer({cert: fs.readFileSync(process.argv[3]),
                                     key: fs.readFileSync(process.argv[4])}, handler)
    : http.createServer(handler);
server.listen(0, '127.0.0.1', () => { console.log(server.address().port); });
)JS";

class NodeHttpServer {
 public:
  // Starts the server; ok() is false if node is missing or did not report a port. With a
  // certificate and key (PEM files) it serves https:// instead.
  explicit NodeHttpServer(const std::filesystem::path& root,
                          const std::filesystem::path& tls_cert = {},
                          const std::filesystem::path& tls_key = {})
      : tls_(!tls_cert.empty()) {
    std::filesystem::create_directories(root);
    root_ = std::filesystem::canonical(root);
    log_ = root_.parent_path() / (root_.filename().string() + ".requests.log");
    int out[2];
    if (pipe(out) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], 1);
      close(out[0]);
      close(out[1]);
      if (tls_cert.empty()) {
        execlp("node", "node", "-e", kNodeServerScript, root_.c_str(), log_.c_str(),
               static_cast<char*>(nullptr));
      } else {
        execlp("node", "node", "-e", kNodeServerScript, root_.c_str(), log_.c_str(),
               tls_cert.c_str(), tls_key.c_str(), static_cast<char*>(nullptr));
      }
      _exit(127);
    }
    close(out[1]);
    FILE* f = fdopen(out[0], "r");
    if (f == nullptr) return;
    if (fscanf(f, "%d", &port_) != 1) port_ = 0;
    fclose(f);
  }
  ~NodeHttpServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  NodeHttpServer(const NodeHttpServer&) = delete;
  NodeHttpServer& operator=(const NodeHttpServer&) = delete;

  bool ok() const { return port_ > 0; }
  std::string Url(const std::string& path = "/", const std::string& host = "127.0.0.1") const {
    return (tls_ ? "https://" : "http://") + host + ":" + std::to_string(port_) + path;
  }
  // Request paths so far, in order.
  std::vector<std::string> Requests() const {
    std::vector<std::string> out;
    std::ifstream in(log_);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  void ClearRequests() const { std::ofstream(log_, std::ios::trunc); }
  const std::filesystem::path& root() const { return root_; }

 private:
  bool tls_ = false;
  std::filesystem::path root_;
  std::filesystem::path log_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace airlock::client::testing

#endif  // AIRLOCK_CLIENT_TEST_HTTP_SERVER_H_
