#include "scenarios/scenario_file.h"

#include <algorithm>

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace lockstorm {
namespace {

namespace fs = std::filesystem;

// The example of the issue and docs/scenario-format.md.
constexpr const char* kFullExample = R"({
  "name": "kill-one",
  "description": "one of five nodes dies for a second",
  "topology": {"nodes": 5, "replicas": 0, "persistence": "none"},
  "workload": {"clients": 16, "keys": 1, "duration_ms": 10000, "ttl_ms": 500, "wait_ms": 1000,
               "holds": [{"weight": 0.95, "lo_ttl_frac": 0, "hi_ttl_frac": 0.02}],
               "extend": false, "check_lease": true},
  "nemesis": [{"fault": "kill-node", "at_ms": 2000, "duration_ms": 1000, "nodes": [0]}],
  "expectations": {"redlock": "unsafe"},
  "liveness_bound_ms": 1500
})";

Scenario MustParse(const std::string& text) {
  Scenario s;
  Status st = ParseScenarioJson(text, "t.json", &s);
  EXPECT_TRUE(st.ok()) << st.message();
  return s;
}

TEST(ScenarioFileTest, FullExampleParses) {
  Scenario s = MustParse(kFullExample);
  EXPECT_EQ(s.name, "kill-one");
  EXPECT_EQ(s.description, "one of five nodes dies for a second");
  EXPECT_EQ(s.nodes, 5);
  EXPECT_EQ(s.replicas, 0);
  EXPECT_EQ(s.persistence, Persistence::kNone);
  EXPECT_EQ(s.workload.clients, 16);
  EXPECT_EQ(s.workload.keys, 1);
  EXPECT_EQ(s.workload.duration_ms, 10000);
  EXPECT_EQ(s.workload.ttl_ms, 500);
  EXPECT_EQ(s.workload.wait_ms, 1000);
  ASSERT_EQ(s.workload.holds.size(), 1u);
  EXPECT_EQ(s.workload.holds[0], (HoldBand{0.95, 0.0, 0.02}));
  EXPECT_FALSE(s.workload.extend);
  EXPECT_TRUE(s.workload.check_lease);
  ASSERT_EQ(s.nemesis.size(), 1u);
  NemesisEvent want{.fault = "kill-node", .at_ms = 2000, .duration_ms = 1000, .nodes = {0}};
  EXPECT_EQ(s.nemesis[0], want);
  EXPECT_EQ(s.expectations, (std::map<std::string, std::string>{{"redlock", "unsafe"}}));
  EXPECT_EQ(s.liveness_bound_ms, 1500);
}

TEST(ScenarioFileTest, NonDefaultValuesOfEveryField) {
  Scenario s = MustParse(R"({"name": "n", "topology": {"nodes": 3, "replicas": 2,
      "persistence": "aof-always"},
    "workload": {"clients": 4, "keys": 7, "duration_ms": 5000, "ttl_ms": 100, "wait_ms": 0,
                 "extend": true, "check_lease": false},
    "nemesis": [
      {"fault": "partition", "at_ms": 10, "duration_ms": 20, "nodes": [2], "clients": [3],
       "groups": [[0, 1], [], [2]]},
      {"fault": "latency", "latency_ms": 40, "jitter_ms": 5, "clients": [0, 1]},
      {"fault": "client-clock-jump", "delta_ms": -700, "clients": [1]},
      {"fault": "clock-rate", "rate": 1.5, "duration_ms": 4000, "nodes": [1]},
      {"fault": "restart-node", "persistence": "rdb", "delay_ms": 300, "nodes": [0]}
    ],
    "expectations": {"a": "safe", "exec:@x.json": "liveness"}})");
  EXPECT_EQ(s.nodes, 3);
  EXPECT_EQ(s.replicas, 2);
  EXPECT_EQ(s.persistence, Persistence::kAofAlways);
  EXPECT_EQ(s.workload.clients, 4);
  EXPECT_EQ(s.workload.keys, 7);
  EXPECT_EQ(s.workload.duration_ms, 5000);
  EXPECT_EQ(s.workload.ttl_ms, 100);
  EXPECT_EQ(s.workload.wait_ms, 0);
  EXPECT_TRUE(s.workload.extend);
  EXPECT_FALSE(s.workload.check_lease);
  EXPECT_EQ(s.workload.holds, Workload{}.holds);  // omitted: the default mixture
  ASSERT_EQ(s.nemesis.size(), 5u);
  EXPECT_EQ(s.nemesis[0], (NemesisEvent{.fault = "partition",
                                        .at_ms = 10,
                                        .duration_ms = 20,
                                        .nodes = {2},
                                        .clients = {3},
                                        .groups = {{0, 1}, {}, {2}}}));
  EXPECT_EQ(
      s.nemesis[1],
      (NemesisEvent{.fault = "latency", .clients = {0, 1}, .latency_ms = 40, .jitter_ms = 5}));
  EXPECT_EQ(s.nemesis[2],
            (NemesisEvent{.fault = "client-clock-jump", .clients = {1}, .delta_ms = -700}));
  EXPECT_EQ(s.nemesis[3],
            (NemesisEvent{.fault = "clock-rate", .duration_ms = 4000, .nodes = {1}, .rate = 1.5}));
  EXPECT_EQ(
      s.nemesis[4],
      (NemesisEvent{.fault = "restart-node", .nodes = {0}, .persistence = "rdb", .delay_ms = 300}));
  EXPECT_EQ(s.expectations.at("exec:@x.json"), "liveness");
  EXPECT_EQ(s.expectations.at("a"), "safe");
}

