#include "harness/metrics.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace lockstorm {
namespace {

// Builds small histories by hand. Times in µs on the history clock.
class Builder {
 public:
  std::vector<Event> events;

  int64_t Acquire(int client, const std::string& key, int64_t invoke_us, int64_t complete_us,
                  Outcome outcome = Outcome::kOk, int attempts = 1) {
    Event e = Base(OpType::kAcquire, client, key, invoke_us, complete_us, outcome);
    e.attempts = attempts;
    return Add(e);
  }
  int64_t Release(int64_t lease, int client, const std::string& key, int64_t invoke_us,
                  int64_t complete_us, Outcome outcome = Outcome::kOk) {
    Event e = Base(OpType::kRelease, client, key, invoke_us, complete_us, outcome);
    e.lease_op = lease;
    return Add(e);
  }
  int64_t Extend(int64_t lease, int client, const std::string& key, int64_t invoke_us,
                 int64_t complete_us, Outcome outcome) {
    Event e = Base(OpType::kExtend, client, key, invoke_us, complete_us, outcome);
    e.lease_op = lease;
    return Add(e);
  }
  // Any other event type (use, fault, sample ...).
  int64_t Other(OpType type, int client, const std::string& key, int64_t invoke_us,
                int64_t complete_us) {
    return Add(Base(type, client, key, invoke_us, complete_us, Outcome::kOk));
  }
  // The last event added, to adjust fields the helpers do not take.
  Event& Last() { return events.back(); }

