#include "storage/pg_test_env.h"

#include <gtest/gtest.h>

#include "storage/pg_test_server.h"

namespace airlock::storage::testing {
namespace {

// The test binary's one PostgreSQL server (storage/pg_test_server.h), stopped after the last test.
class PostgresEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    if (auto stopped = server_.Stop(); !stopped) ADD_FAILURE() << stopped.error().ToString();
  }
  Result<std::string> CreateDatabase() { return server_.CreateDatabase(); }

 private:
  TestPostgresServer server_;
};

PostgresEnvironment* const g_server =
    static_cast<PostgresEnvironment*>(::testing::AddGlobalTestEnvironment(new PostgresEnvironment));

}  // namespace

Result<std::string> CreateTestDatabase() { return g_server->CreateDatabase(); }

}  // namespace airlock::storage::testing
