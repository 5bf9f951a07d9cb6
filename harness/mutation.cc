#include "harness/mutation.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "harness/run.h"
#include "impls/registry.h"
#include "reports/report.h"
#include "scenarios/scenario.h"

namespace lockstorm {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// What one row of a scenario's report.json says about an impl.
struct RowSummary {
  std::string scenario;
  std::string verdict;
  std::string expected;
  std::map<std::string, int64_t> kinds;  // violations by kind
  int64_t first_violation_ms = -1;
  std::string evidence;  // the first violation's detail
};

// Reads a scenario's report.json once: its rows into *by_impl; returns whether the run was
// interrupted.
bool ReadRows(const std::string& report_path, const std::string& scenario,
              std::map<std::string, RowSummary>* by_impl) {
  std::ifstream f(report_path);
  if (!f) return false;
  Json j;
  try {
    j = Json::parse(f);
  } catch (const std::exception&) {
    return false;
  }
  const Json results = j.value("results", Json::array());
  for (const Json& r : results) {
    RowSummary o;
    o.scenario = scenario;
    o.verdict = r.value("verdict", "");
    o.expected = r.value("expected", "");
    const Json check = r.value("check", Json::object());
    const Json kinds = check.value("violations_by_kind", Json::object());
    for (const auto& [k, v] : kinds.items()) o.kinds[k] = v.get<int64_t>();
    o.first_violation_ms = check.value("first_violation_ms", int64_t{-1});
    // The earliest violation kept, whatever its kind.
    int64_t best = std::numeric_limits<int64_t>::max();
    const Json violations = r.value("violations", Json::array());
    for (const Json& v : violations) {
      const int64_t t = v.value("start_us", int64_t{0});
      if (t < best) best = t, o.evidence = v.value("kind", "") + ": " + v.value("detail", "");
    }
    (*by_impl)[r.value("impl", "")] = o;
  }
  return j.value("summary", Json::object()).value("interrupted", false);
}

std::string KindsText(const std::map<std::string, int64_t>& kinds) {
  std::string s;
  for (const auto& [k, n] : kinds) s += (s.empty() ? "" : ", ") + k + " " + std::to_string(n);
  return s.empty() ? "-" : s;
}

}  // namespace

