#include "common/fd.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace airlock {
namespace {

bool IsOpen(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST(UniqueFd, ClosesItsDescriptorWhenDestroyed) {
  int raw = -1;
  {
    UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    raw = fd.get();
    EXPECT_TRUE(IsOpen(raw));
  }
  EXPECT_FALSE(IsOpen(raw));
}

TEST(UniqueFd, MoveHandsOverOwnershipAndAssignmentClosesTheOldOne) {
  UniqueFd a(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  UniqueFd b(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(a.valid());
  ASSERT_TRUE(b.valid());
  const int a_raw = a.get();
  const int b_raw = b.get();
  b = std::move(a);
  EXPECT_FALSE(a.valid());
  EXPECT_EQ(b.get(), a_raw);
  EXPECT_FALSE(IsOpen(b_raw));
  EXPECT_TRUE(IsOpen(a_raw));
}

TEST(UniqueFd, CloseReportsCloseResultAndReleasesTheDescriptor) {
  UniqueFd fd(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  const int raw = fd.get();
  EXPECT_EQ(fd.Close(), 0);
  EXPECT_FALSE(fd.valid());
  EXPECT_FALSE(IsOpen(raw));
  // Nothing left to close: close(2)'s own answer, EBADF.
  errno = 0;
  EXPECT_EQ(fd.Close(), -1);
  EXPECT_EQ(errno, EBADF);
}

}  // namespace
}  // namespace airlock