TEST(ScenarioFileTest, OmittedFieldsTakeTheStructDefaults) {
  Scenario want;
  want.name = "only-name";
  EXPECT_EQ(MustParse(R"({"name": "only-name"})"), want);
  // Empty sections are defaults too.
  EXPECT_EQ(MustParse(R"({"name": "only-name", "topology": {}, "workload": {}, "nemesis": [],
                          "expectations": {}})"),
            want);
  Scenario partial = MustParse(R"({"name": "only-name", "workload": {"ttl_ms": 50}})");
  EXPECT_EQ(partial.workload.ttl_ms, 50);
  EXPECT_EQ(partial.workload.clients, Workload{}.clients);
  EXPECT_EQ(partial.workload.wait_ms, Workload{}.wait_ms);  // not rescaled: data, not flags
}

TEST(ScenarioFileTest, OnErrorTheOutputIsUnchanged) {
  Scenario s;
  s.name = "before";
  EXPECT_FALSE(ParseScenarioJson(R"({"name": "x", "workload": {"clients": 0}})", "t", &s).ok());
  EXPECT_EQ(s.name, "before");
}

struct ErrorCase {
  std::string json;
  std::string message;  // the full expected message, source "t.json"
};

// Wraps `nemesis` events (a JSON array body) in a valid scenario of 5 nodes, 4 clients, 10 s.
std::string WithNemesis(const std::string& events) {
  return R"({"name": "x", "topology": {"nodes": 5}, "workload": {"clients": 4}, "nemesis": [)" +
         events + "]}";
}

std::string WithWorkload(const std::string& fields) {
  return R"({"name": "x", "workload": {)" + fields + "}}";
}

const std::string kTopKeys =
    "name, description, topology, workload, nemesis, expectations, liveness_bound_ms";
const std::string kFaults =
    "pause-holder, crash-client, crash-mid-acquire, kill-node, restart-node, pause-node, partition, "
    "one-way-replies, drop-requests, latency, reset-connections, refuse-connections, "
    "clock-jump, clock-rate, client-clock-jump, client-clock-rate, client-wall-clock-jump, failover, "
    "cut-replication";

