#include "harness/metrics.h"

#include <algorithm>
#include <limits>
#include <string_view>
#include <unordered_map>

namespace lockstorm {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

bool IsSafetyLockEvent(const Event& e) {
  if (e.type != OpType::kAcquire && e.type != OpType::kRelease && e.type != OpType::kExtend) {
    return false;
  }
  return e.phase.empty();
}

// An ok acquire of the safety phase: a lease.
struct OkAcquire {
  int64_t op_id;
  int64_t complete_us;
  int32_t key;  // index into the key table
};

// The same lease, ordered by (key, complete_us) for the handoff search.
struct KeyedAcquire {
  int32_t key;
  int64_t complete_us;
  int64_t op_id;
  bool operator<(const KeyedAcquire& o) const {
    if (key != o.key) return key < o.key;
    if (complete_us != o.complete_us) return complete_us < o.complete_us;
    return op_id < o.op_id;  // a total order, so the result does not depend on input order
  }
};

struct OkRelease {
  int32_t key;
  int64_t complete_us;
  int64_t lease_op;
};

// Per-client acquire counts, for fairness and starvation.
struct ClientCounts {
  int64_t acquires = 0;
  int64_t ok = 0;
};

// Jain's index over x (see ContentionMetrics::fairness_jain). Exact integer sums, so the
// result is exactly 1.0 when every x is equal.
double JainIndex(const std::unordered_map<int, ClientCounts>& clients) {
  __int128 sum = 0;
  __int128 sum_sq = 0;
  __int128 n = 0;
  for (const auto& [client, c] : clients) {  // bounded by the number of clients
    sum += c.ok;
    sum_sq += static_cast<__int128>(c.ok) * c.ok;
    ++n;
  }
  if (n == 0 || sum_sq == 0) return 1.0;
  const __int128 num = sum * sum;
  const __int128 den = n * sum_sq;
  if (num == den) return 1.0;
  return static_cast<double>(static_cast<long double>(num) / static_cast<long double>(den));
}

}  // namespace

ContentionMetrics ComputeContention(const std::vector<Event>& events) {
  ContentionMetrics m;
  // Keys are interned by view: the events outlive this function, so no string is copied.
  std::unordered_map<std::string_view, int32_t> key_index;
  auto intern = [&key_index](const std::string& key) {
    auto [it, inserted] = key_index.try_emplace(key, static_cast<int32_t>(key_index.size()));
    return it->second;
  };
  std::unordered_map<int, ClientCounts> clients;
  std::vector<OkAcquire> ok_acquires;
  std::vector<OkRelease> ok_releases;
  // (lease_op, invoke_us) of every release of the safety phase, any outcome.
  std::vector<std::pair<int64_t, int64_t>> release_invokes;
  int64_t attempts_sum = 0;
  int64_t fails = 0;

  for (const Event& e : events) {  // bounded by events.size()
    if (!IsSafetyLockEvent(e)) continue;
    switch (e.type) {
      case OpType::kAcquire: {
        ++m.acquires;
        attempts_sum += e.attempts;
        m.attempts_per_acquire_max = std::max<int64_t>(m.attempts_per_acquire_max, e.attempts);
        m.split_votes += e.split_votes;
        m.max_wait_us = std::max(m.max_wait_us, e.complete_us - e.invoke_us);
        ClientCounts& c = clients[e.client];
        ++c.acquires;
        if (e.outcome == Outcome::kOk) {
          ++c.ok;
          ok_acquires.push_back({e.op_id, e.complete_us, intern(e.key)});
        } else if (e.outcome == Outcome::kFail) {
          ++fails;
        } else {
          ++m.unknown_acquires;
        }
        break;
      }
      case OpType::kRelease:
        release_invokes.emplace_back(e.lease_op, e.invoke_us);
        if (e.outcome == Outcome::kOk) {
          ok_releases.push_back({intern(e.key), e.complete_us, e.lease_op});
        }
        break;
      case OpType::kExtend:
        if (e.outcome != Outcome::kOk) ++m.extend_failures;
        break;
      default:
        break;
    }
  }

  if (m.acquires > 0) {
    m.attempts_per_acquire_mean =
        static_cast<double>(attempts_sum) / static_cast<double>(m.acquires);
    m.contended_fail_rate = static_cast<double>(fails) / static_cast<double>(m.acquires);
  }
  for (const auto& [client, c] : clients) {  // bounded by the number of clients
    if (c.ok == 0) ++m.starved_clients;
  }
  m.fairness_jain = JainIndex(clients);

  // Hold: each lease's earliest release invoke. Leases sorted by op_id and releases by
  // (lease_op, invoke_us), then joined in one linear merge (cache-friendly on any input order).
  std::sort(ok_acquires.begin(), ok_acquires.end(),
            [](const OkAcquire& a, const OkAcquire& b) { return a.op_id < b.op_id; });
  std::sort(release_invokes.begin(), release_invokes.end());
  {
    size_t r = 0;
    for (const OkAcquire& a : ok_acquires) {  // bounded by ok acquires; r by releases
      while (r < release_invokes.size() && release_invokes[r].first < a.op_id) ++r;
      if (r < release_invokes.size() && release_invokes[r].first == a.op_id) {
        m.hold_us.Record(release_invokes[r].second - a.complete_us);  // the earliest invoke
      }
    }
  }

  // Handoff: for each ok release, the first ok acquire of its key by another lease at or after
  // its completion. Both sides sorted by (key, complete_us); the cursor into the acquires only
  // moves forward.
  std::vector<KeyedAcquire> by_key;
  by_key.reserve(ok_acquires.size());
  for (const OkAcquire& a : ok_acquires) by_key.push_back({a.key, a.complete_us, a.op_id});
  std::sort(by_key.begin(), by_key.end());
  std::sort(ok_releases.begin(), ok_releases.end(), [](const OkRelease& a, const OkRelease& b) {
    return a.key != b.key ? a.key < b.key : a.complete_us < b.complete_us;
  });
  size_t cursor = 0;
  for (const OkRelease& r : ok_releases) {  // bounded by ok releases; cursor by ok acquires
    while (cursor < by_key.size() &&
           (by_key[cursor].key < r.key ||
            (by_key[cursor].key == r.key && by_key[cursor].complete_us < r.complete_us))) {
      ++cursor;
    }
    // Skip the released lease itself: op ids are unique, so this passes at most one entry
    // (and stays bounded by by_key.size() for a history that repeats them).
    size_t next = cursor;
    while (next < by_key.size() && by_key[next].key == r.key && by_key[next].op_id == r.lease_op) {
      ++next;
    }
    if (next == by_key.size() || by_key[next].key != r.key) continue;
    m.handoff_gap_us.Record(by_key[next].complete_us - r.complete_us);
  }
  return m;
}

