// CapgoRateLimiter (server/capgo_api.h): per-key token buckets in a sharded table that forgets
// silent keys, and the 429 + Retry-After reply.
#include <chrono>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/capgo_api.h"

namespace airlock::server {
namespace {

nlohmann::json Body(const CapgoReply& reply) { return nlohmann::json::parse(reply.body); }

TEST(CapgoRateLimiter, ShardedTableKeepsPerKeyBucketsAndForgetsSilentKeys) {
  auto now = std::chrono::steady_clock::time_point{};
  // 16 shards of two generations of 32 keys.
  CapgoRateLimiter limiter({/*burst=*/1, /*refill_per_second=*/1, /*max_keys=*/1024},
                           [&] { return now; });
  int admitted = 0;
  for (int i = 0; i < 2000; ++i) {
    if (!limiter.Check("dev-" + std::to_string(i))) ++admitted;
  }
  EXPECT_EQ(admitted, 2000);               // a flood of new ids is never refused for want of room
  EXPECT_TRUE(limiter.Check("dev-1999"));  // recent keys keep their (empty) bucket
  EXPECT_TRUE(limiter.Check("dev-1998"));
  // dev-0 was silent while ~125 other keys reached its shard (more than two generations): it was
  // forgotten and starts again with a full bucket.
  EXPECT_FALSE(limiter.Check("dev-0"));
  EXPECT_TRUE(limiter.Check("dev-0"));
  now += std::chrono::seconds(1);
  EXPECT_FALSE(limiter.Check("dev-1999"));  // refilled
}

TEST(CapgoRateLimiter, Returns429WithRetryAfterWhenBucketEmpty) {
  auto now = std::chrono::steady_clock::time_point{};
  CapgoRateLimiter limiter({/*burst=*/2, /*refill_per_second=*/0.5, /*max_keys=*/10},
                           [&] { return now; });
  EXPECT_FALSE(limiter.Check("dev-a"));
  EXPECT_FALSE(limiter.Check("dev-a"));
  auto limited = limiter.Check("dev-a");
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->status, 429);
  ASSERT_EQ(limited->headers.size(), 1u);
  EXPECT_EQ(limited->headers[0].first, "Retry-After");
  EXPECT_EQ(limited->headers[0].second, "2");
  EXPECT_EQ(Body(*limited)["error"], "too_many_requests");
  EXPECT_FALSE(limiter.Check("dev-b"));  // other devices are unaffected
  now += std::chrono::seconds(2);
  EXPECT_FALSE(limiter.Check("dev-a"));
  EXPECT_TRUE(limiter.Check("dev-a"));
}

TEST(CapgoRateLimiter, ForgetsOnlyKeysSilentForAWholeGeneration) {
  auto now = std::chrono::steady_clock::time_point{};
  CapgoRateLimiter limiter({/*burst=*/1, /*refill_per_second=*/1, /*max_keys=*/4},
                           [&] { return now; });  // one shard, generations of 2 keys
  EXPECT_FALSE(limiter.Check("a"));
  EXPECT_TRUE(limiter.Check("a"));
  EXPECT_FALSE(limiter.Check("b"));  // current {a, b}
  EXPECT_FALSE(limiter.Check("c"));  // rotation: previous {a, b}, current {c}
  EXPECT_TRUE(limiter.Check("a"));  // found in the previous generation, still empty: current {c, a}
  EXPECT_FALSE(limiter.Check("d"));  // rotation: previous {c, a}, current {d}; b is forgotten
  EXPECT_FALSE(limiter.Check("b"));  // silent for a whole generation: a full bucket again
  EXPECT_TRUE(limiter.Check("a"));   // a kept sending: still limited
  EXPECT_TRUE(limiter.Check("b"));
}

}  // namespace
}  // namespace airlock::server