TEST(ScenarioFileTest, EveryValidationErrorNamesThePathAndTheExpectation) {
  const std::vector<ErrorCase> cases = {
      // --- document and name
      {"[1, 2]", "t.json: $: expected an object, got [1,2]"},
      {"{}", "t.json: $.name: required: expected a non-empty string"},
      {R"({"name": ""})", R"(t.json: $.name: expected a non-empty string, got "")"},
      {R"({"name": 7})", "t.json: $.name: expected a non-empty string, got 7"},
      {R"({"name": "x", "description": null})",
       "t.json: $.description: expected a string, got null"},
      {R"({"name": "x", "nemsis": []})",
       "t.json: $.nemsis: unknown key (expected one of " + kTopKeys + ")"},
      {R"({"name": "x", "odd key": 1})",
       R"(t.json: $["odd key"]: unknown key (expected one of )" + kTopKeys + ")"},
      {R"({"name": "x", "workload": {"ttl_ms": 50, "ttl_ms": 60}})",
       "t.json: $.workload.ttl_ms: duplicate key"},
      {R"({"name": "x", "nemesis": [{"fault": "kill-node"}, {"fault": "kill-node", "at_ms": 1, "at_ms": 2}]})",
       "t.json: $.nemesis[1].at_ms: duplicate key"},
      // --- topology
      {R"({"name": "x", "topology": 5})", "t.json: $.topology: expected an object, got 5"},
      {R"({"name": "x", "topology": {"node": 5}})",
       "t.json: $.topology.node: unknown key (expected one of nodes, replicas, persistence)"},
      {R"({"name": "x", "topology": {"nodes": 16}})",
       "t.json: $.topology.nodes: expected an integer in 0..15, got 16"},
      {R"({"name": "x", "topology": {"nodes": 2.5}})",
       "t.json: $.topology.nodes: expected an integer in 0..15, got 2.5"},
      {R"({"name": "x", "topology": {"replicas": -1}})",
       "t.json: $.topology.replicas: expected an integer in 0..15, got -1"},
      {R"({"name": "x", "topology": {"persistence": "disk"}})",
       R"(t.json: $.topology.persistence: expected one of none, rdb, aof-everysec, aof-always, got "disk")"},
      // --- workload
      {R"({"name": "x", "workload": []})", "t.json: $.workload: expected an object, got []"},
      {WithWorkload(R"("ttl": 5)"),
       "t.json: $.workload.ttl: unknown key (expected one of clients, keys, duration_ms, ttl_ms, "
       "wait_ms, holds, extend, late_extend_frac, check_lease, rate_per_s)"},
      {WithWorkload(R"("clients": 0)"),
       "t.json: $.workload.clients: expected an integer in 1..10000, got 0"},
      {WithWorkload(R"("clients": 10001)"),
       "t.json: $.workload.clients: expected an integer in 1..10000, got 10001"},
      {WithWorkload(R"("clients": "16")"),
       R"(t.json: $.workload.clients: expected an integer in 1..10000, got "16")"},
      {WithWorkload(R"("clients": 18446744073709551615)"),
       "t.json: $.workload.clients: expected an integer in 1..10000, got 18446744073709551615"},
      {WithWorkload(R"("clients": 4294967312)"),  // 2^32 + 16: must not wrap to 16
       "t.json: $.workload.clients: expected an integer in 1..10000, got 4294967312"},
      {WithWorkload(R"("keys": 0)"),
       "t.json: $.workload.keys: expected an integer in 1..1000000, got 0"},
      {WithWorkload(R"("keys": 1000001)"),
       "t.json: $.workload.keys: expected an integer in 1..1000000, got 1000001"},
      {WithWorkload(R"("duration_ms": 0)"),
       "t.json: $.workload.duration_ms: expected an integer in 1..86400000, got 0"},
      {WithWorkload(R"("duration_ms": 86400001)"),
       "t.json: $.workload.duration_ms: expected an integer in 1..86400000, got 86400001"},
      {WithWorkload(R"("ttl_ms": 9)"),
       "t.json: $.workload.ttl_ms: expected an integer in 10..3600000, got 9"},
      {WithWorkload(R"("ttl_ms": 3600001)"),
       "t.json: $.workload.ttl_ms: expected an integer in 10..3600000, got 3600001"},
      {WithWorkload(R"("wait_ms": -1)"),
       "t.json: $.workload.wait_ms: expected an integer in 0..3600000, got -1"},
      {WithWorkload(R"("extend": "yes")"),
       R"(t.json: $.workload.extend: expected true or false, got "yes")"},
      {WithWorkload(R"("check_lease": 1)"),
       "t.json: $.workload.check_lease: expected true or false, got 1"},
      // --- holds
      {WithWorkload(R"("holds": [])"),
       "t.json: $.workload.holds: expected a non-empty array of hold bands, got []"},
      {WithWorkload(R"("holds": {})"),
       "t.json: $.workload.holds: expected a non-empty array of hold bands, got {}"},
      {WithWorkload(R"("holds": [0.5])"),
       "t.json: $.workload.holds[0]: expected an object, got 0.5"},
      {WithWorkload(R"("holds": [{"weight": 1, "lo_ttl_frac": 0, "hi_ttl_frac": 1},
                                 {"weight": 1, "lo": 0, "hi_ttl_frac": 1}])"),
       "t.json: $.workload.holds[1].lo: unknown key (expected one of weight, lo_ttl_frac, "
       "hi_ttl_frac)"},
      {WithWorkload(R"("holds": [{"weight": 1, "lo_ttl_frac": 0}])"),
       "t.json: $.workload.holds[0].hi_ttl_frac: required: expected a number"},
      {WithWorkload(R"("holds": [{"weight": 0, "lo_ttl_frac": 0, "hi_ttl_frac": 1}])"),
       "t.json: $.workload.holds[0].weight: expected a number in (0, 1000000], got 0"},
      {WithWorkload(R"("holds": [{"weight": -0.5, "lo_ttl_frac": 0, "hi_ttl_frac": 1}])"),
       "t.json: $.workload.holds[0].weight: expected a number in (0, 1000000], got -0.5"},
      {WithWorkload(R"("holds": [{"weight": "1", "lo_ttl_frac": 0, "hi_ttl_frac": 1}])"),
       R"(t.json: $.workload.holds[0].weight: expected a number in (0, 1000000], got "1")"},
      {WithWorkload(R"("holds": [{"weight": 1, "lo_ttl_frac": -0.1, "hi_ttl_frac": 1}])"),
       "t.json: $.workload.holds[0].lo_ttl_frac: expected a number in [0, 1000], got -0.1"},
      {WithWorkload(R"("holds": [{"weight": 1, "lo_ttl_frac": 0.5, "hi_ttl_frac": 0.2}])"),
       "t.json: $.workload.holds[0].hi_ttl_frac: expected a number in [lo_ttl_frac (0.5), 1000], "
       "got 0.2"},
      {WithWorkload(R"("holds": [{"weight": 1, "lo_ttl_frac": 0, "hi_ttl_frac": 1001}])"),
       "t.json: $.workload.holds[0].hi_ttl_frac: expected a number in [0, 1000], got 1001"},
      // --- nemesis
      {R"({"name": "x", "nemesis": {}})",
       "t.json: $.nemesis: expected an array of nemesis events, got {}"},
      {WithNemesis(R"("kill-node")"),
       R"(t.json: $.nemesis[0]: expected an object, got "kill-node")"},
      {WithNemesis(R"({"at_ms": 5})"),
       "t.json: $.nemesis[0].fault: required: expected one of " + kFaults},
      {WithNemesis(R"({"fault": "kil-node"})"),
       R"(t.json: $.nemesis[0].fault: expected one of )" + kFaults + R"(, got "kil-node")"},
      {WithNemesis(R"({"fault": "kill-node", "when": 5})"),
       "t.json: $.nemesis[0].when: unknown key (expected one of fault, at_ms, duration_ms, nodes, "
       "clients, groups, latency_ms, jitter_ms, delta_ms, rate, persistence, delay_ms)"},
      // The issue's example message.
      {WithNemesis(
           R"({"fault": "kill-node"}, {"fault": "kill-node"}, {"fault": "kill-node", "at_ms": "soon"})"),
       R"(t.json: $.nemesis[2].at_ms: expected a non-negative integer, got "soon")"},
      {WithNemesis(R"({"fault": "kill-node", "at_ms": -1})"),
       "t.json: $.nemesis[0].at_ms: expected a non-negative integer, got -1"},
      {WithNemesis(R"({"fault": "pause-node", "duration_ms": 1.5})"),
       "t.json: $.nemesis[0].duration_ms: expected a non-negative integer, got 1.5"},
      {WithNemesis(R"({"fault": "kill-node", "at_ms": 10001})"),
       "t.json: $.nemesis[0].at_ms: expected at_ms <= workload.duration_ms (10000), got 10001"},
      {WithNemesis(R"({"fault": "kill-node", "at_ms": 9000, "duration_ms": 1001})"),
       "t.json: $.nemesis[0].duration_ms: expected at_ms + duration_ms <= workload.duration_ms "
       "(10000), got 9000 + 1001"},
      {WithNemesis(R"({"fault": "kill-node", "at_ms": 9000, "duration_ms": 9223372036854775807})"),
       "t.json: $.nemesis[0].duration_ms: expected at_ms + duration_ms <= workload.duration_ms "
       "(10000), got 9000 + 9223372036854775807"},
      {WithNemesis(R"({"fault": "restart-node", "at_ms": 9500, "delay_ms": 501})"),
       "t.json: $.nemesis[0].delay_ms: expected at_ms + delay_ms <= workload.duration_ms (10000), "
       "got 9500 + 501"},
      {WithNemesis(R"({"fault": "kill-node", "nodes": [0, 5]})"),
       "t.json: $.nemesis[0].nodes[1]: expected a node index in 0..4 (topology.nodes = 5), got 5"},
      {WithNemesis(R"({"fault": "kill-node", "nodes": [-1]})"),
       "t.json: $.nemesis[0].nodes[0]: expected a node index in 0..4 (topology.nodes = 5), got -1"},
      {WithNemesis(R"({"fault": "kill-node", "nodes": ["a"]})"),
       R"(t.json: $.nemesis[0].nodes[0]: expected a node index in 0..4 (topology.nodes = 5), got "a")"},
      {WithNemesis(R"({"fault": "kill-node", "nodes": 0})"),
       "t.json: $.nemesis[0].nodes: expected an array of node indexes, got 0"},
      {R"({"name": "x", "nemesis": [{"fault": "kill-node", "nodes": [15]}]})",
       "t.json: $.nemesis[0].nodes[0]: expected a node index in 0..14 (topology.nodes unset: at "
       "most 15 nodes), got 15"},
      {WithNemesis(R"({"fault": "crash-client", "clients": [4]})"),
       "t.json: $.nemesis[0].clients[0]: expected a client index in 0..3 (workload.clients = 4), "
       "got 4"},
      {WithNemesis(R"({"fault": "partition", "groups": [[0], [1, 9]]})"),
       "t.json: $.nemesis[0].groups[1][1]: expected a node index in 0..4 (topology.nodes = 5), got "
       "9"},
      {WithNemesis(R"({"fault": "partition", "groups": [0]})"),
       "t.json: $.nemesis[0].groups[0]: expected an array of node indexes, got 0"},
      {WithNemesis(R"({"fault": "kill-node", "latency_ms": 0})"),
       "t.json: $.nemesis[0].latency_ms: not used by fault 'kill-node' (used by: latency)"},
      {WithNemesis(R"({"fault": "kill-node", "clients": [0]})"),
       "t.json: $.nemesis[0].clients: not used by fault 'kill-node' (used by: pause-holder, "
       "crash-client, crash-mid-acquire, partition, one-way-replies, drop-requests, latency, reset-connections, "
       "refuse-connections, client-clock-jump, client-clock-rate, "
       "client-wall-clock-jump)"},
      {WithNemesis(R"({"fault": "crash-client", "nodes": [0]})"),
       "t.json: $.nemesis[0].nodes: not used by fault 'crash-client' (used by: kill-node, "
       "restart-node, pause-node, partition, one-way-replies, drop-requests, latency, "
       "reset-connections, refuse-connections, clock-jump, clock-rate, failover, cut-replication)"},
      {WithNemesis(R"({"fault": "latency", "rate": 2})"),
       "t.json: $.nemesis[0].rate: not used by fault 'latency' (used by: clock-rate, "
       "client-clock-rate)"},
      {WithNemesis(R"({"fault": "latency", "latency_ms": 60001})"),
       "t.json: $.nemesis[0].latency_ms: expected an integer in 0..60000, got 60001"},
      {WithNemesis(R"({"fault": "latency", "jitter_ms": -2})"),
       "t.json: $.nemesis[0].jitter_ms: expected an integer in 0..60000, got -2"},
      {WithNemesis(R"({"fault": "clock-jump", "delta_ms": 86400001})"),
       "t.json: $.nemesis[0].delta_ms: expected an integer in -86400000..86400000, got 86400001"},
      {WithNemesis(R"({"fault": "clock-rate", "rate": 0})"),
       "t.json: $.nemesis[0].rate: expected a number in (0, 1000], got 0"},
      {WithNemesis(R"({"fault": "client-clock-rate", "rate": 1000.5})"),
       "t.json: $.nemesis[0].rate: expected a number in (0, 1000], got 1000.5"},
      {WithNemesis(R"({"fault": "restart-node", "persistence": "disk"})"),
       R"(t.json: $.nemesis[0].persistence: expected one of none, rdb, aof-everysec, aof-always, got "disk")"},
      {WithNemesis(R"({"fault": "restart-node", "delay_ms": -1})"),
       "t.json: $.nemesis[0].delay_ms: expected a non-negative integer, got -1"},
      // --- expectations and the liveness bound
      {R"({"name": "x", "expectations": ["redlock"]})",
       R"(t.json: $.expectations: expected an object mapping lock names to expectations, got ["redlock"])"},
      {R"({"name": "x", "expectations": {"redlock": "maybe"}})",
       R"(t.json: $.expectations.redlock: expected one of safe, unsafe, liveness, got "maybe")"},
      {R"({"name": "x", "expectations": {"exec:@a.json": true}})",
       R"(t.json: $.expectations["exec:@a.json"]: expected one of safe, unsafe, liveness, got true)"},
      {R"({"name": "x", "expectations": {"": "safe"}})",
       R"(t.json: $.expectations[""]: expected a non-empty lock name)"},
      {R"({"name": "x", "liveness_bound_ms": -5})",
       "t.json: $.liveness_bound_ms: expected an integer in 0..86400000, got -5"},
      {R"({"name": "x", "liveness_bound_ms": "1s"})",
       R"(t.json: $.liveness_bound_ms: expected an integer in 0..86400000, got "1s")"},
  };
  for (const ErrorCase& c : cases) {
    Scenario s;
    Status st = ParseScenarioJson(c.json, "t.json", &s);
    EXPECT_EQ(st.code(), Status::Code::kInvalidArgument) << c.json;
    EXPECT_EQ(st.message(), c.message) << c.json;
    EXPECT_EQ(st.message().find('\n'), std::string::npos);
  }
}

