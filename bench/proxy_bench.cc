// Overhead of the fault proxy in kPass: one PING / one SET NX PX round trip over one connection,
// direct to an embedded redis-server vs through a FaultProxy (private loop thread), both against
// the same server. Registered with BENCHMARK (lock_bench.cc owns main()).
//
// Placement follows LOCKSTORM_PIN as in lock_bench.cc (same|split|none, default split): this
// process — the client thread and the proxy's loop thread — on CPU 0, the server on CPU 1
// (split) or also on CPU 0 (same); none leaves placement to the scheduler. The proxy thread is
// created after pinning and inherits the creating thread's affinity.
//
//   build/lockstorm_bench --benchmark_filter=Proxy --benchmark_min_time=2s
#include <benchmark/benchmark.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "bench/bench_server.h"
#include "harness/fault_proxy.h"
#include "harness/placement.h"
#include "harness/redis_server.h"

namespace lockstorm {
namespace {

// One server and one passing proxy for all proxy benchmarks; created on first use (after
// main() started the reaper), stopped at exit by the static's destructor.
class ProxyBenchEnv {
 public:
  ProxyBenchEnv() : server_("proxybench") {
    Status s = FaultProxy::Start(server_.address(), &proxy_);  // loop thread inherits the pinning
    if (!s.ok()) {
      fprintf(stderr, "proxy_bench: %s\n", s.message().c_str());
      std::exit(4);
    }
  }
  ServerAddress direct() const { return server_.address(); }
  ServerAddress proxied() const { return proxy_->address(); }
  const std::string& pin() const { return server_.pin(); }

 private:
  PinnedBenchServer server_;
  std::unique_ptr<FaultProxy> proxy_;  // declared last: stopped before the server
};

ProxyBenchEnv& Env() {
  static ProxyBenchEnv env;
  return env;
}

void RoundTrips(benchmark::State& state, bool via_proxy, const Command& cmd) {
  ProxyBenchEnv& env = Env();
  auto t = NewRedisTransport({via_proxy ? env.proxied() : env.direct()});
  int64_t failures = 0;
  for (auto _ : state) {
    Reply r = t->Call(0, cmd, 1000000);
    if (r.unknown() || r.type == Reply::Type::kError) ++failures;
    benchmark::DoNotOptimize(r);
  }
  state.counters["failures"] = static_cast<double>(failures);
  state.SetLabel("pin=" + env.pin());
}

const Command kPing = {"PING"};
const Command kSetNx = {"SET", "lockstorm:bench:proxy", "v", "NX", "PX", "10000"};

void BM_PingDirect(benchmark::State& state) { RoundTrips(state, false, kPing); }
void BM_PingViaProxy(benchmark::State& state) { RoundTrips(state, true, kPing); }
void BM_SetNxPxDirect(benchmark::State& state) { RoundTrips(state, false, kSetNx); }
void BM_SetNxPxViaProxy(benchmark::State& state) { RoundTrips(state, true, kSetNx); }

BENCHMARK(BM_PingDirect)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_PingViaProxy)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_SetNxPxDirect)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_SetNxPxViaProxy)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace lockstorm
