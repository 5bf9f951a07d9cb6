// Renderings of a run's report.json (docs/report-schema.md, schema v1 or v2): report.md for a
// GitHub step summary, junit.xml for CI test reporters, and report.html, one self-contained
// offline page with plots (Vega-Lite, embedded into the binary from reports/vendor/).
//
// Every renderer is a pure function of the report (and, for the HTML, of the history), and
// degrades gracefully: a field that is missing or of the wrong type (a v1 report has no
// "contention", "latency_curves_us", "throughput_series", context "mode", ...) is shown as "-"
// or its plot falls back to what v1 has (the latency_us percentiles; a throughput series
// counted from the history). Every string taken from the report or the history is escaped for
// its output (Markdown, XML, HTML and the JSON inside <script>).
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "harness/history.h"
#include "harness/status.h"

namespace lockstorm {

// report.md. A title, one header line (lockstorm version, seed, git revision, redis version,
// mode closed/open, placement from context.cpu), the comparison table with one row per result
// row (repetitions "NAME#k" are rows of their own): verdict with an ASCII marker, violations
// (total and by kind), acquire and release latency p50/p99/p99.9 in µs, acquired/s, and, when
// any row has a "contention" block, attempts/acquire, contended-fail rate, Jain fairness,
// handoff gap p50, split votes and unknown acquires. Then, for every row that did not pass and
// has violations or infrastructure errors, its first violations (at most 3 of each kind, 10 in
// all: kind, key, clients, op ids, detail).
std::string RenderMarkdown(const nlohmann::json& report);

// junit.xml: <testsuites name="lockstorm"> holding one <testsuite name="lockstorm.S"> per
// scenario S (a row's base_scenario when it has one, so the repetitions of a scenario share a
// suite), in order of first appearance, with the run's context as <properties>; one
// <testcase classname="lockstorm.SCENARIO" name="IMPL" time="SECONDS"> per row (SCENARIO is
// the row's own, "NAME#k" for a repetition; time from elapsed_us). Verdict fail or
// inconclusive → a <failure> whose body lists the first 20 violations (or the infrastructure
// errors); expected-fail and unexpected-pass pass with a <system-out> note.
std::string RenderJUnit(const nlohmann::json& report);

// report.html: one offline page (no external resource: the Vega, Vega-Lite and vega-embed
// bundles are inlined) with the report.md content as HTML tables and these Vega-Lite plots
// (SVG renderer), each spec tagged with a "description" starting "lockstorm:":
//   lockstorm:latency-curves   acquire and release percentile curves per row, x on a
//                              "nines" axis (-log10(1 - p/100)), y in µs on a log scale;
//   lockstorm:throughput       acquired/s per bucket per row over seconds from the row's
//                              start, its fault periods shaded;
//   lockstorm:holder-timeline  one per row with ok acquires in `history`: one bar per lease
//                              of one key (the first violation's key, else the key ending
//                              ":k0", else the busiest), y = client, bars overlapping another
//                              client's lease red (#d62728); at most kTimelineMaxBars bars,
//                              around the row's first violation or from the start.
// A plot without data is left out with a note. A script sets
// document.body.dataset.lockstormStatus to "rendered:N errors:E" once every vegaEmbed call
// has settled (N embedded; E counts failed embeds, window errors and unhandled rejections);
// body's data-lockstorm-plots holds the number of plots expected.
std::string RenderHtml(const nlohmann::json& report, const std::vector<Event>& history);

// The largest number of bars in one holder timeline of report.html.
inline constexpr int kTimelineMaxBars = 1500;

// Reads RUN_DIR/report.json and RUN_DIR/history.jsonl (ReadHistory) and writes report.md,
// report.html and junit.xml into RUN_DIR. A missing history.jsonl is not an error: the HTML
// then notes that it has no holder timeline. Errors are one line naming the file and what
// was expected, e.g. `runs/x/report.json: expected a JSON object with a "results" array`.
Status RenderRunDir(const std::string& run_dir);

// Shared by the renderers (defined in reports/markdown.cc); exposed for tests.
namespace render_internal {

// j[path[0]][path[1]]..., or nullptr when a step is missing or j is not an object there.
const nlohmann::json* At(const nlohmann::json& j, std::initializer_list<const char*> path);
// report["context"] (by reference: no copy), or an empty object when there is none.
const nlohmann::json& Context(const nlohmann::json& report);
// The number at `path`, or nullopt when it is missing or not a number.
std::optional<double> Number(const nlohmann::json& j, std::initializer_list<const char*> path);
// The text at `path`: a string as it is, a number or bool as JSON; `fallback` otherwise.
std::string Text(const nlohmann::json& j, std::initializer_list<const char*> path,
                 const std::string& fallback = "");
// An integral value without decimals ("947550"), else with `decimals` ("10.3"); "-" for
// nullopt or a non-finite value.
std::string FormatNumber(std::optional<double> v, int decimals = 1);

// The "impl / scenario" label of a result row.
std::string RowLabel(const nlohmann::json& row);
// violations_by_kind of a row (counts.violations_by_kind, else check.violations_by_kind) as
// "total (kind n, kind n)", or the v1 counts.violations; "-" when none is there.
std::string ViolationSummary(const nlohmann::json& row);
// One line of evidence for a violation: kind, key, clients, op ids, time, detail.
std::string ViolationLine(const nlohmann::json& violation);
// The first violations of a row worth showing: at most `per_kind` of each kind (in list
// order), at most `total` in all.
std::vector<const nlohmann::json*> FirstViolations(const nlohmann::json& row, size_t per_kind,
                                                   size_t total);
// The header line of report.md (and report.html), unescaped.
std::string HeaderLine(const nlohmann::json& report);

// The comparison table of report.md and report.html, unescaped: one row per result row.
struct Table {
  std::vector<std::string> head;
  std::vector<bool> numeric;  // per column: right-aligned
  std::vector<std::vector<std::string>> rows;
  std::vector<bool> alarming;  // per row: verdict fail, unexpected-pass or inconclusive
};
Table ComparisonTable(const nlohmann::json& report);
// "[ok] pass", "[FAIL] fail (safety)", "[xfail] expected-fail (safety)",
// "[XPASS] unexpected-pass", "[??] inconclusive" ("[?] VERDICT" for any other): an ASCII
// marker and the verdict.
std::string VerdictText(const nlohmann::json& row);
// The result rows of a report (report["results"] when it is an array, else none).
std::vector<const nlohmann::json*> Rows(const nlohmann::json& report);

}  // namespace render_internal

}  // namespace lockstorm
