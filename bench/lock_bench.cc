// Uncontended acquire+release cycle per built-in lock against embedded redis-servers, plus a
// bare hiredis loop doing the same commands (the floor lockstorm's own overhead is measured
// against). One client, one key. CPU placement: LOCKSTORM_PIN=same|split|none (default split:
// this process on CPU 0, the servers on CPU 1); the placement is printed in the context.
//
//   build/lockstorm_bench --benchmark_min_time=2
#include <benchmark/benchmark.h>
#include <hiredis/hiredis.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "harness/placement.h"
#include "harness/redis_server.h"
#include "impls/common.h"
#include "impls/registry.h"

namespace lockstorm {
namespace {

// Five servers started once for the whole binary, stopped at exit.
struct Servers {
  std::string dir;
  ServerSet set;
  std::string pin;
  Servers() {
    char tmpl[] = "/tmp/lockstorm-bench-XXXXXX";
    dir = mkdtemp(tmpl);
    Status s = set.StartEmbedded(dir, 5, {});
    if (!s.ok()) {
      fprintf(stderr, "lockstorm_bench: %s\n", s.message().c_str());
      std::exit(4);
    }
    const char* p = getenv("LOCKSTORM_PIN");
    pin = p ? p : "split";
    if (pin != "none") {
      PinProcess(getpid(), ClientCpu(pin));
      for (int i = 0; i < set.size(); ++i) PinProcess(set.server(i)->pid(), ServerCpu(pin));
    }
    benchmark::AddCustomContext("pin", pin);
    // Where this process and the servers may run, as the kernel reports it after pinning.
    benchmark::AddCustomContext("lockstorm_cpus", CpuListOf(getpid()));
    benchmark::AddCustomContext("server_cpus", CpuListOf(set.server(0)->pid()));
    benchmark::AddCustomContext("redis_version", set.RedisVersion());
  }
  ~Servers() {
    set.StopAll();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

Servers& GetServers() {
  static Servers* s = new Servers();
  return *s;
}

// One client of a built-in lock over the shared servers: its transport and the lock.
struct BenchClient {
  std::unique_ptr<Transport> transport;
  std::unique_ptr<Lock> lock;
};

BenchClient MakeClient(const std::string& impl_name, uint64_t seed) {
  const ImplInfo* info = FindBuiltinImpl(impl_name);
  std::vector<ServerAddress> addrs = GetServers().set.addresses();
  if (!info->multi_node) addrs.resize(1);
  BenchClient c;
  c.transport = NewRedisTransport(addrs);
  LockEnv env;
  env.transport = c.transport.get();
  env.clock = RealClock();
  env.seed = seed;
  env.client_id = "bench";
  c.lock = info->make(env);
  return c;
}

void BM_LockCycle(benchmark::State& state, std::string impl_name) {
  BenchClient client = MakeClient(impl_name, 42);
  Lock* lock = client.lock.get();
  const std::string key = "lockstorm:bench:" + impl_name;
  int64_t failures = 0;
  for (auto _ : state) {
    AcquireResult a = lock->Acquire(key, 10000, 0);
    if (a.outcome != Outcome::kOk) {
      ++failures;
      continue;
    }
    lock->Release(a.lease);
  }
  state.counters["cycles_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["failures"] = static_cast<double>(failures);
}

// Acquire alone (manual timing; the release between iterations is not counted): the figure
// that compares Redlock's concurrent fan-out over 5 nodes with a single-node acquire.
void BM_Acquire(benchmark::State& state, std::string impl_name) {
  BenchClient client = MakeClient(impl_name, 43);
  Lock* lock = client.lock.get();
  const std::string key = "lockstorm:bench:acquire:" + impl_name;
  for (auto _ : state) {
    const int64_t t0 = RealClock()->NowUs();
    AcquireResult a = lock->Acquire(key, 10000, 0);
    state.SetIterationTime(static_cast<double>(RealClock()->NowUs() - t0) * 1e-6);
    if (a.outcome == Outcome::kOk) lock->Release(a.lease);
  }
}

// The same two commands as token-lua (SET NX PX + compare-and-delete EVAL) over plain hiredis.
void BM_BareHiredisCycle(benchmark::State& state) {
  Servers& servers = GetServers();
  ServerAddress a = servers.set.addresses()[0];
  redisContext* c = redisConnect(a.host.c_str(), a.port);
  int64_t failures = 0;
  for (auto _ : state) {
    auto* r = static_cast<redisReply*>(redisCommand(c, "SET lockstorm:bench:bare tok NX PX 10000"));
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    if (!ok) {
      ++failures;
      continue;
    }
    r = static_cast<redisReply*>(
        redisCommand(c, "EVAL %s 1 lockstorm:bench:bare tok", kCompareAndDeleteLua));
    freeReplyObject(r);
  }
  redisFree(c);
  state.counters["cycles_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["failures"] = static_cast<double>(failures);
}

// One uncontended SET NX PX round trip through lockstorm's transport, to set beside
// `redis-benchmark -c 1 SET k v NX PX 10000`.
void BM_TransportSetNxPx(benchmark::State& state) {
  Servers& servers = GetServers();
  auto t = NewRedisTransport({servers.set.addresses()[0]});
  for (auto _ : state) {
    Reply r = t->Call(0, {"SET", "lockstorm:bench:setnx", "v", "NX", "PX", "10000"}, 1000000);
    benchmark::DoNotOptimize(r);
  }
}

int Register() {
  for (const ImplInfo& i : BuiltinImpls()) {
    benchmark::RegisterBenchmark(("BM_LockCycle/" + i.name).c_str(), BM_LockCycle, i.name)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
  for (const char* name : {"token-lua", "redlock"}) {
    benchmark::RegisterBenchmark((std::string("BM_Acquire/") + name).c_str(), BM_Acquire,
                                 std::string(name))
        ->Unit(benchmark::kMicrosecond)
        ->UseManualTime();
  }
  benchmark::RegisterBenchmark("BM_BareHiredisCycle", BM_BareHiredisCycle)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_TransportSetNxPx", BM_TransportSetNxPx)
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
  return 0;
}

}  // namespace
}  // namespace lockstorm

int main(int argc, char** argv) {
  lockstorm::Register();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  lockstorm::StartReaper();
  lockstorm::GetServers();
  benchmark::RunSpecifiedBenchmarks();
  delete &lockstorm::GetServers();
  benchmark::Shutdown();
  return 0;
}
