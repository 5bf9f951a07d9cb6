// Unit tests for harness/server_clock.h: the skew arithmetic the shim applies, and the
// controller's bookkeeping of the shared-memory file (no redis-server here; see
// server_clock_itest.cc for the shim inside a real server).
#include "harness/server_clock.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <limits>

namespace lockstorm {
namespace {

constexpr int64_t kSecNs = 1000000000;
constexpr int64_t kSecUs = 1000000;
// Real readings used as "now" in the pure tests (arbitrary but realistic magnitudes).
constexpr int64_t kRealtimeNs = 1700000000 * kSecNs;
constexpr int64_t kMonotonicNs = 12345 * kSecNs;

int64_t RealtimeUs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kSecUs + ts.tv_nsec / 1000;
}

ServerClockParams Identity() {
  ServerClockParams p;
  p.anchor_realtime_ns = kRealtimeNs;
  p.anchor_monotonic_ns = kMonotonicNs;
  return p;
}

TEST(ServerClockArithmeticTest, IdentityParamsGiveTheRealReading) {
  ServerClockParams p = Identity();
  for (int64_t d : {-5 * kSecNs, int64_t{0}, int64_t{1}, 3600 * kSecNs}) {
    EXPECT_EQ(SkewedRealtimeNs(p, kRealtimeNs + d), kRealtimeNs + d);
    EXPECT_EQ(SkewedMonotonicNs(p, kMonotonicNs + d), kMonotonicNs + d);
  }
}

TEST(ServerClockArithmeticTest, RateScalesTimeSinceTheAnchorAndOffsetShiftsIt) {
  ServerClockParams p = Identity();
  p.rate = 2.0;
  p.anchor_offset_ns = 7 * kSecNs;
  EXPECT_EQ(SkewedRealtimeNs(p, kRealtimeNs), kRealtimeNs + 7 * kSecNs);
  EXPECT_EQ(SkewedRealtimeNs(p, kRealtimeNs + kSecNs), kRealtimeNs + 7 * kSecNs + 2 * kSecNs);
  p.rate = 0.5;
  EXPECT_EQ(SkewedRealtimeNs(p, kRealtimeNs + 4 * kSecNs), kRealtimeNs + 7 * kSecNs + 2 * kSecNs);
  // The formula is the shim's (shared through the C header).
  EXPECT_EQ(SkewedRealtimeNs(p, kRealtimeNs + 123456789),
            lockstorm_clock_skew_ns(kRealtimeNs + 123456789, p.anchor_realtime_ns,
                                    p.anchor_offset_ns, p.rate));
}

TEST(ServerClockArithmeticTest, MonotonicUsesItsOwnAnchorAndOffset) {
  ServerClockParams p = Identity();
  p.rate = 3.0;
  p.anchor_offset_ns = 100 * kSecNs;
  p.anchor_monotonic_offset_ns = kSecNs;
  EXPECT_EQ(SkewedMonotonicNs(p, kMonotonicNs + kSecNs), kMonotonicNs + kSecNs + 3 * kSecNs);
  EXPECT_EQ(SkewedRealtimeNs(p, kRealtimeNs + kSecNs), kRealtimeNs + 100 * kSecNs + 3 * kSecNs);
}

TEST(ServerClockArithmeticTest, ReanchoringIsContinuousAndKeepsTheRate) {
  ServerClockParams p = Identity();
  p.rate = 1.5;
  p.anchor_offset_ns = -2 * kSecNs;
  p.anchor_monotonic_offset_ns = 4 * kSecNs;
  const int64_t later_ns = 10 * kSecNs;
  ServerClockParams q = Reanchored(p, kRealtimeNs + later_ns, kMonotonicNs + later_ns);
  EXPECT_EQ(q.anchor_realtime_ns, kRealtimeNs + later_ns);
  EXPECT_EQ(q.anchor_monotonic_ns, kMonotonicNs + later_ns);
  EXPECT_EQ(q.rate, 1.5);
  // Same reading at the new anchor and afterwards (same rate).
  for (int64_t d : {int64_t{0}, kSecNs, 60 * kSecNs}) {
    EXPECT_EQ(SkewedRealtimeNs(q, kRealtimeNs + later_ns + d),
              SkewedRealtimeNs(p, kRealtimeNs + later_ns + d))
        << d;
    EXPECT_EQ(SkewedMonotonicNs(q, kMonotonicNs + later_ns + d),
              SkewedMonotonicNs(p, kMonotonicNs + later_ns + d))
        << d;
  }
  // The offset accumulated by the rate: -2 s + 10 s * 0.5.
  EXPECT_EQ(q.anchor_offset_ns, 3 * kSecNs);
  // A rate change after re-anchoring only changes the slope from the anchor on.
  q.rate = 4.0;
  EXPECT_EQ(SkewedRealtimeNs(q, kRealtimeNs + later_ns),
            SkewedRealtimeNs(p, kRealtimeNs + later_ns));
  EXPECT_EQ(SkewedRealtimeNs(q, kRealtimeNs + later_ns + kSecNs) -
                SkewedRealtimeNs(q, kRealtimeNs + later_ns),
            4 * kSecNs);
}

TEST(ServerClockArithmeticTest, ReadingsBeforeTheAnchorExtrapolateBackwards) {
  ServerClockParams p = Identity();
  p.rate = 2.0;
  EXPECT_EQ(SkewedRealtimeNs(p, kRealtimeNs - kSecNs), kRealtimeNs - 2 * kSecNs);
}

// --- ServerClock (the shared-memory file; no server) -------------------------------------------

class ServerClockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Status s = ServerClock::Create(&clock_);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  // The file's contents, read the way the shim reads them.
  lockstorm_clock_shm ReadFile() {
    lockstorm_clock_shm shm{};
    std::ifstream f(clock_->path(), std::ios::binary);
    f.read(reinterpret_cast<char*>(&shm), sizeof shm);
    EXPECT_EQ(f.gcount(), static_cast<std::streamsize>(sizeof shm));
    return shm;
  }
  // Skewed - real wall clock now, µs.
  int64_t OffsetNowUs() { return clock_->NowUs() - RealtimeUs(); }

