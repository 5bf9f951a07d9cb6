// Verdicts from check results and expectations (JudgeRow) and exit codes (ExitCodeFor).
#include "reports/report.h"

#include <gtest/gtest.h>

namespace lockstorm {
namespace {

ResultRow Row(Verdict safety, Verdict liveness, const std::string& expected, int64_t stale = 0) {
  ResultRow r;
  r.check.verdict = safety;
  r.check.liveness.verdict = liveness;
  r.expected = expected;
  r.stale_writes_accepted = stale;
  JudgeRow(&r);
  return r;
}

TEST(JudgeRowTest, PredictionsDecideTheVerdict) {
  const Verdict V = Verdict::kValid, I = Verdict::kInvalid, N = Verdict::kInconclusive;
  EXPECT_EQ(Row(V, V, "safe").verdict, "pass");
  EXPECT_EQ(Row(I, V, "safe").verdict, "fail");
  EXPECT_EQ(Row(I, V, "safe").failure, "safety");
  EXPECT_EQ(Row(I, V, "unsafe").verdict, "expected-fail");
  EXPECT_EQ(Row(V, V, "unsafe").verdict, "unexpected-pass");
  EXPECT_EQ(Row(V, I, "safe").verdict, "fail");
  EXPECT_EQ(Row(V, I, "safe").failure, "liveness");
  EXPECT_EQ(Row(V, I, "liveness").verdict, "expected-fail");
  EXPECT_EQ(Row(V, V, "liveness").verdict, "unexpected-pass");
  EXPECT_EQ(Row(I, I, "liveness").failure, "safety");    // safety beats liveness
  EXPECT_EQ(Row(N, I, "safe").verdict, "inconclusive");  // nothing acquired: nothing tested
  // An accepted stale write fails the row whatever was expected.
  EXPECT_EQ(Row(I, V, "unsafe", 1).verdict, "fail");
  EXPECT_EQ(Row(V, V, "safe", 1).verdict, "fail");
}

TEST(JudgeRowTest, ExitCodesWorstWins) {
  const Verdict V = Verdict::kValid, I = Verdict::kInvalid, N = Verdict::kInconclusive;
  EXPECT_EQ(ExitCodeFor({Row(V, V, "safe"), Row(I, V, "unsafe")}, false), kExitOk);
  EXPECT_EQ(ExitCodeFor({Row(V, I, "safe")}, false), kExitLiveness);
  EXPECT_EQ(ExitCodeFor({Row(V, I, "safe"), Row(I, V, "safe")}, false), kExitSafety);
  EXPECT_EQ(ExitCodeFor({Row(N, V, "safe"), Row(V, I, "safe")}, false), kExitLiveness);
  EXPECT_EQ(ExitCodeFor({Row(N, V, "safe")}, false), kExitInconclusive);
  EXPECT_EQ(ExitCodeFor({Row(V, V, "safe")}, true), kExitInconclusive);
}

}  // namespace
}  // namespace lockstorm
