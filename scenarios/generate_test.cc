#include "scenarios/generate.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "scenarios/scenario_file.h"

namespace lockstorm {
namespace {

// Every fault group explore offers.
ExploreBounds AllFaults(int nodes) {
  ExploreBounds b;
  EXPECT_TRUE(FaultKindsForGroups({"pause", "partition", "one-way", "latency", "restart", "crash",
                                   "clock", "connections"},
                                  &b.faults)
                  .ok());
  b.nodes = nodes;
  return b;
}

RC_GTEST_PROP(GenerateProp, EveryScenarioIsValidLoadableAndInsideItsBounds, ()) {
  const int nodes = *rc::gen::element(1, 3, 5);
  const ExploreBounds b = AllFaults(nodes);
  const Scenario s = *GenScenario(b);
  const Status valid = ValidateScenario(s, "generated");
  RC_ASSERT(valid.ok());
  Scenario back;
  const Status parsed = ParseScenarioJson(ScenarioToJson(s), "generated", &back);
  RC_ASSERT(parsed.ok());
  RC_ASSERT(back == s);
  RC_ASSERT(s.nodes == nodes);
  RC_ASSERT(s.workload.clients >= b.min_clients && s.workload.clients <= b.max_clients);
  RC_ASSERT(s.workload.keys >= 1 && s.workload.keys <= b.max_keys);
  RC_ASSERT(s.workload.duration_ms >= b.min_duration_ms);
  RC_ASSERT(s.workload.duration_ms <= b.max_duration_ms);
  RC_ASSERT(s.nemesis.size() <= static_cast<size_t>(b.max_events));
  RC_ASSERT(std::find(b.hold_mixes.begin(), b.hold_mixes.end(), s.workload.holds) !=
            b.hold_mixes.end());
  const std::set<std::string> kinds(b.faults.begin(), b.faults.end());
  int64_t last_at_ms = 0;
  for (const NemesisEvent& e : s.nemesis) {
    RC_ASSERT(kinds.count(e.fault) == 1u);
    RC_ASSERT(e.at_ms >= last_at_ms);  // in time order
    last_at_ms = e.at_ms;
    RC_ASSERT(e.at_ms + e.duration_ms <= s.workload.duration_ms);
    RC_ASSERT(e.at_ms + e.delay_ms <= s.workload.duration_ms);
    for (int n : e.nodes) RC_ASSERT(n >= 0 && n < nodes);
    for (int c : e.clients) RC_ASSERT(c >= 0 && c < s.workload.clients);
  }
}

TEST(GenerateTest, NoFaultsMeansTheWorkloadAlone) {
  ExploreBounds b;  // faults empty
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const Scenario s = GenScenario(b)(rc::Random(seed), 50).value();
    EXPECT_TRUE(s.nemesis.empty());
    EXPECT_TRUE(ValidateScenario(s, "generated").ok());
  }
}

// Follows the first shrink at every step, as far as it goes (bounded).
Scenario ShrinkAllTheWay(rc::Shrinkable<Scenario> s, int* steps) {
  *steps = 0;
  for (; *steps < 10000; ++*steps) {
    auto next = s.shrinks().next();
    if (!next) break;
    s = std::move(*next);
  }
  return s.value();
}

TEST(GenerateTest, ShrinkingGoesTowardsTheSimplestSchedule) {
  const ExploreBounds b = AllFaults(5);
  int checked = 0;
  for (uint64_t seed = 1; seed <= 200 && checked < 5; ++seed) {
    rc::Shrinkable<Scenario> s = GenScenario(b)(rc::Random(seed), 100);
    if (s.value().nemesis.size() < 2) continue;
    ++checked;
    // Among the first shrinks, one drops an event.
    bool fewer = false;
    auto shrinks = s.shrinks();
    for (int i = 0; i < 200; ++i) {
      auto c = shrinks.next();
      if (!c) break;
      fewer = fewer || c->value().nemesis.size() < s.value().nemesis.size();
      EXPECT_TRUE(ValidateScenario(c->value(), "shrunk").ok());
    }
    EXPECT_TRUE(fewer) << "seed " << seed;
    int steps = 0;
    const Scenario simplest = ShrinkAllTheWay(s, &steps);
    EXPECT_GT(steps, 0);
    EXPECT_TRUE(simplest.nemesis.empty()) << DescribeSchedule(simplest);
    EXPECT_EQ(simplest.workload.clients, b.min_clients);
    EXPECT_EQ(simplest.workload.keys, 1);
    EXPECT_EQ(simplest.workload.duration_ms, b.min_duration_ms);
    EXPECT_EQ(simplest.workload.ttl_ms, b.ttls_ms.front());
    EXPECT_EQ(simplest.workload.holds, b.hold_mixes.front());
  }
  EXPECT_EQ(checked, 5);
}

TEST(GenerateTest, AnEventShrinksToItsSimplestForm) {
  Workload w;
  w.clients = 4;
  w.duration_ms = 3000;
  ExploreBounds b;
  for (const char* fault : {"partition", "latency", "clock-jump", "restart-node"}) {
    rc::Shrinkable<NemesisEvent> e = GenEvent(fault, w, 3, b)(rc::Random(7), 100);
    int steps = 0;
    for (; steps < 10000; ++steps) {
      auto next = e.shrinks().next();
      if (!next) break;
      e = std::move(*next);
    }
    const NemesisEvent& s = e.value();
    EXPECT_EQ(s.at_ms, 0) << fault;
    EXPECT_EQ(s.nodes, std::vector<int>{0}) << fault;
    EXPECT_TRUE(s.clients.empty()) << fault;
    if (std::string(fault) == "latency") EXPECT_EQ(s.latency_ms, 10);
    if (std::string(fault) == "clock-jump") EXPECT_EQ(s.delta_ms, 250);
    if (std::string(fault) == "restart-node") {
      EXPECT_EQ(s.persistence, "none");
      EXPECT_EQ(s.delay_ms, 0);
    }
    if (std::string(fault) != "clock-jump") EXPECT_EQ(s.duration_ms, 100) << fault;
  }
}

TEST(GenerateTest, FaultGroupsNameTheirKinds) {
  std::vector<std::string> kinds;
  ASSERT_TRUE(FaultKindsForGroups({"restart", "clock", "restart"}, &kinds).ok());
  EXPECT_EQ(kinds, (std::vector<std::string>{"kill-node", "restart-node", "clock-jump",
                                             "clock-rate", "client-clock-jump", "client-clock-rate",
                                             "client-wall-clock-jump"}));
  const Status bad = FaultKindsForGroups({"pause", "meteor"}, &kinds);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message(),
            "--faults: unknown fault group 'meteor' (expected pause, partition, one-way, latency, "
            "restart, crash, clock, connections)");
  for (const char* const* f = KnownFaults(); *f; ++f) {
    const std::string k = *f;
    if (k == "failover" || k == "cut-replication") continue;  // need replicas: not offered
    std::vector<std::string> all;
    ASSERT_TRUE(FaultKindsForGroups({"pause", "partition", "one-way", "latency", "restart", "crash",
                                     "clock", "connections"},
                                    &all)
                    .ok());
    EXPECT_NE(std::find(all.begin(), all.end(), k), all.end()) << k << " is in no group";
  }
}

TEST(GenerateTest, DescribeScheduleIsOneLinePerEvent) {
  Scenario s;
  s.nodes = 3;
  s.workload.clients = 4;
  s.workload.keys = 2;
  s.workload.ttl_ms = 500;
  s.workload.duration_ms = 3000;
  NemesisEvent p;
  p.fault = "partition";
  p.at_ms = 500;
  p.duration_ms = 1200;
  p.nodes = {0, 2};
  p.clients = {1};
  NemesisEvent j;
  j.fault = "clock-jump";
  j.at_ms = 2000;
  j.nodes = {1};
  j.delta_ms = -750;
  s.nemesis = {p, j};
  EXPECT_EQ(DescribeSchedule(s),
            "4 clients, 2 keys, ttl 500 ms, 3.0 s on 3 nodes; 2 faults:\n"
            "  at 0.5 s for 1.2 s: partition nodes [0, 2] clients [1]\n"
            "  at 2.0 s: clock-jump nodes [1] by -750 ms");
}

}  // namespace
}  // namespace lockstorm