 private:
  Event Base(OpType type, int client, const std::string& key, int64_t invoke_us,
             int64_t complete_us, Outcome outcome) {
    Event e;
    e.impl = "impl";
    e.scenario = "scen";
    e.type = type;
    e.client = client;
    e.key = key;
    e.invoke_us = invoke_us;
    e.complete_us = complete_us;
    e.outcome = outcome;
    return e;
  }
  int64_t Add(Event e) {
    e.op_id = next_op_++;
    events.push_back(e);
    return e.op_id;
  }
  int64_t next_op_ = 1;
};

TEST(MetricsTest, EmptyHistory) {
  const ContentionMetrics m = ComputeContention({});
  EXPECT_EQ(m.acquires, 0);
  EXPECT_EQ(m.attempts_per_acquire_mean, 0);
  EXPECT_EQ(m.attempts_per_acquire_max, 0);
  EXPECT_EQ(m.contended_fail_rate, 0);
  EXPECT_EQ(m.unknown_acquires, 0);
  EXPECT_EQ(m.handoff_gap_us.count(), 0u);
  EXPECT_EQ(m.hold_us.count(), 0u);
  EXPECT_EQ(m.fairness_jain, 1.0);
  EXPECT_EQ(m.max_wait_us, 0);
  EXPECT_EQ(m.starved_clients, 0);
  EXPECT_EQ(m.split_votes, 0);
  EXPECT_EQ(m.extend_failures, 0);

  const ThroughputSeries s = ComputeThroughput({});
  EXPECT_EQ(s.start_us, 0);
  EXPECT_EQ(s.bucket_ms, 100);
  EXPECT_TRUE(s.acquired.empty());
  EXPECT_TRUE(s.released.empty());
}

TEST(MetricsTest, AttemptsFailRateUnknownAndMaxWait) {
  Builder b;
  b.Acquire(0, "k", 0, 100, Outcome::kOk, 1);
  b.Acquire(1, "k", 50, 5050, Outcome::kFail, 3);  // waited 5000
  b.Acquire(2, "k", 60, 260, Outcome::kUnknown, 8);
  b.Acquire(3, "k", 70, 1070, Outcome::kFail, 4);
  const ContentionMetrics m = ComputeContention(b.events);
  EXPECT_EQ(m.acquires, 4);
  EXPECT_DOUBLE_EQ(m.attempts_per_acquire_mean, 4.0);  // (1 + 3 + 8 + 4) / 4
  EXPECT_EQ(m.attempts_per_acquire_max, 8);
  EXPECT_DOUBLE_EQ(m.contended_fail_rate, 0.5);  // 2 fail of 4
  EXPECT_EQ(m.unknown_acquires, 1);
  EXPECT_EQ(m.max_wait_us, 5000);
}

TEST(MetricsTest, HandoffGapToNextAcquireOfAnotherLeaseOnTheSameKey) {
  Builder b;
  const int64_t a1 = b.Acquire(0, "k", 0, 100);
  b.Release(a1, 0, "k", 150, 200);
  b.Acquire(1, "k", 10, 230, Outcome::kFail);  // fails after the release: not a handoff
  b.Acquire(2, "other", 20, 220);              // another key: not a handoff
  const int64_t a2 = b.Acquire(1, "k", 30, 250);
  b.Release(a2, 1, "k", 300, 400);
  const int64_t a3 = b.Acquire(2, "k", 350, 400);  // completes exactly at the release: gap 0
  b.Release(a3, 2, "k", 500, 600);                 // no acquire after it: contributes nothing
  const ContentionMetrics m = ComputeContention(b.events);
  ASSERT_EQ(m.handoff_gap_us.count(), 2u);
  EXPECT_EQ(m.handoff_gap_us.min(), 0);
  EXPECT_EQ(m.handoff_gap_us.max(), 50);
}

TEST(MetricsTest, HandoffSkipsTheReleasedLeaseItselfAndFailedReleases) {
  Builder b;
  // The release of lease a1 completes at the same instant its acquire does (clock ties); the
  // next acquire by another lease is at 700.
  const int64_t a1 = b.Acquire(0, "k", 0, 500);
  b.Release(a1, 0, "k", 500, 500);
  const int64_t a2 = b.Acquire(1, "k", 100, 700);
  b.Release(a2, 1, "k", 800, 900, Outcome::kFail);  // not ok: no handoff from it
  b.Acquire(0, "k", 850, 1000);
  const ContentionMetrics m = ComputeContention(b.events);
  ASSERT_EQ(m.handoff_gap_us.count(), 1u);
  EXPECT_EQ(m.handoff_gap_us.min(), 200);
}

TEST(MetricsTest, HoldEndsAtTheEarliestReleaseInvokeOfAnyOutcome) {
  Builder b;
  const int64_t a1 = b.Acquire(0, "k", 0, 100);
  b.Release(a1, 0, "k", 600, 700);                  // the retry, recorded later
  b.Release(a1, 0, "k", 350, 400, Outcome::kFail);  // the first try: hold = 350 - 100
  const int64_t a2 = b.Acquire(1, "k", 10, 1000);
  b.Release(a2, 1, "k", 1040, 1100);    // hold 40
  b.Acquire(2, "k", 20, 2000);          // never released: no hold
  b.Release(9999, 2, "k", 2100, 2200);  // names no ok acquire: ignored
  const ContentionMetrics m = ComputeContention(b.events);
  ASSERT_EQ(m.hold_us.count(), 2u);
  EXPECT_EQ(m.hold_us.min(), 40);
  EXPECT_EQ(m.hold_us.max(), 250);
  EXPECT_DOUBLE_EQ(m.hold_us.mean(), 145.0);
}

TEST(MetricsTest, JainIndexEqualClientsIsOne) {
  Builder b;
  b.Acquire(0, "k", 0, 10);
  b.Acquire(1, "k", 20, 30);
  const ContentionMetrics m = ComputeContention(b.events);
  EXPECT_EQ(m.fairness_jain, 1.0);
  EXPECT_EQ(m.starved_clients, 0);
}

TEST(MetricsTest, JainIndexOneClientStarvedIsHalf) {
  Builder b;
  b.Acquire(0, "k", 0, 10);
  b.Acquire(0, "k", 20, 30);
  b.Acquire(1, "k", 5, 40, Outcome::kFail);  // tried, never acquired: x = 0
  const ContentionMetrics m = ComputeContention(b.events);
  EXPECT_DOUBLE_EQ(m.fairness_jain, 0.5);  // [2, 0]: 4 / (2 * 4)
  EXPECT_EQ(m.starved_clients, 1);
}

TEST(MetricsTest, JainIndexUnequalClients) {
  Builder b;
  for (int i = 0; i < 3; ++i) b.Acquire(0, "k", i * 100, i * 100 + 10);
  b.Acquire(1, "k", 500, 510);
  b.Acquire(1, "k", 600, 610, Outcome::kUnknown);  // not ok: not counted in x
  const ContentionMetrics m = ComputeContention(b.events);
  EXPECT_DOUBLE_EQ(m.fairness_jain, 0.8);  // [3, 1]: 16 / (2 * 10)
  EXPECT_EQ(m.starved_clients, 0);
}

TEST(MetricsTest, AllClientsStarvedIsJainOneAndAllStarved) {
  Builder b;
  b.Acquire(0, "k", 0, 10, Outcome::kFail);
  b.Acquire(1, "k", 0, 10, Outcome::kUnknown);
  b.Acquire(2, "k", 0, 10, Outcome::kFail);
  const ContentionMetrics m = ComputeContention(b.events);
  EXPECT_EQ(m.fairness_jain, 1.0);
  EXPECT_EQ(m.starved_clients, 3);
}

TEST(MetricsTest, SplitVotesAndExtendFailures) {
  Builder b;
  const int64_t a1 = b.Acquire(0, "k", 0, 100);
  b.Last().split_votes = 2;
  b.Acquire(1, "k", 0, 100, Outcome::kFail);
  b.Last().split_votes = 3;
  b.Extend(a1, 0, "k", 110, 120, Outcome::kOk);
  b.Extend(a1, 0, "k", 130, 140, Outcome::kFail);
  b.Extend(a1, 0, "k", 150, 160, Outcome::kUnknown);
  const ContentionMetrics m = ComputeContention(b.events);
  EXPECT_EQ(m.split_votes, 5);
  EXPECT_EQ(m.extend_failures, 2);
}

TEST(MetricsTest, LivenessPhaseAndNonLockEventsAreIgnored) {
  Builder b;
  const int64_t a1 = b.Acquire(0, "k", 0, 100, Outcome::kOk, 2);
  b.Release(a1, 0, "k", 200, 300);
  b.Other(OpType::kFault, -1, "", 0, 9'000'000);  // a long fault: no wait, no client
  b.Other(OpType::kUse, 0, "k", 110, 120);
  b.Other(OpType::kSample, -1, "k", 400, 410);
  // The liveness phase: a starved client, a huge wait, an unknown, split votes, a failed
  // extend and a handoff -- none of it counts.
  const int64_t l1 = b.Acquire(1, "k", 1000, 5'000'000, Outcome::kOk, 50);
  b.Last().phase = kPhaseLiveness;
  b.Last().split_votes = 7;
  b.Acquire(2, "k", 1000, 5'000'000, Outcome::kUnknown);
  b.Last().phase = kPhaseLiveness;
  b.Extend(l1, 1, "k", 5'000'100, 5'000'200, Outcome::kFail);
  b.Last().phase = kPhaseLiveness;
  b.Release(l1, 1, "k", 5'000'300, 5'000'400);
  b.Last().phase = kPhaseLiveness;
  const ContentionMetrics m = ComputeContention(b.events);
  EXPECT_EQ(m.acquires, 1);
  EXPECT_EQ(m.attempts_per_acquire_max, 2);
  EXPECT_EQ(m.unknown_acquires, 0);
  EXPECT_EQ(m.max_wait_us, 100);
  EXPECT_EQ(m.split_votes, 0);
  EXPECT_EQ(m.extend_failures, 0);
  EXPECT_EQ(m.starved_clients, 0);
  EXPECT_EQ(m.fairness_jain, 1.0);
  EXPECT_EQ(m.handoff_gap_us.count(), 0u);
  ASSERT_EQ(m.hold_us.count(), 1u);
  EXPECT_EQ(m.hold_us.max(), 100);

  const ThroughputSeries s = ComputeThroughput(b.events);
  EXPECT_EQ(s.start_us, 0);
  EXPECT_EQ(s.bucket_ms, 100);
  EXPECT_EQ(s.acquired, std::vector<int64_t>({1}));
  EXPECT_EQ(s.released, std::vector<int64_t>({1}));
}

TEST(MetricsTest, ThroughputBucketWidths) {
  const std::vector<int64_t> want = {100,   250,   500,   1000,   2000,  5000,
                                     10000, 20000, 50000, 100000, 200000};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(ThroughputBucketMs(static_cast<int>(i)), want[i]) << i;
  }
  EXPECT_EQ(ThroughputBucketMs(-5), 100);
  EXPECT_EQ(ThroughputBucketMs(41), 5'000'000'000'000'000);
  EXPECT_EQ(ThroughputBucketMs(1000), 5'000'000'000'000'000);
}

TEST(MetricsTest, ThroughputChoosesTheSmallestBucketThatFits) {
  // Last completion at offset 19.999999 s: 200 buckets of 100 ms fit exactly.
  Builder b;
  b.Acquire(0, "k", 1'000'000, 1'000'050);
  b.Acquire(0, "k", 1'000'100, 20'999'999);
  ThroughputSeries s = ComputeThroughput(b.events);
  EXPECT_EQ(s.start_us, 1'000'000);
  EXPECT_EQ(s.bucket_ms, 100);
  EXPECT_EQ(s.acquired.size(), 200u);
  EXPECT_EQ(s.released.size(), 200u);
  EXPECT_EQ(s.acquired.front(), 1);
  EXPECT_EQ(s.acquired.back(), 1);

  // One µs later needs 201 buckets of 100 ms: 250 ms gives 81.
  b.Last().complete_us = 21'000'000;
  s = ComputeThroughput(b.events);
  EXPECT_EQ(s.bucket_ms, 250);
  EXPECT_EQ(s.acquired.size(), 81u);

  // At most 10 buckets over 20 s: 2000 ms would need 11, 5000 ms needs 5.
  s = ComputeThroughput(b.events, -1, 10);
  EXPECT_EQ(s.bucket_ms, 5000);
  EXPECT_EQ(s.acquired, std::vector<int64_t>({1, 0, 0, 0, 1}));
  // max_buckets < 1 is taken as 1: 20 s fits one 50 s bucket.
  s = ComputeThroughput(b.events, -1, 0);
  EXPECT_EQ(s.bucket_ms, 50000);
  EXPECT_EQ(s.acquired, std::vector<int64_t>({2}));
}

TEST(MetricsTest, ThroughputCountsOkAcquiresAndReleasesPerBucket) {
  Builder b;
  const int64_t a1 = b.Acquire(0, "k", 500, 50'000);           // bucket 0
  b.Release(a1, 0, "k", 60'000, 120'000);                      // bucket 1
  b.Acquire(1, "k", 600, 130'000, Outcome::kFail);             // not ok
  const int64_t a2 = b.Acquire(1, "k", 700, 150'000);          // bucket 1
  b.Release(a2, 1, "k", 160'000, 170'000, Outcome::kUnknown);  // not ok
  b.Extend(a2, 1, "k", 170'000, 180'000, Outcome::kOk);        // not counted
  const int64_t a3 = b.Acquire(0, "k", 800, 390'000);          // bucket 3
  b.Release(a3, 0, "k", 390'100, 390'500);                     // bucket 3
  const ThroughputSeries s = ComputeThroughput(b.events);
  EXPECT_EQ(s.start_us, 500);  // the earliest invoke
  EXPECT_EQ(s.bucket_ms, 100);
  EXPECT_EQ(s.acquired, std::vector<int64_t>({1, 1, 0, 1}));
  EXPECT_EQ(s.released, std::vector<int64_t>({0, 1, 0, 1}));
}

TEST(MetricsTest, ThroughputFromAGivenStart) {
  Builder b;
  b.Acquire(0, "k", 0, 10);  // before the start: bucket 0
  b.Acquire(0, "k", 20, 1'000'000 + 250'000);
  const ThroughputSeries s = ComputeThroughput(b.events, 1'000'000);
  EXPECT_EQ(s.start_us, 1'000'000);
  EXPECT_EQ(s.acquired, std::vector<int64_t>({1, 0, 1}));
  EXPECT_EQ(s.released, std::vector<int64_t>({0, 0, 0}));
}

TEST(MetricsTest, JsonHasTheSchemaFields) {
  Builder b;
  const int64_t a1 = b.Acquire(0, "k", 0, 100, Outcome::kOk, 3);
  b.Release(a1, 0, "k", 150, 200);
  b.Acquire(1, "k", 50, 260);
  const nlohmann::json j = ContentionToJson(ComputeContention(b.events));
  std::set<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.insert(k);
  EXPECT_EQ(keys,
            (std::set<std::string>{"attempts_per_acquire_mean", "attempts_per_acquire_max",
                                   "contended_fail_rate", "unknown_acquires", "handoff_gap_us",
                                   "hold_us", "fairness_jain", "max_wait_us", "starved_clients",
                                   "split_votes", "extend_failures"}));
  EXPECT_DOUBLE_EQ(j["attempts_per_acquire_mean"].get<double>(), 2.0);
  EXPECT_EQ(j["attempts_per_acquire_max"].get<int64_t>(), 3);
  EXPECT_EQ(j["handoff_gap_us"]["count"].get<uint64_t>(), 1u);
  EXPECT_EQ(j["handoff_gap_us"]["max"].get<int64_t>(), 60);
  EXPECT_EQ(j["hold_us"]["p50"].get<int64_t>(), 50);
  EXPECT_EQ(j["max_wait_us"].get<int64_t>(), 210);

  const nlohmann::json t = ThroughputToJson(ComputeThroughput(b.events));
  EXPECT_EQ(t["start_us"].get<int64_t>(), 0);
  EXPECT_EQ(t["bucket_ms"].get<int64_t>(), 100);
  EXPECT_EQ(t["acquired"], nlohmann::json::array({2}));
  EXPECT_EQ(t["released"], nlohmann::json::array({1}));
}

// Per client: (ok acquires, failed acquires), each small.
std::vector<Event> HistoryOfCounts(const std::vector<std::pair<int, int>>& per_client) {
  Builder b;
  int64_t t = 0;
  for (size_t c = 0; c < per_client.size(); ++c) {
    for (int i = 0; i < per_client[c].first; ++i) {
      b.Acquire(static_cast<int>(c), "k", t, t + 7);
      t += 1000;
    }
    for (int i = 0; i < per_client[c].second; ++i) {
      b.Acquire(static_cast<int>(c), "k", t, t + 3, Outcome::kFail);
      t += 1000;
    }
  }
  return b.events;
}

RC_GTEST_PROP(MetricsProp, JainIndexIsWithinBoundsAndOneIffAllEqual, ()) {
  const auto n = *rc::gen::inRange<size_t>(1, 12);
  const auto ok = *rc::gen::container<std::vector<int>>(n, rc::gen::inRange(0, 20));
  std::vector<std::pair<int, int>> per_client;
  for (int x : ok) per_client.emplace_back(x, x == 0 ? 1 : 0);  // every client tries
  const ContentionMetrics m = ComputeContention(HistoryOfCounts(per_client));
  const bool all_equal = std::all_of(ok.begin(), ok.end(), [&](int x) { return x == ok[0]; });
  RC_ASSERT(m.fairness_jain <= 1.0);
  RC_ASSERT(m.fairness_jain >= 1.0 / static_cast<double>(n) - 1e-12);
  RC_ASSERT((m.fairness_jain == 1.0) == all_equal);
  RC_ASSERT(m.starved_clients == std::count(ok.begin(), ok.end(), 0));
}

RC_GTEST_PROP(MetricsProp, SeriesSumsToTheOkAcquiresAndReleases, ()) {
  const auto n = *rc::gen::inRange(0, 200);
  const auto max_buckets = *rc::gen::inRange(1, 300);
  Builder b;
  int64_t oks = 0;
  int64_t releases = 0;
  for (int i = 0; i < n; ++i) {
    const int64_t invoke_us = *rc::gen::inRange<int64_t>(0, 100'000'000);
    const int64_t complete_us = invoke_us + *rc::gen::inRange<int64_t>(0, 10'000'000);
    const bool ok = *rc::gen::arbitrary<bool>();
    const int64_t a =
        b.Acquire(i % 5, "k", invoke_us, complete_us, ok ? Outcome::kOk : Outcome::kFail);
    if (ok) {
      ++oks;
      if (*rc::gen::arbitrary<bool>()) {
        b.Release(a, i % 5, "k", complete_us + 1, complete_us + 50);
        ++releases;
      }
    }
  }
  const ThroughputSeries s = ComputeThroughput(b.events, -1, max_buckets);
  RC_ASSERT(s.acquired.size() == s.released.size());
  RC_ASSERT(s.acquired.size() <= static_cast<size_t>(max_buckets));
  int64_t sum_acquired = 0;
  int64_t sum_released = 0;
  for (int64_t x : s.acquired) sum_acquired += x;
  for (int64_t x : s.released) sum_released += x;
  RC_ASSERT(sum_acquired == oks);
  RC_ASSERT(sum_released == releases);
  // The width is the smallest that fits: the next narrower one would need too many buckets.
  if (s.bucket_ms > 100) {
    int64_t last_us = 0;
    for (const Event& e : b.events) {
      if (e.outcome == Outcome::kOk) last_us = std::max(last_us, e.complete_us);
    }
    int i = 1;
    while (i < 50 && ThroughputBucketMs(i) != s.bucket_ms) ++i;
    const int64_t narrower_us = ThroughputBucketMs(i - 1) * 1000;
    RC_ASSERT((last_us - s.start_us) / narrower_us + 1 > max_buckets);
  }
}

}  // namespace
}  // namespace lockstorm
