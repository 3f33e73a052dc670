// Test support: one real PostgreSQL server per test binary, started on first use by a GoogleTest global
// environment (storage/pg_test_server.h: initdb in a temporary directory, 127.0.0.1, a free port)
// and stopped at the end.
#ifndef AIRLOCK_STORAGE_PG_TEST_ENV_H_
#define AIRLOCK_STORAGE_PG_TEST_ENV_H_

#include <string>

#include "common/result.h"

namespace airlock::storage::testing {

// Creates a fresh, empty database on the test server (starting the server if needed) and returns its
// libpq URL. Fails (kNotFound) when PostgreSQL's binaries are not installed, so PostgreSQL tests fail
// loudly instead of being skipped.
Result<std::string> CreateTestDatabase();

}  // namespace airlock::storage::testing

#endif  // AIRLOCK_STORAGE_PG_TEST_ENV_H_
