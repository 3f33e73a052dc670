// Test support: a service or tool a test needs (SoftHSM2, faketime, ...) is missing.
//
// Under CI=true that fails the test: CI installs every service the suite uses, so a skip there would
// hide a check that never ran. Elsewhere (a developer machine without the package) the test is skipped
// with the reason. PostgreSQL tests need no such macro: storage/pg_test_env.h always fails loudly.
#ifndef AIRLOCK_COMMON_REQUIRE_SERVICE_H_
#define AIRLOCK_COMMON_REQUIRE_SERVICE_H_

#include <gtest/gtest.h>

#include <cstdlib>
#include <string_view>

namespace airlock::testing {

inline bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) == "true";
}

}  // namespace airlock::testing

// Use in a TEST body or SetUp(): returns from it when `available` is false.
#define AIRLOCK_REQUIRE_SERVICE(available, what)                                   \
  do {                                                                             \
    if (!(available)) {                                                            \
      if (::airlock::testing::InCi()) {                                            \
        FAIL() << (what) << " is required under CI=true but missing";              \
      } else {                                                                     \
        GTEST_SKIP() << (what) << " missing (this test fails under CI=true)";      \
      }                                                                            \
    }                                                                              \
  } while (0)

#endif  // AIRLOCK_COMMON_REQUIRE_SERVICE_H_
