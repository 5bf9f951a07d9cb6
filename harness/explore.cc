#include "harness/explore.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "harness/runner.h"  // DeriveSeed

namespace lockstorm {
namespace {

constexpr int kMaxSize = 100;
constexpr int kMaxCandidatesPerStep = 10'000;  // a shrink tree level is never this wide here
// Shrink steps undone one by one when the minimal schedule does not reproduce, before jumping
// back to the first failing case (each costs confirm_runs runs).
constexpr int kMaxFallbackSteps = 3;

}  // namespace

ExploreResult Explore(const rc::Gen<Scenario>& gen, const RunCaseFn& run, const ExploreOptions& o,
                      Clock* clock) {
  ExploreResult r;
  const int64_t start_us = clock->NowUs();
  auto ms_since = [&](int64_t t0_us) { return (clock->NowUs() - t0_us) / 1000; };

  // The search.
  std::optional<rc::Shrinkable<Scenario>> failing;
  for (int i = 0; i < o.max_cases && ms_since(start_us) < o.budget_ms; ++i) {
    const int size = std::min(kMaxSize, 10 * (i + 1));
    rc::Shrinkable<Scenario> c =
        gen(rc::Random(DeriveSeed(o.seed, kExploreSeedTag, static_cast<uint64_t>(i))), size);
    const std::string label = "case " + std::to_string(i + 1);
    const CaseResult cr = run(c.value(), label);
    if (cr.stop) {
      r.stopped = true;
      r.elapsed_ms = ms_since(start_us);
      return r;
    }
    ++r.cases;
    r.log.push_back(label + ": " + (cr.failed ? "FAIL " + cr.summary : "pass") + " — " +
                    std::to_string(c.value().nemesis.size()) + " fault(s)");
    if (!cr.failed) continue;
    r.found = true;
    r.failing_case = i;
    r.time_to_find_ms = ms_since(start_us);
    r.first = c.value();
    r.first_summary = cr.summary;
    failing = std::move(c);
    break;
  }
  if (!failing) {
    r.elapsed_ms = ms_since(start_us);
    return r;
  }

  // Shrinking: move to the first simpler candidate that still fails, until none does.
  rc::Shrinkable<Scenario> current = *failing;
  std::vector<std::pair<Scenario, std::string>> chain;  // the schedules stepped away from
  r.minimal_summary = r.first_summary;
  const int64_t shrink_start_us = clock->NowUs();
  auto shrink_budget_left = [&] {
    return r.shrink_runs < o.max_shrink_runs && ms_since(shrink_start_us) < o.shrink_budget_ms;
  };
  bool at_minimum = false, out_of_budget = false;
  while (!at_minimum && !out_of_budget) {
    bool accepted = false;
    rc::Seq<rc::Shrinkable<Scenario>> candidates = current.shrinks();
    for (int k = 0; k < kMaxCandidatesPerStep; ++k) {
      rc::Maybe<rc::Shrinkable<Scenario>> candidate = candidates.next();
      if (!candidate) break;  // no simpler candidate left: a local minimum
      if (!shrink_budget_left()) {
        out_of_budget = true;
        break;
      }
      const std::string label =
          "shrink " + std::to_string(r.shrink_steps + 1) + "." + std::to_string(k + 1);
      // Accepted once `need` runs failed; rejected once they no longer can.
      const int tries = std::max(o.reproduce_tries, 1);
      const int need = std::clamp(o.reproduce_min, 1, tries);
      std::optional<CaseResult> fail;
      int failures = 0;
      for (int t = 0; t < tries && failures < need && failures + (tries - t) >= need; ++t) {
        if (!shrink_budget_left()) {
          out_of_budget = true;  // this candidate stays undecided
          break;
        }
        CaseResult cr = run(candidate->value(), label);
        if (cr.stop) {
          r.stopped = true;
          r.minimal = current.value();
          r.elapsed_ms = ms_since(start_us);
          return r;
        }
        ++r.shrink_runs;
        if (cr.failed) {
          ++failures;
          fail = std::move(cr);
        }
      }
      if (failures < need) {
        if (out_of_budget) break;
        continue;
      }
      chain.push_back({current.value(), r.minimal_summary});
      current = std::move(*candidate);
      ++r.shrink_steps;
      r.minimal_summary = fail->summary;
      r.log.push_back(label + ": still fails (" + fail->summary + ") — " +
                      std::to_string(current.value().nemesis.size()) + " fault(s)");
      accepted = true;
      break;
    }
    if (!accepted && !out_of_budget) at_minimum = true;  // no simpler candidate fails
  }
  r.shrink_exhausted = out_of_budget;
  r.minimal = current.value();

  // How often does the minimal counterexample reproduce? One that never does in
  // `confirm_runs` is no counterexample to hand out: fall back along the accepted steps to the
  // simplest one that does (the first failing case at worst). Bounded by the chain's length.
  // The minimal, then up to kMaxFallbackSteps steps back, then (if it has not been tried) the
  // first failing case: at most kMaxFallbackSteps + 2 confirmations.
  const int levels = std::min(static_cast<int>(chain.size()), kMaxFallbackSteps + 1) + 1;
  for (int level = 0; level < levels; ++level) {
    r.reproduced = 0;
    r.confirm_runs = 0;
    for (int t = 0; t < o.confirm_runs; ++t) {
      const std::string label =
          "confirm " + std::to_string(t + 1) +
          (r.fallbacks ? " (fallback " + std::to_string(r.fallbacks) + ")" : std::string());
      const CaseResult cr = run(r.minimal, label);
      if (cr.stop) {
        r.stopped = true;
        break;
      }
      ++r.confirm_runs;
      r.reproduced += cr.failed;
      r.log.push_back(label + ": " + (cr.failed ? "FAIL " + cr.summary : "pass"));
    }
    if (r.stopped || r.reproduced > 0 || r.confirm_runs == 0 || chain.empty()) break;
    ++r.fallbacks;
    if (level + 2 == levels && chain.size() > 1) {  // the last try: the first failing case
      r.log.push_back("never reproduced: falling back to the first failing case");
      r.fallbacks += static_cast<int>(chain.size()) - 1;
      chain.resize(1);
    } else {
      r.log.push_back("never reproduced: falling back one shrink step");
    }
    r.minimal = std::move(chain.back().first);
    r.minimal_summary = std::move(chain.back().second);
    chain.pop_back();
  }
  r.elapsed_ms = ms_since(start_us);
  return r;
}

}  // namespace lockstorm
