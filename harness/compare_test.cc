// `lockstorm compare`: pairing, verdict changes, new violations, latency regressions with the
// Mann-Whitney U test, the Markdown/JSON output, and loading report files.
#include "harness/compare.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace lockstorm {
namespace {

using Json = nlohmann::json;

// One pair's repetitions: one value per repetition of acquire.p50; the other metrics are
// constant so that only acquire.p50 can move.
struct Pair {
  std::string impl = "token-lua";
  std::string scenario = "contention";
  std::vector<double> acquire_p50 = {100, 100, 100, 100, 100};
  std::vector<std::string> verdicts;  // per repetition; empty: all "pass"
  std::vector<Json> kinds;            // violations_by_kind per repetition; empty: none
};

Json Histogram(double p50, double p99, int64_t count = 100) {
  return {{"count", count}, {"mean", p50}, {"min", 1},    {"p50", p50},
          {"p90", p99},     {"p99", p99},  {"p999", p99}, {"max", p99}};
}

// The rows of a pair as `lockstorm run --repeat R` writes them (schema v2).
std::vector<Json> Rows(const Pair& p) {
  std::vector<Json> rows;
  const size_t reps = p.acquire_p50.size();
  for (size_t k = 0; k < reps; ++k) {
    Json row = {{"impl", p.impl},
                {"scenario", reps > 1 ? p.scenario + "#" + std::to_string(k + 1) : p.scenario},
                {"verdict", p.verdicts.empty() ? "pass" : p.verdicts[k]},
                {"expected", "safe"}};
    if (reps > 1) {
      row["base_scenario"] = p.scenario;
      row["repetition"] = k + 1;
    }
    row["counts"] = {{"acquired", 100},
                     {"violations", 0},
                     {"violations_by_kind", p.kinds.empty() ? Json::object() : p.kinds[k]}};
    row["latency_us"] = {{"acquire", Histogram(p.acquire_p50[k], 1000)},
                         {"release", Histogram(50, 500)}};
    rows.push_back(row);
  }
  return rows;
}

Json Report(const std::vector<Pair>& pairs, int version = 2) {
  Json results = Json::array();
  for (const Pair& p : pairs) {
    for (Json& row : Rows(p)) results.push_back(std::move(row));
  }
  return {{"schema_version", version},
          {"context", {{"git_revision", "abc123"}, {"redis_version", "7.0.15"}}},
          {"results", results},
          {"summary", {{"exit_code", 0}, {"interrupted", false}}}};
}

// The metric `name` of the only (or first) pair of a comparison.
const Json& Metric(const CompareResult& r, const std::string& name, size_t pair = 0) {
  for (const Json& m : r.json["pairs"][pair]["metrics"]) {
    if (m["metric"] == name) return m;
  }
  static const Json kNull;
  ADD_FAILURE() << "no metric " << name;
  return kNull;
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------

TEST(CompareTest, IdenticalReportsPass) {
  Pair a;
  Pair b;
  b.impl = "redlock";
  b.acquire_p50 = {300, 310, 290, 305, 295};
  const Json report = Report({a, b});
  const CompareResult r = CompareReports(report, report, CompareOptions());
  EXPECT_EQ(r.exit_code, kCompareExitPass);
  EXPECT_EQ(r.json["gate"], "PASS");
  EXPECT_EQ(r.json["counts"]["pairs"], 2);
  EXPECT_EQ(r.json["counts"]["regressions"], 0);
  EXPECT_EQ(r.json["counts"]["verdict_changes"], 0);
  EXPECT_TRUE(r.json["failures"].empty());
  EXPECT_EQ(r.markdown.rfind("## lockstorm compare: PASS", 0), 0u) << r.markdown;
  // The only marker is the legend's: no cell is marked.
  EXPECT_EQ(r.markdown.find("❌"), r.markdown.rfind("❌")) << r.markdown;
  EXPECT_FALSE(Contains(r.markdown, "**")) << r.markdown;
  // Five repetitions each side: the pair's values are all there and the test ran exactly.
  EXPECT_EQ(Metric(r, "acquire.p50", 1)["base"].size(), 5u);
  EXPECT_EQ(Metric(r, "acquire.p50", 1)["test"], "exact");
  EXPECT_EQ(Metric(r, "acquire.p50", 1)["base_median"], 300.0);
}

TEST(CompareTest, NewViolationKindFails) {
  Pair base;
  Pair cand;
  cand.kinds = {Json::object(), Json{{"late-use", 2}}, Json::object(), Json{{"late-use", 0}},
                Json::object()};
  const CompareResult r = CompareReports(Report({base}), Report({cand}), CompareOptions());
  EXPECT_EQ(r.exit_code, kCompareExitFail);
  EXPECT_EQ(r.json["counts"]["new_violations"], 1);
  ASSERT_EQ(r.json["failures"].size(), 1u);
  EXPECT_EQ(r.json["failures"][0]["kind"], "new-violation");
  EXPECT_EQ(r.json["pairs"][0]["new_violations"], Json({"late-use"}));
  EXPECT_EQ(r.json["pairs"][0]["violations_by_kind"]["candidate"]["late-use"], 2);
  EXPECT_TRUE(Contains(r.markdown, "new violation late-use: 0 → 2")) << r.markdown;
  EXPECT_EQ(r.markdown.rfind("## lockstorm compare: FAIL", 0), 0u) << r.markdown;
}

TEST(CompareTest, MoreOfAKnownViolationKindIsNotNew) {
  Pair base;
  base.verdicts = std::vector<std::string>(5, "expected-fail");
  base.kinds = std::vector<Json>(5, Json{{"overlap", 3}});
  Pair cand = base;
  cand.kinds = std::vector<Json>(5, Json{{"overlap", 30}});
  const CompareResult r = CompareReports(Report({base}), Report({cand}), CompareOptions());
  EXPECT_EQ(r.exit_code, kCompareExitPass) << r.markdown;
  EXPECT_EQ(r.json["pairs"][0]["violations_by_kind"]["candidate"]["overlap"], 150);
}

TEST(CompareTest, VerdictGotWorseFails) {
  Pair base;
  Pair cand;
  cand.verdicts = {"pass", "pass", "fail", "pass", "pass"};
  const CompareResult r = CompareReports(Report({base}), Report({cand}), CompareOptions());
  EXPECT_EQ(r.exit_code, kCompareExitFail);
  EXPECT_EQ(r.json["pairs"][0]["verdict"]["candidate"], "fail");
  EXPECT_EQ(r.json["pairs"][0]["verdict"]["change"], "worse");
  EXPECT_EQ(r.json["pairs"][0]["verdict_counts"]["candidate"]["pass"], 4);
  EXPECT_TRUE(Contains(r.markdown, "verdict got worse: pass → fail (1/5)")) << r.markdown;
}

TEST(CompareTest, VerdictGotBetterStillFails) {
  Pair base;
  base.verdicts = std::vector<std::string>(5, "fail");
  Pair cand;
  const CompareResult r = CompareReports(Report({base}), Report({cand}), CompareOptions());
  EXPECT_EQ(r.exit_code, kCompareExitFail);
  EXPECT_EQ(r.json["pairs"][0]["verdict"]["change"], "better");
  EXPECT_EQ(r.json["failures"][0]["kind"], "verdict-change");
  EXPECT_TRUE(Contains(r.markdown, "verdict got better: fail → pass (update the baseline)"))
      << r.markdown;
}

TEST(CompareTest, PairVerdictIsTheWorstRepetition) {
  // fail > inconclusive > unexpected-pass > expected-fail > pass.
  Pair base;
  base.acquire_p50 = {100, 100, 100};
  base.verdicts = {"expected-fail", "unexpected-pass", "pass"};
  Pair cand = base;
  cand.verdicts = {"pass", "inconclusive", "expected-fail"};
  const CompareResult r = CompareReports(Report({base}), Report({cand}), CompareOptions());
  EXPECT_EQ(r.json["pairs"][0]["verdict"]["base"], "unexpected-pass");
  EXPECT_EQ(r.json["pairs"][0]["verdict"]["candidate"], "inconclusive");
  EXPECT_EQ(r.json["pairs"][0]["verdict"]["change"], "worse");
  EXPECT_EQ(r.exit_code, kCompareExitFail);
}

TEST(CompareTest, MissingPairFailsAndNewPairDoesNot) {
  Pair kept;
  Pair dropped;
  dropped.impl = "redlock";
  Pair added;
  added.impl = "fenced";
  const CompareResult r =
      CompareReports(Report({kept, dropped}), Report({kept, added}), CompareOptions());
  EXPECT_EQ(r.exit_code, kCompareExitFail);
  EXPECT_EQ(r.json["counts"]["missing"], 1);
  EXPECT_EQ(r.json["counts"]["new_pairs"], 1);
  ASSERT_EQ(r.json["failures"].size(), 1u);  // the new pair is not a failure
  EXPECT_EQ(r.json["failures"][0]["kind"], "missing");
  EXPECT_EQ(r.json["failures"][0]["impl"], "redlock");
  EXPECT_EQ(r.json["pairs"][1]["presence"], "missing");
  EXPECT_EQ(r.json["pairs"][2]["presence"], "new");
  EXPECT_TRUE(Contains(r.markdown, "`redlock / contention`: missing in the candidate"))
      << r.markdown;

  // Only a new pair: passes.
  const CompareResult only_new =
      CompareReports(Report({kept}), Report({kept, added}), CompareOptions());
  EXPECT_EQ(only_new.exit_code, kCompareExitPass) << only_new.markdown;
  EXPECT_TRUE(Contains(only_new.markdown, "`fenced / contention`: new in the candidate"));
}

TEST(CompareTest, PlantedTwofoldRegressionFails) {
  Pair base;
  base.acquire_p50 = {100, 102, 98, 101, 99};
  Pair cand;
  cand.acquire_p50 = {200, 204, 196, 202, 198};
  const CompareOptions opt;
  const CompareResult r = CompareReports(Report({base}), Report({cand}), opt);
  EXPECT_EQ(r.exit_code, kCompareExitFail);
  const Json& m = Metric(r, "acquire.p50");
  EXPECT_TRUE(m["regression"].get<bool>());
  EXPECT_DOUBLE_EQ(m["delta_pct"].get<double>(), 100.0);
  EXPECT_DOUBLE_EQ(m["p_slower"].get<double>(), 1.0 / 252);
  EXPECT_LT(m["p_slower"].get<double>(), opt.alpha);
  EXPECT_EQ(r.json["counts"]["regressions"], 1);
  // Only acquire.p50 moved.
  EXPECT_FALSE(Metric(r, "acquire.p99")["regression"].get<bool>());
  EXPECT_TRUE(Contains(r.markdown, "**100 → 200 (+100.0%, p=0.004)** ❌")) << r.markdown;
  EXPECT_TRUE(Contains(r.markdown, "acquire.p50 regressed: median 100 → 200 µs")) << r.markdown;
}

TEST(CompareTest, ThreeRepetitionsCanReject) {
  // The smallest p with three values a side is 1/20 = alpha: p <= alpha rejects.
  Pair base;
  base.acquire_p50 = {100, 101, 99};
  Pair cand;
  cand.acquire_p50 = {200, 201, 199};
  const CompareResult r = CompareReports(Report({base}), Report({cand}), CompareOptions());
  EXPECT_EQ(r.exit_code, kCompareExitFail) << r.markdown;
  EXPECT_DOUBLE_EQ(Metric(r, "acquire.p50")["p_slower"].get<double>(), 0.05);
  EXPECT_TRUE(Metric(r, "acquire.p50")["regression"].get<bool>());
}

TEST(CompareTest, SmallSignificantDifferenceBelowThresholdPasses) {
  Pair base;
  base.acquire_p50 = {100, 101, 99, 100.5, 99.5};
  Pair cand;
  cand.acquire_p50 = {103, 104, 102, 103.5, 102.5};  // +3 %, every value slower
  const CompareResult r = CompareReports(Report({base}), Report({cand}), CompareOptions());
  EXPECT_EQ(r.exit_code, kCompareExitPass) << r.markdown;
  const Json& m = Metric(r, "acquire.p50");
  EXPECT_NEAR(m["delta_pct"].get<double>(), 3.0, 1e-9);
  EXPECT_LT(m["p_slower"].get<double>(), 0.05);  // significant, but too small to matter
  EXPECT_FALSE(m["regression"].get<bool>());
}

TEST(CompareTest, NoisyOverlappingSamplesPassWhenTheTestDoesNotReject) {
  Pair base;
  base.acquire_p50 = {100, 300, 120, 280, 150};  // median 150
  Pair cand;
  cand.acquire_p50 = {110, 400, 130, 320, 350};  // median 320: +113 %
  const CompareResult r = CompareReports(Report({base}), Report({cand}), CompareOptions());
  EXPECT_EQ(r.exit_code, kCompareExitPass) << r.markdown;
  const Json& m = Metric(r, "acquire.p50");
  EXPECT_GT(m["delta_pct"].get<double>(), 100.0);
  EXPECT_EQ(m["u"], 18.0);
  // P(U >= 18) for n = m = 5: 39 of the 252 arrangements.
  EXPECT_DOUBLE_EQ(m["p_slower"].get<double>(), 39.0 / 252);
  EXPECT_FALSE(m["regression"].get<bool>());
}

TEST(CompareTest, SingleRepetitionThresholdAlone) {
  Pair base;
  base.acquire_p50 = {100};
  Pair slow;
  slow.acquire_p50 = {115};
  Pair slightly;
  slightly.acquire_p50 = {105};
  const CompareResult r = CompareReports(Report({base}), Report({slow}), CompareOptions());
  EXPECT_EQ(r.exit_code, kCompareExitFail);
  EXPECT_EQ(Metric(r, "acquire.p50")["test"], "threshold-only");
  EXPECT_TRUE(Contains(r.markdown, "(+15.0%, no test: 1 repetition)")) << r.markdown;
  // Without repetitions the row's scenario is the plain name.
  EXPECT_EQ(r.json["pairs"][0]["scenario"], "contention");

  const CompareResult ok = CompareReports(Report({base}), Report({slightly}), CompareOptions());
  EXPECT_EQ(ok.exit_code, kCompareExitPass) << ok.markdown;

  // Two repetitions against five: still below 3 on one side, so no test.
  Pair two;
  two.acquire_p50 = {100, 100};
  Pair five;
  five.acquire_p50 = {120, 80, 130, 125, 90};  // median 120: +20 %
  const CompareResult mixed = CompareReports(Report({two}), Report({five}), CompareOptions());
  EXPECT_EQ(mixed.exit_code, kCompareExitFail);
  EXPECT_TRUE(Contains(mixed.markdown, "no test: 2 repetitions")) << mixed.markdown;
}

TEST(CompareTest, ImprovementIsInformationOnly) {
  Pair base;
  base.acquire_p50 = {200, 204, 196, 202, 198};
  Pair cand;
  cand.acquire_p50 = {100, 102, 98, 101, 99};
  const CompareResult r = CompareReports(Report({base}), Report({cand}), CompareOptions());
  EXPECT_EQ(r.exit_code, kCompareExitPass) << r.markdown;
  EXPECT_EQ(r.json["counts"]["improvements"], 1);
  EXPECT_TRUE(Metric(r, "acquire.p50")["improvement"].get<bool>());
  EXPECT_TRUE(Contains(r.markdown, "acquire.p50 improved")) << r.markdown;
  EXPECT_TRUE(Contains(r.markdown, "✅")) << r.markdown;
}

TEST(CompareTest, EmptyLatenciesAreSkipped) {
  Json base = Report({Pair()});
  Json cand = base;
  for (Json& row : cand["results"]) row["latency_us"]["release"] = Histogram(9000, 9000, 0);
  const CompareResult r = CompareReports(base, cand, CompareOptions());
  EXPECT_EQ(r.exit_code, kCompareExitPass) << r.markdown;
  EXPECT_TRUE(Metric(r, "release.p50")["candidate"].empty());
  EXPECT_EQ(Metric(r, "release.p50")["test"], "none");
}

TEST(CompareTest, ThresholdAndMetricsComeFromTheOptions) {
  Pair base;
  Pair cand;
  cand.acquire_p50 = {115, 116, 114, 115, 115};  // +15 %
  CompareOptions opt;
  opt.threshold_pct = 20;
  EXPECT_EQ(CompareReports(Report({base}), Report({cand}), opt).exit_code, kCompareExitPass);
  opt.threshold_pct = 10;
  EXPECT_EQ(CompareReports(Report({base}), Report({cand}), opt).exit_code, kCompareExitFail);
  opt.metrics = {"release.p99"};  // acquire.p50 no longer compared
  const CompareResult r = CompareReports(Report({base}), Report({cand}), opt);
  EXPECT_EQ(r.exit_code, kCompareExitPass);
  EXPECT_EQ(r.json["pairs"][0]["metrics"].size(), 1u);
}

TEST(CompareTest, CheckCompareOptions) {
  EXPECT_TRUE(CheckCompareOptions(CompareOptions()).ok());
  CompareOptions opt;
  opt.metrics = {"acquire"};
  Status s = CheckCompareOptions(opt);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind("--metric 'acquire': expected HIST.FIELD", 0), 0u) << s.message();
  opt.metrics = {"time_to_acquire.p999"};
  EXPECT_TRUE(CheckCompareOptions(opt).ok());
  opt.metrics = {"acquire.p42"};
  EXPECT_FALSE(CheckCompareOptions(opt).ok());
  opt = CompareOptions();
  opt.alpha = 1;
  EXPECT_FALSE(CheckCompareOptions(opt).ok());
  opt = CompareOptions();
  opt.threshold_pct = -1;
  EXPECT_FALSE(CheckCompareOptions(opt).ok());
}

TEST(CompareTest, ContextDifferencesAreNoted) {
  Json base = Report({Pair()});
  Json cand = base;
  cand["context"]["redis_version"] = "7.2.4";
  const CompareResult r = CompareReports(base, cand, CompareOptions());
  EXPECT_EQ(r.exit_code, kCompareExitPass);
  EXPECT_TRUE(Contains(r.markdown, "context.redis_version differs: \"7.0.15\" → \"7.2.4\""))
      << r.markdown;
}

// ---------------------------------------------------------------------------------------------

TEST(CompareMannWhitneyTest, ExactKnownValues) {
  UTest t = MannWhitneyGreater({1, 2, 3}, {4, 5, 6});
  EXPECT_TRUE(t.exact);
  EXPECT_EQ(t.u, 9);
  EXPECT_DOUBLE_EQ(t.p, 1.0 / 20);
  EXPECT_DOUBLE_EQ(MannWhitneyGreater({1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}).p, 1.0 / 252);
  // The wrong direction: every y smaller, P(U >= 0) = 1.
  EXPECT_DOUBLE_EQ(MannWhitneyGreater({4, 5, 6}, {1, 2, 3}).p, 1.0);
  // U = 8 of 9: two of the 20 arrangements reach it.
  t = MannWhitneyGreater({1, 2, 3}, {2.5, 4, 5});
  EXPECT_EQ(t.u, 8);
  EXPECT_DOUBLE_EQ(t.p, 2.0 / 20);
  // n = 3, m = 4, all greater: 1 / C(7, 3).
  EXPECT_DOUBLE_EQ(MannWhitneyGreater({1, 2, 3}, {4, 5, 6, 7}).p, 1.0 / 35);
  // Unequal sizes up to the exact limit: 1 / C(40, 20).
  std::vector<double> x, y;
  for (int i = 0; i < 20; ++i) x.push_back(i), y.push_back(100 + i);
  t = MannWhitneyGreater(x, y);
  EXPECT_TRUE(t.exact);
  EXPECT_DOUBLE_EQ(t.p, 1.0 / 137846528820.0);
}

TEST(CompareMannWhitneyTest, ExactWithTies) {
  // Pooled 1, 2, 2, 3: midranks 1, 2.5, 2.5, 4; y = {2, 3} has rank sum 6.5, reached or
  // beaten by 2 of the 6 subsets of size 2.
  UTest t = MannWhitneyGreater({1, 2}, {2, 3});
  EXPECT_EQ(t.u, 3.5);
  EXPECT_DOUBLE_EQ(t.p, 2.0 / 6);
  // Everything tied: no evidence.
  EXPECT_DOUBLE_EQ(MannWhitneyGreater({5, 5, 5}, {5, 5, 5}).p, 1.0);
  EXPECT_EQ(MannWhitneyGreater({}, {1, 2}).p, 1.0);
}

TEST(CompareMannWhitneyTest, NormalApproximationBeyondTwenty) {
  // x = 0, 2, ..., 58 and y = 1, 3, ..., 59: U = 465, mean 450, sd sqrt(30*30*61/12).
  std::vector<double> x, y;
  for (int i = 0; i < 30; ++i) x.push_back(2 * i), y.push_back(2 * i + 1);
  UTest t = MannWhitneyGreater(x, y);
  EXPECT_FALSE(t.exact);
  EXPECT_EQ(t.u, 465);
  EXPECT_NEAR(t.p, 0.4151, 5e-4);
  // Fully separated: tiny p.
  std::vector<double> far;
  for (int i = 0; i < 30; ++i) far.push_back(1000 + i);
  EXPECT_LT(MannWhitneyGreater(x, far).p, 1e-9);
  // At the boundary the approximation is close to the exact value (20 vs 21 values).
  std::vector<double> a, b20, b21;
  for (int i = 0; i < 21; ++i) {
    a.push_back(2 * i);
    b21.push_back(2 * i + 1);
    if (i < 20) b20.push_back(2 * i + 1);
  }
  const std::vector<double> a20(a.begin(), a.begin() + 20);
  const UTest exact = MannWhitneyGreater(a20, b20);
  const UTest approx = MannWhitneyGreater(a, b21);
  EXPECT_TRUE(exact.exact);
  EXPECT_FALSE(approx.exact);
  EXPECT_NEAR(exact.p, approx.p, 0.03);
}

// ---------------------------------------------------------------------------------------------

class CompareLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lockstorm-compare-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << text;
    return path;
  }
  std::string dir_;
};