nlohmann::json ContentionToJson(const ContentionMetrics& m) {
  nlohmann::json j;
  j["attempts_per_acquire_mean"] = m.attempts_per_acquire_mean;
  j["attempts_per_acquire_max"] = m.attempts_per_acquire_max;
  j["contended_fail_rate"] = m.contended_fail_rate;
  j["unknown_acquires"] = m.unknown_acquires;
  j["handoff_gap_us"] = m.handoff_gap_us.ToJson();
  j["hold_us"] = m.hold_us.ToJson();
  j["fairness_jain"] = m.fairness_jain;
  j["max_wait_us"] = m.max_wait_us;
  j["starved_clients"] = m.starved_clients;
  j["split_votes"] = m.split_votes;
  j["extend_failures"] = m.extend_failures;
  return j;
}

int64_t ThroughputBucketMs(int i) {
  constexpr int64_t kFirst[] = {100, 250, 500};
  constexpr int64_t kSteps[] = {1, 2, 5};
  constexpr int kMaxDecade = 12;  // 5 * 10^12 * 1000 ms fits an int64 in µs
  if (i < 0) i = 0;
  if (i < 3) return kFirst[i];
  const int j = i - 3;
  const int decade = std::min(j / 3, kMaxDecade);
  const int step = j / 3 > kMaxDecade ? 2 : j % 3;
  int64_t ms = 1000;
  for (int d = 0; d < decade; ++d) ms *= 10;  // bounded by kMaxDecade
  return ms * kSteps[step];
}

ThroughputSeries ComputeThroughput(const std::vector<Event>& events, int64_t start_us,
                                   int max_buckets) {
  ThroughputSeries s;
  max_buckets = std::max(max_buckets, 1);
  if (start_us < 0) {
    start_us = events.empty() ? 0 : kNever;
    for (const Event& e : events) start_us = std::min(start_us, e.invoke_us);  // bounded
  }
  s.start_us = start_us;

  // Offsets from start_us (clamped at 0) of the counted events' completions.
  int64_t max_offset_us = -1;
  auto offset_of = [start_us](const Event& e) -> int64_t {
    int64_t off = 0;
    if (__builtin_sub_overflow(e.complete_us, start_us, &off)) {
      return e.complete_us < start_us ? 0 : kNever;
    }
    return std::max<int64_t>(off, 0);
  };
  auto counted = [](const Event& e) {
    return IsSafetyLockEvent(e) && e.type != OpType::kExtend && e.outcome == Outcome::kOk;
  };
  for (const Event& e : events) {  // bounded by events.size()
    if (counted(e)) max_offset_us = std::max(max_offset_us, offset_of(e));
  }
  if (max_offset_us < 0) return s;  // nothing to count

  // The smallest width giving at most max_buckets buckets; the widest if none does.
  constexpr int kWidths = 3 + 3 * 13;  // every distinct ThroughputBucketMs value
  int64_t bucket_us = 0;
  for (int i = 0; i < kWidths; ++i) {  // bounded by kWidths
    s.bucket_ms = ThroughputBucketMs(i);
    bucket_us = s.bucket_ms * 1000;
    if (max_offset_us / bucket_us + 1 <= max_buckets) break;
  }
  const size_t n = static_cast<size_t>(max_offset_us / bucket_us + 1);
  s.acquired.assign(n, 0);
  s.released.assign(n, 0);
  for (const Event& e : events) {  // bounded by events.size()
    if (!counted(e)) continue;
    const size_t b = static_cast<size_t>(offset_of(e) / bucket_us);
    if (e.type == OpType::kAcquire) {
      ++s.acquired[b];
    } else {
      ++s.released[b];
    }
  }
  return s;
}

nlohmann::json ThroughputToJson(const ThroughputSeries& s) {
  nlohmann::json j;
  j["start_us"] = s.start_us;
  j["bucket_ms"] = s.bucket_ms;
  j["acquired"] = s.acquired;
  j["released"] = s.released;
  return j;
}

}  // namespace lockstorm
