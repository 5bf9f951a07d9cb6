// `lockstorm mutants`: the mutation score of the harness itself.
//
// Every mutant of the corpus (impls/mutants.cc: a correct lock with one real-world bug) runs
// through the scenarios it declares, beside the correct lock it was derived from. A mutant is
// CAUGHT when any checker reports a violation of it (safety, contract or liveness) in one of
// those scenarios, in the first run or in a second run (next seed) of the scenarios of the
// mutants the first did not catch; the score is caught / total. A correct lock that shows a
// violation its declarations do not expect is a FALSE ALARM. Each scenario is one `lockstorm run`
// whose run directory is kept under the mutants run directory (re-checkable with `lockstorm
// check`).
//
// Output: a table on stdout, and mutants.json + mutants.md in the run directory. Exit code 0
// when every mutant was caught and there was no false alarm, 1 otherwise, 4 on bad input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace lockstorm {

struct MutantsOptions {
  std::vector<std::string> mutants;  // names; empty = the whole corpus
  uint64_t seed = 1;                 // the same seed for every scenario (fixed: CI repeats it)
  std::string out_dir;               // default runs/mutants-<time>-<seed>
  // Seconds per implementation in the generic fault-free scenarios (contention, overrun:
  // 10 s by default); the others keep their own durations. Default kFaultFreeDurationS.
  std::optional<double> duration_s;
  bool quiet = true;  // per-scenario runs print only their summary table
};

inline constexpr double kFaultFreeDurationS = 3.0;
// Runs of a scenario at most: pass 2 (seed + 1) re-runs only the scenarios of mutants pass 1
// did not catch, beside their correct bases (whose verdicts count in both passes).
inline constexpr int kMutantPasses = 2;

int MutantsCommand(const MutantsOptions& opts);

}  // namespace lockstorm
