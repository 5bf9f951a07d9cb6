// lockstorm's full runner path against a bare hiredis loop doing the same commands, in one
// process, against one embedded redis-server, with one CPU placement.
//
// BM_RunnerVsBare/token-lua: each iteration runs, for LOCKSTORM_RUNNER_BENCH_MS (default 1000)
// each and in alternating order,
//   runner — RunWorkload (harness/runner.h) with token-lua, 1 client, 1 key, one hold band of
//            zero length, wait 0, ttl 10 s, no contract samples, no liveness phase, no faults:
//            the client thread, history recording (streamed to a file, as `lockstorm run`
//            does), histograms, the guarded resource — and on the wire only the lock's own
//            SET key token NX PX 10000 + EVAL compare-and-delete;
//   bare   — one thread with one blocking hiredis connection (TCP to the same 127.0.0.1 port,
//            TCP_NODELAY as hiredis sets it, connected before the timed loop) sending exactly
//            those two commands (same key, a 40-hex-digit token, same script) with
//            redisCommandArgv, timing each SET with steady_clock into the same Histogram class.
// Counters (user counters in the JSON): cycles/s and acquire p50/p99 for both, process CPU µs
// per cycle for both (getrusage: the runner's includes its history flusher thread), and the
// ratios runner/bare (targets: cycles >= 0.9x, p50 <= 1.1x), with the min/max of the per-round
// cycle ratio to show the noise. LOCKSTORM_RUNNER_BENCH_ONLY=runner|bare runs one side only
// (to profile it: perf record -g build-bench/lockstorm_bench --benchmark_filter=RunnerVsBare).
// Placement: LOCKSTORM_PIN as in lock_bench.cc (this process on CPU 0, the server on CPU 1 for
// split; both on 0 for same; none = the scheduler).
//
// BM_HistoryAppend: the cost of one HistoryWriter::Append of a typical acquire event (file
// open, flusher running) — the runner's per-event recording cost in isolation.
//
//   build-bench/lockstorm_bench --benchmark_filter='RunnerVsBare|HistoryAppend'
#include <benchmark/benchmark.h>
#include <hiredis/hiredis.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_server.h"
#include "harness/histogram.h"
#include "harness/history.h"
#include "harness/placement.h"
#include "harness/redis_server.h"
#include "harness/runner.h"
#include "harness/witness.h"
#include "impls/common.h"
#include "impls/registry.h"
#include "scenarios/scenario.h"

