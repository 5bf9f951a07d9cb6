// Integration tests of KeyObserver against real redis-servers, and of FindGhostLocks over
// what it observes when the fault proxy drops the replies of a lock's acquire.
// Waits are bounded: KeyObserver::WaitFor re-checks its predicate after every poll round.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "harness/clock.h"
#include "harness/fault_proxy.h"
#include "harness/key_observer.h"
#include "harness/transport.h"
#include "impls/builtin.h"
#include "tests/test_util.h"

namespace lockstorm {
namespace {

using testing::TestServers;

constexpr int64_t kPollUs = 2'000;
constexpr int64_t kWaitUs = 10'000'000;  // bound on every wait for the observer
// The test's own commands (not the observer's).
constexpr int64_t kCmdTimeoutUs = 2'000'000;

// Polls `pred` every millisecond for at most `timeout_ms`; whether it became true.
template <typename Pred>
bool Eventually(Pred pred, int64_t timeout_ms = 10'000) {
  for (int64_t waited_ms = 0; waited_ms < timeout_ms; ++waited_ms) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return pred();
}

KeyObserverOptions Opts() {
  KeyObserverOptions o;
  o.poll_interval_us = kPollUs;
  // A healthy node must never time out (tests count errors): far above a loaded machine's
  // round trip. Tests of timeouts pause a node, which times out at any bound.
  o.command_timeout_us = 1'000'000;
  return o;
}

// The presences of `key` with `value`.
std::vector<KeyPresence> Find(const std::vector<KeyPresence>& ps, const std::string& key,
                              const std::string& value) {
  std::vector<KeyPresence> out;
  for (const KeyPresence& p : ps)
    if (p.key == key && p.value == value) out.push_back(p);
  return out;
}

// `calls` of `command` in node's INFO commandstats (commands run by scripts included), or -1.
int64_t CommandCalls(Transport* t, int node, const std::string& command) {
  Reply r = t->Call(node, {"INFO", "commandstats"}, 2'000'000);
  const std::string needle = "cmdstat_" + command + ":calls=";
  size_t pos = r.str.find(needle);
  if (r.type != Reply::Type::kString) return -1;
  if (pos == std::string::npos) return 0;
  return std::stoll(r.str.substr(pos + needle.size()));
}

bool SeenGone(const std::vector<KeyPresence>& ps, const std::string& key,
              const std::string& value) {
  for (const KeyPresence& p : ps)
    if (p.key == key && p.value == value && p.gone_us >= 0) return true;
  return false;
}

class KeyObserverITest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(servers_.status.ok()) << servers_.status.ToString();
    client_ = NewRedisTransport(servers_.set.addresses());
    for (int i = 0; i < servers_.set.size(); ++i) {
      ASSERT_EQ(client_->Call(i, {"PING"}, kCmdTimeoutUs).str, "PONG");
    }
  }
  Reply Cmd(int node, const Command& c) { return client_->Call(node, c, kCmdTimeoutUs); }

  TestServers servers_{2};
  std::unique_ptr<Transport> client_;
};

TEST_F(KeyObserverITest, SetPxAppearsThenExpires) {
  KeyObserver obs(servers_.set.addresses(), {"k", "other"}, Opts());
  ASSERT_TRUE(obs.Start().ok());
  const int64_t set_invoke_us = HistoryNowUs();
  // 1 s: a loaded machine may starve the observer for a while, and the key must still be seen
  // (and seen late in its life, below).
  constexpr int64_t kTtlMs = 1000;
  ASSERT_TRUE(Cmd(0, {"SET", "k", "v1", "PX", std::to_string(kTtlMs)}).is_ok_status());

  ASSERT_TRUE(obs.WaitFor([](const auto& ps) { return SeenGone(ps, "k", "v1"); }, kWaitUs))
      << "last error: " << obs.Stats().last_error;
  std::vector<KeyPresence> ps = Find(obs.Presences(), "k", "v1");
  ASSERT_EQ(ps.size(), 1u);
  const KeyPresence& p = ps[0];
  EXPECT_EQ(p.node, 0);
  // Seen after the SET was sent. (How soon after is the observer's scheduling: not asserted,
  // as no wall-clock upper bound is.)
  EXPECT_GE(p.first_seen_us, set_invoke_us);
  EXPECT_GT(p.pttl_ms_first, 0);
  EXPECT_LE(p.pttl_ms_first, kTtlMs);
  // Gone after expiry: not before the TTL after the SET was sent (1 ms of Redis' ms rounding).
  EXPECT_GE(p.gone_us, set_invoke_us + (kTtlMs - 1) * 1000);
  EXPECT_LT(p.first_seen_us, p.gone_us);
  EXPECT_LT(p.last_seen_us, p.gone_us);
  EXPECT_GE(p.last_seen_us, set_invoke_us + kTtlMs * 1000 * 2 / 3) << "seen for most of its TTL";
  // Nothing on the other node or the other key.
  for (const KeyPresence& q : obs.Presences()) EXPECT_EQ(q.key, "k");
  // The observer keeps polling: await its rounds (a loaded machine runs fewer per second than
  // one per 2 ms) rather than expecting a count within the TTL.
  EXPECT_TRUE(Eventually([&] { return obs.Stats().rounds > 100; }));
  obs.Stop();
  KeyObserverStats st = obs.Stats();
  EXPECT_EQ(st.errors, 0) << st.last_error;
  EXPECT_GE(st.polls, 2 * st.rounds);  // both nodes answered every completed round
  EXPECT_GT(st.rounds, 100);
}

