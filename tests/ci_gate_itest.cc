// scripts/ci-gate.sh end to end, as the CI templates (templates/) run it: a plug-in lock through
// the exec protocol against embedded redis-servers, a baseline, a planted regression and a
// planted bug (an acquire without NX), the job summary.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tests/cli_util.h"
#include "tests/test_util.h"

namespace lockstorm {
namespace {

using testing::TempDir;

const std::string kSource = LOCKSTORM_SOURCE_DIR;
const std::string kPlugin =
    "proto=exec:/usr/bin/python3 " + kSource + "/tests/plugins/proto_lock.py";

// Runs scripts/ci-gate.sh ARGS with LOCKSTORM_BIN set to the tested build.
Result RunGate(const std::vector<std::string>& args, const std::string& dir,
               std::map<std::string, std::string> env = {}) {
  std::vector<std::string> argv = {"/bin/bash", kSource + "/scripts/ci-gate.sh"};
  argv.insert(argv.end(), args.begin(), args.end());
  env["LOCKSTORM_BIN"] = LOCKSTORM_BIN;
  return RunProgram(std::move(argv), dir, std::move(env), 300000);
}

// One client, one key, 1 s, three repetitions: the plug-in's own speed decides the latency.
std::vector<std::string> GateArgs(const std::string& out) {
  return {"--impl",     kPlugin, "--scenarios", "contention", "--clients", "1",
          "--duration", "1",     "--repeat",    "3",          "--out",     out};
}

TEST(CiGateITest, BaselinePassesARegressionAndABugFailTheGate) {
  TempDir dir;
  const std::string base = dir.path() + "/base", slow = dir.path() + "/slow",
                    broken = dir.path() + "/broken", step_summary = dir.path() + "/summary.md";
  // main's run: no baseline yet, the gate passes on "no violation" alone.
  Result r = RunGate(GateArgs(base), dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("contention: pass · no baseline"), std::string::npos) << r.out;
  for (const char* f : {"/contention/report.json", "/contention/report.md", "/contention/junit.xml",
                        "/contention/report.html", "/summary.md"})
    EXPECT_TRUE(std::filesystem::exists(base + f)) << f;

  // A change that slows every acquire by 20 ms, against main's stored run: a regression.
  std::vector<std::string> args = GateArgs(slow);
  args.insert(args.end(), {"--baseline", base, "--threshold-pct", "200"});
  r = RunGate(args, dir.path(),
              {{"PROTO_LOCK_DELAY_MS", "20"}, {"GITHUB_STEP_SUMMARY", step_summary}});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("contention: pass · FAIL: regression"), std::string::npos) << r.out;
  const std::string summary = ReadFile(slow + "/summary.md");
  EXPECT_NE(summary.find("| contention | pass | **FAIL: regression** (see below) |"),
            std::string::npos)
      << summary;
  EXPECT_NE(summary.find("acquire.p50"), std::string::npos) << summary;  // compare's table
  EXPECT_EQ(ReadFile(step_summary), summary);  // the job summary gets the same Markdown

  // A change that drops NX from the acquire: every client takes the lock at once, a safety
  // violation fails the gate.
  args = GateArgs(broken);
  args[5] = "4";  // clients
  r = RunGate(args, dir.path(), {{"PROTO_LOCK_NO_NX", "1"}});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("contention: FAIL: safety violation"), std::string::npos) << r.out;
}

TEST(CiGateITest, BadInputIsOneLineAndExit4) {
  TempDir dir;
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--scenarios", "contention"},
           {"--impl", kPlugin, "--baseline", dir.path() + "/none"},
           {"--impl", kPlugin, "--bogus"}}) {
    Result r = RunGate(args, dir.path());
    EXPECT_EQ(r.exit_code, 4) << args.back() << ": " << r.out << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

}  // namespace
}  // namespace lockstorm
