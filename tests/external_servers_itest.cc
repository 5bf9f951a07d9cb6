// lockstorm against a server it did not start: a password-protected redis-server holding a
// user's keys, given as a redis:// URL with the password in LOCKSTORM_REDIS_PASSWORD. The user's
// keys must be untouched, the password must appear in no output and no file, and faults that
// would kill or restart the server must be skipped, and the reports must say so.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "harness/process.h"
#include "harness/redis_server.h"
#include "harness/transport.h"
#include "tests/cli_util.h"
#include "tests/test_util.h"

namespace lockstorm {
namespace {

using testing::TempDir;

const std::string kPassword = "s3cret-Pw-9f2c";

// A redis:// connection with AUTH; null if it cannot connect or authenticate.
struct Conn {
  redisContext* c = nullptr;
  ~Conn() {
    if (c) redisFree(c);
  }
  std::string Do(const std::vector<std::string>& argv) {
    std::vector<const char*> a;
    std::vector<size_t> l;
    for (const auto& s : argv) {
      a.push_back(s.data());
      l.push_back(s.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(a.size()), a.data(), l.data()));
    if (r == nullptr) return "<io error>";
    std::string out = r->type == REDIS_REPLY_INTEGER ? std::to_string(r->integer)
                      : r->type == REDIS_REPLY_NIL   ? "<nil>"
                      : r->str                       ? std::string(r->str, r->len)
                                                     : "<" + std::to_string(r->type) + ">";
    freeReplyObject(r);
    return out;
  }
};

std::unique_ptr<Conn> Connect(int port, int db) {
  auto conn = std::make_unique<Conn>();
  timeval tv{2, 0};
  conn->c = redisConnectWithTimeout("127.0.0.1", port, tv);
  if (conn->c == nullptr || conn->c->err) return nullptr;
  if (conn->Do({"AUTH", kPassword}) != "OK") return nullptr;
  if (conn->Do({"SELECT", std::to_string(db)}) != "OK") return nullptr;
  return conn;
}

// A redis-server the test starts as a user would: requirepass, no persistence.
class ProtectedServer {
 public:
  explicit ProtectedServer(const std::string& dir) {
    port_ = PickFreePort();
    SpawnOptions o;
    o.argv = {"redis-server", "--port", std::to_string(port_), "--bind",  "127.0.0.1", "--save", "",
              "--appendonly", "no",     "--requirepass",       kPassword, "--dir",     dir};
    o.stdout_path = dir + "/redis.log";
    o.stderr_path = dir + "/redis.log";
    status_ = Spawn(o, &process_);
    for (int i = 0; i < 200 && status_.ok(); ++i) {  // bounded: 200 x 25 ms
      if (auto c = Connect(port_, 0); c && c->Do({"PING"}) == "PONG") return;
      usleep(25000);
    }
    if (status_.ok()) status_ = Status::Timeout("redis-server did not answer");
  }
  int port() const { return port_; }
  const Status& status() const { return status_; }

