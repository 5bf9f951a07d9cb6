// `lockstorm explore` end to end against real redis-servers: a lock that breaks yields a
// counterexample.json that `lockstorm run` replays; a correct lock under faults it survives
// spends the budget; bad input is one line and exit 4.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/cli_util.h"
#include "tests/test_util.h"

namespace lockstorm {
namespace {

using testing::TempDir;

TEST(ExploreITest, ABrokenLockYieldsACounterexampleThatReplays) {
  TempDir dir;
  const std::string out = dir.path() + "/explore";
  Result r = RunLockstorm({"explore", "--impl", "set-nx-del", "--budget", "30", "--seed", "3",
                           "--confirm-runs", "2", "--out", out},
                          dir.path());
  ASSERT_EQ(r.exit_code, 1) << r.out << r.err;
  const nlohmann::json j = ReadJson(out + "/explore.json");
  EXPECT_EQ(j["found"], true);
  EXPECT_GE(j["cases"].get<int>(), 1);
  EXPECT_LE(j["minimal_faults"].get<int>(), 3);
  EXPECT_GE(j["reproduced"].get<int>(), 1);
  EXPECT_EQ(j["confirm_runs"], 2);
  EXPECT_NE(j["minimal_summary"].get<std::string>().find("overlap"), std::string::npos) << j;
  ASSERT_TRUE(std::filesystem::exists(out + "/counterexample.json"));
  EXPECT_TRUE(std::filesystem::exists(out + "/explore.md"));
  EXPECT_NE(r.out.find("Replay: `lockstorm run --impl set-nx-del --scenario " + out +
                       "/counterexample.json --seed 3`"),
            std::string::npos)
      << r.out;
  // The replay: the same violation kind, from the scenario file alone.
  Result replay =
      RunLockstorm({"run", "--impl", "set-nx-del", "--scenario", out + "/counterexample.json",
                    "--seed", "3", "--quiet", "--out", dir.path() + "/replay"},
                   dir.path());
  EXPECT_EQ(replay.exit_code, 1) << replay.out << replay.err;
  const nlohmann::json report = ReadJson(dir.path() + "/replay/report.json");
  const nlohmann::json* row = FindRow(report, "set-nx-del");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ((*row)["scenario"], "counterexample");
  EXPECT_GT((*row)["check"]["violations_by_kind"].value("overlap", 0), 0) << (*row)["check"];
}

TEST(ExploreITest, ACorrectLockSpendsItsBudget) {
  TempDir dir;
  const std::string out = dir.path() + "/explore";
  // token-lua on one node under partitions only (no pause): it should survive every schedule.
  Result r = RunLockstorm({"explore", "--impl", "token-lua", "--faults", "partition", "--budget",
                           "10", "--seed", "5", "--out", out},
                          dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json j = ReadJson(out + "/explore.json");
  EXPECT_EQ(j["found"], false);
  EXPECT_GE(j["cases"].get<int>(), 2);
  EXPECT_EQ(j["log"].size(), j["cases"].get<size_t>());
  // Every case ran on the same redis-servers (no fault here stops one for good).
  EXPECT_EQ(j["runs"], j["cases"]);
  EXPECT_EQ(j["server_sets_started"], 1) << j;
  EXPECT_EQ(j["server_sets_reused"].get<int>(), j["runs"].get<int>() - 1) << j;
  EXPECT_FALSE(std::filesystem::exists(out + "/counterexample.json"));
  EXPECT_NE(r.out.find("No violation within the budget"), std::string::npos) << r.out;
}

TEST(ExploreITest, BadInputIsOneLineAndExit4) {
  TempDir dir;
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"explore", "--impl", "token-lua", "--faults", "meteor"},
           {"explore", "--impl", "no-such-lock"},
           {"explore", "--impl", "token-lua", "--budget", "0"}}) {
    Result r = RunLockstorm(args, dir.path());
    EXPECT_EQ(r.exit_code, 4) << args.back() << ": " << r.out << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  Result r = RunLockstorm({"explore", "--impl", "token-lua", "--faults", "meteor"}, dir.path());
  EXPECT_NE(r.err.find("--faults: unknown fault group 'meteor'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace lockstorm