TEST(ScenarioFileTest, LongValuesAreCutShortInMessages) {
  Scenario s;
  Status st = ParseScenarioJson(R"({"name": ")" + std::string(500, 'a') + R"(", "x": 1})", "t", &s);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("t: $.x: unknown key", 0), 0u) << st.message();
  std::string many = "1";
  for (int i = 0; i < 100; ++i) many += ", 1";
  st = ParseScenarioJson(R"({"name": [)" + many + "]}", "t", &s);
  ASSERT_FALSE(st.ok());
  EXPECT_LT(st.message().size(), 120u) << st.message();
  EXPECT_NE(st.message().find("..."), std::string::npos) << st.message();
}

TEST(ScenarioFileTest, InvalidJsonIsOneLineWithNlohmannsMessage) {
  Scenario s;
  Status st = ParseScenarioJson("{\"name\": \"x\",\n\n  \"workload\": {\"clients\": 4,}\n}",
                                "bad.json", &s);
  ASSERT_EQ(st.code(), Status::Code::kInvalidArgument);
  const std::string prefix = "bad.json: not valid JSON: parse error at line 3, column ";
  EXPECT_EQ(st.message().substr(0, prefix.size()), prefix) << st.message();
  EXPECT_EQ(st.message().find('\n'), std::string::npos);
  EXPECT_EQ(st.message().find("[json.exception"), std::string::npos);

  st = ParseScenarioJson("", "empty.json", &s);
  EXPECT_EQ(st.message().rfind("empty.json: not valid JSON: ", 0), 0u) << st.message();
  // A newline inside a string literal is reported, and the report stays on one line.
  st = ParseScenarioJson("{\"name\": \"a\nb\"}", "nl.json", &s);
  EXPECT_EQ(st.message().rfind("nl.json: not valid JSON: ", 0), 0u) << st.message();
  EXPECT_EQ(st.message().find('\n'), std::string::npos) << st.message();
}

