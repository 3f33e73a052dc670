// pg-test-server: a PostgreSQL of its own for shell tests (tests/lib.sh start_postgres), the same
// server as the C++ tests' (storage/pg_test_server.h). Prints the libpq URL of a fresh, empty
// database on one line, then waits for SIGTERM, SIGINT or SIGHUP (or for its parent to die) and
// stops the server, removing its directory.
//   exit 0: stopped; 77: PostgreSQL is not installed; 1: it did not start or stop.
#include <signal.h>
#include <sys/prctl.h>

#include <iostream>

#include "storage/pg_test_server.h"

namespace {

volatile sig_atomic_t g_stop_requested = 0;
void OnStop(int) { g_stop_requested = 1; }

}  // namespace

int main() {
  sigset_t stop;
  sigemptyset(&stop);
  // While the server starts, a stop signal is noted by a handler (not blocked: a blocked mask would
  // be inherited by initdb and pg_ctl); then held and waited for.
  struct sigaction noted {};
  noted.sa_handler = OnStop;
  sigemptyset(&noted.sa_mask);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) {
    sigaddset(&stop, s);
    ::sigaction(s, &noted, nullptr);
  }
  // A test killed outright (a CTest timeout) must not leave PostgreSQL running.
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  airlock::storage::testing::TestPostgresServer server;
  auto url = server.CreateDatabase();
  if (!url) {
    std::cerr << "pg-test-server: error: " << url.error().ToString() << "\n";
    return url.error().code() == airlock::ErrorCode::kNotFound ? 77 : 1;
  }
  std::cout << *url << "\n" << std::flush;
  if (::pthread_sigmask(SIG_BLOCK, &stop, nullptr) != 0) return 1;
  int signal = 0;
  if (g_stop_requested == 0) ::sigwait(&stop, &signal);
  if (auto stopped = server.Stop(); !stopped) {
    std::cerr << "pg-test-server: error: " << stopped.error().ToString() << "\n";
    return 1;
  }
  return 0;
}