namespace lockstorm {
namespace {

constexpr int64_t kTtlMs = 10000;

// One server of its own (the lock benchmarks' five stay idle meanwhile), created on first use
// after main() started the reaper, pinned like them (lock_bench.cc records the placement in
// the JSON context: pin, lockstorm_cpus, server_cpus).
using RunnerBenchEnv = PinnedBenchServer;

RunnerBenchEnv& Env() {
  static RunnerBenchEnv env("runnerbench");
  return env;
}

int64_t MonoUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Process CPU time (user + system, every thread) in µs.
int64_t ProcessCpuUs() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000LL + ru.ru_utime.tv_usec +
         ru.ru_stime.tv_usec;
}

struct Round {
  int64_t cycles = 0;
  int64_t failures = 0;
  int64_t elapsed_us = 0;
  int64_t cpu_us = 0;
  Histogram acquire_us;
  double rate() const {
    return elapsed_us > 0 ? static_cast<double>(cycles) * 1e6 / static_cast<double>(elapsed_us) : 0;
  }
};

Scenario BenchScenario(int64_t duration_ms) {
  Scenario sc;
  sc.name = "runner-bench";
  sc.nodes = 1;
  sc.workload.clients = 1;
  sc.workload.keys = 1;
  sc.workload.duration_ms = duration_ms;
  sc.workload.ttl_ms = kTtlMs;
  sc.workload.wait_ms = 0;
  sc.workload.holds = {{1.0, 0.0, 0.0}};  // hold 0
  sc.workload.extend = false;
  return sc;
}

const std::string kPrefix = "lockstorm:rbench:";

// The full runner path, as `lockstorm run --impl token-lua --clients 1 --no-samples` minus
// the liveness phase and the checkers: history streamed to a file.
Round RunRunner(const std::string& impl_name, int64_t duration_ms, uint64_t seed) {
  const ImplInfo* info = FindBuiltinImpl(impl_name);
  ImplUnderTest impl;
  impl.name = info->name;
  impl.multi_node = info->multi_node;
  auto make = info->make;
  impl.make = [make](int, const LockEnv& env, const std::vector<ServerAddress>&) {
    return make(env);
  };
  const Scenario sc = BenchScenario(duration_ms);
  HistoryWriter history;
  const std::string path = Env().dir() + "/history.jsonl";
  if (Status s = history.Open(path); !s.ok()) {
    fprintf(stderr, "runner_bench: %s\n", s.message().c_str());
    std::exit(4);
  }
  Witness witness;
  std::atomic<bool> stop{false};
  RunContext ctx;
  ctx.servers = {Env().address()};
  ctx.history = &history;
  ctx.witness = &witness;
  ctx.key_prefix = kPrefix;
  ctx.seed = seed;
  ctx.stop = &stop;
  ctx.contract_samples = false;
  ctx.liveness_phase = false;
  const int64_t cpu0 = ProcessCpuUs();
  RunStats st = RunWorkload(impl, sc, ctx);
  const int64_t cpu1 = ProcessCpuUs();
  history.Flush();
  Round r;
  r.cycles = st.releases_ok;
  r.failures = st.acquires - st.acquired + st.releases_fail + st.releases_unknown;
  r.elapsed_us = st.elapsed_us;
  r.cpu_us = cpu1 - cpu0;
  r.acquire_us = st.acquire_us;
  return r;
}

// The floor: a bare hiredis loop doing token-lua's two commands on one thread.
Round RunBare(int64_t duration_ms) {
  const ServerAddress a = Env().address();
  const std::string key = LockKey(kPrefix, "token-lua", "runner-bench", 0);
  const std::string token = "0123456789abcdef0123456789abcdef01234567";  // 40 hex, as RandomToken
  const std::string ttl = std::to_string(kTtlMs);
  Round r;
  std::thread t([&] {
    redisContext* c = redisConnect(a.host.c_str(), a.port);
    if (c == nullptr || c->err) {
      fprintf(stderr, "runner_bench: bare connect failed\n");
      std::exit(4);
    }
    const char* set_argv[] = {"SET", key.c_str(), token.c_str(), "NX", "PX", ttl.c_str()};
    size_t set_len[] = {3, key.size(), token.size(), 2, 2, ttl.size()};
    const char* rel_argv[] = {"EVAL", kCompareAndDeleteLua, "1", key.c_str(), token.c_str()};
    size_t rel_len[] = {4, strlen(kCompareAndDeleteLua), 1, key.size(), token.size()};
    const int64_t cpu0 = ProcessCpuUs();
    const int64_t start = MonoUs();
    const int64_t end = start + duration_ms * 1000;
    int64_t now = start;
    while (now < end) {
      const int64_t t0 = MonoUs();
      auto* rep = static_cast<redisReply*>(redisCommandArgv(c, 6, set_argv, set_len));
      const int64_t t1 = MonoUs();
      const bool ok = rep && rep->type == REDIS_REPLY_STATUS;
      freeReplyObject(rep);
      if (!ok) {
        ++r.failures;
        now = t1;
        continue;
      }
      r.acquire_us.Record(t1 - t0);
      rep = static_cast<redisReply*>(redisCommandArgv(c, 5, rel_argv, rel_len));
      if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
        ++r.cycles;
      else
        ++r.failures;
      freeReplyObject(rep);
      now = MonoUs();
    }
    r.elapsed_us = now - start;
    r.cpu_us = ProcessCpuUs() - cpu0;
    redisFree(c);
  });
  t.join();
  return r;
}

int64_t RoundMs() {
  const char* v = getenv("LOCKSTORM_RUNNER_BENCH_MS");
  return v ? std::max<int64_t>(100, atoll(v)) : 1000;
}

// LOCKSTORM_RUNNER_BENCH_ONLY=runner|bare runs one side only (for `perf record`).
std::string OnlySide() {
  const char* v = getenv("LOCKSTORM_RUNNER_BENCH_ONLY");
  return v ? v : "";
}

void BM_RunnerVsBare(benchmark::State& state, std::string impl_name) {
  Env();
  const int64_t ms = RoundMs();
  Round runner, bare;
  double ratio_min = 1e9, ratio_max = 0;
  int round = 0;
  for (auto _ : state) {
    Round a, b;
    if (OnlySide() == "runner") {
      a = RunRunner(impl_name, ms, 1000 + static_cast<uint64_t>(round));
    } else if (OnlySide() == "bare") {
      b = RunBare(ms);
    } else if (round % 2 == 0) {
      b = RunBare(ms);
      a = RunRunner(impl_name, ms, 1000 + static_cast<uint64_t>(round));
    } else {
      a = RunRunner(impl_name, ms, 1000 + static_cast<uint64_t>(round));
      b = RunBare(ms);
    }
    ++round;
    if (b.rate() > 0) {
      ratio_min = std::min(ratio_min, a.rate() / b.rate());
      ratio_max = std::max(ratio_max, a.rate() / b.rate());
    }
    for (Round* acc : {&runner, &bare}) {
      const Round& x = acc == &runner ? a : b;
      acc->cycles += x.cycles;
      acc->failures += x.failures;
      acc->elapsed_us += x.elapsed_us;
      acc->cpu_us += x.cpu_us;
      acc->acquire_us.Merge(x.acquire_us);
    }
  }
  auto per_cycle = [](const Round& r) {
    return r.cycles > 0 ? static_cast<double>(r.cpu_us) / static_cast<double>(r.cycles) : 0;
  };
  const double rp50 = static_cast<double>(runner.acquire_us.Percentile(50));
  const double bp50 = static_cast<double>(bare.acquire_us.Percentile(50));
  state.counters["runner_cycles_per_s"] = runner.rate();
  state.counters["bare_cycles_per_s"] = bare.rate();
  state.counters["ratio_cycles"] = bare.rate() > 0 ? runner.rate() / bare.rate() : 0;
  state.counters["ratio_cycles_min"] = ratio_min;
  state.counters["ratio_cycles_max"] = ratio_max;
  state.counters["runner_acq_p50_us"] = rp50;
  state.counters["bare_acq_p50_us"] = bp50;
  state.counters["ratio_p50"] = bp50 > 0 ? rp50 / bp50 : 0;
  state.counters["runner_acq_p99_us"] = static_cast<double>(runner.acquire_us.Percentile(99));
  state.counters["bare_acq_p99_us"] = static_cast<double>(bare.acquire_us.Percentile(99));
  state.counters["runner_cpu_us_per_cycle"] = per_cycle(runner);
  state.counters["bare_cpu_us_per_cycle"] = per_cycle(bare);
  state.counters["failures"] = static_cast<double>(runner.failures + bare.failures);
}

// One Append of a typical acquire event to a HistoryWriter streaming to a file.
void BM_HistoryAppend(benchmark::State& state) {
  HistoryWriter history;
  const std::string path = Env().dir() + "/append.jsonl";
  if (Status s = history.Open(path); !s.ok()) {
    state.SkipWithError(s.message().c_str());
    return;
  }
  Event e;
  e.impl = "token-lua";
  e.scenario = "contention";
  e.client = 3;
  e.key = LockKey("lockstorm:0123456789ab:", "token-lua", "contention", 0);
  e.type = OpType::kAcquire;
  e.invoke_us = 123456789;
  e.complete_us = 123456889;
  e.token = "0123456789abcdef0123456789abcdef01234567";
  e.ttl_ms = 500;
  e.valid_ms = 499;
  e.attempts = 1;
  for (auto _ : state) {
    e.op_id = 0;
    benchmark::DoNotOptimize(history.Append(e));
  }
  state.counters["events_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

int Register() {
  benchmark::RegisterBenchmark("BM_RunnerVsBare/token-lua", BM_RunnerVsBare,
                               std::string("token-lua"))
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime()
      ->Iterations(6);
  benchmark::RegisterBenchmark("BM_HistoryAppend", BM_HistoryAppend)
      ->Unit(benchmark::kNanosecond)
      ->UseRealTime();
  return 0;
}
const int registered = Register();

}  // namespace
}  // namespace lockstorm