TEST(ScenarioFileTest, UnreadableFilesNameThePathAndTheReason) {
  Scenario s;
  Status st = LoadScenarioFile("/nonexistent-dir/x.json", &s);
  EXPECT_EQ(st.code(), Status::Code::kIoError);
  EXPECT_EQ(st.message(),
            "--scenario: cannot read /nonexistent-dir/x.json: No such file or directory");
  st = LoadScenarioFile(::testing::TempDir(), &s);
  EXPECT_EQ(st.code(), Status::Code::kIoError);
  EXPECT_EQ(st.message(), "--scenario: cannot read " + ::testing::TempDir() + ": Is a directory");
}

TEST(ScenarioFileTest, LoadsAFileAndNamesItInErrors) {
  const std::string dir = ::testing::TempDir() + "/scenario_file_test";
  fs::create_directories(dir);
  const std::string good = dir + "/good.json", bad = dir + "/bad.json";
  std::ofstream(good) << kFullExample;
  std::ofstream(bad) << R"({"name": "x", "workload": {"clients": -3}})";
  Scenario s;
  ASSERT_TRUE(LoadScenarioFile(good, &s).ok());
  EXPECT_EQ(s, MustParse(kFullExample));
  Status st = LoadScenarioFile(bad, &s);
  EXPECT_EQ(st.message(), bad + ": $.workload.clients: expected an integer in 1..10000, got -3");
  fs::remove_all(dir);
}

