// Test support: a real PostgreSQL server of one's own, for tests (initdb in a fresh directory under
// /tmp, listening on 127.0.0.1 on a free port, run as an unprivileged user when the test runs as
// root). The C++ tests reach it through storage/pg_test_env.h (one server per test binary); shell
// tests through the `pg-test-server` command (pg_test_server_main.cc, tests/lib.sh start_postgres).
#ifndef AIRLOCK_STORAGE_PG_TEST_SERVER_H_
#define AIRLOCK_STORAGE_PG_TEST_SERVER_H_

#include <filesystem>
#include <mutex>
#include <string>

#include "common/result.h"

namespace airlock::storage::testing {

class TestPostgresServer {
 public:
  TestPostgresServer() = default;
  TestPostgresServer(const TestPostgresServer&) = delete;
  TestPostgresServer& operator=(const TestPostgresServer&) = delete;
  // Stops the server (if Stop was not called) and removes its directory.
  ~TestPostgresServer();

  // Creates a fresh, empty database (starting the server on first use) and returns its libpq URL.
  // Fails with kNotFound when PostgreSQL's binaries are not installed, kIo when initdb or pg_ctl
  // fails (with their log).
  [[nodiscard]] Result<std::string> CreateDatabase();
  // Stops the server (pg_ctl stop -m fast) and removes its directory; nothing to do if not started.
  [[nodiscard]] Result<void> Stop();

 private:
  Result<void> Start();

  std::mutex mu_;
  std::string bin_;
  std::filesystem::path dir_;
  std::string run_as_;
  std::string base_url_;
  bool started_ = false;
  int databases_ = 0;
};

}  // namespace airlock::storage::testing

#endif  // AIRLOCK_STORAGE_PG_TEST_SERVER_H_
