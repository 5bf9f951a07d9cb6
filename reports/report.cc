#include "reports/report.h"

#include <cstdio>
#include <map>
#include <sstream>

namespace lockstorm {

void JudgeRow(ResultRow* row) {
  const CheckResult& c = row->check;
  row->failure.clear();
  const bool safety = c.verdict == Verdict::kInvalid || row->stale_writes_accepted > 0;
  const bool liveness = c.liveness.verdict == Verdict::kInvalid;
  if (safety) {
    row->failure = "safety";
    // Resource damage through the fenced witness is never expected.
    row->verdict =
        row->expected == "unsafe" && row->stale_writes_accepted == 0 ? "expected-fail" : "fail";
  } else if (c.verdict == Verdict::kInconclusive) {
    // Nothing was acquired in the safety phase (a plug-in that never works): nothing was
    // tested, and failed liveness probes say nothing about the lock either.
    row->verdict = "inconclusive";
  } else if (liveness) {
    row->failure = "liveness";
    row->verdict = row->expected == "liveness" ? "expected-fail" : "fail";
  } else {
    row->verdict = row->expected == "safe" ? "pass" : "unexpected-pass";
  }
}

int ExitCodeFor(const std::vector<ResultRow>& rows, bool interrupted) {
  bool safety = false, liveness = false, inconclusive = interrupted;
  for (const auto& r : rows) {
    if (r.verdict == "fail" && r.failure == "liveness") liveness = true;
    if (r.verdict == "fail" && r.failure != "liveness") safety = true;
    if (r.verdict == "inconclusive") inconclusive = true;
  }
  if (safety) return kExitSafety;
  if (liveness) return kExitLiveness;
  if (inconclusive) return kExitInconclusive;
  return kExitOk;
}

nlohmann::json ReportToJson(const RunReport& report) {
  nlohmann::json j;
  j["schema_version"] = kReportSchemaVersion;
  j["context"] = report.context;
  j["results"] = nlohmann::json::array();
  for (const ResultRow& r : report.rows) {
    const RunStats& s = r.stats;
    nlohmann::json row;
    row["impl"] = r.impl;
    row["scenario"] = r.scenario;
    if (!r.base_scenario.empty()) {
      row["base_scenario"] = r.base_scenario;
      row["repetition"] = r.repetition;
    }
    row["mode"] = r.mode;
    row["target_rate_per_s"] = r.target_rate_per_s;
    row["verdict"] = r.verdict;
    row["expected"] = r.expected;
    row["expected_unsafe"] = r.expected == "unsafe";  // schema v1 field, kept
    if (!r.failure.empty()) row["failure"] = r.failure;
    row["counts"] = {
        {"attempts", s.attempts},
        {"acquires", s.acquires},
        {"acquired", s.acquired},
        {"contended", s.contended},
        {"unknown", s.unknown},
        {"releases_ok", s.releases_ok},
        {"releases_fail", s.releases_fail},
        {"releases_unknown", s.releases_unknown},
        {"extends_ok", s.extends_ok},
        {"extends_fail", s.extends_fail},
        {"extends_unknown", s.extends_unknown},
        {"abandoned", s.abandoned},
        {"lost_updates", r.check.lost_updates},
        {"violations", r.check.violation_count},
        {"witness_rejected", s.witness_rejected},
        {"stale_writes_accepted", r.stale_writes_accepted},
        {"infra_errors", s.infra_error_count},
        {"pauses", s.pauses},
        {"crashes", s.crashes},
        {"probes", s.probes},
        {"probes_ok", s.probes_ok},
        {"overlaps_seen", s.overlaps_seen},
    };
    row["acquired_per_client"] = s.acquired_per_client;
    row["elapsed_us"] = s.elapsed_us;
    // Over the duration window (ok acquires completed in it); re-checked rows, which have no
    // window, fall back to everything over the elapsed time.
    row["throughput_acquired_per_s"] =
        s.window_us > 0
            ? static_cast<double>(s.acquired_in_window) * 1e6 / static_cast<double>(s.window_us)
        : s.elapsed_us > 0
            ? static_cast<double>(s.acquired) * 1e6 / static_cast<double>(s.elapsed_us)
            : 0.0;
    row["window_us"] = s.window_us;
    row["latency_us"] = {{"acquire", s.acquire_us.ToJson()},
                         {"acquire_contended", s.acquire_contended_us.ToJson()},
                         {"time_to_acquire", s.time_to_acquire_us.ToJson()},
                         {"release", s.release_us.ToJson()},
                         {"extend", s.extend_us.ToJson()},
                         {"cycle", s.cycle_us.ToJson()}};
    row["latency_curves_us"] = {{"acquire", s.acquire_us.CurveToJson()},
                                {"time_to_acquire", s.time_to_acquire_us.CurveToJson()},
                                {"release", s.release_us.CurveToJson()},
                                {"cycle", s.cycle_us.CurveToJson()}};
    if (!r.contention.is_null()) row["contention"] = r.contention;
    if (!r.throughput_series.is_null()) row["throughput_series"] = r.throughput_series;
    row["node_health"] = nlohmann::json::array();
    for (const NodeHealth& h : s.node_health) {
      row["node_health"].push_back({{"node", h.node},
                                    {"address", h.address},
                                    {"pings", h.pings},
                                    {"errors", h.errors},
                                    {"ping_us", h.ping_us.ToJson()}});
    }
    row["start_us"] = s.start_us;
    row["check"] = CheckResultToJson(r.check);
    row["violations"] = nlohmann::json::array();
    for (const Violation& v : r.check.violations) row["violations"].push_back(ViolationToJson(v));
    for (const Violation& v : r.check.liveness.violations)
      row["violations"].push_back(ViolationToJson(v));
    row["infra_errors"] = s.infra_errors;
    row["faults"] = r.faults;
    if (!r.ghosts.is_null()) row["ghosts"] = r.ghosts;
    j["results"].push_back(row);
  }
  j["summary"] = {{"exit_code", report.exit_code}, {"interrupted", report.interrupted}};
  return j;
}

namespace {

std::string Pad(const std::string& s, size_t w, bool right = false) {
  if (s.size() >= w) return s;
  return right ? std::string(w - s.size(), ' ') + s : s + std::string(w - s.size(), ' ');
}

}  // namespace

std::string ConsoleTable(const RunReport& report) {
  const std::vector<std::string> head = {
      "impl",       "scenario", "verdict",    "attempts",   "acquired",   "contended", "unknown",
      "violations", "lost_upd", "acq_p50_us", "acq_p99_us", "rel_p50_us", "rel_p99_us"};
  std::vector<std::vector<std::string>> rows = {head};
  for (const ResultRow& r : report.rows) {
    const RunStats& s = r.stats;
    rows.push_back(
        {r.impl, r.scenario, r.verdict, std::to_string(s.attempts), std::to_string(s.acquired),
         std::to_string(s.contended), std::to_string(s.unknown),
         std::to_string(r.check.violation_count), std::to_string(r.check.lost_updates),
         std::to_string(s.acquire_us.Percentile(50)), std::to_string(s.acquire_us.Percentile(99)),
         std::to_string(s.release_us.Percentile(50)), std::to_string(s.release_us.Percentile(99))});
  }
  std::vector<size_t> width(head.size(), 0);
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  std::ostringstream out;
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) {
      out << Pad(row[c], width[c], c >= 3) << (c + 1 < row.size() ? "  " : "\n");
    }
  }
  return out.str();
}