TEST(ScenarioFileTest, ValidateCatchesOverridesThatBreakTheTimeline) {
  Scenario s = MustParse(kFullExample);
  ASSERT_TRUE(ValidateScenario(s, "f.json").ok());
  s.workload.duration_ms = 2500;  // e.g. --duration 2.5
  EXPECT_EQ(ValidateScenario(s, "f.json").message(),
            "f.json: $.nemesis[0].duration_ms: expected at_ms + duration_ms <= "
            "workload.duration_ms (2500), got 2000 + 1000");
  s = MustParse(kFullExample);
  s.nemesis[0].rate = 2;  // a parameter the fault does not take
  EXPECT_EQ(ValidateScenario(s, "f.json").message(),
            "f.json: $.nemesis[0].rate: not used by fault 'kill-node' (used by: clock-rate, "
            "client-clock-rate)");
  s = MustParse(kFullExample);
  s.workload.holds.clear();
  EXPECT_FALSE(ValidateScenario(s, "f.json").ok());
}

TEST(ScenarioFileTest, KnownFaultsAreTheDocumentedSet) {
  std::vector<std::string> names;
  for (const char* const* f = KnownFaults(); *f; ++f) names.push_back(*f);
  EXPECT_EQ(names.size(), 19u);
  std::string joined;
  for (const std::string& n : names) joined += (joined.empty() ? "" : ", ") + n;
  EXPECT_EQ(joined, kFaults);
  EXPECT_TRUE(IsKnownFault("cut-replication"));
  EXPECT_FALSE(IsKnownFault("Kill-Node"));
  EXPECT_TRUE(FaultUsesField("restart-node", "delay_ms"));
  EXPECT_TRUE(FaultUsesField("failover", "at_ms"));
  EXPECT_FALSE(FaultUsesField("failover", "delay_ms"));
  EXPECT_FALSE(FaultUsesField("no-such-fault", "at_ms"));
}

// --- round trips

Scenario Reparse(const Scenario& s) {
  const std::string text = ScenarioToJson(s);
  Scenario back;
  Status st = ParseScenarioJson(text, "roundtrip", &back);
  EXPECT_TRUE(st.ok()) << st.message() << "\n" << text;
  return back;
}

TEST(ScenarioFileTest, ToJsonRoundTrips) {
  Scenario s = MustParse(kFullExample);
  EXPECT_EQ(Reparse(s), s);
  Scenario rich =
      MustParse(R"({"name": "r\"ich\u00e9\n", "topology": {"nodes": 3, "persistence": "rdb"},
    "workload": {"holds": [{"weight": 0.1, "lo_ttl_frac": 0.30000000000000004, "hi_ttl_frac": 0.7}]},
    "nemesis": [{"fault": "partition", "groups": [[], [2, 1]], "clients": [3]},
                {"fault": "restart-node", "nodes": [2], "persistence": "aof-everysec", "delay_ms": 5},
                {"fault": "clock-jump", "delta_ms": -3}],
    "expectations": {"b": "liveness", "a": "safe"}, "liveness_bound_ms": 9})");
  EXPECT_EQ(Reparse(rich), rich);
  EXPECT_EQ(ScenarioToJson(Reparse(rich)), ScenarioToJson(rich));
}

