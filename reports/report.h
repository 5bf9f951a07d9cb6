// Report: the results of a run as data. report.json is the source of truth (its schema is
// versioned and documented in docs/report-schema.md); the console table and, later, the
// Markdown/HTML/JUnit reports are renderings of the same RunReport.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/checker.h"
#include "harness/runner.h"

namespace lockstorm {

inline constexpr int kReportSchemaVersion = 2;

// Exit codes of `lockstorm run` and `lockstorm check` (docs/exit-codes.md).
enum ExitCode : int {
  kExitOk = 0,            // no unexpected violation
  kExitSafety = 1,        // an unexpected safety violation
  kExitLiveness = 2,      // an unexpected liveness violation
  kExitInconclusive = 3,  // not enough evidence (no acquisitions, interrupted run)
  kExitUsage = 4,         // usage, configuration or infrastructure error
};

// One implementation × scenario.
struct ResultRow {
  std::string impl;
  std::string scenario;         // "NAME", or "NAME#k" for repetition k of --repeat
  std::string base_scenario;    // "NAME" when repeated, else ""
  int repetition = 0;           // k when repeated, else 0
  std::string mode = "closed";  // closed | open (Workload::rate_per_s)
  double target_rate_per_s = 0;
  // kExpectSafe | kExpectUnsafe | kExpectLiveness (scenarios/scenario.h): the prediction.
  std::string expected = "safe";
  RunStats stats;     // what the runner measured (absent fields stay 0 when re-checked)
  CheckResult check;  // what the checkers found in the history
  int64_t stale_writes_accepted = 0;  // witness damage: must be 0 always
  std::string verdict;  // pass | fail | expected-fail | unexpected-pass | inconclusive
  std::string failure;  // when verdict is fail or expected-fail: "safety" or "liveness"
  nlohmann::json faults = nlohmann::json::array();  // fault periods (history kFault/kCrash)
  nlohmann::json ghosts;             // GhostReportToJson when lock keys were observed, else null
  nlohmann::json contention;         // ContentionToJson (harness/metrics.h), or null
  nlohmann::json throughput_series;  // ThroughputToJson, or null
};

// Sets row->verdict and row->failure from row->check, row->expected and
// row->stale_writes_accepted:
//   a safety violation (an overlap, or the witness accepting a stale write — the latter is
//   never expected): expected "unsafe" → expected-fail, else fail;
//   else no ok acquire in the safety phase → inconclusive (nothing was tested);
//   else a liveness violation: expected "liveness" → expected-fail, else fail;
//   else expected "unsafe"/"liveness" → unexpected-pass (the prediction did not come true);
//   else pass.
void JudgeRow(ResultRow* row);
// The process exit code for a set of rows (worst wins: 1 > 2 > 3 > 0): 1 for a safety fail,
// 2 for a liveness fail, 3 for an inconclusive row or an interrupted run.
int ExitCodeFor(const std::vector<ResultRow>& rows, bool interrupted);

struct RunReport {
  nlohmann::json context;  // version, git revision, redis version, seed, host, cpu, config
  std::vector<ResultRow> rows;
  bool interrupted = false;
  int exit_code = 0;
};

nlohmann::json ReportToJson(const RunReport& report);
// One line per row: impl, scenario, verdict, attempts, acquired, contended, unknown,
// violations, lost updates, acquire p50/p99, release p50/p99 (µs).
std::string ConsoleTable(const RunReport& report);
// Details of the first few violations per row, for the console.
std::string ConsoleViolations(const RunReport& report, size_t per_row);

}  // namespace lockstorm
