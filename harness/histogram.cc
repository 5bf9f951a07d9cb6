#include "harness/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace lockstorm {

size_t Histogram::BucketIndex(int64_t value_us) {
  if (value_us < kSubBuckets) return static_cast<size_t>(value_us);
  int e = std::bit_width(static_cast<uint64_t>(value_us)) - 1;  // 2^e <= v < 2^(e+1), e >= 7
  int shift = e - kSubBucketBits;
  int64_t sub = (value_us >> shift) - kSubBuckets;  // 0..127
  return static_cast<size_t>(kSubBuckets + int64_t{shift} * kSubBuckets + sub);
}

int64_t Histogram::BucketLow(size_t index) {
  int64_t i = static_cast<int64_t>(index);
  if (i < kSubBuckets) return i;
  int64_t shift = (i - kSubBuckets) / kSubBuckets;
  int64_t sub = (i - kSubBuckets) % kSubBuckets;
  return (kSubBuckets + sub) << shift;
}

int64_t Histogram::BucketWidth(size_t index) {
  int64_t i = static_cast<int64_t>(index);
  if (i < kSubBuckets) return 1;
  return int64_t{1} << ((i - kSubBuckets) / kSubBuckets);
}

void Histogram::Record(int64_t value_us) {
  if (value_us < 0) value_us = 0;
  size_t index = BucketIndex(value_us);
  if (index >= counts_.size()) counts_.resize(index + 1, 0);
  ++counts_[index];
  if (count_ == 0 || value_us < min_us_) min_us_ = value_us;
  if (count_ == 0 || value_us > max_us_) max_us_ = value_us;
  ++count_;
  sum_us_ += value_us;
}

void Histogram::Merge(const Histogram& other) {
  if (other.count_ == 0) return;
  if (other.counts_.size() > counts_.size()) counts_.resize(other.counts_.size(), 0);
  for (size_t i = 0; i < other.counts_.size(); ++i) counts_[i] += other.counts_[i];
  if (count_ == 0 || other.min_us_ < min_us_) min_us_ = other.min_us_;
  if (count_ == 0 || other.max_us_ > max_us_) max_us_ = other.max_us_;
  count_ += other.count_;
  sum_us_ += other.sum_us_;
}

double Histogram::mean() const {
  if (count_ == 0) return 0;
  return static_cast<double>(sum_us_ / static_cast<long double>(count_));
}

int64_t Histogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  if (!(p > 0)) p = 0;  // also maps NaN to 0
  if (p > 100) p = 100;
  auto rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  if (rank == 1) return min_us_;
  if (rank == count_) return max_us_;
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      int64_t low = BucketLow(i);
      int64_t mid = low + (BucketWidth(i) - 1) / 2;
      return std::clamp(mid, min_us_, max_us_);
    }
  }
  return max_us_;  // not reached: the counts sum to count_
}

nlohmann::json Histogram::ToJson() const {
  nlohmann::json j;
  j["count"] = count_;
  j["mean"] = mean();
  j["min"] = min();
  j["p50"] = Percentile(50);
  j["p90"] = Percentile(90);
  j["p99"] = Percentile(99);
  j["p999"] = Percentile(99.9);
  j["max"] = max();
  return j;
}

std::vector<double> Histogram::CurvePercentiles() {
  // 0, then halving the distance to 100 twice per step (50, 70.7, 75, 82.3, 87.5, ...) down
  // to 99.999, then 100: the "nines" axis of HdrHistogram's percentile distribution.
  std::vector<double> ps = {0};
  for (int i = 2; i <= 34; ++i) ps.push_back(100.0 * (1.0 - std::pow(0.5, i / 2.0)));
  ps.push_back(100);
  return ps;
}

nlohmann::json Histogram::CurveToJson() const {
  nlohmann::json points = nlohmann::json::array();
  if (count_ == 0) return points;
  for (double p : CurvePercentiles()) {
    points.push_back({std::round(p * 1e4) / 1e4, Percentile(p)});
  }
  return points;
}

}  // namespace lockstorm
