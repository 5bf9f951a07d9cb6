// End-to-end tests of the lockstorm binary: real redis-servers, real signals.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "harness/process.h"
#include "tests/cli_util.h"
#include "tests/test_util.h"

namespace lockstorm {
namespace {

using testing::TempDir;

bool ProcessAlive(pid_t pid) {
  if (kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  std::getline(stat, s);
  size_t rp = s.rfind(')');
  return rp == std::string::npos || rp + 2 >= s.size() || s[rp + 2] != 'Z';
}

// Polls `cond` every 20 ms for at most `timeout_ms`.
template <typename F>
bool WaitUntil(F cond, int64_t timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

TEST(Cli, TokenLuaContentionPassesWithLatencies) {
  TempDir d;
  Result r = RunLockstorm({"run", "--impl", "token-lua", "--scenario", "contention", "--clients",
                           "8", "--duration", "3", "--seed", "11", "--out", d.path() + "/run"},
                          d.path());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  nlohmann::json rep = ReadJson(d.path() + "/run/report.json");
  EXPECT_EQ(rep["schema_version"], 2);
  EXPECT_EQ(rep["context"]["seed"], 11u);
  EXPECT_FALSE(rep["context"]["redis_version"].get<std::string>().empty());
  const nlohmann::json* row = FindRow(rep, "token-lua");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ((*row)["verdict"], "pass");
  EXPECT_EQ((*row)["counts"]["violations"], 0);
  EXPECT_GT((*row)["counts"]["acquired"].get<int>(), 0);
  EXPECT_GT((*row)["latency_us"]["acquire"]["count"].get<int>(), 0);
  EXPECT_GT((*row)["latency_us"]["release"]["p50"].get<int>(), 0);
  EXPECT_NE(r.out.find("token-lua"), std::string::npos);
  // The run directory holds what the issue promises.
  for (const char* f : {"config.json", "history.jsonl", "report.json", "report.md", "report.html",
                        "junit.xml", "redis-0/redis.log"}) {
    EXPECT_TRUE(std::filesystem::exists(d.path() + "/run/" + f)) << f;
  }
}

TEST(Cli, SetNxDelOverlapsWhereTokenLuaDoesNot) {
  TempDir d;
  // A short TTL makes overrunning holds (2% of holds, 0.9-1.5x TTL) frequent in a short run.
  Result r = RunLockstorm({"run", "--impl", "set-nx-del,token-lua", "--clients", "16", "--ttl-ms",
                           "100", "--duration", "4", "--seed", "7", "--out", d.path() + "/run"},
                          d.path());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;  // set-nx-del's overlaps are expected: exit 0
  nlohmann::json rep = ReadJson(d.path() + "/run/report.json");
  const nlohmann::json* bad = FindRow(rep, "set-nx-del");
  const nlohmann::json* good = FindRow(rep, "token-lua");
  ASSERT_TRUE(bad && good);
  EXPECT_EQ((*bad)["verdict"], "expected-fail");
  EXPECT_GT((*bad)["counts"]["violations"].get<int>(), 0);
  ASSERT_FALSE((*bad)["violations"].empty());
  const auto& v = (*bad)["violations"][0];
  EXPECT_NE(v["op_a"], v["op_b"]);
  EXPECT_NE(v["client_a"], v["client_b"]);
  EXPECT_GT(v["overlap_us"].get<int64_t>(), 0);
  EXPECT_EQ((*good)["verdict"], "pass");
  EXPECT_EQ((*good)["counts"]["violations"], 0);
  EXPECT_EQ((*good)["counts"]["lost_updates"], 0);
  EXPECT_NE(r.out.find("overlap on"), std::string::npos) << r.out;
}

// Starts a long run, waits until its servers are up, delivers `sig`, and checks that no
// redis-server it started is left.
void KillMidRun(int sig) {
  TempDir d;
  SpawnOptions o;
  o.argv = {LOCKSTORM_BIN, "run", "--impl", "redlock,token-lua",
            "--duration",  "60",  "--out",  d.path() + "/run"};
  o.stdout_path = d.path() + "/stdout.txt";
  o.stderr_path = d.path() + "/stderr.txt";
  std::unique_ptr<Process> p;
  ASSERT_TRUE(Spawn(o, &p).ok());
  const std::string servers_json = d.path() + "/run/servers.json";
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::ifstream f(servers_json);
        if (!f) return false;
        try {
          return nlohmann::json::parse(f).size() == 5;
        } catch (...) {
          return false;
        }
      },
      30000))
      << "servers never came up: " << ReadFile(o.stderr_path);
  std::vector<pid_t> pids;
  for (const auto& s : ReadJson(servers_json)) pids.push_back(s["pid"].get<pid_t>());
  ASSERT_EQ(pids.size(), 5u);
  for (pid_t pid : pids) ASSERT_TRUE(ProcessAlive(pid));
  // Wait until clients are really running (history is being written).
  ASSERT_TRUE(WaitUntil([&] { return !ReadFile(d.path() + "/run/history.jsonl").empty(); }, 30000));

