// Unit tests for harness/limits.h. The RaiseFileLimit tests change this process's
// RLIMIT_NOFILE soft limit (within the hard limit, which an unprivileged process can always
// do) and restore it.
#include "harness/limits.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

namespace lockstorm {
namespace {

TEST(FileDescriptorsNeeded, CountsConnectionsSamplersProxiesAndSlack) {
  EXPECT_EQ(FileDescriptorsNeeded(1000, 1, false, false), 1000 + 1 + kFileLimitSlack);
  EXPECT_EQ(FileDescriptorsNeeded(1000, 1, true, false), 2000 + 1 + kFileLimitSlack);
  EXPECT_EQ(FileDescriptorsNeeded(16, 5, true, true), 16 * 5 * 4 + 5 + kFileLimitSlack);
  EXPECT_EQ(FileDescriptorsNeeded(0, 0, true, true), 1 + kFileLimitSlack);
}

TEST(FileLimitTarget, RaisesTowardWantedWithinHardNeverLowers) {
  EXPECT_EQ(FileLimitTarget(2000, {1024, 524288}), 2000);
  EXPECT_EQ(FileLimitTarget(2000, {1024, 1500}), 1500);    // capped by hard
  EXPECT_EQ(FileLimitTarget(2000, {4096, 524288}), 4096);  // never lowered
  EXPECT_EQ(FileLimitTarget(2000, {1024, -1}), 2000);      // unlimited hard
  EXPECT_EQ(FileLimitTarget(2000, {-1, -1}), -1);          // unlimited soft stays
  EXPECT_EQ(FileLimitTarget(2000, {1024, 1024}), 1024);
}

class RaiseFileLimitTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved_), 0); }
  void TearDown() override { setrlimit(RLIMIT_NOFILE, &saved_); }
  // Lowers the soft limit to `soft` (keeps hard). False if the hard limit is below it.
  bool LowerSoft(rlim_t soft) {
    if (saved_.rlim_max != RLIM_INFINITY && saved_.rlim_max < soft) return false;
    rlimit rl = saved_;
    rl.rlim_cur = soft;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0;
  }
  rlimit saved_{};
};

TEST_F(RaiseFileLimitTest, RaisesSoftLimitToWanted) {
  if (!LowerSoft(64) || (saved_.rlim_max != RLIM_INFINITY && saved_.rlim_max < 128))
    GTEST_SKIP() << "hard limit too low";
  FileLimit now;
  Status s = RaiseFileLimit(128, &now);
  EXPECT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(now.soft, 128);
  EXPECT_EQ(CurrentFileLimit().soft, 128);
  EXPECT_EQ(now.hard, CurrentFileLimit().hard);  // the hard limit is untouched
}

TEST_F(RaiseFileLimitTest, NeverLowers) {
  if (!LowerSoft(128)) GTEST_SKIP() << "hard limit too low";
  EXPECT_TRUE(RaiseFileLimit(100).ok());
  EXPECT_EQ(CurrentFileLimit().soft, 128);
}

TEST_F(RaiseFileLimitTest, BeyondHardRaisesToHardAndSaysHow) {
  if (saved_.rlim_max == RLIM_INFINITY) GTEST_SKIP() << "no hard limit";
  if (!LowerSoft(64)) GTEST_SKIP() << "hard limit too low";
  const int64_t hard = static_cast<int64_t>(saved_.rlim_max);
  FileLimit now;
  Status s = RaiseFileLimit(hard + 1, &now);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(now.soft, hard);
  EXPECT_NE(s.message().find("hard limit is " + std::to_string(hard)), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("ulimit -Hn"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace lockstorm
