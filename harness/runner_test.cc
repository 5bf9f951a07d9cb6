// The runner's concurrency (client threads, history, histograms, watchdog renewals) against an
// in-memory Redis: runs under TSan in CI. Integration tests do the same against real servers.
#include "harness/runner.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "harness/checker.h"
#include "impls/registry.h"
#include "tests/fake_redis.h"

namespace lockstorm {
namespace {

// Runs `impl` over an in-memory Redis; no liveness phase unless `liveness`.
RunStats RunFakeImpl(const ImplUnderTest& impl, const Scenario& scenario, HistoryWriter* history,
                     FaultSchedule* faults = nullptr, bool liveness = false,
                     int client_threads = 0) {
  testing::FakeRedis redis;
  std::atomic<bool> stop{false};
  Witness witness;
  RunContext ctx;
  ctx.servers = {ServerAddress{"127.0.0.1", 1}};
  ctx.history = history;
  ctx.witness = &witness;
  ctx.key_prefix = "t:";
  ctx.seed = 1;
  ctx.stop = &stop;
  ctx.liveness_phase = liveness;
  ctx.new_transport = [&redis](const std::vector<ServerAddress>&) {
    return std::make_unique<testing::FakeTransport>(&redis);
  };
  ctx.faults = faults;
  ctx.client_threads = client_threads;
  return RunWorkload(impl, scenario, ctx);
}

RunStats RunFake(const std::string& impl_name, Scenario scenario, HistoryWriter* history,
                 FaultSchedule* faults = nullptr, int client_threads = 0) {
  const ImplInfo* info = FindBuiltinImpl(impl_name);
  ImplUnderTest impl;
  impl.name = info->name;
  impl.make = [info](int, const LockEnv& env, const std::vector<ServerAddress>&) {
    return info->make(env);
  };
  return RunFakeImpl(impl, scenario, history, faults, /*liveness=*/true, client_threads);
}

Scenario Small(int64_t ttl_ms) {
  Scenario s = *FindBuiltinScenario("contention");
  s.workload.clients = 6;
  s.workload.duration_ms = 300;
  s.workload.ttl_ms = ttl_ms;
  s.workload.wait_ms = 2 * ttl_ms;
  return s;
}

// The runner's basic contracts, with the clients on OS threads (client_threads 0) and as
// fibers on one and on two threads (RunContext::client_threads).
class RunnerModes : public ::testing::TestWithParam<int> {};

INSTANTIATE_TEST_SUITE_P(ThreadsAndFibers, RunnerModes, ::testing::Values(0, 1, 2),
                         [](const ::testing::TestParamInfo<int>& p) {
                           return p.param == 0 ? std::string("Threads")
                                               : "FibersOn" + std::to_string(p.param);
                         });

TEST_P(RunnerModes, TokenLuaOverFakeRedisIsExclusiveAndCountsAddUp) {
  HistoryWriter history;
  Scenario s = Small(50);
  s.workload.clients = 24;
  RunStats st = RunFake("token-lua", s, &history, nullptr, GetParam());
  EXPECT_GT(st.acquired, 0);
  EXPECT_EQ(st.acquires, st.acquired + st.contended + st.unknown);
  EXPECT_EQ(st.acquire_us.count(), static_cast<uint64_t>(st.acquired));
  EXPECT_EQ(st.releases_ok + st.releases_fail + st.releases_unknown, st.acquired);
  auto checks = CheckMutualExclusion(history.Snapshot());
  const CheckResult& c = checks.at({"token-lua", "contention"});
  EXPECT_EQ(c.violation_count, 0);
  // The liveness phase adds one probe per client after the workload: every client ran.
  EXPECT_EQ(st.probes, 24);
  EXPECT_EQ(st.probes_ok, st.probes);
  EXPECT_EQ(c.acquires_ok, st.acquired + st.probes_ok);
  std::set<int> clients_that_acquired;
  for (const Event& e : history.Snapshot())
    if (e.type == OpType::kAcquire && e.outcome == Outcome::kOk)
      clients_that_acquired.insert(e.client);
  EXPECT_EQ(clients_that_acquired.size(), 24u);
}

TEST_P(RunnerModes, SetNxDelOverlapsWhenHoldsOverrun) {
  // The clients really interleave (on fibers too): set-nx-del's overlaps are caught.
  HistoryWriter history;
  Scenario s = Small(20);
  s.workload.holds = {{0.5, 0.0, 0.05}, {0.5, 1.2, 1.5}};  // half the holds overrun
  RunFake("set-nx-del", s, &history, nullptr, GetParam());
  auto checks = CheckMutualExclusion(history.Snapshot());
  EXPECT_GT(checks.at({"set-nx-del", "contention"}).violation_count, 0);
}

TEST_P(RunnerModes, WatchdogRenewalsAreRecordedAndKeepLongHoldsSafe) {
  // On fibers the watchdog's renewer is still an OS thread of its own.
  HistoryWriter history;
  Scenario s = Small(30);
  s.workload.holds = {{1.0, 1.5, 2.0}};  // every hold outlives the TTL: the watchdog renews
  RunFake("watchdog", s, &history, nullptr, GetParam());
  int64_t background_extends = 0;
  for (const Event& e : history.Snapshot())
    if (e.type == OpType::kExtend && e.outcome == Outcome::kOk) ++background_extends;
  EXPECT_GT(background_extends, 0);
  auto checks = CheckMutualExclusion(history.Snapshot());
  EXPECT_EQ(checks.at({"watchdog", "contention"}).violation_count, 0);
}

TEST(RunnerTest, SameSeedSameRandomChoices) {
  // The workload's own choices (keys, holds) derive from the seed; tokens too.
  HistoryWriter h1, h2;
  Scenario s = Small(50);
  s.workload.clients = 1;
  s.workload.duration_ms = 100;
  RunFake("token-lua", s, &h1);
  RunFake("token-lua", s, &h2);
  auto a = h1.Snapshot(), b = h2.Snapshot();
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(a[0].token, b[0].token);
}

// A fault schedule that posts its client faults at once from its own thread (as the nemesis
// does), and counts Begin/HealAll.
class PostingSchedule : public FaultSchedule {
 public:
  explicit PostingSchedule(std::vector<ClientFaultRequest> reqs) : reqs_(std::move(reqs)) {}
  void Begin(ClientControl* c, int64_t) override {
    ++begins;
    thread_ = std::thread([this, c] {
      for (const ClientFaultRequest& r : reqs_) c->Request(r);  // expires_us 0: never lapse
      c->ClientClock(0)->Jump(1000);  // a client clock fault from another thread
    });
  }
  void HealAll() override {
    ++heals;
    if (thread_.joinable()) thread_.join();
  }
  int begins = 0, heals = 0;