TEST(ScenarioFileTest, ToJsonIsTheDocumentedShape) {
  const std::string text = ScenarioToJson(MustParse(kFullExample));
  // Document order, not alphabetical; events list only the fields their fault takes.
  EXPECT_LT(text.find("\"name\""), text.find("\"topology\""));
  EXPECT_LT(text.find("\"topology\""), text.find("\"workload\""));
  EXPECT_LT(text.find("\"workload\""), text.find("\"nemesis\""));
  EXPECT_EQ(text.find("latency_ms"), std::string::npos) << text;
  EXPECT_NE(text.find("\"persistence\": \"none\""), std::string::npos) << text;
  EXPECT_NE(text.back(), '\n');
}

TEST(ScenarioFileTest, EveryBuiltinScenarioRoundTrips) {
  ASSERT_FALSE(BuiltinScenarios().empty());
  for (const Scenario& s : BuiltinScenarios()) {
    EXPECT_TRUE(ValidateScenario(s, s.name).ok()) << ValidateScenario(s, s.name).message();
    EXPECT_EQ(Reparse(s), s) << s.name;
  }
}

TEST(ScenarioFileTest, EveryExampleFileLoadsAndRoundTrips) {
  const fs::path dir = fs::path(LOCKSTORM_SOURCE_DIR) / "scenarios" / "examples";
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    Scenario s;
    Status st = LoadScenarioFile(entry.path().string(), &s);
    ASSERT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(s.name, entry.path().stem().string()) << "file name and scenario name differ";
    EXPECT_FALSE(s.nemesis.empty()) << s.name;
    EXPECT_EQ(Reparse(s), s) << s.name;
    names.insert(s.name);
  }
  EXPECT_TRUE(names.count("holder-pause"));
  EXPECT_TRUE(names.count("node-restart"));
}

// --- generated scenarios

// A double in [lo, hi] with a fractional part that is not a short decimal, or an integer.
rc::Gen<double> GenNumber(double lo, double hi) {
  return rc::gen::oneOf(
      rc::gen::map(rc::gen::inRange<int64_t>(0, 1000000001),
                   [lo, hi](int64_t x) { return lo + (hi - lo) * (static_cast<double>(x) / 1e9); }),
      rc::gen::map(
          rc::gen::inRange<int64_t>(static_cast<int64_t>(lo), static_cast<int64_t>(hi) + 1),
          [lo, hi](int64_t x) { return std::clamp(static_cast<double>(x), lo, hi); }));
}

rc::Gen<std::string> GenText(bool nonempty) {
  auto piece = rc::gen::element<std::string>("a", "Z", "-", " ", "\"", "\\", "\n", "\t", "\x01",
                                             "\xc3\xa9", "\xe6\x97\xa5", "\xf0\x9f\x99\x82", "/");
  return rc::gen::map(rc::gen::container<std::vector<std::string>>(piece),
                      [nonempty](std::vector<std::string> v) {
                        std::string s;
                        for (const std::string& p : v) s += p;
                        return (nonempty && s.empty()) ? std::string("n") : s;
                      });
}

std::vector<int> GenIndexes(int count) {
  return *rc::gen::container<std::vector<int>>(rc::gen::inRange(0, count));
}

NemesisEvent GenEvent(const Scenario& s) {
  std::vector<std::string> faults;
  for (const char* const* f = KnownFaults(); *f; ++f) faults.push_back(*f);
  NemesisEvent e;
  e.fault = *rc::gen::elementOf(faults);
  const int64_t end = s.workload.duration_ms;
  e.at_ms = *rc::gen::inRange<int64_t>(0, end + 1);
  e.duration_ms = *rc::gen::inRange<int64_t>(0, end - e.at_ms + 1);
  const int node_count = s.nodes > 0 ? s.nodes : 15;
  if (FaultUsesField(e.fault, "nodes")) e.nodes = GenIndexes(node_count);
  if (FaultUsesField(e.fault, "clients")) e.clients = GenIndexes(s.workload.clients);
  if (FaultUsesField(e.fault, "groups")) {
    const int n = *rc::gen::inRange(0, 4);
    for (int i = 0; i < n; ++i) e.groups.push_back(GenIndexes(node_count));
  }
  if (FaultUsesField(e.fault, "latency_ms")) {
    e.latency_ms = *rc::gen::inRange<int64_t>(0, 60001);
    e.jitter_ms = *rc::gen::inRange<int64_t>(0, 60001);
  }
  if (FaultUsesField(e.fault, "delta_ms"))
    e.delta_ms = *rc::gen::inRange<int64_t>(-86400000, 86400001);
  if (FaultUsesField(e.fault, "rate")) {
    e.rate = *rc::gen::suchThat(GenNumber(0, 1000), [](double r) { return r > 0; });
  }
  if (FaultUsesField(e.fault, "persistence")) {
    e.persistence = *rc::gen::element<std::string>("", "none", "rdb", "aof-everysec", "aof-always");
  }
  if (FaultUsesField(e.fault, "delay_ms"))
    e.delay_ms = *rc::gen::inRange<int64_t>(0, end - e.at_ms + 1);
  return e;
}

