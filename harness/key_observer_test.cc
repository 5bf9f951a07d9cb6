// Unit tests of FindGhostLocks (pure) and of KeyObserver's interval bookkeeping over an
// in-memory transport (no sockets, no redis-server).
#include "harness/key_observer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lockstorm {
namespace {

Event Acquire(int64_t op, const std::string& impl, const std::string& key, const std::string& token,
              Outcome outcome) {
  Event e;
  e.op_id = op;
  e.impl = impl;
  e.scenario = "s";
  e.client = static_cast<int>(op % 7);
  e.key = key;
  e.type = OpType::kAcquire;
  e.invoke_us = op * 1000;
  e.complete_us = op * 1000 + 500;
  e.outcome = outcome;
  e.token = token;
  return e;
}

KeyPresence Seen(int node, const std::string& key, const std::string& value, int64_t first_us,
                 int64_t last_us, int64_t gone_us) {
  KeyPresence p;
  p.node = node;
  p.key = key;
  p.value = value;
  p.first_seen_us = first_us;
  p.last_seen_us = last_us;
  p.gone_us = gone_us;
  p.pttl_ms_first = 1000;
  return p;
}

TEST(FindGhostLocksTest, OkTokenIsLegitNotGhost) {
  std::vector<Event> events = {Acquire(1, "a", "k", "tok-ok", Outcome::kOk)};
  std::vector<KeyPresence> seen = {Seen(0, "k", "tok-ok", 10'000, 50'000, 52'000)};
  GhostReport r = FindGhostLocks(seen, events, "a", "s");
  EXPECT_EQ(r.count, 0);
  EXPECT_EQ(r.legit, 1);
  EXPECT_EQ(r.foreign, 0);
  EXPECT_EQ(r.examined, 1);
  EXPECT_TRUE(r.examples.empty());
  EXPECT_EQ(r.max_lifetime_ms, 0);
}

TEST(FindGhostLocksTest, UnknownTokenIsGhostWithLifetimeToGone) {
  std::vector<Event> events = {Acquire(1, "a", "k", "tok-ok", Outcome::kOk),
                               Acquire(2, "a", "k", "tok-unk", Outcome::kUnknown)};
  // Seen from 100 ms to 1.3 s, gone at 1.302 s: lifetime = gone - first seen = 1202 ms.
  std::vector<KeyPresence> seen = {Seen(0, "k", "tok-ok", 10'000, 50'000, 52'000),
                                   Seen(0, "k", "tok-unk", 100'000, 1'300'000, 1'302'000)};
  GhostReport r = FindGhostLocks(seen, events, "a", "s");
  EXPECT_EQ(r.count, 1);
  EXPECT_EQ(r.ghost_tokens, 1);
  EXPECT_EQ(r.legit, 1);
  EXPECT_EQ(r.still_present, 0);
  EXPECT_DOUBLE_EQ(r.max_lifetime_ms, 1202.0);
  EXPECT_DOUBLE_EQ(r.p50_lifetime_ms, 1202.0);
  ASSERT_EQ(r.examples.size(), 1u);
  const GhostLock& g = r.examples[0];
  EXPECT_EQ(g.node, 0);
  EXPECT_EQ(g.key, "k");
  EXPECT_EQ(g.token, "tok-unk");
  EXPECT_EQ(g.acquire_op, 2);
  EXPECT_EQ(g.outcome, Outcome::kUnknown);
  EXPECT_EQ(g.client, 2);
  EXPECT_EQ(g.first_seen_us, 100'000);
  EXPECT_FALSE(g.still_present);
  ASSERT_EQ(r.per_node.size(), 1u);
  EXPECT_EQ(r.per_node[0], 1);
}

TEST(FindGhostLocksTest, FailTokenIsGhostAndStillPresentUsesLastSeen) {
  std::vector<Event> events = {Acquire(3, "a", "k", "tok-fail", Outcome::kFail)};
  std::vector<KeyPresence> seen = {Seen(2, "k", "tok-fail", 1'000'000, 1'040'000, -1)};
  GhostReport r = FindGhostLocks(seen, events, "a", "s");
  EXPECT_EQ(r.count, 1);
  EXPECT_EQ(r.still_present, 1);
  EXPECT_DOUBLE_EQ(r.max_lifetime_ms, 40.0);
  ASSERT_EQ(r.examples.size(), 1u);
  EXPECT_EQ(r.examples[0].outcome, Outcome::kFail);
  EXPECT_TRUE(r.examples[0].still_present);
  ASSERT_EQ(r.per_node.size(), 3u);
  EXPECT_EQ(r.per_node[2], 1);
  EXPECT_EQ(r.per_node[0], 0);
}

TEST(FindGhostLocksTest, ForeignValueCountedNotGhost) {
  std::vector<Event> events = {Acquire(1, "a", "k", "tok-unk", Outcome::kUnknown)};
  std::vector<KeyPresence> seen = {Seen(0, "k", "written-by-someone-else", 0, 10, 20),
                                   Seen(0, "k", "tok-unk", 30, 40, 50)};
  GhostReport r = FindGhostLocks(seen, events, "a", "s");
  EXPECT_EQ(r.foreign, 1);
  EXPECT_EQ(r.count, 1);
  EXPECT_EQ(r.other_runs, 0);
}

TEST(FindGhostLocksTest, OtherImplIgnored) {
  // Impl b's unknown acquire left its token on b's key, and (artificially) on a's key too.
  std::vector<Event> events = {Acquire(1, "a", "a:k", "tok-a", Outcome::kOk),
                               Acquire(2, "b", "b:k", "tok-b", Outcome::kUnknown)};
  std::vector<KeyPresence> seen = {Seen(0, "b:k", "tok-b", 0, 1000, 2000),
                                   Seen(0, "a:k", "tok-b", 0, 1000, 2000)};
  GhostReport a = FindGhostLocks(seen, events, "a", "s");
  EXPECT_EQ(a.count, 0);
  EXPECT_EQ(a.other_keys, 1);  // b:k is not a's key
  EXPECT_EQ(a.examined, 1);
  EXPECT_EQ(a.other_runs, 1);  // b's token on a's key: not a's ghost, not foreign either
  EXPECT_EQ(a.foreign, 0);
  // The same presences judged for b: its own key holds its ghost.
  GhostReport b = FindGhostLocks(seen, events, "b", "s");
  EXPECT_EQ(b.count, 1);
  EXPECT_EQ(b.other_keys, 1);
  // Same impl, other scenario: nothing of it is examined.
  GhostReport other = FindGhostLocks(seen, events, "b", "other-scenario");
  EXPECT_EQ(other.examined, 0);
  EXPECT_EQ(other.count, 0);
}

TEST(FindGhostLocksTest, StatisticsExamplesAndDistinctTokens) {
  // One unknown Redlock-style acquire seen on three nodes (3 ghosts, 1 token), lifetimes 2, 4
  // and 30 ms, and another acquire's ghost of 10 ms.
  std::vector<Event> events = {Acquire(1, "a", "k", "t1", Outcome::kUnknown),
                               Acquire(2, "a", "k", "t2", Outcome::kFail)};
  std::vector<KeyPresence> seen = {
      Seen(0, "k", "t1", 0, 0, 2'000), Seen(1, "k", "t1", 0, 2'000, 4'000),
      Seen(2, "k", "t1", 0, 28'000, 30'000), Seen(1, "k", "t2", 50'000, 58'000, 60'000)};
  GhostReport r = FindGhostLocks(seen, events, "a", "s", /*max_examples=*/2);
  EXPECT_EQ(r.count, 4);
  EXPECT_EQ(r.ghost_tokens, 2);
  EXPECT_DOUBLE_EQ(r.max_lifetime_ms, 30.0);
  EXPECT_DOUBLE_EQ(r.p50_lifetime_ms, 4.0);  // sorted 2, 4, 10, 30: rank ceil(4/2) = 2
  ASSERT_EQ(r.per_node.size(), 3u);
  EXPECT_EQ(r.per_node[0], 1);
  EXPECT_EQ(r.per_node[1], 2);
  EXPECT_EQ(r.per_node[2], 1);
  ASSERT_EQ(r.examples.size(), 2u);  // the two longest, longest first
  EXPECT_DOUBLE_EQ(r.examples[0].lifetime_ms, 30.0);
  EXPECT_EQ(r.examples[0].node, 2);
  EXPECT_DOUBLE_EQ(r.examples[1].lifetime_ms, 10.0);
  EXPECT_EQ(r.examples[1].acquire_op, 2);
}

TEST(FindGhostLocksTest, UntokenedAndDuplicateTokens) {
  // An unknown acquire that recorded no token cannot be matched: counted, and its key's
  // value is foreign. An empty value never matches it. A token carried by an ok and an
  // unknown acquire counts as ok.
  std::vector<Event> events = {
      Acquire(1, "a", "k", "", Outcome::kUnknown), Acquire(2, "a", "k", "", Outcome::kOk),
      Acquire(3, "a", "k", "dup", Outcome::kUnknown), Acquire(4, "a", "k", "dup", Outcome::kOk)};
  std::vector<KeyPresence> seen = {Seen(0, "k", "", 0, 10, 20), Seen(0, "k", "dup", 30, 40, 50)};
  GhostReport r = FindGhostLocks(seen, events, "a", "s");
  EXPECT_EQ(r.untokened_acquires, 1);
  EXPECT_EQ(r.foreign, 1);
  EXPECT_EQ(r.legit, 1);
  EXPECT_EQ(r.count, 0);
}

TEST(FindGhostLocksTest, Json) {
  std::vector<Event> events = {Acquire(5, "a", "k", "t", Outcome::kUnknown)};
  GhostReport r = FindGhostLocks({Seen(1, "k", "t", 1000, 3000, 5000)}, events, "a", "s");
  nlohmann::json j = GhostReportToJson(r);
  EXPECT_EQ(j["impl"], "a");
  EXPECT_EQ(j["scenario"], "s");
  EXPECT_EQ(j["count"], 1);
  EXPECT_EQ(j["foreign"], 0);
  EXPECT_DOUBLE_EQ(j["max_lifetime_ms"].get<double>(), 4.0);
  EXPECT_EQ(j["per_node"], nlohmann::json::array({0, 1}));
  ASSERT_EQ(j["examples"].size(), 1u);
  EXPECT_EQ(j["examples"][0]["outcome"], "unknown");
  EXPECT_EQ(j["examples"][0]["acquire_op"], 5);
  EXPECT_EQ(j["examples"][0]["token"], "t");
  EXPECT_EQ(j["examples"][0]["still_present"], false);
}

// Nodes kept in memory that answer the observer's EVAL (value, pttl per key). A node can be
// made to fail (I/O error). Thread-safe: the test thread edits, the observer thread reads.
struct FakeNodes {
  std::mutex mu;
  std::vector<std::map<std::string, std::string>> data;
  std::vector<bool> down;
  explicit FakeNodes(int n) : data(static_cast<size_t>(n)), down(static_cast<size_t>(n), false) {}

  void Set(int node, const std::string& key, const std::string& value) {
    std::lock_guard<std::mutex> lock(mu);
    data[static_cast<size_t>(node)][key] = value;
  }
  void Del(int node, const std::string& key) {
    std::lock_guard<std::mutex> lock(mu);
    data[static_cast<size_t>(node)].erase(key);
  }
  void SetDown(int node, bool d) {
    std::lock_guard<std::mutex> lock(mu);
    down[static_cast<size_t>(node)] = d;
  }
};

class FakeTransport : public Transport {
 public:
  explicit FakeTransport(FakeNodes* nodes) : nodes_(nodes) {}
  int node_count() const override { return static_cast<int>(nodes_->data.size()); }
  Reply Call(int node, const Command& cmd, int64_t timeout_us) override {
    return CallMany({node}, cmd, timeout_us)[0];
  }
  std::vector<Reply> CallMany(const std::vector<int>& nodes, const Command& cmd, int64_t) override {
    std::lock_guard<std::mutex> lock(nodes_->mu);
    std::vector<Reply> out;
    for (int n : nodes) {
      if (nodes_->down[static_cast<size_t>(n)]) {
        out.push_back(Reply::IoError("node down"));
        continue;
      }
      Reply arr;
      arr.type = Reply::Type::kArray;
      const int count = std::stoi(cmd.at(2));
      for (int i = 0; i < count; ++i) {
        const auto& m = nodes_->data[static_cast<size_t>(n)];
        auto it = m.find(cmd.at(3 + static_cast<size_t>(i)));
        Reply v;
        if (it != m.end()) v = {Reply::Type::kString, it->second, 0, {}};
        arr.elements.push_back(v);
        arr.elements.push_back({Reply::Type::kInteger, "", it == m.end() ? -2 : -1, {}});
      }
      out.push_back(arr);
    }
    return out;
  }

 private:
  FakeNodes* nodes_;
};

constexpr int64_t kWaitUs = 5'000'000;

// Polls `pred` every millisecond for at most `timeout_ms`; whether it became true.
template <typename Pred>
bool Eventually(Pred pred, int64_t timeout_ms = 5000) {
  for (int64_t waited_ms = 0; waited_ms < timeout_ms; ++waited_ms) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return pred();
}

KeyObserver::TransportFactory Factory(FakeNodes* nodes) {
  return [nodes] { return std::make_unique<FakeTransport>(nodes); };
}

TEST(KeyObserverTest, StartRejectsBadArguments) {
  FakeNodes nodes(1);
  EXPECT_EQ(KeyObserver(Factory(&nodes), {}).Start().code(), Status::Code::kInvalidArgument);
  KeyObserverOptions zero;
  zero.poll_interval_us = 0;
  EXPECT_EQ(KeyObserver(Factory(&nodes), {"k"}, zero).Start().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(
      KeyObserver(KeyObserver::TransportFactory([] { return nullptr; }), {"k"}).Start().code(),
      Status::Code::kInvalidArgument);
  KeyObserver twice(Factory(&nodes), {"k"});
  ASSERT_TRUE(twice.Start().ok());
  EXPECT_EQ(twice.Start().code(), Status::Code::kInternal);
}

TEST(KeyObserverTest, IntervalsPerNodeAndValue) {
  FakeNodes nodes(2);
  KeyObserverOptions opts;
  opts.poll_interval_us = 500;
  KeyObserver obs(Factory(&nodes), {"k1", "k2"}, opts);
  ASSERT_TRUE(obs.Start().ok());

  nodes.Set(0, "k1", "a");
  ASSERT_TRUE(obs.WaitFor([](const auto& ps) { return ps.size() == 1; }, kWaitUs));
  nodes.Set(0, "k1", "b");  // another value: a ends, b begins
  ASSERT_TRUE(obs.WaitFor([](const auto& ps) { return ps.size() == 2; }, kWaitUs));
  nodes.Set(1, "k2", "c");
  ASSERT_TRUE(obs.WaitFor([](const auto& ps) { return ps.size() == 3; }, kWaitUs));
  nodes.Del(1, "k2");
  ASSERT_TRUE(
      obs.WaitFor([](const auto& ps) { return ps.size() == 3 && ps[2].gone_us >= 0; }, kWaitUs));
  obs.Stop();

  std::vector<KeyPresence> ps = obs.Presences();
  ASSERT_EQ(ps.size(), 3u);
  EXPECT_EQ(ps[0].node, 0);
  EXPECT_EQ(ps[0].key, "k1");
  EXPECT_EQ(ps[0].value, "a");
  EXPECT_EQ(ps[0].pttl_ms_first, -1);
  EXPECT_EQ(ps[1].value, "b");
  EXPECT_EQ(ps[0].gone_us, ps[1].first_seen_us);  // the poll that saw b ended a
  EXPECT_LE(ps[0].first_seen_us, ps[0].last_seen_us);
  EXPECT_LT(ps[0].last_seen_us, ps[0].gone_us);
  EXPECT_EQ(ps[1].gone_us, -1);  // still present at Stop
  EXPECT_EQ(ps[2].node, 1);
  EXPECT_EQ(ps[2].key, "k2");
  EXPECT_EQ(ps[2].value, "c");
  EXPECT_GT(ps[2].gone_us, ps[2].first_seen_us);
  KeyObserverStats st = obs.Stats();
  EXPECT_GT(st.rounds, 0);
  EXPECT_EQ(st.errors, 0);
}

TEST(KeyObserverTest, FailingNodeIsSkippedAndDoesNotEndPresences) {
  FakeNodes nodes(2);
  KeyObserverOptions opts;
  opts.poll_interval_us = 500;
  KeyObserver obs(Factory(&nodes), {"k"}, opts);
  nodes.Set(0, "k", "x");
  nodes.Set(1, "k", "y");
  ASSERT_TRUE(obs.Start().ok());
  ASSERT_TRUE(obs.WaitFor([](const auto& ps) { return ps.size() == 2; }, kWaitUs));
  nodes.SetDown(1, true);
  nodes.Del(1, "k");  // invisible while the node is down
  // Errors are counted on node 1 while node 0 is still polled.
  const int64_t rounds_before = obs.Stats().rounds;
  ASSERT_TRUE(Eventually([&] { return obs.Stats().errors_per_node[1] >= 3; }));
  KeyObserverStats st = obs.Stats();
  EXPECT_GE(st.errors_per_node[1], 3);
  EXPECT_EQ(st.errors_per_node[0], 0);
  EXPECT_GT(st.rounds, rounds_before);
  EXPECT_NE(st.last_error.find("node 1"), std::string::npos) << st.last_error;
  std::vector<KeyPresence> ps = obs.Presences();
  ASSERT_EQ(ps.size(), 2u);
  EXPECT_EQ(ps[1].gone_us, -1) << "a failing poll must not end a presence";
  // Back up: the next answer shows the key gone.
  nodes.SetDown(1, false);
  ASSERT_TRUE(obs.WaitFor([](const auto& ps) { return ps[1].gone_us >= 0; }, kWaitUs));
  EXPECT_EQ(obs.Presences()[0].gone_us, -1);
}

TEST(KeyObserverTest, MaxPresencesCountsDrops) {
  FakeNodes nodes(1);
  KeyObserverOptions opts;
  opts.poll_interval_us = 500;
  opts.max_presences = 2;
  KeyObserver obs(Factory(&nodes), {"k1", "k2", "k3"}, opts);
  nodes.Set(0, "k1", "a");
  nodes.Set(0, "k2", "b");
  nodes.Set(0, "k3", "c");
  ASSERT_TRUE(obs.Start().ok());
  ASSERT_TRUE(obs.WaitFor([](const auto& ps) { return ps.size() == 2; }, kWaitUs));
  ASSERT_TRUE(Eventually([&] { return obs.Stats().rounds >= 5; }));
  obs.Stop();
  EXPECT_EQ(obs.Presences().size(), 2u);
  EXPECT_EQ(obs.Stats().dropped, 1) << "k3 is dropped once, not once per poll";
}

}  // namespace
}  // namespace lockstorm
