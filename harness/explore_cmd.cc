#include "harness/explore_cmd.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "harness/explore.h"
#include "harness/run.h"
#include "harness/server_pool.h"
#include "harness/shutdown.h"
#include "impls/registry.h"
#include "reports/report.h"
#include "scenarios/generate.h"
#include "scenarios/scenario_file.h"

namespace lockstorm {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// "case 12" → "case-12"
std::string DirName(std::string label) {
  for (char& c : label)
    if (c == ' ') c = '-';
  return label;
}

// "overlap 3, late-use 1" from the row of `impl` in a run's report.json; "" if none.
std::string ViolationSummary(const std::string& report_path, const std::string& impl) {
  std::ifstream f(report_path);
  Json report = Json::parse(f, nullptr, /*allow_exceptions=*/false);
  if (report.is_discarded() || !report.contains("results")) return "";
  for (const Json& row : report["results"]) {
    if (row.value("impl", "") != impl) continue;
    std::string s;
    const Json by_kind = row["check"].value("violations_by_kind", Json::object());
    for (const auto& [kind, n] : by_kind.items())
      s += (s.empty() ? "" : ", ") + kind + " " + n.dump();
    const std::string live = row["check"].value("liveness", Json::object()).value("verdict", "");
    if (live == "invalid") s += (s.empty() ? "" : ", ") + std::string("liveness");
    return s;
  }
  return "";
}

}  // namespace

