// --sentinel: lockstorm asks real redis-sentinel processes for the master of a named group and
// runs against it as it would against --servers (external: nothing destructive). The first
// sentinel listed is unreachable, so the answer must come from the next one.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "harness/redis_server.h"
#include "harness/replication.h"
#include "harness/transport.h"
#include "tests/cli_util.h"
#include "tests/test_util.h"

namespace lockstorm {
namespace {

using testing::TempDir;

TEST(SentinelDiscoveryITest, RunFindsTheMasterThroughSentinelAndNamesABadGroup) {
  TempDir dir;
  ServerOptions mo;
  mo.extra_config = MasterReplicationConfig(ReplicationOptions());
  EmbeddedServer master(0, dir.path() + "/redis-0", mo);
  ASSERT_TRUE(master.Start().ok());
  ReplicatedNode node(&master, dir.path());
  Status s = node.Start();
  ASSERT_TRUE(s.ok()) << s.ToString();
  SentinelGroup sentinels(dir.path());
  s = sentinels.Start(&node);
  ASSERT_TRUE(s.ok()) << s.ToString();
  const std::vector<ServerAddress> sa = sentinels.addresses();
  ASSERT_GE(sa.size(), 2u);
  const std::string list = "127.0.0.1:1," + sa[0].ToString() + "," + sa[1].ToString();

  const std::string out = dir.path() + "/run";
  Result r = RunLockstorm({"run", "--sentinel", list + "/lockstorm", "--impl", "token-lua",
                           "--duration", "2", "--seed", "4", "--quiet", "--out", out},
                          dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json report = ReadJson(out + "/report.json");
  const nlohmann::json& config = report["context"]["config"];
  EXPECT_EQ(config["embedded"], false);
  ASSERT_EQ(config["servers"].size(), 1u);
  EXPECT_EQ(config["servers"][0]["address"], master.address().ToString());
  const nlohmann::json* row = FindRow(report, "token-lua");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ((*row)["verdict"], "pass");
  EXPECT_GT((*row)["counts"]["acquired"].get<int>(), 0);
  // Nothing destructive on a server found through Sentinel: still up, still the master.
  const Reply role = NewRedisTransport({master.address()})->Call(0, {"ROLE"}, 2000000);
  ASSERT_EQ(role.type, Reply::Type::kArray) << role.ToString();
  EXPECT_EQ(role.elements[0].str, "master");

  // A group no sentinel knows: one line naming it and what each sentinel said.
  r = RunLockstorm({"run", "--sentinel", sa[0].ToString() + "/no-such-group", "--duration", "1",
                    "--out", out + "-bad"},
                   dir.path());
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("no sentinel named master 'no-such-group'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("no such master"), std::string::npos) << r.err;
  r = RunLockstorm({"run", "--sentinel", sa[0].ToString(), "--out", out + "-noname"}, dir.path());
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.err.find("--sentinel: no master name"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace lockstorm
