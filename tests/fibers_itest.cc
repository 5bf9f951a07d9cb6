// Clients as fibers (--client-threads, harness/fiber.h) against real redis-servers: hundreds
// of clients on two threads are driven and checked as threads are, an exec plug-in's pipes
// work from fibers, and `auto` switches to fibers above kMaxThreadPerClient clients.
#include <gtest/gtest.h>

#include <string>

#include "harness/runner.h"
#include "tests/cli_util.h"
#include "tests/test_util.h"

namespace lockstorm {
namespace {

using testing::TempDir;

const std::string kPlugin = "proto=exec:/usr/bin/python3 " + std::string(LOCKSTORM_SOURCE_DIR) +
                            "/tests/plugins/proto_lock.py";

nlohmann::json RunWith(const TempDir& dir, std::vector<std::string> args) {
  const std::string out = dir.path() + "/run";
  args.insert(args.begin(), "run");
  for (const char* a : {"--seed", "5", "--quiet", "--out"}) args.push_back(a);
  args.push_back(out);
  Result r = RunLockstorm(args, dir.path());
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  return ReadJson(out + "/report.json");
}

TEST(FibersITest, TwoHundredClientsOnTwoThreadsAreCheckedAsUsual) {
  TempDir dir;
  nlohmann::json report =
      RunWith(dir, {"--impl", "token-lua,set-nx-del", "--clients", "200", "--keys", "8",
                    "--duration", "2", "--ttl-ms", "200", "--client-threads", "2"});
  EXPECT_EQ(report["context"]["client_threads"], 2);
  const nlohmann::json* token = FindRow(report, "token-lua");
  ASSERT_NE(token, nullptr);
  EXPECT_EQ((*token)["verdict"], "pass");
  EXPECT_EQ((*token)["counts"]["violations"], 0);
  EXPECT_GT((*token)["counts"]["acquired"].get<int64_t>(), 200);
  // Every client's fiber ran to the end: each made its liveness probe, and it acquired.
  EXPECT_EQ((*token)["counts"]["probes"], 200);
  EXPECT_EQ((*token)["counts"]["probes_ok"], 200);
  // The clients really interleave: set-nx-del's overlaps are still caught.
  const nlohmann::json* unsafe = FindRow(report, "set-nx-del");
  ASSERT_NE(unsafe, nullptr);
  EXPECT_EQ((*unsafe)["verdict"], "expected-fail");
  EXPECT_GT((*unsafe)["counts"]["violations"].get<int64_t>(), 0);
}

TEST(FibersITest, AnExecPluginTalksOverItsPipesFromFibers) {
  TempDir dir;
  nlohmann::json report = RunWith(dir, {"--impl", kPlugin, "--clients", "6", "--keys", "2",
                                        "--duration", "1", "--client-threads", "1"});
  EXPECT_EQ(report["context"]["client_threads"], 1);
  const nlohmann::json* row = FindRow(report, "proto");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ((*row)["verdict"], "pass");
  EXPECT_GT((*row)["counts"]["acquired"].get<int64_t>(), 0);
  EXPECT_EQ((*row)["counts"]["infra_errors"], 0);
  EXPECT_EQ((*row)["counts"]["probes_ok"], 6);
}

TEST(FibersITest, AutoUsesThreadsUpToSixtyFourClientsAndFibersAbove) {
  {
    TempDir dir;
    nlohmann::json report =
        RunWith(dir, {"--impl", "token-lua", "--clients", std::to_string(kMaxThreadPerClient),
                      "--duration", "0.5"});
    EXPECT_EQ(report["context"]["client_threads"], 0);
  }
  {
    TempDir dir;
    nlohmann::json report =
        RunWith(dir, {"--impl", "token-lua", "--clients", std::to_string(kMaxThreadPerClient + 1),
                      "--duration", "0.5"});
    EXPECT_GE(report["context"]["client_threads"].get<int>(), 1);
    EXPECT_EQ(FindRow(report, "token-lua")->at("verdict"), "pass");
  }
}

}  // namespace
}  // namespace lockstorm