TEST_F(KeyObserverITest, DelMakesItGone) {
  KeyObserver obs(servers_.set.addresses(), {"k"}, Opts());
  ASSERT_TRUE(obs.Start().ok());
  ASSERT_TRUE(Cmd(1, {"SET", "k", "held"}).is_ok_status());
  ASSERT_TRUE(obs.WaitFor([](const auto& ps) { return !Find(ps, "k", "held").empty(); }, kWaitUs));
  const int64_t del_invoke_us = HistoryNowUs();
  ASSERT_TRUE(Cmd(1, {"DEL", "k"}).is_integer(1));
  ASSERT_TRUE(obs.WaitFor([](const auto& ps) { return SeenGone(ps, "k", "held"); }, kWaitUs));
  std::vector<KeyPresence> ps = Find(obs.Presences(), "k", "held");
  ASSERT_EQ(ps.size(), 1u);
  EXPECT_EQ(ps[0].node, 1);
  EXPECT_EQ(ps[0].pttl_ms_first, -1);       // no TTL
  EXPECT_GE(ps[0].gone_us, del_invoke_us);  // (no wall-clock upper bound: scheduling)
  EXPECT_GT(ps[0].gone_us, ps[0].last_seen_us);
}

TEST_F(KeyObserverITest, ValueChangeYieldsTwoPresences) {
  KeyObserver obs(servers_.set.addresses(), {"k"}, Opts());
  ASSERT_TRUE(obs.Start().ok());
  ASSERT_TRUE(Cmd(0, {"SET", "k", "first", "PX", "10000"}).is_ok_status());
  ASSERT_TRUE(obs.WaitFor([](const auto& ps) { return !Find(ps, "k", "first").empty(); }, kWaitUs));
  ASSERT_TRUE(Cmd(0, {"SET", "k", "second", "PX", "10000"}).is_ok_status());
  ASSERT_TRUE(
      obs.WaitFor([](const auto& ps) { return !Find(ps, "k", "second").empty(); }, kWaitUs));
  obs.Stop();
  std::vector<KeyPresence> ps = obs.Presences();
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_EQ(ps[0].value, "first");
  EXPECT_EQ(ps[1].value, "second");
  EXPECT_EQ(ps[0].gone_us, ps[1].first_seen_us);
  EXPECT_EQ(ps[1].gone_us, -1);  // still present at Stop
  EXPECT_GE(ps[1].last_seen_us, ps[1].first_seen_us);
}

TEST_F(KeyObserverITest, KilledAndPausedNodesAreSkipped) {
  KeyObserverOptions o = Opts();  // its 1 s command timeout: node 0 (healthy) never times
                                  // out on a loaded machine; the paused node 1 does either way
  KeyObserver obs(servers_.set.addresses(), {"k"}, o);
  ASSERT_TRUE(obs.Start().ok());
  servers_.set.server(1)->Pause();
  ASSERT_TRUE(Cmd(0, {"SET", "k", "a"}).is_ok_status());
  ASSERT_TRUE(obs.WaitFor([](const auto& ps) { return !Find(ps, "k", "a").empty(); }, kWaitUs));
  // While node 1 is paused (timeouts, then backoff), node 0 is still polled: a value change
  // there is seen (awaited, bounded; how soon is scheduling, not asserted).
  const int64_t set_us = HistoryNowUs();
  ASSERT_TRUE(Cmd(0, {"SET", "k", "b"}).is_ok_status());
  ASSERT_TRUE(obs.WaitFor([](const auto& ps) { return !Find(ps, "k", "b").empty(); }, kWaitUs));
  EXPECT_GE(Find(obs.Presences(), "k", "b")[0].first_seen_us, set_us);
  EXPECT_GE(obs.Stats().errors_per_node[1], 1);
  servers_.set.server(1)->Kill();  // refused connections: fail fast, counted each round
  const int64_t errors_before = obs.Stats().errors_per_node[1];
  ASSERT_TRUE(Cmd(0, {"SET", "k", "c"}).is_ok_status());
  ASSERT_TRUE(obs.WaitFor([](const auto& ps) { return !Find(ps, "k", "c").empty(); }, kWaitUs));
  // Once its backoff ends, the dead node is probed (and fails) every round again.
  ASSERT_TRUE(Eventually([&] { return obs.Stats().errors_per_node[1] >= errors_before + 3; }))
      << obs.Stats().last_error;
  const int64_t stop_invoke_us = HistoryNowUs();
  obs.Stop();
  // Stop returns (bounded by about one command timeout; generous bound: no scheduling guess).
  EXPECT_LE(HistoryNowUs() - stop_invoke_us, kWaitUs) << "Stop bounded";
  KeyObserverStats st = obs.Stats();
  EXPECT_EQ(st.errors_per_node[0], 0) << st.last_error;
  EXPECT_NE(st.last_error.find("node 1"), std::string::npos) << st.last_error;
}

