// The table of built-in scenarios. One entry per scenario; no static registration.
#include "scenarios/scenario.h"

namespace lockstorm {

namespace {

// Every built-in lock expected `expect`.
std::map<std::string, std::string> kAll(const char* expect) {
  return {{"setnx-expire", expect}, {"set-nx-del", expect}, {"token-lua", expect},
          {"watchdog", expect},     {"redlock", expect},    {"fenced", expect}};
}

// setnx-expire whose SETNX applied unseen (reply lost) never sends its PEXPIRE: a ghost lock
// with no TTL, which no client can ever take again.
std::map<std::string, std::string> kSetnxExpireLiveness() {
  auto m = kAll(kExpectSafe);
  m["setnx-expire"] = kExpectLiveness;
  return m;
}

std::map<std::string, std::string> kRedlockUnsafe() {
  auto m = kAll(kExpectSafe);
  m["redlock"] = kExpectUnsafe;
  return m;
}

// Short holds, 8 clients, 5.5 s: the client-crash scenarios.
// setnx-expire and set-nx-del extend with a plain PEXPIRE: a late extend prolongs whoever
// holds the key now.
std::map<std::string, std::string> kPexpireExtendUnsafe() {
  auto m = kAll(kExpectSafe);
  m["setnx-expire"] = kExpectUnsafe;
  m["set-nx-del"] = kExpectUnsafe;
  return m;
}

Workload kCrashWorkload() {
  return {.clients = 8,
          .duration_ms = 5500,
          .ttl_ms = 500,
          .wait_ms = 1000,
          .holds = {{1.0, 0.0, 0.05}}};
}

// Long holds, a long TTL and one key: whenever a node fault strikes, someone holds the lock.
Workload kSplitMajorityWorkload() {
  return {.clients = 8,
          .duration_ms = 8000,
          .ttl_ms = 2000,
          .wait_ms = 2000,
          .holds = {{1.0, 0.5, 0.85}}};
}

// Clients 0-3 reach nodes {0,1,2}, clients 4-7 reach {2,3,4}, for the whole run: each group
// can form a majority, and node 2 alone keeps them apart.
NemesisEvent kSplitMajorityPartition() {
  return {.fault = "partition", .at_ms = 0, .duration_ms = 8000, .groups = {{0, 1, 2}, {2, 3, 4}}};
}

// The split-majority partition, and node 2 killed and restarted 100 ms later, four times.
std::vector<NemesisEvent> kSplitMajorityRestarts() {
  std::vector<NemesisEvent> v = {kSplitMajorityPartition()};
  for (int64_t at_ms : {1000, 2800, 4600, 6400})
    v.push_back({.fault = "restart-node", .at_ms = at_ms, .nodes = {2}, .delay_ms = 100});
  return v;
}

// A wall clock stepped back again and again (an NTP daemon fighting a VM host): every client's
// wall clock steps back one second every 5 ms for `duration_ms`. Monotonic clocks are
// untouched.
std::vector<NemesisEvent> kWallClockSteps(int64_t duration_ms) {
  std::vector<NemesisEvent> v;
  for (int64_t at_ms = 5, i = 0; at_ms < duration_ms && i < 10000; at_ms += 5, ++i)
    v.push_back({.fault = "client-wall-clock-jump", .at_ms = at_ms, .delta_ms = -1000});
  return v;
}

}  // namespace

const std::vector<Scenario>& BuiltinScenarios() {
  static const std::vector<Scenario>* table = new std::vector<Scenario>{
      {
          .name = "contention",
          .description =
              "N clients contend on K keys; 2% of holds overrun the TTL (the honest client "
              "stops at its validity deadline and still releases afterwards, as a finally "
              "block does)",
          .workload = {},
      },
      {
          .name = "overrun",
          .description =
              "holders that do not check their lease: 10% of holds run 1.2-2x the TTL and "
              "the holder keeps writing to the resource (a GC-paused or careless client); "
              "locks without fencing overlap, fencing keeps the witness safe",
          .workload = {.clients = 8,
                       .ttl_ms = 200,
                       .wait_ms = 400,
                       .holds = {{0.9, 0.0, 0.05}, {0.1, 1.2, 2.0}},
                       .check_lease = false},
      },
      {
          .name = "lease-edge",
          .description =
              "holders work 1.2-2x the TTL (1.5 s: not whole seconds) and extend as they go; "
              "three in four of them extend late, after the lease ran out (a renewal delayed "
              "by a pause), which a correct lock must refuse (more late than on-time extends: "
              "a late PEXPIRE on a key another client took meanwhile is rare on 8 keys). "
              "Samples check every reported validity against the key's real PTTL",
          .workload = {.clients = 8,
                       .keys = 8,
                       .duration_ms = 6000,
                       .ttl_ms = 1500,
                       .wait_ms = 1500,
                       .holds = {{0.4, 0.0, 0.05}, {0.6, 1.2, 2.0}},
                       .extend = true,
                       .late_extend_frac = 0.75},
          .expectations = kPexpireExtendUnsafe(),
      },
      {
          .name = "holder-pause",
          .description =
              "the lock holder stalls (a GC or VM pause) for 3x the TTL right after checking "
              "its lease and before writing; others take the expired lock meanwhile and the "
              "late write lands in their lease. Every lock overlaps; fencing keeps the "
              "witness safe",
          .workload = {.clients = 8,
                       .duration_ms = 5500,
                       .ttl_ms = 300,
                       .wait_ms = 600,
                       .holds = {{1.0, 0.0, 0.05}}},
          .nemesis = {{.fault = "pause-holder", .at_ms = 1000, .duration_ms = 900},
                      {.fault = "pause-holder", .at_ms = 2500, .duration_ms = 900},
                      {.fault = "pause-holder", .at_ms = 4000, .duration_ms = 900}},
          .expectations = kAll(kExpectUnsafe),
      },
      {
          .name = "client-crash",
          .description =
              "the lock holder dies (kill -9: no release, its renewal stops) three times; "
              "the others must get the lock back within TTL plus a bound",
          .workload = kCrashWorkload(),
          .nemesis = {{.fault = "crash-client", .at_ms = 1000, .duration_ms = 1000},
                      {.fault = "crash-client", .at_ms = 2500, .duration_ms = 1000},
                      {.fault = "crash-client", .at_ms = 4000, .duration_ms = 1000}},
          .expectations = kAll(kExpectSafe),
      },
      {
          .name = "kill-mid-acquire",
          .description =
              "a client dies inside its acquire: between SETNX and PEXPIRE for setnx-expire "
              "(the key stays with no TTL: nobody gets the lock again), after the one atomic "
              "command for the others (they recover within the TTL)",
          .workload = kCrashWorkload(),
          .nemesis = {{.fault = "crash-mid-acquire", .at_ms = 1000, .duration_ms = 1000},
                      {.fault = "crash-mid-acquire", .at_ms = 2500, .duration_ms = 1000},
                      {.fault = "crash-mid-acquire", .at_ms = 4000, .duration_ms = 1000}},
          .expectations = kSetnxExpireLiveness(),
      },
      {
          .name = "partition-minority",
          .description =
              "every client is cut from 2 of 5 nodes for 3 s (a real partition: packets "
              "vanish, connections hang); Redlock keeps a majority and stays safe and live",
          .nodes = 5,
          .workload = {.clients = 8, .duration_ms = 5000, .holds = {{1.0, 0.0, 0.05}}},
          .nemesis = {{.fault = "partition", .at_ms = 1000, .duration_ms = 3000, .nodes = {3, 4}}},
          .expectations = kAll(kExpectSafe),
      },
      {
          .name = "partition-split",
          .description =
              "two client groups each reach a different majority-less part of 5 nodes "
              "({0,1} and {3,4}; node 2 reaches nobody) for 3 s: no Redlock client may win",
          .nodes = 5,
          .workload = {.clients = 8, .duration_ms = 5000, .holds = {{1.0, 0.0, 0.05}}},
          .nemesis = {{.fault = "partition",
                       .at_ms = 1000,
                       .duration_ms = 3000,
                       .groups = {{0, 1}, {3, 4}}}},
          .expectations = kAll(kExpectSafe),
      },
      {
          .name = "one-way-replies",
          .description =
              "half the clients lose every reply from nodes 0-2 for 3 s while their requests "
              "still apply: SETs take effect unseen (ghost locks). A correct Redlock deletes "
              "them at once; a single-node lock's ghost blocks everyone until its TTL",
          .nodes = 5,
          .workload = {.clients = 8, .duration_ms = 5000, .holds = {{1.0, 0.0, 0.05}}},
          .nemesis = {{.fault = "one-way-replies",
                       .at_ms = 1000,
                       .duration_ms = 3000,
                       .nodes = {0, 1, 2},
                       .clients = {0, 1, 2, 3}}},
          .expectations = kSetnxExpireLiveness(),
      },
      {
          .name = "lost-replies-try-once",
          .description =
              "every client loses every reply from nodes 1-3 (a majority of 5) for 4 s while "
              "its requests still apply, and every acquire is a single try (a cron job's "
              "try-lock: wait 0): an attempt whose SETs applied unseen must say unknown, or "
              "delete them; the harness samples the nodes right after each failed acquire. "
              "One client, so that its first attempt in the fault finds every node free and "
              "sets all three (with two, leftover keys from the other's attempts expire at "
              "different times on each node and an attempt rarely gets nodes 1-3 together). "
              "Single-node locks (node 0) are untouched",
          .nodes = 5,
          .workload = {.clients = 1,
                       .duration_ms = 5000,
                       .wait_ms = 0,
                       .holds = {{1.0, 0.0, 0.05}}},
          .nemesis = {{.fault = "one-way-replies",
                       .at_ms = 500,
                       .duration_ms = 4000,
                       .nodes = {1, 2, 3}}},
          .expectations = kAll(kExpectSafe),
      },
      {
          .name = "latency",
          .description =
              "every link gets 20 ms +- 10 ms each way for 3 s: slower, still safe (Redlock's "
              "validity shrinks by the time its acquire took)",
          .nodes = 5,
          .workload = {.clients = 8, .duration_ms = 5000, .holds = {{1.0, 0.0, 0.05}}},
          .nemesis = {{.fault = "latency",
                       .at_ms = 1000,
                       .duration_ms = 3000,
                       .latency_ms = 20,
                       .jitter_ms = 10}},
          .expectations = kAll(kExpectSafe),
      },
      {
          .name = "node-restart-nopersist",
          .description = "clients split so that each group reaches a majority sharing node 2 "
                         "({0,1,2} and {2,3,4}); node 2 is killed and restarted empty 100 ms "
                         "later, four times: the other group wins a second majority while the "
                         "first still holds the lock (Redlock's known caveat)",
          .nodes = 5,
          .workload = kSplitMajorityWorkload(),
          .nemesis = kSplitMajorityRestarts(),
          .expectations = kRedlockUnsafe(),
      },
      {
          .name = "node-restart-aof-always",
          .description = "as node-restart-nopersist, but the nodes run appendfsync always: "
                         "node 2 comes back with the lock keys, so no second majority",
          .persistence = Persistence::kAofAlways,
          .nodes = 5,
          .workload = kSplitMajorityWorkload(),
          .nemesis = kSplitMajorityRestarts(),
          .expectations = kAll(kExpectSafe),
      },
      {
          .name = "node-restart-delayed",
          .description = "as node-restart-nopersist, but node 2 stays down for longer than the "
                         "TTL before it restarts empty (the spec's delayed restart): every lease "
                         "it knew has expired, so no second majority",
          .nodes = 5,
          .workload = kSplitMajorityWorkload(),
          .nemesis = {kSplitMajorityPartition(),
                      {.fault = "restart-node", .at_ms = 1000, .nodes = {2}, .delay_ms = 2500},
                      {.fault = "restart-node", .at_ms = 4500, .nodes = {2}, .delay_ms = 2500}},
          .expectations = kAll(kExpectSafe),
      },
      {
          .name = "failover",
          .description =
              "one master with one asynchronous replica; replication is cut at 0.5 s, the "
              "master dies at 3 s (holding a fresh lock) and the replica (which never saw the "
              "current lock) is "
              "promoted; clients follow it and a second client takes the lock the first "
              "still holds",
          .nodes = 1,
          .replicas = 1,
          .workload = {.clients = 8,
                       .duration_ms = 5000,
                       .ttl_ms = 2000,
                       .wait_ms = 2000,
                       .holds = {{1.0, 0.3, 0.6}}},
          .nemesis = {{.fault = "cut-replication", .at_ms = 500, .duration_ms = 4000},
                      {.fault = "failover", .at_ms = 3000}},
          .expectations = kAll(kExpectUnsafe),
      },
      {
          .name = "clock-jump",
          .description = "split-majority clients as in node-restart-nopersist; node 2's clock "
                         "jumps forward by more than the TTL, three times, so its lock keys "
                         "expire at once: a second majority forms",
          .nodes = 5,
          .workload = kSplitMajorityWorkload(),
          .nemesis = {kSplitMajorityPartition(),
                      {.fault = "clock-jump", .at_ms = 1500, .nodes = {2}, .delta_ms = 3000},
                      {.fault = "clock-jump", .at_ms = 3500, .nodes = {2}, .delta_ms = 3000},
                      {.fault = "clock-jump", .at_ms = 5500, .nodes = {2}, .delta_ms = 3000}},
          .expectations = kRedlockUnsafe(),
      },
      {
          .name = "clock-drift",
          .description = "split-majority clients; node 2's clock runs at 3x for 5 s, so its "
                         "keys expire after a third of the TTL, far beyond Redlock's 1% drift "
                         "allowance: a second majority forms while the first holder's lease is "
                         "valid",
          .nodes = 5,
          .workload = kSplitMajorityWorkload(),
          .nemesis = {kSplitMajorityPartition(),
                      {.fault = "clock-rate",
                       .at_ms = 1000,
                       .duration_ms = 5000,
                       .nodes = {2},
                       .rate = 3.0}},
          .expectations = kRedlockUnsafe(),
      },
      {
          .name = "clock-drift-small",
          .description = "nodes 1-4 run their clocks 0.8% fast for 10 s: their keys expire 16 ms "
                         "early for a 2 s TTL, inside Redlock's 1% + 2 ms drift allowance, so a "
                         "correct Redlock stays safe (and single-node locks, on node 0, are "
                         "untouched); a Redlock without the allowance overlaps",
          .nodes = 5,
          .workload = {.clients = 12,
                       .duration_ms = 10000,
                       .ttl_ms = 2000,
                       .wait_ms = 2000,
                       .holds = {{1.0, 1.0, 1.3}}},
          .nemesis = {{.fault = "clock-rate",
                       .at_ms = 0,
                       .duration_ms = 10000,
                       .nodes = {1, 2, 3, 4},
                       .rate = 1.008}},
          .expectations = kAll(kExpectSafe),
      },
      {
          .name = "wall-clock-steps",
          .description = "every client's wall clock steps back 1 s every 5 ms (an NTP daemon "
                         "fighting a VM host); monotonic clocks are untouched, so a lock that "
                         "measures its lease on them stays safe",
          .workload = {.clients = 8, .duration_ms = 4000, .holds = {{1.0, 0.0, 0.05}}},
          .nemesis = kWallClockSteps(4000),
          .expectations = kAll(kExpectSafe),
      },
  };
  return *table;
}

const Scenario* FindBuiltinScenario(const std::string& name) {
  for (const Scenario& s : BuiltinScenarios())
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace lockstorm
