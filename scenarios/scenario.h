// Scenario: what a run does to the locks — topology, workload, and (later) a nemesis
// timeline. Built-in scenarios live in ONE explicit table (scenarios.cc); issue #4 adds
// scenario files (JSON) that load into the same struct.
#pragma once

#include <cstdint>
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
};

struct Workload {
  int clients = 16;
  int keys = 1;
  int64_t duration_ms = 10000;
  int64_t ttl_ms = 500;
  int64_t wait_ms = 1000;         // acquire retry budget
  std::vector<HoldBand> holds = {{0.95, 0.0, 0.02}, {0.03, 0.1, 0.3}, {0.02, 0.9, 1.5}};
  bool extend = false;            // extend when a long hold would outlive the lease
  bool check_lease = true;        // honest client: stops using the lock when validity ends
};

struct Scenario {
  std::string name;
  std::string description;
  Persistence persistence = Persistence::kNone;
  Workload workload;
};

// The built-in scenarios, in display order.
const std::vector<Scenario>& BuiltinScenarios();
const Scenario* FindBuiltinScenario(const std::string& name);  // nullptr if unknown

}  // namespace lockstorm