int MutantsCommand(const MutantsOptions& o) {
  // --- which mutants, which scenarios.
  std::vector<const MutantInfo*> chosen;
  if (o.mutants.empty()) {
    for (const MutantInfo& m : Mutants()) chosen.push_back(&m);
  } else {
    for (const std::string& name : o.mutants) {
      const MutantInfo* m = FindMutant(name);
      if (!m) return UsageError("--mutant: unknown mutant '" + name + "' (see `lockstorm list`)");
      chosen.push_back(m);
    }
  }
  std::set<std::string> mutant_names;
  for (const MutantInfo* m : chosen) mutant_names.insert(m->impl.name);
  // Scenario → impls to run: the mutants it exposes, after the correct locks they derive from.
  std::map<std::string, std::vector<std::string>> plan;
  std::map<std::string, std::set<std::string>> bases_of;  // scenario → correct locks
  for (const MutantInfo* m : chosen) {
    for (const auto& [scenario, expect] : m->exposed_by) {
      if (!FindBuiltinScenario(scenario))
        return UsageError("mutant '" + m->impl.name + "' names unknown scenario '" + scenario +
                          "'");
      bases_of[scenario].insert(m->base);
      plan[scenario].push_back(m->impl.name);
    }
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> runs;
  for (const Scenario& sc : BuiltinScenarios()) {  // table order
    auto it = plan.find(sc.name);
    if (it == plan.end()) continue;
    std::vector<std::string> impls(bases_of[sc.name].begin(), bases_of[sc.name].end());
    for (const std::string& m : it->second)
      if (std::find(impls.begin(), impls.end(), m) == impls.end()) impls.push_back(m);
    runs.emplace_back(sc.name, impls);
  }

  const std::string dir = o.out_dir.empty() ? DefaultRunDir("mutants-", o.seed) : o.out_dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    return UsageError("--out: cannot create directory '" + dir +
                      "': " + (ec ? ec.message() : "not a directory"));

  std::cout << "lockstorm mutants: " << chosen.size() << " mutant(s) through " << runs.size()
            << " scenario(s), seed " << o.seed << ", run dir " << dir << std::endl;
  // --- run each scenario.
  std::map<std::pair<std::string, std::string>, RowSummary> rows;  // (impl, scenario)
  const auto t0 = std::chrono::steady_clock::now();
  bool interrupted = false;
  // Pass 1 runs every scenario with the seed; pass 2 re-runs, with the next seed, only the
  // scenarios of mutants pass 1 did not catch (real servers are not deterministic: a rare
  // interleaving may not show in one run). The table says which pass caught each mutant.
  std::map<std::pair<std::string, std::string>, int> pass_of;  // (impl, scenario) → pass
  for (int pass = 1; pass <= kMutantPasses && !interrupted; ++pass) {
    const uint64_t seed = o.seed + static_cast<uint64_t>(pass - 1);
    for (const auto& [scenario, all_impls] : runs) {
      std::vector<std::string> impls = all_impls;
      if (pass > 1) {  // only the uncaught mutants of this scenario, after their bases
        impls.clear();
        for (const std::string& i : all_impls) {
          const bool mutant = mutant_names.count(i) > 0;
          auto it = rows.find({i, scenario});
          const bool caught = it != rows.end() && !it->second.kinds.empty();
          if (mutant && !caught) impls.push_back(i);
        }
        if (impls.empty()) continue;
        std::set<std::string> bases;
        for (const std::string& i : impls) bases.insert(FindMutant(i)->base);
        impls.insert(impls.begin(), bases.begin(), bases.end());
      }
      const Scenario* sc = FindBuiltinScenario(scenario);
      RunOptions ro;
      ro.impls = impls;
      ro.scenario = scenario;
      ro.seed = seed;
      ro.out_dir = dir + "/" + scenario + (pass > 1 ? "-pass" + std::to_string(pass) : "");
      ro.quiet = o.quiet;
      // The generic fault-free scenarios (10 s by default) are shortened; the others keep
      // the durations their timelines and exposure rates were designed for.
      if (sc->nemesis.empty() && sc->workload.duration_ms >= 10000)
        ro.duration_s = o.duration_s.value_or(kFaultFreeDurationS);
      std::string line;
      for (const auto& i : impls) line += (line.empty() ? "" : ",") + i;
      ro.command_line = "lockstorm run --impl " + line + " --scenario " + scenario + " --seed " +
                        std::to_string(seed) +
                        (ro.duration_s ? " --duration " + std::to_string(*ro.duration_s) : "");
      std::cout << "\n== pass " << pass << ", " << scenario << ": " << line << std::endl;
      const int rc = RunCommand(ro);
      if (rc == kExitUsage) return rc;
      std::map<std::string, RowSummary> by_impl;
      interrupted = ReadRows(ro.out_dir + "/report.json", scenario, &by_impl);
      for (auto& [impl, out] : by_impl) {
        auto& row = rows[{impl, scenario}];
        // A correct lock keeps its worst verdict; a mutant its first catch.
        if (pass == 1 || (!out.kinds.empty() && row.kinds.empty()) || out.verdict == "fail") {
          row = out;
          pass_of[{impl, scenario}] = pass;
        }
      }
      if (interrupted) break;
    }
  }
  const double elapsed_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // --- score.
  Json mj;
  mj["schema_version"] = 1;
  mj["seed"] = o.seed;
  mj["passes"] = kMutantPasses;
  mj["elapsed_s"] = elapsed_s;
  mj["mutants"] = Json::array();
  mj["correct_locks"] = Json::array();
  int caught = 0;
  std::ostringstream md;
  md << "| mutant | base | caught | scenario | checkers (violations by kind) | time to detection "
        "| evidence |\n|---|---|---|---|---|---|---|\n";
  for (const MutantInfo* m : chosen) {
    Json e;
    e["name"] = m->impl.name;
    e["base"] = m->base;
    e["pattern"] = m->pattern;
    e["bug"] = m->impl.description;
    bool was_caught = false;
    std::string where, kinds, evidence;
    int64_t detect_ms = -1;
    Json per = Json::array();
    for (const auto& [scenario, expect] : m->exposed_by) {
      auto it = rows.find({m->impl.name, scenario});
      if (it == rows.end()) continue;
      const RowSummary& out = it->second;
      const bool hit = !out.kinds.empty();
      per.push_back({{"scenario", scenario},
                     {"pass", pass_of[{m->impl.name, scenario}]},
                     {"expected", expect},
                     {"verdict", out.verdict},
                     {"caught", hit},
                     {"violations_by_kind", out.kinds},
                     {"first_violation_ms", out.first_violation_ms},
                     {"evidence", out.evidence}});
      if (hit && !was_caught) {
        was_caught = true;
        where = scenario + (pass_of[{m->impl.name, scenario}] > 1 ? " (pass 2)" : "");
        kinds = KindsText(out.kinds);
        evidence = out.evidence;
        detect_ms = out.first_violation_ms;
      }
    }
    e["scenarios"] = per;
    e["caught"] = was_caught;
    e["caught_in"] = where;
    e["first_violation_ms"] = detect_ms;
    caught += was_caught;
    mj["mutants"].push_back(e);
    std::string ev = evidence.size() > 160 ? evidence.substr(0, 157) + "..." : evidence;
    for (char& c : ev)
      if (c == '|') c = '/';
    md << "| " << m->impl.name << " | " << m->base << " | " << (was_caught ? "yes" : "**NO**")
       << " | " << (was_caught ? where : "-") << " | " << (was_caught ? kinds : "-") << " | "
       << (detect_ms >= 0 ? std::to_string(detect_ms) + " ms" : "-") << " | " << ev << " |\n";
  }
  // Correct locks: any violation outside their declarations is a false alarm.
  int false_alarms = 0;
  std::ostringstream md2;
  md2 << "| correct lock | scenario | verdict | violations by kind |\n|---|---|---|---|\n";
  for (const auto& [key, out] : rows) {
    if (mutant_names.count(key.first)) continue;
    const bool alarm = out.verdict == "fail";
    false_alarms += alarm;
    mj["correct_locks"].push_back({{"impl", key.first},
                                   {"scenario", key.second},
                                   {"verdict", out.verdict},
                                   {"false_alarm", alarm},
                                   {"violations_by_kind", out.kinds}});
    md2 << "| " << key.first << " | " << key.second << " | " << out.verdict
        << (alarm ? " (**false alarm**)" : "") << " | " << KindsText(out.kinds) << " |\n";
  }
  const int total = static_cast<int>(chosen.size());
  mj["caught"] = caught;
  mj["total"] = total;
  mj["score"] = total ? static_cast<double>(caught) / total : 0.0;
  mj["false_alarms"] = false_alarms;
  mj["interrupted"] = interrupted;
  std::ostringstream head;
  head << "Mutation score: " << caught << "/" << total << " (" << (total ? 100 * caught / total : 0)
       << " %), false alarms on correct locks: " << false_alarms << ", seed " << o.seed << ", "
       << static_cast<int>(elapsed_s) << " s" << (interrupted ? " (interrupted)" : "");
  const std::string report =
      "# lockstorm mutants\n\n" + head.str() + "\n\n" + md.str() + "\n" + md2.str();
  {
    std::ofstream f(dir + "/mutants.json");
    f << mj.dump(2) << "\n";
    std::ofstream g(dir + "/mutants.md");
    g << report;
    if (!f || !g) return UsageError("--out: cannot write " + dir + "/mutants.json");
  }
  std::cout << "\n" << report << "\nreport: " << dir << "/mutants.md" << std::endl;
  if (interrupted) return kExitInconclusive;
  return caught == total && false_alarms == 0 ? kExitOk : kExitSafety;
}

}  // namespace lockstorm