  std::unique_ptr<ServerClock> clock_;
};

TEST_F(ServerClockTest, CreatesAnInitialisedFileThatTheDestructorRemoves) {
  std::string path = clock_->path();
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0) << path;
  EXPECT_EQ(static_cast<size_t>(st.st_size), sizeof(lockstorm_clock_shm));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  lockstorm_clock_shm shm = ReadFile();
  EXPECT_EQ(shm.magic, LOCKSTORM_CLOCK_SHM_MAGIC);
  EXPECT_EQ(shm.version, LOCKSTORM_CLOCK_SHM_VERSION);
  EXPECT_EQ(shm.seq % 2, 0u);
  EXPECT_EQ(shm.rate, 1.0);
  EXPECT_EQ(shm.anchor_offset_ns, 0);
  EXPECT_EQ(shm.flags, 0u);
  EXPECT_EQ(clock_->attach_count(), 0u);
  clock_.reset();
  EXPECT_NE(stat(path.c_str(), &st), 0) << path << " left behind";
}

TEST_F(ServerClockTest, EnvPreloadsTheShimAndNamesTheFile) {
  auto env = clock_->Env();
  ASSERT_EQ(env.count("LD_PRELOAD"), 1u);
  EXPECT_EQ(env["LD_PRELOAD"].rfind(ServerClock::ShimPath(), 0), 0u) << env["LD_PRELOAD"];
  EXPECT_NE(ServerClock::ShimPath().find("liblockstorm_clock_shim.so"), std::string::npos);
  EXPECT_EQ(access(ServerClock::ShimPath().c_str(), R_OK), 0) << ServerClock::ShimPath();
  EXPECT_EQ(env[LOCKSTORM_CLOCK_SHM_ENV], clock_->path());
}

TEST_F(ServerClockTest, EachClockHasItsOwnFile) {
  std::unique_ptr<ServerClock> other;
  ASSERT_TRUE(ServerClock::Create(&other).ok());
  EXPECT_NE(other->path(), clock_->path());
}

