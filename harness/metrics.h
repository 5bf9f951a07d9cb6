// Metrics: contention, conflict and throughput figures of ONE (impl, scenario) pair, computed
// from its recorded history (history.h). The "contention" and "throughput_series" blocks of a
// report.json row (schema v2, /work/spec/issue6-schema.md).
//
// Pure functions of the history: the events may come in any order, and the caller passes only
// the events of one (impl, scenario) pair (impl and scenario are not read). Only lock events
// (kAcquire, kRelease, kExtend) of the safety phase (Event::phase == "") are counted; events of
// the liveness phase (kPhaseLiveness) and every other event type are ignored. Times are on the
// history clock, in µs. Every function runs in O(n log n) for n events and copies no strings
// per event, so a 10-million-event history takes a few seconds at most.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "harness/histogram.h"
#include "harness/history.h"

namespace lockstorm {

struct ContentionMetrics {
  // Acquire operations of the safety phase, any outcome.
  int64_t acquires = 0;
  // Mean and maximum of Event::attempts over those acquires (0 when there are none).
  double attempts_per_acquire_mean = 0;
  int64_t attempts_per_acquire_max = 0;
  // Acquires that ended fail / acquires, in [0, 1]; 0 when there are no acquires.
  double contended_fail_rate = 0;
  // Acquires that ended unknown.
  int64_t unknown_acquires = 0;
  // For each ok release of a lease L on key k completing at r: the complete_us of the first ok
  // acquire of k by a lease other than L completing at or after r, minus r. A release with no
  // such acquire after it adds nothing. The lease is named by the release's lease_op; the key
  // is the release's own key.
  Histogram handoff_gap_us;
  // For each ok acquire that some release (any outcome) names as its lease: the invoke_us of
  // the earliest such release minus the acquire's complete_us. Leases never released add
  // nothing.
  Histogram hold_us;
  // Jain's fairness index (sum x)^2 / (n * sum x^2), where x is each client's count of ok
  // acquires, over the n clients that made at least one acquire (any outcome). In [1/n, 1];
  // 1 iff every such client got the same count. 1.0 when n == 0 or when every x is 0 (all
  // clients were treated alike; starved_clients tells that they all starved).
  double fairness_jain = 1.0;
  // The longest acquire of any outcome, complete_us - invoke_us (0 when there are none).
  int64_t max_wait_us = 0;
  // Clients with at least one acquire and no ok acquire.
  int64_t starved_clients = 0;
  // Sum of Event::split_votes over the acquires.
  int64_t split_votes = 0;
  // Extends that ended fail or unknown.
  int64_t extend_failures = 0;
};

// The contention metrics of the events of one (impl, scenario) pair (see the file comment).
ContentionMetrics ComputeContention(const std::vector<Event>& events);

// The "contention" object of schema v2: attempts_per_acquire_mean, attempts_per_acquire_max,
// contended_fail_rate, unknown_acquires, handoff_gap_us, hold_us (histograms, as
// Histogram::ToJson()), fairness_jain, max_wait_us, starved_clients, split_votes,
// extend_failures. (`acquires` is not part of the schema and is not written.)
nlohmann::json ContentionToJson(const ContentionMetrics& m);

// Ok acquires and ok releases per time bucket.
struct ThroughputSeries {
  int64_t start_us = 0;     // the start of bucket 0, history clock
  int64_t bucket_ms = 100;  // the width of every bucket
  // acquired[i] / released[i]: ok acquires / ok releases of the safety phase whose complete_us
  // lies in [start_us + i * bucket_ms * 1000, start_us + (i + 1) * bucket_ms * 1000). Both have
  // the same length: up to the last bucket holding any event (empty when there is none).
  std::vector<int64_t> acquired;
  std::vector<int64_t> released;
};

// The bucket widths ComputeThroughput chooses from, in ms, ascending: 100, 250, 500, then
// 1, 2, 5 times each power of ten from 1000 (1000, 2000, 5000, 10000, 20000, ...).
// Returns the i-th one (i < 0 is taken as 0); from i = 41 on, the widest: 5 * 10^15 ms.
int64_t ThroughputBucketMs(int i);

// Buckets the ok acquires and ok releases of the safety phase by complete_us, from `start_us`;
// when start_us < 0, from the earliest invoke_us of any event in `events` (0 when empty).
// Events completing before start_us count in bucket 0. bucket_ms is the smallest width of
// ThroughputBucketMs() giving at most max(1, max_buckets) buckets (the widest if none does). With
// no ok acquire or release the series are empty and bucket_ms is 100.
ThroughputSeries ComputeThroughput(const std::vector<Event>& events, int64_t start_us = -1,
                                   int max_buckets = 200);

// {"start_us", "bucket_ms", "acquired": [...], "released": [...]}.
nlohmann::json ThroughputToJson(const ThroughputSeries& s);

}  // namespace lockstorm
