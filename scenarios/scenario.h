// Scenario: what a run does to the locks — topology, workload, a nemesis timeline and the
// expected outcome per lock. Built-in scenarios live in ONE explicit table (scenarios.cc);
// scenario files (JSON, scenarios/scenario_file.h, docs/scenario-format.md) load into the same
// struct.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "harness/redis_server.h"

namespace lockstorm {

// One band of the hold-time mixture: with probability `weight` a hold is drawn uniformly
// from [lo_ttl_frac, hi_ttl_frac] × ttl. Bands above 1.0 are holders overrunning their lease.
struct HoldBand {
  double weight;
  double lo_ttl_frac;
  double hi_ttl_frac;

  bool operator==(const HoldBand&) const = default;
};

struct Workload {
  int clients = 16;
  int keys = 1;
  int64_t duration_ms = 10000;
  int64_t ttl_ms = 500;
  int64_t wait_ms = 1000;  // acquire retry budget
  std::vector<HoldBand> holds = {{0.95, 0.0, 0.02}, {0.03, 0.1, 0.3}, {0.02, 0.9, 1.5}};
  bool extend = false;  // extend when a long hold would outlive the lease
  // With extend: the fraction of such holds whose first extend comes late, after the lease's
  // validity ended (a renewal delayed by a pause). A correct lock must refuse it.
  double late_extend_frac = 0;
  bool check_lease = true;  // honest client: stops using the lock when validity ends
  // 0 = closed loop (each client starts its next cycle as soon as the last one ended: the
  // capacity). > 0 = open loop: cycles are scheduled at this total rate over all clients
  // (each client at rate_per_s / clients, evenly staggered), and time-to-acquire and cycle
  // latencies are timed from each cycle's intended start, so a stalled client's backlog is
  // counted (coordinated omission corrected, as wrk2 does).
  double rate_per_s = 0;

  bool operator==(const Workload&) const = default;
};

// One fault of the nemesis timeline: what (`fault`), where (`nodes`, `clients`, `groups`),
// when (`at_ms` after the workload starts) and for how long (`duration_ms`; 0 = an instant
// fault such as a clock jump, or one that is never healed). The remaining fields are the
// fault's parameters; each is used by some faults only (FaultUsesField) and stays at its
// default for the others. This struct is data: the nemesis executes it.
struct NemesisEvent {
  std::string fault;  // one of KnownFaults()
  int64_t at_ms = 0;
  int64_t duration_ms = 0;
  std::vector<int> nodes{};    // node indexes, 0..nodes-1; empty = the fault's default target
  std::vector<int> clients{};  // client indexes, 0..clients-1; empty = the fault's default
  // partition only: client group i reaches the nodes in groups[i] (a split); empty = the
  // `nodes` are cut off from the `clients`.
  std::vector<std::vector<int>> groups{};
  int64_t latency_ms = 0;     // latency: added delay per message
  int64_t jitter_ms = 0;      // latency: uniform extra delay in [0, jitter_ms]
  int64_t delta_ms = 0;       // clock-jump, client-clock-jump, client-wall-clock-jump: signed jump
  double rate = 1.0;          // clock-rate, client-clock-rate: clock speed (1 = real time)
  std::string persistence{};  // restart-node: PersistenceName() value; "" = topology's
  int64_t delay_ms = 0;       // restart-node: the node is down this long, then restarts

  bool operator==(const NemesisEvent&) const = default;
};

// The fault names a NemesisEvent may carry, in documentation order, terminated by nullptr.
const char* const* KnownFaults();
bool IsKnownFault(const std::string& fault);
// Whether `fault` takes the NemesisEvent field named `field` (its JSON key: "nodes",
// "clients", "groups", "latency_ms", "jitter_ms", "delta_ms", "rate", "persistence",
// "delay_ms"). "at_ms" and "duration_ms" are taken by every fault. False for unknown names.
bool FaultUsesField(const std::string& fault, const std::string& field);

// Expected outcome of one lock in one scenario (Scenario::expectations values).
inline constexpr const char* kExpectSafe = "safe";          // no violation expected
inline constexpr const char* kExpectUnsafe = "unsafe";      // expected to violate safety
inline constexpr const char* kExpectLiveness = "liveness";  // expected liveness violation

struct Scenario {
  std::string name;
  std::string description;
  Persistence persistence = Persistence::kNone;
  int nodes = 0;     // Redis nodes; 0 = decided by the locks (1, or --nodes for multi-node)
  int replicas = 0;  // replicas per node
  Workload workload;
  std::vector<NemesisEvent> nemesis{};
  // Lock name → kExpectSafe | kExpectUnsafe | kExpectLiveness. Locks not listed keep their
  // own declaration (built-in expected_unsafe lists, plug-in expected_unsafe).
  std::map<std::string, std::string> expectations{};
  int64_t liveness_bound_ms = 0;  // a free lock must be acquirable within this; 0 = ttl + 1000

  bool operator==(const Scenario&) const = default;
};

// The built-in scenarios, in display order.
const std::vector<Scenario>& BuiltinScenarios();
const Scenario* FindBuiltinScenario(const std::string& name);  // nullptr if unknown

}  // namespace lockstorm