// A schema v1 row: no base_scenario, no violations_by_kind.
Json V1Row(const std::string& impl, int violations, double p50) {
  return {{"impl", impl},
          {"scenario", "contention"},
          {"verdict", violations > 0 ? "expected-fail" : "unexpected-pass"},
          {"expected", "unsafe"},
          {"counts", {{"acquired", 10}, {"violations", violations}}},
          {"latency_us", {{"acquire", Histogram(p50, 1000)}, {"release", Histogram(50, 500)}}}};
}

TEST_F(CompareLoadTest, V1ReportLoadsAndCompares) {
  const Json base = {{"schema_version", 1}, {"results", {V1Row("set-nx-del", 0, 100)}}};
  const Json cand = {{"schema_version", 1}, {"results", {V1Row("set-nx-del", 3, 100)}}};
  Write("base/report.json", base.dump());
  const std::string cand_path = Write("cand.json", cand.dump());
  Json b, c;
  ASSERT_TRUE(LoadReportFile(dir_ + "/base", &b).ok());  // a run directory
  ASSERT_TRUE(LoadReportFile(cand_path, &c).ok());       // a report.json
  EXPECT_EQ(b["schema_version"], 1);

  EXPECT_EQ(CompareReports(b, b, CompareOptions()).exit_code, kCompareExitPass);
  const CompareResult r = CompareReports(b, c, CompareOptions());
  EXPECT_EQ(r.exit_code, kCompareExitFail);
  // counts.violations stands in for violations_by_kind as "overlap".
  EXPECT_EQ(r.json["pairs"][0]["new_violations"], Json({"overlap"}));
  EXPECT_EQ(r.json["pairs"][0]["verdict"]["change"], "better");  // unexpected-pass → xfail
  EXPECT_EQ(Metric(r, "acquire.p50")["test"], "threshold-only");

  // A v1 base against a v2 candidate with repetitions pairs by the base scenario.
  Pair p;
  p.impl = "set-nx-del";
  p.verdicts = std::vector<std::string>(5, "unexpected-pass");
  const CompareResult mixed = CompareReports(b, Report({p}), CompareOptions());
  EXPECT_EQ(mixed.json["counts"]["pairs"], 1);
  EXPECT_EQ(mixed.exit_code, kCompareExitPass) << mixed.markdown;
}

