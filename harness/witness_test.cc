#include "harness/witness.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <thread>
#include <vector>

namespace lockstorm {
namespace {

TEST(WitnessTest, AcceptsFirstEqualAndHigherRejectsLower) {
  Witness w;
  WitnessWrite a = w.Write("k", 0, 5);
  EXPECT_TRUE(a.accepted);
  EXPECT_EQ(a.highest_before, kNoAcceptedFence);
  WitnessWrite b = w.Write("k", 0, 5);  // the same lease writing again
  EXPECT_TRUE(b.accepted);
  EXPECT_EQ(b.highest_before, 5);
  WitnessWrite c = w.Write("k", 1, 7);
  EXPECT_TRUE(c.accepted);
  EXPECT_EQ(c.highest_before, 5);
  WitnessWrite d = w.Write("k", 0, 6);  // stale holder
  EXPECT_FALSE(d.accepted);
  EXPECT_EQ(d.highest_before, 7);
  EXPECT_EQ(w.HighestAccepted("k"), 7);  // a rejected write does not lower it
}

TEST(WitnessTest, KeysAreIndependent) {
  Witness w;
  EXPECT_TRUE(w.Write("a", 0, 10).accepted);
  EXPECT_TRUE(w.Write("b", 1, 3).accepted);
  EXPECT_FALSE(w.Write("a", 1, 3).accepted);
  EXPECT_EQ(w.HighestAccepted("a"), 10);
  EXPECT_EQ(w.HighestAccepted("b"), 3);
  EXPECT_EQ(w.HighestAccepted("c"), kNoAcceptedFence);
}

TEST(WitnessTest, RecordsEveryWriteInDecisionOrder) {
  Witness w;
  w.Write("k", 2, 4);
  w.Write("k", 3, 2);
  w.Write("j", 1, 1);
  std::vector<WitnessRecord> rs = w.Writes();
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_EQ(rs[0].key, "k");
  EXPECT_EQ(rs[0].client, 2);
  EXPECT_EQ(rs[0].fence, 4);
  EXPECT_TRUE(rs[0].accepted);
  EXPECT_EQ(rs[1].client, 3);
  EXPECT_EQ(rs[1].fence, 2);
  EXPECT_FALSE(rs[1].accepted);
  EXPECT_EQ(rs[1].highest_before, 4);
  EXPECT_EQ(rs[2].key, "j");
  EXPECT_LE(rs[0].time_us, rs[1].time_us);
  EXPECT_LE(rs[1].time_us, rs[2].time_us);
}

TEST(WitnessTest, CountStaleAcceptedWritesCountsOnlyAcceptedRegressions) {
  auto rec = [](std::string key, int64_t fence, bool accepted) {
    WitnessRecord r;
    r.key = std::move(key);
    r.fence = fence;
    r.accepted = accepted;
    return r;
  };
  EXPECT_EQ(CountStaleAcceptedWrites({}), 0);
  // Rejected stale writes are not damage; per-key histories are independent.
  EXPECT_EQ(CountStaleAcceptedWrites(
                {rec("k", 5, true), rec("k", 3, false), rec("j", 1, true), rec("k", 5, true)}),
            0);
  // An accepted 3 after an accepted 5: one stale write; it does not lower the bar for later.
  EXPECT_EQ(CountStaleAcceptedWrites(
                {rec("k", 5, true), rec("k", 3, true), rec("k", 4, true), rec("k", 6, true)}),
            2);
}

TEST(WitnessTest, ConcurrentWritersNeverGetAStaleWriteAccepted) {
  Witness w;
  constexpr int kThreads = 8;
  constexpr int kWritesPerThread = 2000;
  std::atomic<int64_t> accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&w, &accepted, t] {
      std::mt19937_64 rng(static_cast<uint64_t>(t));
      std::uniform_int_distribution<int64_t> fence(0, 1000);
      for (int i = 0; i < kWritesPerThread; ++i) {
        const std::string key = (i % 2 == 0) ? "even" : "odd";
        if (w.Write(key, t, fence(rng)).accepted) ++accepted;
      }
    });
  }
  for (std::thread& th : threads) th.join();
  std::vector<WitnessRecord> rs = w.Writes();
  ASSERT_EQ(rs.size(), static_cast<size_t>(kThreads * kWritesPerThread));
  EXPECT_EQ(CountStaleAcceptedWrites(rs), 0);
  int64_t accepted_in_records = 0;
  std::map<std::string, int64_t> highest;
  for (size_t i = 0; i < rs.size(); ++i) {
    if (i > 0) EXPECT_LE(rs[i - 1].time_us, rs[i].time_us);
    auto it = highest.find(rs[i].key);
    const int64_t before = it == highest.end() ? kNoAcceptedFence : it->second;
    EXPECT_EQ(rs[i].highest_before, before);
    EXPECT_EQ(rs[i].accepted, rs[i].fence >= before);
    if (rs[i].accepted) {
      highest[rs[i].key] = rs[i].fence;
      ++accepted_in_records;
    }
  }
  EXPECT_EQ(accepted_in_records, accepted.load());
  // Random fences from many writers: some must have been rejected.
  EXPECT_LT(accepted.load(), kThreads * kWritesPerThread);
}

}  // namespace
}  // namespace lockstorm