 private:
  std::vector<ClientFaultRequest> reqs_;
  std::thread thread_;
};

TEST(RunnerTest, ClientFaultsArePausesAndCrashesRecordedInTheHistory) {
  HistoryWriter history;
  Scenario s = Small(50);
  s.workload.holds = {{1.0, 0.1, 0.2}};
  ClientFaultRequest pause{ClientFault::kPause, {}, 30000, 0, "p"};
  ClientFaultRequest crash{ClientFault::kCrash, {}, 50000, 0, "c"};
  PostingSchedule sched({pause, crash});
  RunStats st = RunFake("watchdog", s, &history, &sched);
  EXPECT_EQ(sched.begins, 1);
  EXPECT_EQ(sched.heals, 1);
  EXPECT_EQ(st.pauses, 1);
  EXPECT_EQ(st.crashes, 1);
  int pauses = 0, crashes = 0;
  for (const Event& e : history.Snapshot()) {
    if (e.type == OpType::kFault && e.client >= 0) {
      ++pauses;
      EXPECT_GE(e.complete_us - e.invoke_us, 30000);  // the stall lasted its duration
    }
    if (e.type == OpType::kCrash) {
      ++crashes;
      EXPECT_NE(e.note.find("died holding"), std::string::npos) << e.note;
      EXPECT_EQ(e.ttl_ms, 50 + 1000);  // the recovery bound: ttl + 1000
    }
  }
  EXPECT_EQ(pauses, 1);
  EXPECT_EQ(crashes, 1);
  // The crashed client restarted: every client probed in the liveness phase, and acquired.
  EXPECT_EQ(st.probes, s.workload.clients);
  EXPECT_EQ(st.probes_ok, st.probes);
}

TEST(RunnerTest, CrashMidAcquireLeavesSetnxExpireKeyWithoutTtl) {
  HistoryWriter history;
  // No hold overruns its TTL: an overrunning setnx-expire holder's DEL would delete the
  // crashed client's key (it was free when the crasher's SETNX ran) and let the probes pass.
  Scenario s = Small(200);
  s.workload.holds = {{1.0, 0.0, 0.05}};
  PostingSchedule sched({ClientFaultRequest{ClientFault::kCrashMidAcquire, {}, 0, 0, "m"}});
  RunStats st = RunFake("setnx-expire", s, &history, &sched);
  EXPECT_EQ(st.crashes, 1);
  auto checks = CheckHistory(history.Snapshot());
  const CheckResult& c = checks.at({"setnx-expire", "contention"});
  // The key never expires: the probes fail and the crash is never recovered from.
  EXPECT_EQ(c.liveness.verdict, Verdict::kInvalid);
  EXPECT_EQ(c.liveness.probes_ok, 0);
  EXPECT_GT(c.liveness.violation_count, 0);
}

}  // namespace
}  // namespace lockstorm

namespace lockstorm {
namespace {

// A lock that stalls once, inside its `stall_at`-th acquire, for `stall_us` (a GC pause of
// the client): the rest is token-lua.
class StallingLock : public Lock {
 public:
  StallingLock(std::unique_ptr<Lock> inner, int stall_at, int64_t stall_us)
      : inner_(std::move(inner)), stall_at_(stall_at), stall_us_(stall_us) {}
  AcquireResult Acquire(const std::string& key, int64_t ttl_ms, int64_t wait_ms) override {
    if (++acquires_ == stall_at_) RealClock()->SleepUs(stall_us_);
    return inner_->Acquire(key, ttl_ms, wait_ms);
  }
  ReleaseResult Release(const Lease& lease) override { return inner_->Release(lease); }
  ExtendResult Extend(const Lease& lease, int64_t ttl_ms) override {
    return inner_->Extend(lease, ttl_ms);
  }