TEST_F(ServerClockTest, ChangesArePublishedToTheFile) {
  ASSERT_TRUE(clock_->SetRate(2.0).ok());
  clock_->Jump(5 * kSecUs);
  clock_->SetSkewMonotonic(true);
  lockstorm_clock_shm shm = ReadFile();
  ServerClockParams p = clock_->params();
  EXPECT_EQ(shm.seq % 2, 0u);
  EXPECT_GE(shm.seq, 8u);  // creation + three changes, two increments each
  EXPECT_EQ(shm.rate, 2.0);
  EXPECT_EQ(shm.anchor_realtime_ns, p.anchor_realtime_ns);
  EXPECT_EQ(shm.anchor_monotonic_ns, p.anchor_monotonic_ns);
  EXPECT_EQ(shm.anchor_offset_ns, p.anchor_offset_ns);
  EXPECT_EQ(shm.anchor_monotonic_offset_ns, p.anchor_monotonic_offset_ns);
  EXPECT_EQ(shm.flags, LOCKSTORM_CLOCK_FLAG_SKEW_MONOTONIC);
}

TEST_F(ServerClockTest, OffsetIsAbsoluteAndJumpIsRelative) {
  // Bounds: only the few µs between the controller's and the test's clock reads (generously).
  constexpr int64_t kSlackUs = 200000;
  clock_->SetOffset(3600 * kSecUs);
  EXPECT_NEAR(OffsetNowUs(), 3600 * kSecUs, kSlackUs);
  clock_->SetOffset(-60 * kSecUs);  // replaces, does not add
  EXPECT_NEAR(OffsetNowUs(), -60 * kSecUs, kSlackUs);
  clock_->Jump(10 * kSecUs);
  EXPECT_NEAR(OffsetNowUs(), -50 * kSecUs, kSlackUs);
  clock_->Jump(-20 * kSecUs);
  EXPECT_NEAR(OffsetNowUs(), -70 * kSecUs, kSlackUs);
  clock_->Reset();
  EXPECT_NEAR(OffsetNowUs(), 0, kSlackUs);
  EXPECT_EQ(clock_->params().rate, 1.0);
}

TEST_F(ServerClockTest, SetRateRejectsNonPositiveAndAbsurdRates) {
  for (double bad : {0.0, -1.0, 1e9, std::numeric_limits<double>::infinity(),
                     std::numeric_limits<double>::quiet_NaN()}) {
    Status s = clock_->SetRate(bad);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << bad;
  }
  EXPECT_EQ(clock_->params().rate, 1.0);
  EXPECT_TRUE(clock_->SetRate(0.5).ok());
  EXPECT_EQ(clock_->params().rate, 0.5);
}

TEST_F(ServerClockTest, RateChangesKeepTheCurrentReading) {
  clock_->SetOffset(100 * kSecUs);
  ServerClockParams before = clock_->params();
  ASSERT_TRUE(clock_->SetRate(2.0).ok());
  ServerClockParams after = clock_->params();
  // At the new anchor the old parameters read (almost exactly) the same: no step.
  EXPECT_NEAR(static_cast<double>(SkewedRealtimeNs(before, after.anchor_realtime_ns)),
              static_cast<double>(SkewedRealtimeNs(after, after.anchor_realtime_ns)), 1e3);
}

TEST_F(ServerClockTest, SwitchingMonotonicSkewOnDoesNotStepIt) {
  clock_->SetOffset(3600 * kSecUs);  // a wall-clock offset is not a monotonic step
  clock_->SetSkewMonotonic(true);
  ServerClockParams p = clock_->params();
  EXPECT_TRUE(p.skew_monotonic);
  EXPECT_EQ(SkewedMonotonicNs(p, p.anchor_monotonic_ns), p.anchor_monotonic_ns);
  clock_->Jump(kSecUs);  // but later steps apply to it
  p = clock_->params();
  EXPECT_EQ(SkewedMonotonicNs(p, p.anchor_monotonic_ns), p.anchor_monotonic_ns + kSecNs);
  clock_->Reset();
  EXPECT_FALSE(clock_->params().skew_monotonic);
}

}  // namespace
}  // namespace lockstorm
