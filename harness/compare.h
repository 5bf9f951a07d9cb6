// Compare: the logic of `lockstorm compare BASE CANDIDATE`, a CI gate between two runs
// (docs/compare.md).
//
// Rows of both report.json files are paired by (impl, base_scenario or scenario), so the R
// repetitions of a `--repeat R` run form one pair (docs/report-schema.md, schema v2). The gate
// fails (exit code 1) on a verdict change of a pair (worse or better), on a violation kind that
// the candidate shows and the base did not, on a pair of the base missing from the candidate,
// and on a latency regression: the candidate's median over the repetitions exceeds the base's
// by more than CompareOptions::threshold_pct and, when both sides have at least 3 repetitions,
// a one-sided Mann-Whitney U test (candidate slower) rejects at CompareOptions::alpha.
//
// Everything here is a pure function of its inputs except LoadReportFile, which reads a file.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness/status.h"

namespace lockstorm {

// The newest report.json schema_version that compare understands; 1 and 2 are accepted.
inline constexpr int kCompareMaxSchemaVersion = 2;

// Exit codes of CompareReports. A usage error (exit code 4, kExitUsage in reports/report.h)
// comes from a non-ok Status of LoadReportFile or CheckCompareOptions; the caller maps it.
inline constexpr int kCompareExitPass = 0;
inline constexpr int kCompareExitFail = 1;

struct CompareOptions {
  // A latency regression must exceed this relative slowdown (percent) of the median across
  // repetitions. Must be >= 0.
  double threshold_pct = 10;
  // Significance of the one-sided Mann-Whitney U test (candidate slower), applied when both
  // sides have >= 3 repetitions: it rejects when p <= alpha. Must be in (0, 1).
  double alpha = 0.05;
  // Latencies compared, each "HIST.FIELD": row["latency_us"][HIST][FIELD], FIELD one of
  // mean, min, p50, p90, p99, p999, max.
  std::vector<std::string> metrics = {"acquire.p50", "acquire.p99", "release.p50", "release.p99"};
};

struct CompareResult {
  int exit_code = kCompareExitPass;  // kCompareExitPass or kCompareExitFail
  std::string markdown;              // a GitHub job summary: title, table, reasons
  nlohmann::json json;               // the same facts for scripts (docs/compare.md)
};

// Checks the options: threshold_pct >= 0 and finite, 0 < alpha < 1, at least one metric, each
// "HIST.FIELD" as described above. Errors are InvalidArgument, one line naming the option
// ("--metric 'acquire': expected HIST.FIELD, e.g. acquire.p99").
Status CheckCompareOptions(const CompareOptions& opt);

// Loads the report named by `path`: a run directory (then DIR/report.json is read) or the path
// of a report.json itself. On success fills *out with the document, which has an integer
// schema_version in [1, kCompareMaxSchemaVersion] and a "results" array whose elements are
// objects with string "impl" and "scenario". On error *out is unchanged and the Status is
// InvalidArgument or IoError with one line naming the path and what was expected:
//   "runs/x: no such file or directory (expected a run directory or a report.json)"
//   "runs/x: no report.json (expected a run directory or a report.json)"
//   "a.json: invalid JSON: <parser message>"
//   "a.json: schema_version 7 is newer than this lockstorm (2)"
Status LoadReportFile(const std::string& path, nlohmann::json* out);

// Compares two loaded reports (as LoadReportFile returns them; rows without a string "impl" or
// "scenario" are ignored) under `opt`, which should have passed CheckCompareOptions (an
// ill-formed metric only compares nothing). Never fails: the verdict of the gate is
// result.exit_code. Per pair:
//   - verdict: the worst over its repetitions, in the order
//       fail > inconclusive > unexpected-pass > expected-fail > pass
//     (an unknown verdict string ranks between fail and inconclusive); any change fails;
//   - violations: counts.violations_by_kind summed over repetitions (a v1 row without it
//     counts counts.violations as "overlap"); a kind > 0 in the candidate and 0 in the base
//     fails;
//   - latency: per metric the per-repetition values (histograms with count 0 skipped), their
//     medians, the relative change, and Mann-Whitney p-values; a regression fails, an
//     improvement (the same rule mirrored) is information.
// A pair only in the base fails ("missing"); a pair only in the candidate is listed as "new".
CompareResult CompareReports(const nlohmann::json& base, const nlohmann::json& candidate,
                             const CompareOptions& opt);

// The Mann-Whitney U test of two samples x and y against the one-sided alternative "y tends to
// be greater than x".
struct UTest {
  double u = 0;        // pairs (x_i, y_j) with y_j > x_i, ties counting 1/2: in [0, |x|*|y|]
  double p = 1;        // P(U >= u) under the null hypothesis; 1 when a sample is empty
  bool exact = false;  // p from the exact distribution (else the normal approximation)
};
// Exact when both samples have at most 20 values: the permutation distribution of the rank sum
// with midranks, counted by dynamic programming (so ties are handled exactly). Beyond, the
// normal approximation with tie correction and a continuity correction of 1/2. Examples: three
// values each, every y greater than every x: p = 1/20; five each: p = 1/252.
UTest MannWhitneyGreater(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace lockstorm