  kill(p->pid(), sig);  // the lockstorm process only, as a terminal or OOM killer would
  int st = 0;
  ASSERT_TRUE(p->WaitFor(30000, &st));
  if (sig == SIGINT) {
    ASSERT_TRUE(WIFEXITED(st)) << "lockstorm died of a signal on SIGINT";
    EXPECT_EQ(WEXITSTATUS(st), 3) << "an interrupted run is inconclusive";
    nlohmann::json rep = ReadJson(d.path() + "/run/report.json");
    EXPECT_TRUE(rep["summary"]["interrupted"].get<bool>());
  }
  for (pid_t pid : pids) {
    EXPECT_TRUE(WaitUntil([&] { return !ProcessAlive(pid); }, 10000))
        << "redis-server " << pid << " left behind after signal " << sig;
  }
}

TEST(Cli, SigintLeavesNoServerBehind) { KillMidRun(SIGINT); }
TEST(Cli, SigkillLeavesNoServerBehind) { KillMidRun(SIGKILL); }

struct BadInput {
  std::vector<std::string> args;
  std::string expect_in_error;
  std::map<std::string, std::string> env;
};

TEST(Cli, BadInputGivesOneLineAndExit4) {
  TempDir d;
  std::string file = d.path() + "/a-file";
  std::ofstream(file) << "x";
  std::string bad_scenario = d.path() + "/bad.json";
  std::ofstream(bad_scenario) << R"({"name": "x", "workload": {"clients": "many"}})";
  const std::vector<BadInput> cases = {
      {{"run", "--impl", "no-such-lock"}, "--impl: unknown implementation 'no-such-lock'"},
      {{"run", "--scenario", "no-such-scenario"}, "--scenario: unknown scenario"},
      {{"run", "--clients", "many"}, "--clients"},
      {{"run", "--clients", "0"}, "--clients: expected 1..10000"},
      {{"run", "--client-threads", "-2"}, "--client-threads: expected 0..1024"},
      {{"run", "--ttl-ms", "-5"}, "--ttl-ms"},
      {{"run", "--bogus-flag"}, "bogus-flag"},
      {{"run", "--out", file + "/sub"}, "--out: cannot create directory"},
      {{"run", "--servers", "127.0.0.1:99999"}, "--servers"},
      {{"run", "--servers", "127.0.0.1:1", "--impl", "token-lua"},
       "--servers: cannot reach 127.0.0.1:1"},
      {{"run", "--impl", "token-lua", "--duration", "1", "--out", d.path() + "/nr"},
       "redis-server",
       {{"PATH", "/nonexistent"}}},
      {{"frobnicate"}, "frobnicate"},
      {{"run", "--scenario", bad_scenario}, "$.workload.clients: expected an integer in 1..10000"},
      {{"run", "--scenario", d.path() + "/missing.json"}, "--scenario: cannot read"},
  };
  for (const BadInput& c : cases) {
    std::vector<std::string> args = c.args;
    if (args[0] == "run" && std::find(args.begin(), args.end(), "--out") == args.end()) {
      args.push_back("--out");
      args.push_back(d.path() + "/out");
    }
    Result r = RunLockstorm(args, d.path(), c.env, 30000);
    std::string joined;
    for (const auto& a : c.args) joined += a + " ";
    EXPECT_EQ(r.exit_code, 4) << joined << "\nstdout: " << r.out << "\nstderr: " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << joined << ": " << r.err;
    EXPECT_NE(r.err.find(c.expect_in_error), std::string::npos) << joined << ": " << r.err;
  }
}

TEST(Cli, CheckReproducesTheStoredVerdict) {
  TempDir d;
  Result r = RunLockstorm({"run", "--impl", "set-nx-del,token-lua", "--ttl-ms", "100", "--duration",
                           "2", "--seed", "3", "--out", d.path() + "/run"},
                          d.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Result c = RunLockstorm({"check", d.path() + "/run"}, d.path());
  EXPECT_EQ(c.exit_code, r.exit_code) << c.out << c.err;
  EXPECT_NE(c.out.find("verdicts match the stored report"), std::string::npos) << c.out;
}

TEST(Cli, FencingKeepsTheWitnessSafeWhereTokenLuaLosesUpdates) {
  TempDir d;
  // `overrun`: holders do not check their lease and keep writing after it expired.
  Result r = RunLockstorm({"run", "--impl", "token-lua,fenced", "--scenario", "overrun",
                           "--duration", "4", "--seed", "5", "--out", d.path() + "/run"},
                          d.path());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  nlohmann::json rep = ReadJson(d.path() + "/run/report.json");
  const nlohmann::json* plain = FindRow(rep, "token-lua");
  const nlohmann::json* fenced = FindRow(rep, "fenced");
  ASSERT_TRUE(plain && fenced);
  EXPECT_GT((*plain)["counts"]["violations"].get<int>(), 0);
  EXPECT_GT((*plain)["counts"]["lost_updates"].get<int>(), 0);
  EXPECT_GT((*fenced)["counts"]["violations"].get<int>(), 0) << "lock-level overlaps happen";
  EXPECT_GT((*fenced)["counts"]["witness_rejected"].get<int>(), 0) << "stale writes were refused";
  EXPECT_EQ((*fenced)["counts"]["stale_writes_accepted"], 0);
  EXPECT_EQ((*fenced)["verdict"], "expected-fail");
}

std::string Plugin(const std::string& name) {
  return std::string(LOCKSTORM_SOURCE_DIR) + "/tests/plugins/" + name;
}

TEST(Cli, PluginsRunBesideBuiltinLocksAndMisbehaviourIsContained) {
  TempDir d;
  // The plug-ins run from copies in this test's directory, so that the final /proc check sees
  // only this run's processes (other tests may run tests/plugins/ at the same time).
  const std::string pdir = d.path() + "/cli-plugins";
  std::filesystem::create_directories(pdir);
  for (const char* f : {"proto_lock.py", "sleeper.sh", "garbage.sh"}) {
    std::filesystem::copy_file(Plugin(f), pdir + "/" + f);
  }
  auto mine = [&](const char* f) { return pdir + "/" + f; };
  Result r = RunLockstorm({"run", "--impl", "token-lua", "--impl",
                           "proto=exec:/usr/bin/python3 " + mine("proto_lock.py"), "--impl",
                           "sleeper=exec:" + mine("sleeper.sh"), "--impl",
                           "garbage=exec:" + mine("garbage.sh"), "--clients", "4", "--duration",
                           "2", "--ttl-ms", "200", "--seed", "1", "--out", d.path() + "/run"},
                          d.path());
  // The run finishes; the hung and garbage plug-ins make no acquisitions (inconclusive: 3).
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  nlohmann::json rep = ReadJson(d.path() + "/run/report.json");
  const nlohmann::json* proto = FindRow(rep, "proto");
  const nlohmann::json* sleeper = FindRow(rep, "sleeper");
  const nlohmann::json* garbage = FindRow(rep, "garbage");
  ASSERT_TRUE(proto && sleeper && garbage);
  EXPECT_EQ((*proto)["verdict"], "pass");
  EXPECT_GT((*proto)["counts"]["acquired"].get<int>(), 0);
  EXPECT_EQ((*proto)["counts"]["violations"], 0);
  EXPECT_GT((*sleeper)["counts"]["infra_errors"].get<int>(), 0);
  EXPECT_GT((*sleeper)["counts"]["unknown"].get<int>(), 0);
  EXPECT_GT((*garbage)["counts"]["infra_errors"].get<int>(), 0);
  const std::string garbage_error = (*garbage)["infra_errors"][0];
  EXPECT_NE(garbage_error.find("garbage"), std::string::npos) << garbage_error;
  EXPECT_NE(garbage_error.find("this is not json"), std::string::npos) << garbage_error;
  EXPECT_NE(r.out.find("proto"), std::string::npos);  // in the same comparison table
  // No plug-in process is left: nothing in /proc runs one of this run's plug-ins.
  EXPECT_TRUE(WaitUntil(
      [&] {
        for (const auto& e : std::filesystem::directory_iterator("/proc")) {
          std::ifstream f(e.path() / "cmdline");
          std::string cmd;
          std::getline(f, cmd, '\0');
          std::string rest((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
          if ((cmd + rest).find(pdir) != std::string::npos) return false;
        }
        return true;
      },
      10000));
}

}  // namespace
}  // namespace lockstorm
