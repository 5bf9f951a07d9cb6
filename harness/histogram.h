// Histogram: a log-bucketed (HDR-style) histogram of latencies in microseconds.
//
// Values 0..127 are kept exactly. A larger value v, with 2^e <= v < 2^(e+1), falls in one of
// 128 equal sub-buckets of [2^e, 2^(e+1)), each 2^(e-7) wide, so a bucket's width is at most
// 1/128 of its lower bound. Percentile() answers with the middle of the bucket holding the
// order statistic, clamped to [min, max]: within 1/256 (< 1%) of the true value. count, min
// and max are exact; mean is exact up to double rounding. Memory grows with the largest value
// recorded: at most 7296 buckets (57 KiB) for values up to INT64_MAX.
//
// Not thread-safe: give each client thread its own Histogram and Merge them at the end.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

namespace lockstorm {

class Histogram {
 public:
  Histogram() = default;

  // Records one value. A negative value (a clock that stepped back) is recorded as 0.
  void Record(int64_t value_us);
  // Adds every value recorded in `other` to this one, as if recorded here.
  void Merge(const Histogram& other);

  uint64_t count() const { return count_; }
  int64_t min() const { return count_ == 0 ? 0 : min_us_; }  // 0 if empty
  int64_t max() const { return count_ == 0 ? 0 : max_us_; }  // 0 if empty
  double mean() const;                                       // 0 if empty

  // The nearest-rank p-th percentile, p in [0, 100] (clamped): the value of rank
  // max(1, ceil(p/100 * count)) in sorted order, within 1% (1/256). Exact for the first rank
  // (min), the last rank (max, so p=100 is exact) and for values below 128. 0 if empty.
  int64_t Percentile(double p) const;

  // {"count","mean","min","p50","p90","p99","p999","max"}, all times in µs.
  nlohmann::json ToJson() const;
  // The percentile curve, [[p, value_us], ...] for p in CurvePercentiles(); [] if empty.
  nlohmann::json CurveToJson() const;
  // 0, 50, 70.7, 75, ..., 99.9985, 100: points spaced evenly on a "nines" axis
  // (-log10(1 - p/100)), two per halving of the tail, as HdrHistogram plots them.
  static std::vector<double> CurvePercentiles();

 private:
  static constexpr int kSubBucketBits = 7;
  static constexpr int64_t kSubBuckets = int64_t{1} << kSubBucketBits;  // 128

  static size_t BucketIndex(int64_t value_us);
  static int64_t BucketLow(size_t index);    // smallest value in the bucket
  static int64_t BucketWidth(size_t index);  // number of values in the bucket

  std::vector<uint64_t> counts_;  // indexed by BucketIndex; grows on demand
  uint64_t count_ = 0;
  int64_t min_us_ = 0;
  int64_t max_us_ = 0;
  long double sum_us_ = 0;
};

}  // namespace lockstorm
