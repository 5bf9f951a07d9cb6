#include "harness/histogram.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace lockstorm {
namespace {

// The nearest-rank percentile of sorted samples, as Histogram::Percentile defines it.
int64_t NearestRank(const std::vector<int64_t>& sorted, double p) {
  auto n = static_cast<uint64_t>(sorted.size());
  auto rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(n)));
  rank = std::clamp<uint64_t>(rank, 1, n);
  return sorted[rank - 1];
}

constexpr double kPercentiles[] = {0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100};

TEST(HistogramTest, EmptyIsAllZero) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.mean(), 0);
  EXPECT_EQ(h.Percentile(50), 0);
}

TEST(HistogramTest, SmallValuesAreExact) {
  Histogram h;
  std::vector<int64_t> values;
  for (int64_t v = 127; v >= 0; --v) {
    for (int k = 0; k < 1 + v % 3; ++k) {
      h.Record(v);
      values.push_back(v);
    }
  }
  std::sort(values.begin(), values.end());
  for (double p = 0; p <= 100; p += 0.5) {
    ASSERT_EQ(h.Percentile(p), NearestRank(values, p)) << "p=" << p;
  }
  EXPECT_EQ(h.count(), values.size());
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 127);
}

TEST(HistogramTest, MinMaxMeanAreExact) {
  Histogram h;
  for (int64_t v : {1000003, 5, 77777777, 129}) h.Record(v);
  EXPECT_EQ(h.min(), 5);
  EXPECT_EQ(h.max(), 77777777);
  EXPECT_EQ(h.Percentile(100), 77777777);
  EXPECT_EQ(h.Percentile(0), 5);
  EXPECT_DOUBLE_EQ(h.mean(), (1000003.0 + 5 + 77777777 + 129) / 4);
}

TEST(HistogramTest, NegativeIsRecordedAsZero) {
  Histogram h;
  h.Record(-10);
  EXPECT_EQ(h.count(), 1u);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 0);
}

TEST(HistogramTest, HugeValuesStayWithinOnePercent) {
  Histogram h;
  const int64_t big = INT64_MAX - 12345;
  h.Record(big);
  h.Record(big / 3);
  h.Record(big / 7);
  int64_t p50 = h.Percentile(50);
  EXPECT_LE(std::abs(static_cast<double>(p50) - static_cast<double>(big / 3)),
            0.01 * static_cast<double>(big / 3));
  EXPECT_EQ(h.Percentile(100), big);
}

TEST(HistogramTest, ToJsonHasEveryField) {
  Histogram h;
  for (int v = 1; v <= 1000; ++v) h.Record(v);
  nlohmann::json j = h.ToJson();
  for (const char* f : {"count", "mean", "min", "p50", "p90", "p99", "p999", "max"}) {
    EXPECT_TRUE(j.contains(f)) << f;
  }
  EXPECT_EQ(j["count"].get<uint64_t>(), 1000u);
  EXPECT_EQ(j["min"].get<int64_t>(), 1);
  EXPECT_EQ(j["max"].get<int64_t>(), 1000);
  EXPECT_NEAR(j["p50"].get<int64_t>(), 500, 5);
  EXPECT_NEAR(j["p999"].get<int64_t>(), 999, 10);
  EXPECT_DOUBLE_EQ(j["mean"].get<double>(), 500.5);
}

// Log-uniform values in [0, 2^max_bits).
rc::Gen<std::vector<int64_t>> LogUniformSamples() {
  return rc::gen::nonEmpty(rc::gen::container<std::vector<int64_t>>(
      rc::gen::mapcat(rc::gen::inRange(0, 40),
                      [](int bits) { return rc::gen::inRange<int64_t>(0, int64_t{1} << bits); })));
}

RC_GTEST_PROP(HistogramProp, PercentilesWithinOnePercent, ()) {
  std::vector<int64_t> values = *LogUniformSamples();
  Histogram h;
  for (int64_t v : values) h.Record(v);
  std::sort(values.begin(), values.end());
  RC_ASSERT(h.count() == values.size());
  RC_ASSERT(h.min() == values.front());
  RC_ASSERT(h.max() == values.back());
  for (double p : kPercentiles) {
    int64_t want = NearestRank(values, p);
    int64_t got = h.Percentile(p);
    RC_ASSERT(std::abs(static_cast<double>(got - want)) <= 0.01 * static_cast<double>(want));
  }
}

RC_GTEST_PROP(HistogramProp, MergeEqualsRecordingAll, ()) {
  std::vector<int64_t> a = *LogUniformSamples();
  std::vector<int64_t> b =
      *rc::gen::container<std::vector<int64_t>>(rc::gen::inRange<int64_t>(0, int64_t{1} << 30));
  Histogram ha, hb, all;
  for (int64_t v : a) ha.Record(v), all.Record(v);
  for (int64_t v : b) hb.Record(v), all.Record(v);
  ha.Merge(hb);
  RC_ASSERT(ha.count() == all.count());
  RC_ASSERT(ha.min() == all.min());
  RC_ASSERT(ha.max() == all.max());
  RC_ASSERT(std::abs(ha.mean() - all.mean()) <= 1e-9 * std::max(1.0, all.mean()));
  for (double p = 0; p <= 100; p += 2.5) RC_ASSERT(ha.Percentile(p) == all.Percentile(p));
  RC_ASSERT(ha.ToJson() == all.ToJson());
}

TEST(HistogramTest, MergeIntoEmptyAndFromEmpty) {
  Histogram a, empty;
  a.Record(300);
  a.Record(7);
  Histogram copy = a;
  copy.Merge(empty);
  EXPECT_EQ(copy.ToJson(), a.ToJson());
  empty.Merge(a);
  EXPECT_EQ(empty.ToJson(), a.ToJson());
}

}  // namespace
}  // namespace lockstorm
