// Explore: search fault schedules for a violation, then shrink the first one found to a
// minimal counterexample (issue #7; `lockstorm explore`).
//
// Explore draws scenarios from a generator (scenarios/generate.h) and runs each through a
// RunCaseFn — in the product a short lockstorm run against real redis-servers, in tests a
// fake. When a case fails it walks the generator's shrink tree (RapidCheck's Shrinkable): it
// tries the candidate simplifications of the current counterexample in order and moves to
// the first that still fails, until none does. Runs on real servers are not deterministic,
// so a candidate counts as failing if `reproduce_min` of up to `reproduce_tries` runs of it
// fail (one lucky failure would let the shrink drift to schedules that rarely fail), and the
// final counterexample's reproduction rate is measured over `confirm_runs` more runs; if it
// never fails there, explore falls back along the accepted steps to the simplest schedule
// that does reproduce.
//
// Budgets (TigerStyle: every loop has one): the search ends at `budget_ms` of `clock` time or
// after `max_cases`; shrinking at `shrink_budget_ms` or `max_shrink_runs`. Time is read from
// the Clock given, so tests drive it.
//
// Determinism: case i is generated from rc::Random(DeriveSeed(seed, kExploreSeedTag, i)) at
// size min(100, 10 * (i + 1)): one seed names the whole search, and the same seed with the
// same RunCaseFn outcomes gives the same cases and the same shrink path.
//
// Thread-safety: Explore runs on the calling thread and calls `run` from it, one at a time.
#pragma once

#include <rapidcheck.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "harness/clock.h"
#include "scenarios/scenario.h"

namespace lockstorm {

inline constexpr uint64_t kExploreSeedTag = 7;

struct ExploreOptions {
  uint64_t seed = 1;
  int64_t budget_ms = 120'000;  // the search for a first failure
  int max_cases = 1'000'000;
  int64_t shrink_budget_ms = 600'000;
  int max_shrink_runs = 400;
  int reproduce_tries = 3;  // runs of a shrink candidate at most...
  int reproduce_min = 2;    // ...of which this many must fail for it to count as failing
  int confirm_runs = 5;     // runs of the final counterexample for its reproduction rate
};

// One run of one scenario: failed = an unexpected violation (the property does not hold);
// summary names it (for the log and the report), e.g. "token-lua: overlap 3".
struct CaseResult {
  bool failed = false;
  std::string summary;
  // Stop exploring now (an interrupt, or a case that could not run): no more cases, no
  // shrinking, no confirmation; the result says `stopped`.
  bool stop = false;
};
// `label` says which run this is ("case 12", "shrink 3.2", "confirm 4"), for logs and run
// directory names.
using RunCaseFn = std::function<CaseResult(const Scenario& scenario, const std::string& label)>;

struct ExploreResult {
  int cases = 0;  // cases run while searching
  bool found = false;
  int failing_case = -1;        // index of the first failing case
  int64_t time_to_find_ms = 0;  // from the start to that case's end
  Scenario first;               // the failing case as generated
  std::string first_summary;
  Scenario minimal;  // after shrinking (== first if nothing simpler failed)
  std::string minimal_summary;
  int shrink_steps = 0;           // simplifications accepted
  int shrink_runs = 0;            // runs spent shrinking (accepted or not)
  bool shrink_exhausted = false;  // shrinking stopped at its budget, not at a local minimum
  int reproduced = 0;             // failing runs of `minimal` among...
  int confirm_runs = 0;           // ...this many
  int fallbacks = 0;              // shrink steps undone: their schedule never reproduced
  bool stopped = false;           // a RunCaseFn asked to stop (CaseResult::stop)
  int64_t elapsed_ms = 0;
  std::vector<std::string> log;  // one line per case, shrink step and confirmation
};

ExploreResult Explore(const rc::Gen<Scenario>& gen, const RunCaseFn& run,
                      const ExploreOptions& options, Clock* clock);

}  // namespace lockstorm