rc::Gen<Scenario> GenScenario() {
  return rc::gen::exec([] {
    Scenario s;
    s.name = *GenText(true);
    s.description = *GenText(false);
    s.persistence = *rc::gen::element(Persistence::kNone, Persistence::kRdb,
                                      Persistence::kAofEverysec, Persistence::kAofAlways);
    s.nodes = *rc::gen::inRange(0, 16);
    s.replicas = *rc::gen::inRange(0, 16);
    Workload& w = s.workload;
    w.clients = *rc::gen::oneOf(rc::gen::inRange(1, 33), rc::gen::inRange(1, 10001));
    w.keys = *rc::gen::inRange(1, 1000001);
    w.duration_ms = *rc::gen::inRange<int64_t>(1, 86400001);
    w.ttl_ms = *rc::gen::inRange<int64_t>(10, 3600001);
    w.wait_ms = *rc::gen::inRange<int64_t>(0, 3600001);
    w.holds.clear();
    const int bands = *rc::gen::inRange(1, 5);
    for (int i = 0; i < bands; ++i) {
      HoldBand b;
      b.weight = *rc::gen::suchThat(GenNumber(0, 1e6), [](double x) { return x > 0; });
      b.lo_ttl_frac = *GenNumber(0, 1000);
      b.hi_ttl_frac = *GenNumber(b.lo_ttl_frac, 1000);
      w.holds.push_back(b);
    }
    w.extend = *rc::gen::arbitrary<bool>();
    w.check_lease = *rc::gen::arbitrary<bool>();
    const int events = *rc::gen::inRange(0, 6);
    for (int i = 0; i < events; ++i) s.nemesis.push_back(GenEvent(s));
    const int impls = *rc::gen::inRange(0, 4);
    for (int i = 0; i < impls; ++i) {
      s.expectations[*GenText(true)] = *rc::gen::element<std::string>("safe", "unsafe", "liveness");
    }
    s.liveness_bound_ms = *rc::gen::inRange<int64_t>(0, 86400001);
    return s;
  });
}

RC_GTEST_PROP(ScenarioFileProperty, GeneratedScenariosRoundTrip, ()) {
  const Scenario s = *GenScenario();
  const Status valid = ValidateScenario(s, "gen");
  RC_LOG() << valid.ToString() << "\n";
  RC_ASSERT(valid.ok());
  const std::string text = ScenarioToJson(s);
  Scenario back;
  const Status st = ParseScenarioJson(text, "gen", &back);
  RC_ASSERT(st.ok());
  RC_ASSERT(back == s);
}

// Mutating one field of a valid generated scenario out of range is always caught.
RC_GTEST_PROP(ScenarioFileProperty, OutOfRangeWorkloadIsRejected, ()) {
  Scenario s = *GenScenario();
  switch (*rc::gen::inRange(0, 4)) {
    case 0:
      s.workload.clients =
          *rc::gen::oneOf(rc::gen::inRange(-100, 1), rc::gen::inRange(10001, 20000));
      break;
    case 1:
      s.workload.ttl_ms = *rc::gen::oneOf(rc::gen::inRange<int64_t>(-5, 10),
                                          rc::gen::inRange<int64_t>(3600001, 4000000));
      break;
    case 2:
      s.nodes = *rc::gen::inRange(16, 100);
      break;
    case 3:
      s.workload.holds[0].weight = -*GenNumber(0, 10);
      break;
  }
  const Status st = ValidateScenario(s, "gen");
  RC_ASSERT(!st.ok());
  RC_ASSERT(st.message().rfind("gen: $.", 0) == 0u);
  // The JSON form of the mutated scenario is rejected with the same message.
  Scenario back;
  RC_ASSERT(ParseScenarioJson(ScenarioToJson(s), "gen", &back).message() == st.message());
}

}  // namespace
}  // namespace lockstorm

namespace lockstorm {
namespace {

// The first ```json block of docs/scenario-format.md is the full example; it must stay valid.
TEST(ScenarioFileTest, TheDocumentedExampleParses) {
  std::ifstream in(std::string(LOCKSTORM_SOURCE_DIR) + "/docs/scenario-format.md");
  ASSERT_TRUE(in) << "docs/scenario-format.md";
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string doc = buf.str();
  const size_t start = doc.find("```json\n");
  ASSERT_NE(start, std::string::npos);
  const size_t end = doc.find("```", start + 8);
  ASSERT_NE(end, std::string::npos);
  Scenario s = MustParse(doc.substr(start + 8, end - start - 8));
  EXPECT_EQ(s.nodes, 5);
  EXPECT_EQ(s.nemesis.size(), 3u);
  EXPECT_EQ(s.expectations.size(), 2u);
}

}  // namespace
}  // namespace lockstorm