 private:
  std::unique_ptr<Lock> inner_;
  int stall_at_;
  int64_t stall_us_;
  int acquires_ = 0;
};

ImplUnderTest TokenLua(int stall_at = 0, int64_t stall_us = 0) {
  const ImplInfo* info = FindBuiltinImpl("token-lua");
  ImplUnderTest impl;
  impl.name = info->name;
  impl.make = [info, stall_at, stall_us](int, const LockEnv& env,
                                         const std::vector<ServerAddress>&) {
    std::unique_ptr<Lock> l = info->make(env);
    if (stall_at == 0) return l;
    return std::unique_ptr<Lock>(std::make_unique<StallingLock>(std::move(l), stall_at, stall_us));
  };
  return impl;
}

// Uncontended (a key per client), no holds: the lock's own speed decides.
Scenario Uncontended(int clients, int64_t duration_ms, double rate_per_s) {
  Scenario s = *FindBuiltinScenario("contention");
  s.workload.clients = clients;
  s.workload.keys = clients * 64;
  s.workload.duration_ms = duration_ms;
  s.workload.ttl_ms = 1000;
  s.workload.holds = {{1.0, 0.0, 0.0}};
  s.workload.rate_per_s = rate_per_s;
  return s;
}

TEST(RunnerOpenLoopTest, CyclesFollowTheScheduleNotTheLocksSpeed) {
  // In one run of each: the closed loop goes as fast as the in-memory Redis allows; the open
  // loop starts at most rate x duration cycles (plus one in flight per client).
  HistoryWriter h1, h2;
  RunStats closed = RunFakeImpl(TokenLua(), Uncontended(2, 400, 0), &h1);
  RunStats open = RunFakeImpl(TokenLua(), Uncontended(2, 400, 100), &h2);
  EXPECT_LE(open.acquires, 40 + 2);
  EXPECT_GE(open.acquires, 1);
  EXPECT_GT(closed.acquires, 2 * open.acquires);  // the schedule, not the lock, set the pace
  EXPECT_EQ(open.time_to_acquire_us.count(), static_cast<uint64_t>(open.acquired));
  EXPECT_EQ(open.cycle_us.count(), static_cast<uint64_t>(open.releases_ok));
}

TEST(RunnerOpenLoopTest, AStalledClientsBacklogCountsInTimeToAcquire) {
  // One client, a cycle every 2 ms; its 5th acquire stalls 60 ms. The stalled acquire alone
  // is slow in service time (acquire_us); measured from their intended starts, the cycles
  // queued behind it are slow too (coordinated omission corrected).
  HistoryWriter history;
  RunStats st = RunFakeImpl(TokenLua(5, 60000), Uncontended(1, 400, 500), &history);
  ASSERT_GE(st.acquired, 20);
  int64_t slow_service = 0, slow_from_intent = 0;
  for (const Event& e : history.Snapshot()) {
    if (e.type == OpType::kAcquire && e.outcome == Outcome::kOk &&
        e.complete_us - e.invoke_us >= 20000)
      ++slow_service;
  }
  // Count cycles whose time-to-acquire was >= 20 ms via the histogram's ranks.
  const uint64_t n = st.time_to_acquire_us.count();
  for (uint64_t rank = 1; rank <= n; ++rank) {
    const double p = 100.0 * static_cast<double>(rank) / static_cast<double>(n);
    if (st.time_to_acquire_us.Percentile(p) >= 20000) ++slow_from_intent;
  }
  EXPECT_EQ(slow_service, 1);
  // The stall covers ~30 slots; at least the next 10 cycles started >= 20 ms late.
  EXPECT_GE(slow_from_intent, 10);
  EXPECT_GE(st.time_to_acquire_us.max(), 60000);
}

TEST(RunnerTest, NodeHealthPingsEveryNodeDuringTheRun) {
  HistoryWriter history;
  RunStats st = RunFakeImpl(TokenLua(), Uncontended(2, 300, 0), &history);
  ASSERT_EQ(st.node_health.size(), 1u);
  EXPECT_EQ(st.node_health[0].address, "127.0.0.1:1");
  EXPECT_GE(st.node_health[0].pings, 1);
  EXPECT_EQ(st.node_health[0].errors, 0);
  EXPECT_EQ(st.node_health[0].ping_us.count(), static_cast<uint64_t>(st.node_health[0].pings));
  // Throughput's window is the duration; acquires completed in it are a subset.
  EXPECT_GT(st.window_us, 0);
  EXPECT_LE(st.window_us, st.elapsed_us);
  EXPECT_LE(st.acquired_in_window, st.acquired);
}

}  // namespace
}  // namespace lockstorm
