// Integration tests for harness/server_pool.h: real redis-server processes reused between runs,
// refreshed after the faults a run leaves behind.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/time.h>

#include <cerrno>
#include <string>

#include "harness/server_pool.h"
#include "harness/transport.h"
#include "tests/test_util.h"

namespace lockstorm {
namespace {

using testing::TempDir;

constexpr int64_t kTimeoutUs = 5'000'000;

bool PidAlive(pid_t pid) { return pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH); }

Reply Call(ServerSet* set, int node, const Command& cmd) {
  return NewRedisTransport(set->addresses())->Call(node, cmd, kTimeoutUs);
}

std::string ConfigGet(ServerSet* set, int node, const std::string& name) {
  Reply r = Call(set, node, {"CONFIG", "GET", name});
  if (r.elements.size() != 2) return "<" + r.ToString() + ">";
  return r.elements[1].str;
}

// The server's wall clock minus ours, in seconds (TIME's seconds field).
int64_t ServerClockAheadS(ServerSet* set, int node) {
  Reply r = Call(set, node, {"TIME"});
  if (r.elements.size() != 2) return -999999;
  timeval tv{};
  gettimeofday(&tv, nullptr);
  return std::stoll(r.elements[0].str) - tv.tv_sec;
}

TEST(ServerPoolITest, ASecondRunOfTheSameShapeGetsTheSameRunningServers) {
  TempDir dir;
  ServerPool pool(dir.path());
  ServerSet* a = nullptr;
  ASSERT_TRUE(pool.Get(3, {}, &a).ok());
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->size(), 3);
  const pid_t pid0 = a->server(0)->pid();
  // A run's own keys are its business; keys it did not delete are simply kept.
  ASSERT_TRUE(Call(a, 0, {"SET", "other-run-key", "v"}).is_ok_status());
  ServerSet* b = nullptr;
  ASSERT_TRUE(pool.Get(3, {}, &b).ok());
  EXPECT_EQ(b, a);
  EXPECT_EQ(b->server(0)->pid(), pid0);
  EXPECT_EQ(Call(b, 0, {"GET", "other-run-key"}).str, "v");
  EXPECT_EQ(pool.starts(), 1);
  EXPECT_EQ(pool.reuses(), 1);
}

TEST(ServerPoolITest, RefreshUndoesPauseKillRepersistenceAndClockSkew) {
  TempDir dir;
  ServerPool pool(dir.path());
  ServerSet* set = nullptr;
  ServerOptions opts;
  opts.clock_control = true;
  ASSERT_TRUE(pool.Get(4, opts, &set).ok());
  const pid_t untouched = set->server(3)->pid();
  // What a run's faults may leave: a paused node, a dead one, one restarted with AOF, a
  // skewed clock.
  set->server(0)->Pause();
  set->server(1)->Kill();
  set->server(2)->set_persistence(Persistence::kAofAlways);
  ASSERT_TRUE(set->server(2)->Restart().ok());
  ASSERT_EQ(ConfigGet(set, 2, "appendonly"), "yes");
  ASSERT_NE(set->server(3)->clock(), nullptr);
  set->server(3)->clock()->SetOffset(3600LL * 1'000'000);
  ASSERT_GE(ServerClockAheadS(set, 3), 3590);

  ServerSet* again = nullptr;
  ASSERT_TRUE(pool.Get(4, opts, &again).ok());
  ASSERT_EQ(again, set);
  EXPECT_EQ(pool.starts(), 1);
  for (int n = 0; n < 4; ++n) {
    SCOPED_TRACE(n);
    EXPECT_TRUE(set->server(n)->running());
    EXPECT_EQ(Call(set, n, {"PING"}).str, "PONG");
    EXPECT_EQ(set->server(n)->persistence(), Persistence::kNone);
  }
  EXPECT_EQ(ConfigGet(set, 2, "appendonly"), "no");
  EXPECT_LE(std::abs(ServerClockAheadS(set, 3)), 2);
  EXPECT_EQ(set->server(3)->pid(), untouched);  // a healthy server is not restarted
}

TEST(ServerPoolITest, ADifferentShapeStopsTheOldSetAndStartsANewOne) {
  TempDir dir;
  ServerPool pool(dir.path());
  ServerSet* three = nullptr;
  ASSERT_TRUE(pool.Get(3, {}, &three).ok());
  const pid_t old_pid = three->server(0)->pid();
  ServerSet* one = nullptr;
  ASSERT_TRUE(pool.Get(1, {}, &one).ok());
  ASSERT_EQ(one->size(), 1);
  EXPECT_EQ(pool.starts(), 2);
  EXPECT_FALSE(PidAlive(old_pid));  // stopped and reaped
  // Needing the clock shim restarts once; afterwards runs without clock faults still fit.
  ServerOptions clock;
  clock.clock_control = true;
  ServerSet* shimmed = nullptr;
  ASSERT_TRUE(pool.Get(1, clock, &shimmed).ok());
  EXPECT_NE(shimmed->server(0)->clock(), nullptr);
  EXPECT_EQ(pool.starts(), 3);
  ServerSet* plain = nullptr;
  ASSERT_TRUE(pool.Get(1, {}, &plain).ok());
  EXPECT_EQ(plain, shimmed);
  EXPECT_EQ(pool.starts(), 3);
  // Persistence is part of the shape.
  ServerOptions rdb;
  rdb.persistence = Persistence::kRdb;
  ServerSet* persisted = nullptr;
  ASSERT_TRUE(pool.Get(1, rdb, &persisted).ok());
  EXPECT_EQ(pool.starts(), 4);
  EXPECT_EQ(ConfigGet(persisted, 0, "save"), "1 1");
}

TEST(ServerPoolITest, ReplicationConfigIsNotPooled) {
  TempDir dir;
  ServerPool pool(dir.path());
  ServerOptions opts;
  opts.extra_config = {"repl-diskless-sync yes"};
  ServerSet* set = nullptr;
  Status s = pool.Get(1, opts, &set);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(set, nullptr);
  EXPECT_EQ(pool.starts(), 0);
}

}  // namespace
}  // namespace lockstorm
