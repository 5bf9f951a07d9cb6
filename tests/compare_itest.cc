// End-to-end: `lockstorm run --repeat/--rate` and `lockstorm compare` as a CI gate, with real
// redis-servers and a real plug-in whose acquire is slowed down on purpose (a planted
// regression).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/cli_util.h"
#include "tests/test_util.h"

namespace lockstorm {
namespace {

using testing::TempDir;

const std::string kPlugin = "proto=exec:/usr/bin/python3 " + std::string(LOCKSTORM_SOURCE_DIR) +
                            "/tests/plugins/proto_lock.py";

// One client, one key: the plug-in's own speed decides the latency.
std::vector<std::string> RunArgs(const std::string& out) {
  return {"run",      "--impl", kPlugin,        "--clients", "1", "--keys", "1", "--duration", "1",
          "--repeat", "3",      "--no-samples", "--seed",    "5", "--out",  out, "--quiet"};
}

TEST(CompareItest, PlantedRegressionFailsTheGateAndARerunPasses) {
  TempDir dir;
  const std::string base = dir.path() + "/base", rerun = dir.path() + "/rerun",
                    slow = dir.path() + "/slow";
  Result r = RunLockstorm(RunArgs(base), dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  r = RunLockstorm(RunArgs(rerun), dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // The planted regression: every acquire of the candidate sleeps 20 ms first.
  r = RunLockstorm(RunArgs(slow), dir.path(), {{"PROTO_LOCK_DELAY_MS", "20"}});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;

  const nlohmann::json report = ReadJson(base + "/report.json");
  ASSERT_EQ(report["results"].size(), 3u);
  EXPECT_EQ(report["results"][1]["scenario"], "contention#2");
  EXPECT_EQ(report["results"][1]["base_scenario"], "contention");
  EXPECT_EQ(report["results"][1]["repetition"], 2);

  // The same build again passes (the threshold is wide: one client on a shared 2-core
  // machine; the gate must not flake on noise).
  r = RunLockstorm({"compare", base, rerun, "--threshold-pct", "200"}, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("PASS"), std::string::npos) << r.out;

  // The slowed candidate fails on acquire latency, with the test's p-value (3 vs 3: 0.05).
  const std::string md = dir.path() + "/compare.md";
  r = RunLockstorm({"compare", base, slow, "--threshold-pct", "200", "--out", md}, dir.path());
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("FAIL"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("acquire.p50"), std::string::npos) << r.out;
  EXPECT_EQ(ReadFile(md), r.out);

  // Bad input: one line, exit 4.
  r = RunLockstorm({"compare", base, dir.path() + "/nope"}, dir.path());
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("nope"), std::string::npos) << r.err;
}

TEST(CompareItest, OpenLoopRunIsLabelledAndRendersEveryReport) {
  TempDir dir;
  const std::string out = dir.path() + "/run";
  Result r =
      RunLockstorm({"run", "--impl", "token-lua", "--clients", "2", "--keys", "2", "--duration",
                    "1", "--rate", "100", "--seed", "3", "--out", out, "--quiet"},
                   dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json report = ReadJson(out + "/report.json");
  EXPECT_EQ(report["schema_version"], 2);
  EXPECT_EQ(report["context"]["mode"], "open");
  EXPECT_EQ(report["context"]["target_rate_per_s"], 100.0);
  const nlohmann::json& row = report["results"][0];
  EXPECT_EQ(row["mode"], "open");
  // At most rate x duration cycles were started (plus one in flight per client).
  EXPECT_LE(row["counts"]["acquires"].get<int64_t>(), 100 + 2);
  EXPECT_GT(row["latency_us"]["time_to_acquire"]["count"].get<int64_t>(), 0);
  EXPECT_GT(row["latency_curves_us"]["acquire"].size(), 10u);
  EXPECT_TRUE(row.contains("contention"));
  EXPECT_TRUE(row.contains("throughput_series"));
  ASSERT_EQ(row["node_health"].size(), 1u);
  EXPECT_GT(row["node_health"][0]["pings"].get<int64_t>(), 0);
  for (const char* f : {"report.md", "report.html", "junit.xml"})
    EXPECT_TRUE(std::filesystem::is_regular_file(out + "/" + f)) << f;
  // `lockstorm report` re-renders them from the run directory.
  std::filesystem::remove(out + "/report.md");
  r = RunLockstorm({"report", out}, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(ReadFile(out + "/report.md").find("token-lua"), std::string::npos);
}

}  // namespace
}  // namespace lockstorm