std::string ConsoleViolations(const RunReport& report, size_t per_row) {
  std::ostringstream out;
  for (const ResultRow& r : report.rows) {
    // The first `per_row` of each kind (the lists are sorted by kind).
    for (const auto* list : {&r.check.violations, &r.check.liveness.violations}) {
      std::map<std::string, size_t> shown;
      for (const Violation& v : *list) {
        if (shown[v.kind]++ >= per_row) continue;
        out << r.impl << "/" << r.scenario << ": " << v.kind << " on " << v.key << ": ";
        if (v.kind == "overlap") {
          out << "client c" << v.client_a << " (op " << v.op_a << ") and c" << v.client_b << " (op "
              << v.op_b << ") both held it for " << v.overlap_us << " us from t=" << v.start_us
              << " us\n";
        } else {
          out << v.detail << "\n";
        }
      }
    }
    if (!r.ghosts.is_null() && r.ghosts.value("count", 0) > 0) {
      out << r.impl << "/" << r.scenario << ": " << r.ghosts.value("count", 0)
          << " ghost lock(s) (keys set by acquires their client saw fail or time out), "
          << "lifetime p50 " << r.ghosts.value("p50_lifetime_ms", 0.0) << " ms, max "
          << r.ghosts.value("max_lifetime_ms", 0.0) << " ms\n";
    }
    if (r.stale_writes_accepted > 0) {
      out << r.impl << "/" << r.scenario << ": witness accepted " << r.stale_writes_accepted
          << " stale write(s)\n";
    }
    for (const auto& e : r.stats.infra_errors) {
      out << r.impl << "/" << r.scenario << ": infrastructure: " << e << "\n";
    }
  }
  return out.str();
}

}  // namespace lockstorm
