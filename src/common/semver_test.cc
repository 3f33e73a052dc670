#include "common/semver.h"

#include <gtest/gtest.h>

namespace airlock {
namespace {

TEST(Semver, ParsesValidVersions) {
  for (const char* v : {"0.0.0", "1.2.3", "10.20.30", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-0.3.7",
                        "1.0.0-x.7.z.92", "1.0.0+20130313144700", "1.0.0-beta+exp.sha.5114f85",
                        "18446744073709551615.0.0"}) {
    auto r = Semver::Parse(v);
    ASSERT_TRUE(r) << v << ": " << r.error().message();
    EXPECT_EQ(r->ToString(), v);
  }
}

TEST(Semver, RejectsInvalidVersions) {
  for (const char* v : {"", "1", "1.2", "1.2.3.4", "v1.2.3", "01.2.3", "1.02.3", "1.2.03", "1.2.3-",
                        "1.2.3-01", "1.2.3-a..b", "1.2.3+", "1.2.3+a_b", " 1.2.3", "1.2.3 ", "a.b.c",
                        "18446744073709551616.0.0", "-1.2.3"}) {
    auto r = Semver::Parse(v);
    ASSERT_FALSE(r) << v;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << v;
  }
  EXPECT_FALSE(Semver::Parse("1.2.3-" + std::string(300, 'a')));
}

TEST(Semver, OrdersBySemverPrecedence) {
  // semver.org section 11 example chain.
  const char* chain[] = {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
                         "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0",
                         "2.0.0"};
  for (size_t i = 0; i + 1 < std::size(chain); ++i) {
    auto a = *Semver::Parse(chain[i]);
    auto b = *Semver::Parse(chain[i + 1]);
    EXPECT_EQ(Compare(a, b), std::strong_ordering::less) << chain[i] << " < " << chain[i + 1];
    EXPECT_EQ(Compare(b, a), std::strong_ordering::greater);
  }
  EXPECT_EQ(Compare(*Semver::Parse("1.0.0+a"), *Semver::Parse("1.0.0+b")), std::strong_ordering::equal);
}

}  // namespace
}  // namespace airlock
