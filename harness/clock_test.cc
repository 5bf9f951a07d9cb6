#include "harness/clock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace lockstorm {
namespace {

// A base clock that moves only when told to.
class ManualClock : public Clock {
 public:
  int64_t NowUs() override { return now_us.load(); }
  void SleepUs(int64_t duration_us) override { slept_us.store(duration_us); }
  int64_t WallUs() override { return 1000000000 + now_us.load(); }

  std::atomic<int64_t> now_us{1000};
  std::atomic<int64_t> slept_us{-1};
};

TEST(ClockTest, HistoryNowUsNeverDecreases) {
  int64_t last = HistoryNowUs();
  for (int i = 0; i < 1000; ++i) {
    const int64_t now = HistoryNowUs();
    ASSERT_GE(now, last);
    last = now;
  }
}

TEST(ClockTest, SkewedClockFollowsItsBaseUntilFaulted) {
  ManualClock base;
  SkewedClock c(&base);
  EXPECT_EQ(c.NowUs(), 1000);
  base.now_us = 1500;
  EXPECT_EQ(c.NowUs(), 1500);
  EXPECT_EQ(c.WallUs(), base.WallUs());
}

TEST(ClockTest, JumpStepsAndRateScalesFromNowOn) {
  ManualClock base;
  SkewedClock c(&base);
  c.Jump(-300);
  EXPECT_EQ(c.NowUs(), 700);
  base.now_us = 2000;
  EXPECT_EQ(c.NowUs(), 1700);
  c.SetRate(2.0);  // continuous: 1700 now, then twice as fast
  EXPECT_EQ(c.NowUs(), 1700);
  base.now_us = 2500;
  EXPECT_EQ(c.NowUs(), 2700);
  c.Jump(1000);  // keeps the rate
  base.now_us = 3000;
  EXPECT_EQ(c.NowUs(), 4700);
  c.SleepUs(1000);  // 1000 us of this clock = 500 us of the base
  EXPECT_EQ(base.slept_us.load(), 500);
  base.slept_us = -1;
  c.SleepUs(0);
  EXPECT_EQ(base.slept_us.load(), -1);
}

TEST(ClockTest, WallJumpMovesOnlyTheWallClock) {
  ManualClock base;
  SkewedClock c(&base);
  c.WallJump(-5000000);
  EXPECT_EQ(c.WallUs(), base.WallUs() - 5000000);
  EXPECT_EQ(c.NowUs(), 1000);
  c.Jump(10);
  EXPECT_EQ(c.WallUs(), base.WallUs() - 5000000);
}

// Readers never see a mix of two parameter sets. At a constant rate, re-anchoring without a
// step (Jump(0), SetRate(same)) leaves the reading a fixed function of the base time, and the
// base only moves forward, so every reader's readings must never decrease; a torn read (new
// anchor_base with an old anchor_skewed) would read up to one base step times the rate low.
TEST(ClockTest, ConcurrentReanchorsNeverTearAReading) {
  ManualClock base;
  SkewedClock c(&base);
  c.SetRate(3.0);
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      int64_t last = c.NowUs();
      for (int i = 0; i < 50000000 && !done.load(); ++i) {
        const int64_t now = c.NowUs();
        if (now < last) bad.fetch_add(1);
        last = now;
      }
    });
  }
  for (int i = 0; i < 500000; ++i) {
    base.now_us.fetch_add(1000000);
    if (i % 2 == 0) {
      c.Jump(0);
    } else {
      c.SetRate(3.0);
    }
  }
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(c.NowUs(), 1000 + 3 * (base.now_us.load() - 1000));
}

// Jumps and rate changes from another thread while clients read (what the nemesis does):
// every reading is one of the clock's states, and writers serialize.
TEST(ClockTest, ConcurrentJumpsAllLand) {
  ManualClock base;
  SkewedClock c(&base);
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&c] {
      for (int i = 0; i < 2000; ++i) c.Jump(5);
    });
  }
  std::thread reader([&c] {
    int64_t last = c.NowUs();
    for (int i = 0; i < 100000; ++i) {
      const int64_t now = c.NowUs();
      ASSERT_GE(now, last);  // only forward jumps and a frozen base
      last = now;
    }
  });
  for (auto& t : writers) t.join();
  reader.join();
  EXPECT_EQ(c.NowUs(), 1000 + 4 * 2000 * 5);
}

}  // namespace
}  // namespace lockstorm