// One lock client whose link to node 0 goes through a fault proxy.
struct ProxiedLock {
  std::unique_ptr<FaultProxy> proxy;
  std::unique_ptr<Transport> transport;
  std::unique_ptr<Lock> lock;
};

// An acquire whose replies are dropped by the proxy: the SET is applied, the client's outcome
// is unknown. Returns the history event the runner would record for it.
Event GhostAcquire(Lock* lock, FaultProxy* proxy, const std::string& impl, const std::string& key,
                   int64_t ttl_ms) {
  EXPECT_TRUE(proxy->SetMode(LinkMode::kDropReplies).ok());
  Event e;
  e.op_id = 7;
  e.impl = impl;
  e.scenario = "one-way-replies";
  e.client = 0;
  e.key = key;
  e.type = OpType::kAcquire;
  e.ttl_ms = ttl_ms;
  e.invoke_us = HistoryNowUs();
  AcquireResult r = lock->Acquire(key, ttl_ms, 0);
  e.complete_us = HistoryNowUs();
  e.outcome = r.outcome;
  e.token = r.lease.token;
  EXPECT_TRUE(proxy->SetMode(LinkMode::kPass).ok());
  return e;
}

TEST(GhostLockITest, SingleNodeGhostLivesUntilItsTtl) {
  // fenced: one node, no cleanup on an unknown acquire. Its ghost stays until the TTL.
  TestServers servers(1);
  ASSERT_TRUE(servers.status.ok()) << servers.status.ToString();
  ProxiedLock c;
  ASSERT_TRUE(FaultProxy::Start(servers.set.addresses()[0], &c.proxy).ok());
  c.transport = NewRedisTransport({c.proxy->address()});
  ASSERT_EQ(c.transport->Call(0, {"PING"}, kCmdTimeoutUs).str, "PONG");
  LockEnv env;
  env.transport = c.transport.get();
  env.clock = RealClock();
  env.seed = 3;
  c.lock = NewFencedLock(env);

  constexpr int64_t kTtlMs = 600;
  KeyObserver obs(servers.set.addresses(), {"lk", "lk:fence"}, Opts());
  ASSERT_TRUE(obs.Start().ok());
  Event acq = GhostAcquire(c.lock.get(), c.proxy.get(), "fenced", "lk", kTtlMs);
  ASSERT_EQ(acq.outcome, Outcome::kUnknown);
  ASSERT_FALSE(acq.token.empty());
  const std::string token = acq.token;
  ASSERT_TRUE(obs.WaitFor([&](const auto& ps) { return SeenGone(ps, "lk", token); }, kWaitUs));
  obs.Stop();

  GhostReport r = FindGhostLocks(obs.Presences(), {acq}, "fenced", "one-way-replies");
  EXPECT_EQ(r.count, 1);
  EXPECT_EQ(r.ghost_tokens, 1);
  EXPECT_EQ(r.foreign, 0);
  EXPECT_EQ(r.other_keys, 1);  // the fence counter "lk:fence" is not a lock key
  ASSERT_EQ(r.examples.size(), 1u);
  EXPECT_EQ(r.examples[0].acquire_op, 7);
  EXPECT_EQ(r.examples[0].outcome, Outcome::kUnknown);
  // It lived its TTL: it was not gone before the TTL had run from the acquire's invocation
  // (1 ms of Redis' rounding). The sampled lifetime itself depends on when the observer ran
  // (late first sighting on a loaded machine), so it is not bounded here.
  std::vector<KeyPresence> ghost = Find(obs.Presences(), "lk", token);
  ASSERT_EQ(ghost.size(), 1u);
  EXPECT_GE(ghost[0].gone_us, acq.invoke_us + (kTtlMs - 1) * 1000);
  EXPECT_GT(r.max_lifetime_ms, 0);
}