int ExploreCommand(const ExploreCommandOptions& o) {
  if (o.impl.empty()) return UsageError("--impl: expected one lock (see `lockstorm list`)");
  const ImplInfo* builtin = FindBuiltinImpl(o.impl);
  const MutantInfo* mutant = FindMutant(o.impl);
  const bool exec = o.impl.find("exec:") != std::string::npos;
  if (!builtin && !mutant && !exec) {
    return UsageError(
        "--impl: unknown lock '" + o.impl +
        "' (expected a built-in lock or mutant from `lockstorm list`, or NAME=exec:CMD)");
  }
  const bool multi_node = (builtin && builtin->multi_node) || (mutant && mutant->impl.multi_node);
  if (o.nodes < 1 || o.nodes > 15) return UsageError("--nodes: expected 1..15");
  if (!(o.budget_s > 0) || o.budget_s > 86400)
    return UsageError("--budget: expected 0 < seconds <= 86400");
  if (!(o.shrink_budget_s > 0) || o.shrink_budget_s > 86400)
    return UsageError("--shrink-budget: expected 0 < seconds <= 86400");
  if (o.max_events < 0 || o.max_events > 10) return UsageError("--max-events: expected 0..10");
  if (o.reproduce_tries < 1 || o.reproduce_tries > 20)
    return UsageError("--reproduce-tries: expected 1..20");
  if (o.reproduce_min < 1 || o.reproduce_min > o.reproduce_tries)
    return UsageError("--reproduce-min: expected 1..--reproduce-tries (" +
                      std::to_string(o.reproduce_tries) + ")");
  if (o.confirm_runs < 0 || o.confirm_runs > 100)
    return UsageError("--confirm-runs: expected 0..100");
  ExploreBounds bounds;
  if (Status s = FaultKindsForGroups(o.faults, &bounds.faults); !s.ok())
    return UsageError(s.message());
  bounds.nodes = multi_node ? o.nodes : 1;
  bounds.max_events = o.max_events;

  const std::string dir = o.out_dir.empty() ? DefaultRunDir("explore-", o.seed) : o.out_dir;
  std::error_code ec;
  fs::create_directories(dir + "/cases", ec);
  if (ec) return UsageError("--out: cannot create directory " + dir + ": " + ec.message());
  std::cout << "lockstorm explore: " << o.impl << ", faults "
            << (bounds.faults.empty() ? std::string("none") : [&] {
                 std::string s;
                 for (const auto& f : bounds.faults) s += (s.empty() ? "" : ",") + f;
                 return s;
               }())
            << ", " << bounds.nodes << " node(s), budget " << o.budget_s << " s, seed " << o.seed
            << ", run dir " << dir << std::endl;

  ServerPool pool(dir + "/servers");
  int runs = 0;
  bool infra_error = false;
  RunCaseFn run_case = [&](const Scenario& s, const std::string& label) -> CaseResult {
    if (infra_error || ShutdownRequested()) return {false, "", true};
    const std::string case_dir = dir + "/cases/" + DirName(label);
    fs::create_directories(case_dir, ec);
    const std::string scenario_path = case_dir + "/scenario.json";
    std::ofstream(scenario_path) << ScenarioToJson(s) << "\n";
    RunOptions ro;
    ro.impls = {o.impl};
    ro.scenario = scenario_path;
    ro.seed = o.seed;
    ro.out_dir = case_dir + "/run";
    ro.nodes = o.nodes;
    ro.quiet = true;
    ro.progress = "never";
    if (!o.fresh_servers) ro.server_pool = &pool;
    ++runs;
    ro.command_line = "lockstorm run --impl " + o.impl + " --scenario " + scenario_path +
                      " --seed " + std::to_string(o.seed);
    int rc = kExitUsage;
    {
      // The per-case table is noise here (explore prints its own line); stdout comes back
      // even if the run throws.
      std::ostringstream sink;
      struct Restore {
        std::streambuf* saved;
        ~Restore() { std::cout.rdbuf(saved); }
      } restore{std::cout.rdbuf(sink.rdbuf())};
      rc = RunCommand(ro);
    }
    CaseResult r;
    r.failed = rc == kExitSafety || rc == kExitLiveness;
    if (rc == kExitUsage) infra_error = true;
    // Ctrl-C (the run was cut short: inconclusive) or a case that could not run: stop.
    r.stop = infra_error || ShutdownRequested();
    if (r.stop) {
      std::cout << label << ": "
                << (infra_error ? "infrastructure error: exploring stops" : "interrupted")
                << std::endl;
      return r;
    }
    r.summary = r.failed ? ViolationSummary(ro.out_dir + "/report.json", o.impl) : "";
    std::cout << label << ": " << (r.failed ? "FAIL (" + r.summary + ")" : "pass")
              << (rc == kExitInconclusive ? " (inconclusive)" : "") << " — " << s.nemesis.size()
              << " fault(s)" << std::endl;
    if (!r.failed) fs::remove_all(case_dir, ec);  // keep only the failing cases
    return r;
  };
  ExploreOptions eo;
  eo.seed = o.seed;
  eo.budget_ms = static_cast<int64_t>(o.budget_s * 1000);
  eo.shrink_budget_ms = static_cast<int64_t>(o.shrink_budget_s * 1000);
  eo.reproduce_tries = o.reproduce_tries;
  eo.reproduce_min = o.reproduce_min;
  eo.confirm_runs = o.confirm_runs;
  const ExploreResult r = Explore(GenScenario(bounds), run_case, eo, RealClock());
  if (infra_error) return UsageError("a case could not run (see the line above); run dir " + dir);
  if (r.stopped) {
    std::cout << "explore interrupted after " << r.cases << " case(s); run dir " << dir
              << std::endl;
    return kExitInconclusive;
  }

  Scenario minimal = r.minimal;
  minimal.name = "counterexample";
  minimal.description = "found by lockstorm explore --impl " + o.impl + " --seed " +
                        std::to_string(o.seed) + ": " + r.minimal_summary;
  const std::string cx_path = dir + "/counterexample.json";
  const std::string reproduce = "lockstorm run --impl " + o.impl + " --scenario " + cx_path +
                                " --seed " + std::to_string(o.seed) +
                                (multi_node ? " --nodes " + std::to_string(o.nodes) : "");
  if (r.found) std::ofstream(cx_path) << ScenarioToJson(minimal) << "\n";

  Json j;
  j["schema_version"] = 1;
  j["impl"] = o.impl;
  j["seed"] = o.seed;
  j["faults"] = bounds.faults;
  j["nodes"] = bounds.nodes;
  j["budget_s"] = o.budget_s;
  j["cases"] = r.cases;
  j["found"] = r.found;
  j["elapsed_ms"] = r.elapsed_ms;
  j["runs"] = runs;  // every run: search, shrinking and confirmation
  j["server_sets_started"] = o.fresh_servers ? runs : pool.starts();
  j["server_sets_reused"] = pool.reuses();
  if (r.found) {
    j["failing_case"] = r.failing_case + 1;
    j["time_to_find_ms"] = r.time_to_find_ms;
    j["first_faults"] = r.first.nemesis.size();
    j["first_summary"] = r.first_summary;
    j["minimal_faults"] = r.minimal.nemesis.size();
    j["minimal_summary"] = r.minimal_summary;
    j["shrink_steps"] = r.shrink_steps;
    j["shrink_runs"] = r.shrink_runs;
    j["shrink_exhausted"] = r.shrink_exhausted;
    j["reproduce_min"] = o.reproduce_min;
    j["reproduce_tries"] = o.reproduce_tries;
    j["fallbacks"] = r.fallbacks;
    j["reproduced"] = r.reproduced;
    j["confirm_runs"] = r.confirm_runs;
    j["counterexample"] = "counterexample.json";
    j["reproduce"] = reproduce;
    j["timeline"] = DescribeSchedule(r.minimal);
  }
  j["log"] = r.log;
  std::ofstream(dir + "/explore.json") << j.dump(2) << "\n";

  std::ostringstream md;
  md << "## lockstorm explore: " << o.impl << "\n\n";
  md << "seed " << o.seed << " · faults " << (bounds.faults.empty() ? "none" : j["faults"].dump())
     << " · " << bounds.nodes << " node(s) · " << r.cases << " case(s) in " << r.elapsed_ms / 1000.0
     << " s\n\n";
  if (!r.found) {
    md << "No violation within the budget (" << o.budget_s << " s, " << r.cases << " cases).\n";
  } else {
    md << "**Counterexample** (case " << r.failing_case + 1 << ", found after "
       << r.time_to_find_ms / 1000.0 << " s): " << r.first.nemesis.size() << " fault(s) → "
       << r.minimal.nemesis.size() << " after " << r.shrink_steps << " shrink step(s) ("
       << r.shrink_runs << " runs" << (r.shrink_exhausted ? ", stopped by the shrink budget" : "")
       << (r.fallbacks ? ", " + std::to_string(r.fallbacks) +
                             " step(s) undone: their schedule never reproduced"
                       : std::string())
       << "); reproduced " << r.reproduced << " of " << r.confirm_runs << " runs.\n\n";
    md << "Violations: " << r.minimal_summary << "\n\n```\n"
       << DescribeSchedule(r.minimal) << "\n```\n\nReplay: `" << reproduce << "`\n";
  }
  std::ofstream(dir + "/explore.md") << md.str();
  std::cout << "\n"
            << md.str() << "\nreport: " << dir << "/explore.json, explore.md"
            << (r.found ? ", counterexample.json" : "") << "  (exit " << (r.found ? 1 : 0) << ")"
            << std::endl;
  return r.found ? kExitSafety : kExitOk;
}

}  // namespace lockstorm
