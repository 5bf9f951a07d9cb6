// The table of built-in scenarios. One entry per scenario; no static registration.
#include "scenarios/scenario.h"

namespace lockstorm {

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
  };
  return *table;
}

const Scenario* FindBuiltinScenario(const std::string& name) {
  for (const Scenario& s : BuiltinScenarios())
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace lockstorm