TEST_F(CompareLoadTest, Errors) {
  Json out = {{"untouched", true}};
  Status s = LoadReportFile(dir_ + "/nope", &out);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message(),
            dir_ + "/nope: no such file or directory (expected a run directory or a report.json)");

  std::filesystem::create_directories(dir_ + "/empty-run");
  s = LoadReportFile(dir_ + "/empty-run", &out);
  EXPECT_EQ(s.message(), dir_ +
                             "/empty-run: no report.json (expected a run directory or a "
                             "report.json)");

  const std::string bad = Write("bad.json", "{\"schema_version\": 1,");
  s = LoadReportFile(bad, &out);
  EXPECT_EQ(s.message().rfind(bad + ": invalid JSON: ", 0), 0u) << s.message();

  const std::string newer = Write("newer.json", R"({"schema_version": 7, "results": []})");
  s = LoadReportFile(newer, &out);
  EXPECT_EQ(s.message(), newer + ": schema_version 7 is newer than this lockstorm (2)");

  const std::string unversioned = Write("unversioned.json", R"({"results": []})");
  s = LoadReportFile(unversioned, &out);
  EXPECT_EQ(s.message(), unversioned + ": no schema_version (expected a lockstorm report.json)");

  const std::string bad_row =
      Write("bad-row.json", R"({"schema_version": 2, "results": [{"impl": 3}]})");
  s = LoadReportFile(bad_row, &out);
  EXPECT_EQ(s.message(),
            bad_row + ": results[0]: expected an object with string impl and scenario");

  EXPECT_EQ(out, Json({{"untouched", true}}));  // every failure left *out alone

  const std::string v2 = Write("v2.json", R"({"schema_version": 2, "results": []})");
  EXPECT_TRUE(LoadReportFile(v2, &out).ok());
  EXPECT_EQ(out["schema_version"], 2);
}

}  // namespace
}  // namespace lockstorm
