// Integration tests for harness/redis_server.h: real redis-server processes on loopback.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "harness/redis_server.h"
#include "tests/test_util.h"

namespace lockstorm {
namespace {

using testing::TempDir;
using testing::TestServers;

constexpr int64_t kTimeoutMs = 5000;

// The result of one command: a string-like answer, nil, an array of strings, or an error.
struct Answer {
  bool ok = false;  // the server answered (not a connection error / timeout)
  bool nil = false;
  std::string str;  // status, bulk string, or error text ("timeout" when timed out)
  std::vector<std::string> array;
};

Answer RunCommand(const ServerAddress& addr, const std::vector<std::string>& argv,
                  int64_t timeout_ms = kTimeoutMs) {
  Answer a;
  timeval tv{static_cast<time_t>(timeout_ms / 1000),
             static_cast<suseconds_t>((timeout_ms % 1000) * 1000)};
  redisContext* c = redisConnectWithTimeout(addr.host.c_str(), addr.port, tv);
  if (c == nullptr || c->err) {
    a.str = c ? c->errstr : "oom";
    if (c) redisFree(c);
    return a;
  }
  redisSetTimeout(c, tv);
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (const auto& s : argv) {
    args.push_back(s.data());
    lens.push_back(s.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), args.data(), lens.data()));
  if (r == nullptr) {
    a.str = (c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
                ? "timeout"
                : std::string(c->errstr);
  } else {
    a.ok = r->type != REDIS_REPLY_ERROR;
    a.nil = r->type == REDIS_REPLY_NIL;
    if (r->str) a.str.assign(r->str, r->len);
    for (size_t i = 0; i < r->elements; ++i) {
      if (r->element[i]->str) a.array.emplace_back(r->element[i]->str, r->element[i]->len);
    }
    freeReplyObject(r);
  }
  redisFree(c);
  return a;
}

bool Pong(const ServerAddress& addr, int64_t timeout_ms = kTimeoutMs) {
  Answer a = RunCommand(addr, {"PING"}, timeout_ms);
  return a.ok && a.str == "PONG";
}

std::string ConfigGet(const ServerAddress& addr, const std::string& name) {
  Answer a = RunCommand(addr, {"CONFIG", "GET", name});
  if (!a.ok || a.array.size() != 2) return "<error: " + a.str + ">";
  return a.array[1];
}

bool PidGone(pid_t pid) { return kill(pid, 0) != 0 && errno == ESRCH; }

TEST(RedisServerTest, StartsThreeServersThatAnswerPing) {
  TestServers s(3);
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  EXPECT_TRUE(s.set.embedded());
  ASSERT_EQ(s.set.size(), 3);
  std::set<int> ports;
  for (int i = 0; i < 3; ++i) {
    ServerAddress addr = s.set.addresses()[static_cast<size_t>(i)];
    EXPECT_EQ(addr.host, "127.0.0.1");
    ports.insert(addr.port);
    EXPECT_TRUE(Pong(addr)) << addr.ToString();
    EmbeddedServer* srv = s.set.server(i);
    EXPECT_TRUE(srv->running());
    EXPECT_GT(srv->pid(), 0);
    EXPECT_EQ(srv->address().port, addr.port);
    std::string dir = s.dir.path() + "/redis-" + std::to_string(i);
    EXPECT_EQ(srv->dir(), dir);
    EXPECT_EQ(srv->log_path(), dir + "/redis.log");
    EXPECT_TRUE(std::filesystem::exists(dir + "/redis.conf"));
    EXPECT_TRUE(std::filesystem::exists(srv->log_path()));
    EXPECT_EQ(ConfigGet(addr, "bind"), "127.0.0.1");
    EXPECT_EQ(ConfigGet(addr, "dir"), std::filesystem::canonical(dir).string());
  }
  EXPECT_EQ(ports.size(), 3u);
  std::string version = s.set.RedisVersion();
  ASSERT_FALSE(version.empty());
  EXPECT_TRUE(isdigit(static_cast<unsigned char>(version[0]))) << version;
  EXPECT_NE(version.find('.'), std::string::npos) << version;
}

TEST(RedisServerTest, EachPersistenceModeIsInEffect) {
  struct Case {
    Persistence p;
    std::string appendonly, appendfsync, save;
  };
  const std::vector<Case> cases = {
      {Persistence::kNone, "no", "", ""},
      {Persistence::kRdb, "no", "", "1 1"},
      {Persistence::kAofEverysec, "yes", "everysec", ""},
      {Persistence::kAofAlways, "yes", "always", ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(PersistenceName(c.p));
    ServerOptions opts;
    opts.persistence = c.p;
    TestServers s(1, opts);
    ASSERT_TRUE(s.status.ok()) << s.status.ToString();
    ServerAddress addr = s.set.addresses()[0];
    EXPECT_EQ(ConfigGet(addr, "appendonly"), c.appendonly);
    if (!c.appendfsync.empty()) EXPECT_EQ(ConfigGet(addr, "appendfsync"), c.appendfsync);
    EXPECT_EQ(ConfigGet(addr, "save"), c.save);
  }
}

TEST(RedisServerTest, ExtraConfigLinesAreApplied) {
  ServerOptions opts;
  opts.extra_config = {"maxclients 123"};
  TestServers s(1, opts);
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  EXPECT_EQ(ConfigGet(s.set.addresses()[0], "maxclients"), "123");
}

TEST(RedisServerTest, KillThenRestartWithAofAlwaysKeepsAcknowledgedWrite) {
  ServerOptions opts;
  opts.persistence = Persistence::kAofAlways;
  TestServers s(1, opts);
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  EmbeddedServer* srv = s.set.server(0);
  ServerAddress addr = srv->address();
  ASSERT_EQ(RunCommand(addr, {"SET", "lockstorm:key", "value-1"}).str, "OK");

  pid_t old_pid = srv->pid();
  srv->Kill();
  EXPECT_FALSE(srv->running());
  EXPECT_EQ(srv->pid(), -1);
  EXPECT_TRUE(PidGone(old_pid));
  EXPECT_FALSE(Pong(addr, 500));

  Status st = srv->Restart();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(srv->address().port, addr.port);  // same port across restarts
  EXPECT_NE(srv->pid(), old_pid);
  Answer a = RunCommand(addr, {"GET", "lockstorm:key"});
  EXPECT_TRUE(a.ok);
  EXPECT_EQ(a.str, "value-1");
}

TEST(RedisServerTest, KillThenRestartWithoutPersistenceLosesWrite) {
  TestServers s(1);
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  EmbeddedServer* srv = s.set.server(0);
  ServerAddress addr = srv->address();
  ASSERT_EQ(RunCommand(addr, {"SET", "lockstorm:key", "value-1"}).str, "OK");
  srv->Kill();
  Status st = srv->Restart();
  ASSERT_TRUE(st.ok()) << st.ToString();
  Answer a = RunCommand(addr, {"GET", "lockstorm:key"});
  EXPECT_TRUE(a.ok) << a.str;
  EXPECT_TRUE(a.nil);
}

TEST(RedisServerTest, RestartWhileRunningRestartsOnSamePort) {
  TestServers s(1);
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  EmbeddedServer* srv = s.set.server(0);
  pid_t old_pid = srv->pid();
  int port = srv->address().port;
  Status st = srv->Restart();
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(PidGone(old_pid));
  EXPECT_EQ(srv->address().port, port);
  EXPECT_TRUE(Pong(srv->address()));
  EXPECT_FALSE(srv->Start().ok());  // already running
}

TEST(RedisServerTest, RestartOnTakenPortFailsNamingTheReason) {
  TestServers s(1);
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  EmbeddedServer* srv = s.set.server(0);
  int port = srv->address().port;
  srv->Kill();
  // Someone else takes the port while the server is down: Restart keeps its port, so it fails.
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(static_cast<uint16_t>(port));
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0) << strerror(errno);
  ASSERT_EQ(listen(fd, 1), 0);
  Status st = srv->Restart();
  close(fd);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("address already in use"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(srv->log_path()), std::string::npos) << st.message();
  EXPECT_FALSE(srv->running());
  EXPECT_EQ(srv->address().port, port);
  st = srv->Restart();  // the port is free again
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(Pong(srv->address()));
}

TEST(RedisServerTest, PauseMakesPingTimeOutAndResumeAnswers) {
  TestServers s(1);
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  EmbeddedServer* srv = s.set.server(0);
  ServerAddress addr = srv->address();
  srv->Pause();
  Answer a = RunCommand(addr, {"PING"}, 200);
  EXPECT_FALSE(a.ok);
  EXPECT_EQ(a.str, "timeout");
  srv->Resume();
  EXPECT_TRUE(Pong(addr));
}

TEST(RedisServerTest, MissingBinaryFailsWithOneLine) {
  for (std::string path : {"/nonexistent/redis-server", "lockstorm-no-such-redis-server"}) {
    SCOPED_TRACE(path);
    ServerOptions opts;
    opts.redis_server_path = path;
    TestServers s(2, opts);
    ASSERT_FALSE(s.status.ok());
    EXPECT_EQ(s.status.code(), Status::Code::kNotFound);
    EXPECT_NE(s.status.message().find(path), std::string::npos) << s.status.message();
    EXPECT_NE(s.status.message().find("not found"), std::string::npos) << s.status.message();
    EXPECT_NE(s.status.message().find("install redis-server"), std::string::npos);
    EXPECT_EQ(s.status.message().find('\n'), std::string::npos) << s.status.message();
    EXPECT_EQ(s.set.size(), 0);
  }
}

TEST(RedisServerTest, ServerThatExitsAtStartupFailsNamingLogAndLastLine) {
  ServerOptions opts;
  opts.extra_config = {"lockstorm-no-such-directive yes"};
  TestServers s(1, opts);
  ASSERT_FALSE(s.status.ok());
  const std::string& msg = s.status.message();
  EXPECT_NE(msg.find("redis-0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("exited"), std::string::npos) << msg;
  EXPECT_NE(msg.find(s.dir.path() + "/redis-0/redis.log"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Bad directive"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_EQ(s.set.size(), 0);
}

TEST(RedisServerTest, UseExternalOnClosedPortFailsWithClearMessage) {
  int port = PickFreePort();  // nothing listens there
  ASSERT_GT(port, 0);
  ServerSet set;
  Status st = set.UseExternal({{"127.0.0.1", port}}, 2000);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(),
            "--servers: cannot reach 127.0.0.1:" + std::to_string(port) + ": connection refused");
  EXPECT_EQ(set.size(), 0);
}

TEST(RedisServerTest, UseExternalAcceptsRunningServersAndNeverStopsThem) {
  TestServers embedded(2);
  ASSERT_TRUE(embedded.status.ok()) << embedded.status.ToString();
  {
    ServerSet external;
    Status st = external.UseExternal(embedded.set.addresses(), kTimeoutMs);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_FALSE(external.embedded());
    EXPECT_EQ(external.size(), 2);
    EXPECT_EQ(external.addresses()[1].port, embedded.set.addresses()[1].port);
    EXPECT_EQ(external.RedisVersion(), embedded.set.RedisVersion());
  }
  for (const auto& addr : embedded.set.addresses()) EXPECT_TRUE(Pong(addr));
}

TEST(RedisServerTest, DestructorLeavesNoProcessEvenWhenPaused) {
  std::vector<pid_t> pids;
  TempDir dir;
  {
    ServerSet set;
    ServerOptions opts;
    opts.persistence = Persistence::kRdb;  // SIGTERM makes redis save: still bounded
    Status st = set.StartEmbedded(dir.path(), 3, opts);
    ASSERT_TRUE(st.ok()) << st.ToString();
    for (int i = 0; i < 3; ++i) pids.push_back(set.server(i)->pid());
    set.server(1)->Pause();
    set.server(2)->Kill();
  }
  for (pid_t pid : pids) EXPECT_TRUE(PidGone(pid)) << pid;
}

}  // namespace
}  // namespace lockstorm
