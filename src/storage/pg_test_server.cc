#include "storage/pg_test_server.h"

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "storage/connection.h"

namespace airlock::storage::testing {
namespace {

namespace fs = std::filesystem;

// The server refuses to run as root; the test machine runs tests as root, so we drop to this user,
// or to kFallbackUser (created on demand) where there is no "nobody".
constexpr const char* kUnprivilegedUser = "nobody";
constexpr const char* kFallbackUser = "airlock-pgtest";

std::string FindPostgresBinDir() {
  std::error_code ec;
  std::string best;
  int best_major = -1;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    fs::path bin = entry.path() / "bin";
    if (!fs::exists(bin / "initdb") || !fs::exists(bin / "pg_ctl")) continue;
    int major = std::atoi(entry.path().filename().c_str());
    if (major > best_major) {
      best_major = major;
      best = bin.string();
    }
  }
  return best;
}

int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TestPostgresServer::~TestPostgresServer() { (void)Stop(); }

Result<std::string> TestPostgresServer::CreateDatabase() {
  std::lock_guard lock(mu_);
  if (!started_) AIRLOCK_TRY(Start());
  AIRLOCK_ASSIGN_OR_RETURN(auto admin, OpenPostgresConnection(base_url_ + "postgres"));
  // DDL takes no parameters; the name is built from our own counter, never from input.
  std::string name = "airlock_test_" + std::to_string(++databases_);
  AIRLOCK_TRY(admin->ExecScript("CREATE DATABASE " + name));
  return base_url_ + name;
}

Result<void> TestPostgresServer::Start() {
  bin_ = FindPostgresBinDir();
  if (bin_.empty()) {
    return MakeError(ErrorCode::kNotFound,
                     "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); "
                     "install Debian's postgresql package to run the PostgreSQL tests");
  }
  // /tmp, not TMPDIR: the unprivileged user must be able to reach the directory.
  char tmpl[] = "/tmp/airlock-pg-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return MakeError(ErrorCode::kIo, "mkdtemp failed");
  dir_ = tmpl;
  if (geteuid() == 0) {
    const char* user = kUnprivilegedUser;
    const passwd* pw = getpwnam(user);
    if (pw == nullptr) {
      user = kFallbackUser;
      pw = getpwnam(user);
    }
    if (pw == nullptr) {
      std::string add = std::string("useradd --system --no-create-home ") + user;
      if (std::system(add.c_str()) != 0 || (pw = getpwnam(user)) == nullptr) {
        return MakeError(ErrorCode::kIo, "cannot create an unprivileged user to run PostgreSQL");
      }
    }
    if (chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      return MakeError(ErrorCode::kIo, "chown " + dir_.string());
    }
    run_as_ = std::string("runuser -u ") + user + " -- ";
  }
  fs::path data = dir_ / "data";
  std::string initdb = run_as_ + bin_ + "/initdb -D " + data.string() +
                       " -U airlock --auth=trust -E UTF8 --locale=C --no-sync > " +
                       (dir_ / "initdb.log").string() + " 2>&1";
  if (std::system(initdb.c_str()) != 0) {
    return MakeError(ErrorCode::kIo, "initdb failed:\n" + ReadFile(dir_ / "initdb.log"));
  }
  // The free port can be taken between our probe and the server's bind: retry with another.
  for (int attempt = 0; attempt < 5; ++attempt) {
    int port = PickFreePort();
    if (port <= 0) continue;
    std::string start = run_as_ + bin_ + "/pg_ctl -D " + data.string() + " -l " +
                        (dir_ / "server.log").string() + " -o \"-k " + dir_.string() +
                        " -c listen_addresses=127.0.0.1 -p " + std::to_string(port) +
                        " -c fsync=off\" -w start > /dev/null 2>&1";
    if (std::system(start.c_str()) == 0) {
      started_ = true;
      base_url_ = "postgresql://airlock@127.0.0.1:" + std::to_string(port) + "/";
      return {};
    }
  }
  return MakeError(ErrorCode::kIo, "pg_ctl start failed:\n" + ReadFile(dir_ / "server.log"));
}

Result<void> TestPostgresServer::Stop() {
  std::lock_guard lock(mu_);
  Result<void> result;
  if (started_) {
    std::string stop = run_as_ + bin_ + "/pg_ctl -D " + (dir_ / "data").string() +
                       " -m fast -w stop > /dev/null 2>&1";
    if (std::system(stop.c_str()) != 0) result = MakeError(ErrorCode::kIo, "pg_ctl stop failed");
    started_ = false;
  }
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    dir_.clear();
  }
  return result;
}

}  // namespace airlock::storage::testing
