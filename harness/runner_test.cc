// The runner's concurrency (client threads, history, histograms, watchdog renewals) against an
// in-memory Redis: runs under TSan in CI. Integration tests do the same against real servers.
#include "harness/runner.h"

#include <gtest/gtest.h>

#include <thread>

#include "harness/checker.h"
#include "impls/registry.h"
#include "tests/fake_redis.h"

namespace lockstorm {
namespace {

RunStats RunFake(const std::string& impl_name, Scenario scenario, HistoryWriter* history,
                 FaultSchedule* faults = nullptr) {
  testing::FakeRedis redis;
  const ImplInfo* info = FindBuiltinImpl(impl_name);
  ImplUnderTest impl;
  impl.name = info->name;
  impl.make = [info](int, const LockEnv& env, const std::vector<ServerAddress>&) {
    return info->make(env);
  };
  std::atomic<bool> stop{false};
  Witness witness;
  RunContext ctx;
  ctx.servers = {ServerAddress{"127.0.0.1", 1}};
  ctx.history = history;
  ctx.witness = &witness;
  ctx.key_prefix = "t:";
  ctx.seed = 1;
  ctx.stop = &stop;
  ctx.new_transport = [&redis](const std::vector<ServerAddress>&) {
    return std::make_unique<testing::FakeTransport>(&redis);
  };
  ctx.faults = faults;
  return RunWorkload(impl, scenario, ctx);
}

Scenario Small(int64_t ttl_ms) {
  Scenario s = *FindBuiltinScenario("contention");
  s.workload.clients = 6;
  s.workload.duration_ms = 300;
  s.workload.ttl_ms = ttl_ms;
  s.workload.wait_ms = 2 * ttl_ms;
  return s;
}

TEST(RunnerTest, TokenLuaOverFakeRedisIsExclusiveAndCountsAddUp) {
  HistoryWriter history;
  RunStats st = RunFake("token-lua", Small(50), &history);
  EXPECT_GT(st.acquired, 0);
  EXPECT_EQ(st.acquires, st.acquired + st.contended + st.unknown);
  EXPECT_EQ(st.acquire_us.count(), static_cast<uint64_t>(st.acquired));
  EXPECT_EQ(st.releases_ok + st.releases_fail + st.releases_unknown, st.acquired);
  auto checks = CheckMutualExclusion(history.Snapshot());
  const CheckResult& c = checks.at({"token-lua", "contention"});
  EXPECT_EQ(c.violation_count, 0);
  // The liveness phase adds one probe per client after the workload.
  EXPECT_EQ(st.probes, Small(50).workload.clients);
  EXPECT_EQ(st.probes_ok, st.probes);
  EXPECT_EQ(c.acquires_ok, st.acquired + st.probes_ok);
}

TEST(RunnerTest, SetNxDelOverlapsWhenHoldsOverrun) {
  HistoryWriter history;
  Scenario s = Small(20);
  s.workload.holds = {{0.5, 0.0, 0.05}, {0.5, 1.2, 1.5}};  // half the holds overrun
  RunFake("set-nx-del", s, &history);
  auto checks = CheckMutualExclusion(history.Snapshot());
  EXPECT_GT(checks.at({"set-nx-del", "contention"}).violation_count, 0);
}

TEST(RunnerTest, WatchdogRenewalsAreRecordedAndKeepLongHoldsSafe) {
  HistoryWriter history;
  Scenario s = Small(30);
  s.workload.holds = {{1.0, 1.5, 2.0}};  // every hold outlives the TTL: the watchdog renews
  RunFake("watchdog", s, &history);
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
