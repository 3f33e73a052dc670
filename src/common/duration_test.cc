#include "common/duration.h"

#include <gtest/gtest.h>

namespace airlock {
namespace {

TEST(ParseDuration, AcceptsEachUnit) {
  EXPECT_EQ(*ParseDuration("3600s"), 3600);
  EXPECT_EQ(*ParseDuration("90m"), 5400);
  EXPECT_EQ(*ParseDuration("12h"), 12 * 3600);
  EXPECT_EQ(*ParseDuration("30d"), 30 * kSecondsPerDay);
  EXPECT_EQ(*ParseDuration("2w"), 14 * kSecondsPerDay);
  EXPECT_EQ(*ParseDuration("1y"), 365 * kSecondsPerDay);
}

TEST(ParseDuration, RejectsBadInput) {
  for (const char* bad : {"", "d", "0d", "-1d", "1.5d", "30", "30x", "1d2h", " 1d", "101y",
                          "99999999999999999999d"}) {
    auto r = ParseDuration(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(r.error().message().find("bad duration '"), std::string::npos) << bad;
  }
}

TEST(ParseDuration, BareSecondsAndTheMaximumFollowTheRule) {
  const DurationRule agent{30 * kSecondsPerDay, /*bare_seconds=*/true};
  EXPECT_EQ(*ParseDuration("45", agent), 45);
  EXPECT_EQ(*ParseDuration("30d", agent), 30 * kSecondsPerDay);
  EXPECT_EQ(*ParseDuration("2592000", agent), 30 * kSecondsPerDay);
  for (const char* bad : {"31d", "5w", "2592001", "0", "s", "1e3"}) {
    EXPECT_FALSE(ParseDuration(bad, agent)) << bad;
  }
}

}  // namespace
}  // namespace airlock