 private:
  int port_ = 0;
  Status status_;
  std::unique_ptr<Process> process_;  // stopped (and reaped) by its destructor
};

// Every file under `dir`, concatenated.
std::string AllFiles(const std::string& dir) {
  std::string all;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file()) all += ReadFile(e.path().string());
  return all;
}

TEST(ExternalServersITest, PasswordProtectedServerKeepsTheUsersKeysAndTheSecret) {
  TempDir dir;
  ProtectedServer server(dir.path());
  ASSERT_TRUE(server.status().ok()) << server.status().ToString();
  // The user's data: in database 0 and in database 2 (the one lockstorm is pointed at),
  // including a key under another lockstorm run's prefix.
  auto db0 = Connect(server.port(), 0);
  auto db2 = Connect(server.port(), 2);
  ASSERT_TRUE(db0 && db2);
  ASSERT_EQ(db0->Do({"SET", "app:session:1", "alice"}), "OK");
  ASSERT_EQ(db0->Do({"HSET", "app:user:7", "name", "bob"}), "1");
  ASSERT_EQ(db2->Do({"SET", "jobs:cron:nightly", "owner-42", "PX", "600000"}), "OK");
  ASSERT_EQ(db2->Do({"SET", "lockstorm:another-run:k0", "someone-else"}), "OK");

  const std::string url = "redis://127.0.0.1:" + std::to_string(server.port()) + "/2";
  const std::string out = dir.path() + "/run";
  // The default comparison, then a fault through the proxy (AUTH passes through it).
  Result r = RunLockstorm({"run", "--servers", url, "--impl", "token-lua,set-nx-del,fenced",
                           "--duration", "2", "--seed", "3", "--quiet", "--out", out},
                          dir.path(), {{"LOCKSTORM_REDIS_PASSWORD", kPassword}});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json report = ReadJson(out + "/report.json");
  const nlohmann::json* row = FindRow(report, "token-lua");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ((*row)["verdict"], "pass");
  EXPECT_GT((*row)["counts"]["acquired"].get<int>(), 0);
  EXPECT_EQ(report["context"]["config"]["embedded"], false);
  r = RunLockstorm({"run", "--servers", url, "--impl", "token-lua", "--scenario", "latency",
                    "--duration", "4", "--seed", "3", "--quiet", "--out", out + "-latency"},
                   dir.path(), {{"LOCKSTORM_REDIS_PASSWORD", kPassword}});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;

  // A plug-in is told the database (LOCKSTORM_SERVER_URLS) and the password.
  const std::string redis_py = "redis-py=exec:/usr/bin/python3 " +
                               std::string(LOCKSTORM_SOURCE_DIR) +
                               "/impls/exec/python/redis_py_lock.py";
  r = RunLockstorm({"run", "--servers", url, "--impl", redis_py, "--clients", "4", "--duration",
                    "2", "--seed", "3", "--quiet", "--out", out + "-plugin"},
                   dir.path(), {{"LOCKSTORM_REDIS_PASSWORD", kPassword}});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json plugin = ReadJson(out + "-plugin/report.json");
  const nlohmann::json* plugin_row = FindRow(plugin, "redis-py");
  ASSERT_NE(plugin_row, nullptr);
  EXPECT_EQ((*plugin_row)["verdict"], "pass");
  EXPECT_GT((*plugin_row)["counts"]["acquired"].get<int>(), 0);

  // Untouched: values, types and TTLs of the user's keys; nothing of lockstorm's left.
  EXPECT_EQ(db0->Do({"GET", "app:session:1"}), "alice");
  EXPECT_EQ(db0->Do({"HGET", "app:user:7", "name"}), "bob");
  EXPECT_EQ(db0->Do({"DBSIZE"}), "2");
  EXPECT_EQ(db2->Do({"GET", "jobs:cron:nightly"}), "owner-42");
  EXPECT_GT(std::stoll(db2->Do({"PTTL", "jobs:cron:nightly"})), 0);
  EXPECT_EQ(db2->Do({"GET", "lockstorm:another-run:k0"}), "someone-else");
  EXPECT_EQ(db2->Do({"DBSIZE"}), "2");

  // The secret is in no file of either run and in no output.
  EXPECT_EQ(AllFiles(out).find(kPassword), std::string::npos);
  EXPECT_EQ(AllFiles(out + "-latency").find(kPassword), std::string::npos);
  EXPECT_EQ(r.out.find(kPassword), std::string::npos);
  EXPECT_EQ(r.err.find(kPassword), std::string::npos);

  // A password written into the URL works too, and is redacted from the report.
  const std::string inline_url =
      "redis://default:" + kPassword + "@127.0.0.1:" + std::to_string(server.port()) + "/2";
  r = RunLockstorm({"run", "--servers", inline_url, "--impl", "token-lua", "--duration", "1",
                    "--quiet", "--out", out + "-inline"},
                   dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(AllFiles(out + "-inline").find(kPassword), std::string::npos);
  EXPECT_NE(
      ReadJson(out + "-inline/report.json")["context"]["command_line"].get<std::string>().find(
          "redis://default:***@127.0.0.1"),
      std::string::npos);
  EXPECT_EQ(db2->Do({"DBSIZE"}), "2");
}

// The server's count of connections it has accepted (INFO stats), over `c`.
int64_t ConnectionsReceived(Conn* c) {
  const std::string info = c->Do({"INFO", "stats"});
  const std::string field = "total_connections_received:";
  const size_t at = info.find(field);
  return at == std::string::npos ? -1 : std::stoll(info.substr(at + field.size()));
}

TEST(ExternalServersITest, AConnectionSetUpPastItsCallsDeadlineIsKeptForTheNextCall) {
  // A call whose timeout ends before its new connection is set up (connect, AUTH) answers
  // kTimeout, but the connection goes on being set up and serves the next call: a short
  // per-call timeout (a Redlock node's TTL / 10) must not make every call start it over.
  TempDir dir;
  ProtectedServer server(dir.path());
  ASSERT_TRUE(server.status().ok()) << server.status().ToString();
  auto admin = Connect(server.port(), 0);
  ASSERT_TRUE(admin);
  std::vector<ServerAddress> nodes;
  ASSERT_TRUE(
      ParseServerList("test", "127.0.0.1:" + std::to_string(server.port()), &nodes, kPassword)
          .ok());
  const int64_t before = ConnectionsReceived(admin.get());
  ASSERT_GT(before, 0);
  std::unique_ptr<Transport> t = NewRedisTransport(nodes);
  const Reply first = t->Call(0, {"PING"}, 1);  // 1 us: over before the connection is ready
  EXPECT_EQ(first.type, Reply::Type::kTimeout) << first.ToString();
  const Reply second = t->Call(0, {"PING"}, 2'000'000);
  EXPECT_EQ(second.str, "PONG") << second.ToString();
  EXPECT_EQ(t->Call(0, {"PING"}, 2'000'000).str, "PONG");
  EXPECT_EQ(ConnectionsReceived(admin.get()) - before, 1);  // one connection for all three
}

TEST(ExternalServersITest, WrongPasswordIsOneLineErrorAndDestructiveFaultsAreSkipped) {
  TempDir dir;
  ProtectedServer server(dir.path());
  ASSERT_TRUE(server.status().ok()) << server.status().ToString();
  auto db0 = Connect(server.port(), 0);
  ASSERT_TRUE(db0);
  ASSERT_EQ(db0->Do({"SET", "app:keep", "1"}), "OK");
  const std::string url = "redis://127.0.0.1:" + std::to_string(server.port());

  Result r = RunLockstorm({"run", "--servers", url, "--impl", "token-lua", "--duration", "1",
                           "--out", dir.path() + "/wrong"},
                          dir.path(), {{"LOCKSTORM_REDIS_PASSWORD", "not-" + kPassword}});
  EXPECT_EQ(r.exit_code, 4) << r.out << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("AUTH failed"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(kPassword), std::string::npos) << r.err;

  // A scenario that cuts replication, kills the master and promotes its replica: all of it is
  // skipped (no replica is started either), and the reports say so.
  const std::string pid_before = db0->Do({"INFO", "server"});
  const std::string restart_dir = dir.path() + "/restart";
  r = RunLockstorm({"run", "--servers", url, "--impl", "token-lua", "--scenario", "failover",
                    "--out", restart_dir},
                   dir.path(), {{"LOCKSTORM_REDIS_PASSWORD", kPassword}});
  EXPECT_NE(r.exit_code, 4) << r.out << r.err;
  EXPECT_NE(r.out.find("skipped, as the servers were not started by lockstorm"), std::string::npos)
      << r.out;
  const nlohmann::json skipped =
      ReadJson(restart_dir + "/report.json")["context"]["config"]["skipped_faults"];
  ASSERT_TRUE(skipped.is_array() && !skipped.empty()) << skipped.dump();
  EXPECT_NE(skipped.dump().find(": failover"), std::string::npos) << skipped.dump();
  EXPECT_NE(skipped.dump().find(": cut-replication"), std::string::npos) << skipped.dump();
  EXPECT_NE(skipped.dump().find("replica"), std::string::npos) << skipped.dump();
  EXPECT_NE(skipped[0]["why"].get<std::string>().find("not started by lockstorm"),
            std::string::npos);
  EXPECT_NE(ReadFile(restart_dir + "/report.md").find("**Skipped faults**"), std::string::npos);
  EXPECT_NE(ReadFile(restart_dir + "/report.html").find("Skipped faults"), std::string::npos);
  auto process_id = [](const std::string& info) {
    const size_t at = info.find("process_id:");
    return at == std::string::npos ? std::string() : info.substr(at, info.find('\r', at) - at);
  };
  EXPECT_FALSE(process_id(pid_before).empty());
  EXPECT_EQ(process_id(db0->Do({"INFO", "server"})), process_id(pid_before));  // never restarted

  EXPECT_EQ(db0->Do({"GET", "app:keep"}), "1");
  EXPECT_EQ(db0->Do({"PING"}), "PONG");  // still up: nothing was killed or shut down
}

}  // namespace
}  // namespace lockstorm