TEST(GhostLockITest, RedlockCleansItsGhostsUp) {
  // Redlock over three nodes, every reply dropped: all SETs apply, the acquire is unknown,
  // and its cleanup (applied, replies dropped too) deletes the ghosts long before the TTL.
  constexpr int kNodes = 3;
  TestServers servers(kNodes);
  ASSERT_TRUE(servers.status.ok()) << servers.status.ToString();
  std::vector<std::unique_ptr<FaultProxy>> proxies(kNodes);
  std::vector<ServerAddress> via;
  for (int i = 0; i < kNodes; ++i) {
    ASSERT_TRUE(
        FaultProxy::Start(servers.set.addresses()[static_cast<size_t>(i)], &proxies[i]).ok());
    via.push_back(proxies[static_cast<size_t>(i)]->address());
  }
  std::unique_ptr<Transport> transport = NewRedisTransport(via);
  for (int i = 0; i < kNodes; ++i) {
    ASSERT_EQ(transport->Call(i, {"PING"}, kCmdTimeoutUs).str, "PONG");
  }
  LockEnv env;
  env.transport = transport.get();
  env.clock = RealClock();
  env.seed = 5;
  std::unique_ptr<Lock> lock = NewRedlockLock(env);
  std::unique_ptr<Transport> direct = NewRedisTransport(servers.set.addresses());

  // A long TTL: any ghost gone within TTL / 2 was deleted by the cleanup, not by expiry.
  constexpr int64_t kTtlMs = 60'000;
  KeyObserver obs(servers.set.addresses(), {"rk"}, Opts());
  ASSERT_TRUE(obs.Start().ok());
  // Each ghost lives about one node timeout (the acquire's duration): a loaded machine may run
  // the observer too late to see any. Repeat the ghost acquire (bounded) until one was seen.
  constexpr int kMaxAcquires = 5;
  std::vector<Event> acqs;
  for (int attempt = 0; attempt < kMaxAcquires; ++attempt) {
    for (auto& p : proxies) ASSERT_TRUE(p->SetMode(LinkMode::kDropReplies).ok());
    Event acq;
    acq.op_id = 9 + attempt;
    acq.impl = "redlock";
    acq.scenario = "one-way-replies";
    acq.key = "rk";
    acq.type = OpType::kAcquire;
    acq.invoke_us = HistoryNowUs();
    AcquireResult ar = lock->Acquire("rk", kTtlMs, 0);
    acq.complete_us = HistoryNowUs();
    acq.outcome = ar.outcome;
    acq.token = ar.lease.token;
    for (auto& p : proxies) ASSERT_TRUE(p->SetMode(LinkMode::kPass).ok());
    ASSERT_EQ(acq.outcome, Outcome::kUnknown) << ar.error;
    ASSERT_FALSE(acq.token.empty());
    acqs.push_back(acq);
    // The replies were dropped, so await on the servers that every SET and every cleanup's DEL
    // ran (one of each per node and attempt: nothing else sets or deletes here)...
    for (int i = 0; i < kNodes; ++i) {
      ASSERT_TRUE(Eventually([&] {
        return CommandCalls(direct.get(), i, "set") >= attempt + 1 &&
               CommandCalls(direct.get(), i, "del") >= attempt + 1;
      })) << "node "
          << i << ": set " << CommandCalls(direct.get(), i, "set") << ", del "
          << CommandCalls(direct.get(), i, "del");
    }
    // ...then until the observer completed a whole round after that, with no presence of the
    // token left open.
    const int64_t rounds_before = obs.Stats().rounds;
    const std::string token = acq.token;
    ASSERT_TRUE(Eventually([&] { return obs.Stats().rounds >= rounds_before + 2; }));
    ASSERT_TRUE(obs.WaitFor(
        [&](const auto& ps) {
          for (const KeyPresence& p : ps)
            if (p.value == token && p.gone_us < 0) return false;
          return true;
        },
        kWaitUs));
    bool seen = false;
    for (const KeyPresence& p : obs.Presences()) seen = seen || p.value == token;
    if (seen) break;
  }
  obs.Stop();

  GhostReport r = FindGhostLocks(obs.Presences(), acqs, "redlock", "one-way-replies");
  // The observer may miss ghosts shorter than a poll interval, so count is a lower bound.
  EXPECT_GE(r.count, 1) << "no ghost seen in " << acqs.size() << " acquires; the observer polls "
                        << "every 2 ms";
  EXPECT_LE(r.count, kNodes * static_cast<int64_t>(acqs.size()));
  EXPECT_EQ(r.still_present, 0);
  // Deleted by the cleanup, long before the TTL could expire it.
  EXPECT_LT(r.max_lifetime_ms, kTtlMs / 2.0);
  EXPECT_EQ(r.foreign, 0);
}

}  // namespace
}  // namespace lockstorm
