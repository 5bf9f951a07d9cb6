// Checker throughput on a generated history (issue: 10 million events, >= 5 million events/s
// on one core, under 1 GiB). The history is what a long run of a correct single-node lock with
// a fenced resource writes: 16 clients on 4 keys; per lease an acquire, its after-acquire
// sample, a use, a fenced witness write, a release, every 4th lease an extend and its sample,
// and 1-2 failed acquires of waiting clients with their after-fail samples. Generated once
// into a CompactHistory (not timed); each iteration runs every check on it (CheckCompact).
// Counters: events/s (items_per_second), the history's size, and the process's peak RSS.
//
//   build-release/lockstorm_bench --benchmark_filter=Checker
//   LOCKSTORM_CHECKER_EVENTS=1000000 ... for a smaller history
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <cstdlib>
#include <memory>
#include <random>
#include <string>

#include "harness/checker.h"

namespace lockstorm {
namespace {

constexpr int kClients = 16;
constexpr int kKeys = 4;

int64_t EventsWanted() {
  const char* v = std::getenv("LOCKSTORM_CHECKER_EVENTS");
  return v ? std::max<int64_t>(1000, std::atoll(v)) : 10'000'000;
}

class Generator {
 public:
  explicit Generator(CompactHistory* h) : h_(h), rng_(42) {}

  void Generate(int64_t n_events) {
    h_->Reserve(static_cast<size_t>(n_events) + 16);
    std::vector<int64_t> key_time_us(kKeys, 1000);
    std::vector<int64_t> counter(kKeys, 0);
    int64_t fence = 0;
    for (int64_t lease = 0; static_cast<int64_t>(h_->size()) < n_events; ++lease) {
      const int k = static_cast<int>(lease % kKeys);
      const std::string key = "lockstorm:bench:k" + std::to_string(k);
      const int client = static_cast<int>(rng_() % kClients);
      const int64_t t = key_time_us[static_cast<size_t>(k)];
      const int64_t hold_us = 100 + static_cast<int64_t>(rng_() % 5000);
      const std::string token = "t" + std::to_string(lease);
      // The holder.
      Event acq = Base(OpType::kAcquire, client, key, t, t + 50);
      acq.token = token;
      acq.ttl_ms = 500;
      acq.valid_ms = 499;
      acq.fence = ++fence;
      acq.attempts = 1;
      const int64_t acq_op = Add(acq);
      Sample(client, key, t + 55, acq_op, token, 499, kSampleAfterAcquire);
      int64_t now = t + 60;
      if (lease % 4 == 0) {
        Event ext = Base(OpType::kExtend, client, key, now, now + 40);
        ext.lease_op = acq_op;
        ext.token = token;
        ext.ttl_ms = 500;
        ext.valid_ms = 499;
        const int64_t ext_op = Add(ext);
        Sample(client, key, now + 45, ext_op, token, 499, kSampleAfterExtend);
        now += 60;
      }
      Event use = Base(OpType::kUse, client, key, now, now + hold_us);
      use.lease_op = acq_op;
      use.value = counter[static_cast<size_t>(k)]++;
      Add(use);
      now += hold_us;
      Event wr = Base(OpType::kWrite, client, key, now, now + 5);
      wr.lease_op = acq_op;
      wr.fence = fence;
      Add(wr);
      Event rel = Base(OpType::kRelease, client, key, now + 10, now + 60);
      rel.lease_op = acq_op;
      rel.token = token;
      Add(rel);
      // Clients that waited for it and gave up.
      const int waiters = 1 + static_cast<int>(rng_() % 2);
      for (int w = 0; w < waiters; ++w) {
        const int other = (client + 1 + w) % kClients;
        Event f = Base(OpType::kAcquire, other, key, t + 20, now);
        f.token = token + "w" + std::to_string(w);
        f.outcome = Outcome::kFail;
        f.ttl_ms = 500;
        f.attempts = 3;
        const int64_t f_op = Add(f);
        Sample(other, key, now + 1, f_op, token, 300, kSampleAfterFail);
      }
      key_time_us[static_cast<size_t>(k)] = now + 100;
    }
  }

 private:
  Event Base(OpType type, int client, const std::string& key, int64_t invoke_us,
             int64_t complete_us) {
    Event e;
    e.impl = "token-lua";
    e.scenario = "bench";
    e.type = type;
    e.client = client;
    e.key = key;
    e.invoke_us = invoke_us;
    e.complete_us = complete_us;
    e.outcome =
        type == OpType::kAcquire && complete_us - invoke_us > 1000 ? Outcome::kFail : Outcome::kOk;
    return e;
  }
  void Sample(int client, const std::string& key, int64_t at_us, int64_t op,
              const std::string& token, int64_t pttl_ms, const char* why) {
    Event s = Base(OpType::kSample, client, key, at_us, at_us + 30);
    s.lease_op = op;
    s.node = 0;
    s.token = token;
    s.value = pttl_ms;
    s.note = why;
    Add(s);
  }
  int64_t Add(Event e) {
    e.op_id = next_op_++;
    h_->Add(e);
    return e.op_id;
  }

  CompactHistory* h_;
  std::mt19937_64 rng_;
  int64_t next_op_ = 1;
};

const CompactHistory& BenchHistory() {
  static const CompactHistory* h = [] {
    auto* hist = new CompactHistory();
    Generator(hist).Generate(EventsWanted());
    return hist;
  }();
  return *h;
}

int64_t PeakRssMiB() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024;  // ru_maxrss is in KiB on Linux
}

void BM_CheckerOnGeneratedHistory(benchmark::State& state) {
  const CompactHistory& h = BenchHistory();
  int64_t violations = 0;
  for (auto _ : state) {
    auto results = CheckCompact(h);
    for (const auto& [pair, r] : results)
      violations += r.violation_count + r.liveness.violation_count;
    benchmark::DoNotOptimize(results);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(h.size()));
  state.counters["events"] = static_cast<double>(h.size());
  state.counters["violations"] = static_cast<double>(violations);
  state.counters["peak_rss_MiB"] = static_cast<double>(PeakRssMiB());
  state.counters["history_MiB"] =
      static_cast<double>(h.size() * sizeof(CompactHistory::Rec)) / (1 << 20);
}
BENCHMARK(BM_CheckerOnGeneratedHistory)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace lockstorm
