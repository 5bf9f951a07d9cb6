// `lockstorm explore`: search generated fault schedules for a violation of one lock and shrink
// the first one found (harness/explore.h, scenarios/generate.h).
//
// Each case is one `lockstorm run` of the lock through a generated scenario, written first as
// RUN_DIR/cases/LABEL/scenario.json and run in RUN_DIR/cases/LABEL (passing cases' directories
// are removed; failing ones are kept and can be re-checked with `lockstorm check`). Cases share
// the embedded redis-servers (RUN_DIR/servers/, harness/server_pool.h) unless fresh_servers:
// each case still uses only its own keys, and the servers are refreshed between cases. The
// property is "no unexpected violation": a case fails when the run exits 1 (safety) or 2
// (liveness).
//
// Output, in RUN_DIR: counterexample.json (the minimal schedule, a scenario file that `lockstorm
// run --scenario` replays), explore.json (the search: cases, time to find, shrink steps and
// runs, reproduction rate, the log) and explore.md (the same for people, with the timeline
// and a one-line reproduce command); a summary on stdout.
// Exit code: 0 = no violation within the budget, 1 = a counterexample was found, 3 = interrupted
// (Ctrl-C), 4 = bad input or a case that could not run (exploring stops at once).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lockstorm {

struct ExploreCommandOptions {
  std::string impl;                 // one built-in lock (or NAME=exec:CMD)
  std::vector<std::string> faults;  // fault groups (scenarios/generate.h); empty = none
  int nodes = 3;                    // for multi-node locks; single-node locks get 1
  double budget_s = 120;
  double shrink_budget_s = 600;
  uint64_t seed = 1;
  int max_events = 3;
  int reproduce_tries = 3;
  int reproduce_min = 2;  // failing runs (of reproduce_tries) that accept a shrink candidate
  int confirm_runs = 5;
  std::string out_dir;         // default runs/explore-<time>-<seed>
  bool fresh_servers = false;  // new redis-servers per case (default: reuse, harness/server_pool.h)
};

int ExploreCommand(const ExploreCommandOptions& opts);

}  // namespace lockstorm
