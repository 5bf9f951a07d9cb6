// Integration tests for harness/server_clock.h and the LD_PRELOAD clock shim: real
// redis-servers whose wall clock lockstorm skews at run time.
//
// Timing assertions compare the server's clock with lockstorm's own CLOCK_REALTIME/steady clock
// over the same interval, bracketing every server reading by local readings, and allow generous
// bounds (ratios in [1.5, 2.5] for a rate of 2): a loaded machine delays replies but cannot make
// the server's clock run at the wrong rate.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "harness/process.h"
#include "harness/redis_server.h"
#include "harness/server_clock.h"
#include "tests/test_util.h"

namespace lockstorm {
namespace {

using testing::TestServers;
using Steady = std::chrono::steady_clock;

constexpr int64_t kTimeoutMs = 5000;
constexpr int64_t kSecUs = 1000000;
constexpr int64_t kDayUs = 86400 * kSecUs;
const char* const kPython = "/usr/bin/python3";

int64_t RealtimeUs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * kSecUs + ts.tv_nsec / 1000;
}

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Steady::now().time_since_epoch())
      .count();
}

ServerOptions ClockOptions() {
  ServerOptions opts;
  opts.clock_control = true;
  return opts;
}

// One reply, flattened.
struct Reply {
  bool ok = false;  // answered, not an error
  bool nil = false;
  long long integer = 0;
  std::string str;  // status / bulk string / error text / connection error
  std::vector<std::string> array;
};

// A hiredis connection with a bounded timeout on every command.
class Conn {
 public:
  explicit Conn(const ServerAddress& addr, int64_t timeout_ms = kTimeoutMs) {
    timeval tv{static_cast<time_t>(timeout_ms / 1000),
               static_cast<suseconds_t>((timeout_ms % 1000) * 1000)};
    c_ = redisConnectWithTimeout(addr.host.c_str(), addr.port, tv);
    if (c_ != nullptr && c_->err == 0) redisSetTimeout(c_, tv);
  }
  ~Conn() {
    if (c_ != nullptr) redisFree(c_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  bool connected() const { return c_ != nullptr && c_->err == 0; }

  Reply Run(const std::vector<std::string>& argv) {
    Reply out;
    if (!connected()) {
      out.str = c_ ? c_->errstr : "out of memory";
      return out;
    }
    std::vector<const char*> args;
    std::vector<size_t> lens;
    for (const auto& s : argv) {
      args.push_back(s.data());
      lens.push_back(s.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c_, static_cast<int>(args.size()), args.data(), lens.data()));
    if (r == nullptr) {
      out.str = c_->errstr[0] ? c_->errstr : "connection error";
      return out;
    }
    out.ok = r->type != REDIS_REPLY_ERROR;
    out.nil = r->type == REDIS_REPLY_NIL;
    out.integer = r->integer;
    if (r->str != nullptr) out.str.assign(r->str, r->len);
    for (size_t i = 0; i < r->elements; ++i) {
      if (r->element[i]->str) out.array.emplace_back(r->element[i]->str, r->element[i]->len);
    }
    freeReplyObject(r);
    return out;
  }

  // Sends `n` commands pipelined and reads all replies. True if all succeeded.
  bool Pipeline(const std::vector<std::vector<std::string>>& cmds) {
    if (!connected()) return false;
    for (const auto& argv : cmds) {
      std::vector<const char*> args;
      std::vector<size_t> lens;
      for (const auto& s : argv) {
        args.push_back(s.data());
        lens.push_back(s.size());
      }
      if (redisAppendCommandArgv(c_, static_cast<int>(args.size()), args.data(), lens.data()) !=
          REDIS_OK) {
        return false;
      }
    }
    bool all_ok = true;
    for (size_t i = 0; i < cmds.size(); ++i) {
      void* r = nullptr;
      if (redisGetReply(c_, &r) != REDIS_OK || r == nullptr) return false;
      all_ok = all_ok && static_cast<redisReply*>(r)->type != REDIS_REPLY_ERROR;
      freeReplyObject(r);
    }
    return all_ok;
  }

 private:
  redisContext* c_ = nullptr;
};

// The server's TIME in µs since the epoch, or -1.
int64_t ServerTimeUs(Conn* conn) {
  Reply r = conn->Run({"TIME"});
  if (!r.ok || r.array.size() != 2) return -1;
  return std::stoll(r.array[0]) * kSecUs + std::stoll(r.array[1]);
}

// Server TIME minus local CLOCK_REALTIME, µs, bracketed: the local reading is the midpoint of
// the readings before and after the command. *rtt_us gets their distance (the uncertainty).
int64_t ServerOffsetUs(Conn* conn, int64_t* rtt_us) {
  int64_t before = RealtimeUs();
  int64_t server = ServerTimeUs(conn);
  int64_t after = RealtimeUs();
  *rtt_us = after - before;
  return server - (before + after) / 2;
}

// Integer reply of `cmd` (PTTL, DBSIZE), or LLONG_MIN if the server did not answer one.
long long Integer(Conn* conn, const std::vector<std::string>& cmd) {
  Reply r = conn->Run(cmd);
  return r.ok ? r.integer : LLONG_MIN;
}

// The value of `field` in `INFO section`, "" if absent.
std::string InfoField(Conn* conn, const std::string& section, const std::string& field) {
  Reply r = conn->Run({"INFO", section});
  std::string key = "\n" + field + ":";
  size_t pos = ("\n" + r.str).find(key);
  if (pos == std::string::npos) return "";
  pos += key.size() - 1;  // the "\n" we prepended
  size_t end = r.str.find_first_of("\r\n", pos);
  return r.str.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
}

// Runs `argv` to completion with `env` added; returns its stdout (bounded by `timeout_ms`).
std::string RunCapture(const std::vector<std::string>& argv,
                       const std::map<std::string, std::string>& env, int64_t timeout_ms) {
  SpawnOptions so;
  so.argv = argv;
  so.env = env;
  so.pipe_stdio = true;
  std::unique_ptr<Process> p;
  Status s = Spawn(so, &p);
  if (!s.ok()) return "spawn failed: " + s.ToString();
  p->CloseStdin();
  std::string out;
  const int64_t deadline = SteadyMs() + timeout_ms;
  for (;;) {
    int64_t left = deadline - SteadyMs();
    if (left <= 0) break;
    pollfd pfd{p->stdout_fd(), POLLIN, 0};
    if (poll(&pfd, 1, static_cast<int>(left)) <= 0) break;
    char buf[4096];
    ssize_t n = read(p->stdout_fd(), buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  p->Stop(0);
  return out;
}

// PTTL drop over ~`wait_ms` of real time, divided by that real time, on a server whose clock
// runs at `rate`: what the server's expiry clock rate measures to.
double MeasuredPttlRate(double rate, int64_t wait_ms) {
  TestServers s(1, ClockOptions());
  EXPECT_TRUE(s.status.ok()) << s.status.ToString();
  if (!s.status.ok()) return -1;
  ServerClock* clock = s.set.server(0)->clock();
  EXPECT_TRUE(clock->SetRate(rate).ok());
  Conn conn(s.set.addresses()[0]);
  // Each PTTL is read somewhere within its round trip, so the real interval is only known to
  // +-(rtt0 + rtt1) / 2. On a loaded machine a round trip can be a large part of wait_ms: measure
  // again (bounded) until both round trips together are at most 20% of the interval, i.e. the
  // ratio is known to within 10%.
  double measured = -1;
  for (int attempt = 0; attempt < 5; ++attempt) {
    EXPECT_TRUE(conn.Run({"SET", "k", "v", "PX", "100000"}).ok);
    int64_t t0a = SteadyMs();
    long long p0 = Integer(&conn, {"PTTL", "k"});
    int64_t t0b = SteadyMs();
    // Waiting is the measured quantity here, not synchronisation.
    while (SteadyMs() - t0b < wait_ms) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    int64_t t1a = SteadyMs();
    long long p1 = Integer(&conn, {"PTTL", "k"});
    int64_t t1b = SteadyMs();
    EXPECT_GT(p0, 0);
    EXPECT_GT(p1, 0);
    double real_ms = static_cast<double>(t1a + t1b - t0a - t0b) / 2.0;
    measured = static_cast<double>(p0 - p1) / real_ms;
    if (static_cast<double>((t0b - t0a) + (t1b - t1a)) <= 0.2 * real_ms) break;
  }
  return measured;
}

// ---------------------------------------------------------------------------------------------

TEST(ServerClockITest, UnderTheShimAtRateOneTheServerAnswersWithRealTime) {
  TestServers s(1, ClockOptions());
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  ServerClock* clock = s.set.server(0)->clock();
  ASSERT_NE(clock, nullptr);
  EXPECT_GE(clock->attach_count(), 1u);  // the shim mapped the file inside redis-server
  Conn conn(s.set.addresses()[0]);
  ASSERT_TRUE(conn.connected());
  EXPECT_EQ(conn.Run({"PING"}).str, "PONG");
  int64_t rtt_us = 0;
  int64_t offset_us = ServerOffsetUs(&conn, &rtt_us);
  EXPECT_LT(std::abs(offset_us), 2 * kSecUs + rtt_us) << "server TIME is off real time";
}

TEST(ServerClockITest, WithoutClockControlThereIsNoClock) {
  TestServers s(1);
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  EXPECT_EQ(s.set.server(0)->clock(), nullptr);
}

TEST(ServerClockITest, AtRateTwoPttlFallsTwiceAsFastAsRealTime) {
  double measured = MeasuredPttlRate(2.0, 500);
  ::testing::Test::RecordProperty("measured_rate", std::to_string(measured));
  EXPECT_GE(measured, 1.5);
  EXPECT_LE(measured, 2.5);
}

TEST(ServerClockITest, AtRateOneHalfPttlFallsHalfAsFastAsRealTime) {
  double measured = MeasuredPttlRate(0.5, 500);
  ::testing::Test::RecordProperty("measured_rate", std::to_string(measured));
  EXPECT_GE(measured, 0.3);
  EXPECT_LE(measured, 0.7);
}

TEST(ServerClockITest, JumpPastTheTtlExpiresTheKeyAtOnce) {
  TestServers s(1, ClockOptions());
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  Conn conn(s.set.addresses()[0]);
  // A TTL of an hour cannot run out on its own within the test (bounded far below that), so
  // only the jump can expire the key: no wall-clock bound on the test's own speed is needed.
  ASSERT_TRUE(conn.Run({"SET", "k", "v", "PX", "3600000"}).ok);
  ASSERT_TRUE(conn.Run({"SET", "forever", "v"}).ok);
  EXPECT_EQ(conn.Run({"GET", "k"}).str, "v");
  s.set.server(0)->clock()->Jump(3601 * kSecUs);  // TTL + 1 s
  Reply r = conn.Run({"GET", "k"});  // lazy expiry on access uses the (skewed) current time
  EXPECT_TRUE(r.nil) << "GET after the jump returned '" << r.str << "'";
  EXPECT_EQ(conn.Run({"GET", "forever"}).str, "v");
}

TEST(ServerClockITest, BackwardJumpLengthensTheRemainingTtl) {
  TestServers s(1, ClockOptions());
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  Conn conn(s.set.addresses()[0]);
  const int64_t start_ms = SteadyMs();
  ASSERT_TRUE(conn.Run({"SET", "k", "v", "PX", "10000"}).ok);
  s.set.server(0)->clock()->Jump(-20 * kSecUs);
  long long pttl = Integer(&conn, {"PTTL", "k"});
  const int64_t elapsed_ms = SteadyMs() - start_ms;
  // 30000 less the real time between SET and PTTL (at most elapsed_ms; 5 s of slack kept).
  EXPECT_GT(pttl, 25000 - elapsed_ms);
  EXPECT_LE(pttl, 30000);
}

TEST(ServerClockITest, TimeReflectsTheOffset) {
  TestServers s(1, ClockOptions());
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  ServerClock* clock = s.set.server(0)->clock();
  Conn conn(s.set.addresses()[0]);
  constexpr int64_t kSlackUs = 2 * kSecUs;
  int64_t rtt_us = 0;
  for (int64_t offset_us : {kDayUs, -3600 * kSecUs, int64_t{0}}) {
    clock->SetOffset(offset_us);
    int64_t got_us = ServerOffsetUs(&conn, &rtt_us);
    EXPECT_NEAR(static_cast<double>(got_us), static_cast<double>(offset_us),
                static_cast<double>(kSlackUs + rtt_us))
        << "offset " << offset_us << " µs";
    // The controller's view of the server's clock agrees.
    EXPECT_NEAR(static_cast<double>(clock->NowUs() - RealtimeUs()), static_cast<double>(offset_us),
                static_cast<double>(kSlackUs));
  }
}

TEST(ServerClockITest, RestartKeepsTheClockAndItsFaults) {
  TestServers s(1, ClockOptions());
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  EmbeddedServer* server = s.set.server(0);
  ServerClock* clock = server->clock();
  uint32_t attaches = clock->attach_count();
  clock->Jump(kDayUs);
  Status r = server->Restart();
  ASSERT_TRUE(r.ok()) << r.ToString();
  EXPECT_EQ(server->clock(), clock);
  EXPECT_GT(clock->attach_count(), attaches);  // the new process loaded the shim again
  Conn conn(server->address());
  int64_t rtt_us = 0;
  EXPECT_NEAR(static_cast<double>(ServerOffsetUs(&conn, &rtt_us)), static_cast<double>(kDayUs),
              static_cast<double>(2 * kSecUs + rtt_us));
}

TEST(ServerClockITest, MissingShimFailsStartNamingIt) {
  // Point the shim path at a file that does not exist: the clock cannot be created.
  const char* old = getenv("LOCKSTORM_CLOCK_SHIM");
  std::string saved = old ? old : "";
  setenv("LOCKSTORM_CLOCK_SHIM", "/nonexistent/liblockstorm_clock_shim.so", 1);
  TestServers s(1, ClockOptions());
  if (old) {
    setenv("LOCKSTORM_CLOCK_SHIM", saved.c_str(), 1);
  } else {
    unsetenv("LOCKSTORM_CLOCK_SHIM");
  }
  ASSERT_FALSE(s.status.ok());
  EXPECT_NE(s.status.message().find("/nonexistent/liblockstorm_clock_shim.so"), std::string::npos)
      << s.status.message();
  EXPECT_NE(s.status.message().find("redis-0"), std::string::npos) << s.status.message();
}

// The shim in a program other than redis: clock_gettime(CLOCK_REALTIME) and, only when asked,
// CLOCK_MONOTONIC. Python reads both through libc's clock_gettime.
TEST(ServerClockITest, ShimSkewsMonotonicOnlyWhenAsked) {
  if (access(kPython, X_OK) != 0) GTEST_SKIP() << kPython << " not available";
  std::unique_ptr<ServerClock> clock;
  ASSERT_TRUE(ServerClock::Create(&clock).ok());
  const std::vector<std::string> argv = {
      kPython, "-c",
      "import time; print(time.clock_gettime_ns(time.CLOCK_REALTIME), "
      "time.clock_gettime_ns(time.CLOCK_MONOTONIC))"};
  auto measure = [&](int64_t* realtime_offset_us, int64_t* monotonic_offset_us) {
    timespec mono{};
    int64_t real_before = RealtimeUs();
    std::string out = RunCapture(argv, clock->Env(), 10000);
    int64_t real_after = RealtimeUs();
    clock_gettime(CLOCK_MONOTONIC, &mono);
    long long rt_ns = 0, mono_ns = 0;
    ASSERT_EQ(sscanf(out.c_str(), "%lld %lld", &rt_ns, &mono_ns), 2) << out;
    *realtime_offset_us = rt_ns / 1000 - (real_before + real_after) / 2;
    // Local monotonic after the child exited: the child's real reading was at most the run's
    // duration before it.
    *monotonic_offset_us =
        mono_ns / 1000 - (static_cast<int64_t>(mono.tv_sec) * kSecUs + mono.tv_nsec / 1000);
  };
  constexpr int64_t kSlackUs = 5 * kSecUs;  // covers a slow python start-up
  clock->Jump(kDayUs);
  int64_t rt_us = 0, mono_us = 0;
  measure(&rt_us, &mono_us);
  EXPECT_NEAR(static_cast<double>(rt_us), static_cast<double>(kDayUs), kSlackUs);
  EXPECT_NEAR(static_cast<double>(mono_us), 0.0, kSlackUs) << "monotonic skewed by default";
  clock->SetSkewMonotonic(true);  // continues from the real reading: no step yet
  clock->Jump(kDayUs);
  measure(&rt_us, &mono_us);
  EXPECT_NEAR(static_cast<double>(rt_us), static_cast<double>(2 * kDayUs), kSlackUs);
  EXPECT_NEAR(static_cast<double>(mono_us), static_cast<double>(kDayUs), kSlackUs);
  EXPECT_EQ(clock->attach_count(), 2u);
}

// The shim must never deadlock redis (libfaketime does, with jemalloc): hundreds of keys with
// short TTLs keep the active expire cycle busy, rates and jumps change under it, a BGSAVE forks,
// and the server keeps answering PING within the timeout throughout.
TEST(ServerClockITest, ServerKeepsAnsweringUnderSkewWithActiveExpiry) {
  TestServers s(1, ClockOptions());
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  ServerClock* clock = s.set.server(0)->clock();
  ASSERT_TRUE(clock->SetRate(2.0).ok());
  Conn conn(s.set.addresses()[0], kTimeoutMs);
  constexpr int kBatch = 300;
  constexpr int64_t kRunMs = 3000;
  constexpr int kMinPings = 51;
  // Run for kRunMs and at least kMinPings rounds (a loaded machine may manage fewer in kRunMs),
  // bounded by kMaxRunMs.
  constexpr int64_t kMaxRunMs = 60000;
  int key = 0;
  auto add_batch = [&] {
    std::vector<std::vector<std::string>> cmds;
    for (int i = 0; i < kBatch; ++i, ++key) {
      cmds.push_back({"SET", "k" + std::to_string(key), "v", "PX", std::to_string(20 + key % 400)});
    }
    return conn.Pipeline(cmds);
  };
  ASSERT_TRUE(add_batch());
  ASSERT_TRUE(conn.Run({"BGSAVE"}).ok);
  const int64_t start_ms = SteadyMs();
  int pings = 0;
  for (int round = 0;
       (SteadyMs() - start_ms < kRunMs || pings < kMinPings) && SteadyMs() - start_ms < kMaxRunMs;
       ++round) {
    Reply r = conn.Run({"PING"});
    ASSERT_EQ(r.str, "PONG") << "after " << pings << " pings, " << SteadyMs() - start_ms << " ms";
    ++pings;
    if (round % 25 == 0) {
      ASSERT_TRUE(add_batch());
      ASSERT_TRUE(clock->SetRate(round % 50 == 0 ? 0.5 : 2.0).ok());
      clock->Jump(round % 2 == 0 ? 100000 : -50000);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // pacing, not synchronisation
  }
  ASSERT_TRUE(clock->SetRate(2.0).ok());
  EXPECT_GE(pings, kMinPings);
  // Nobody touches the keys: only the active expire cycle can empty the database.
  long long dbsize = -1;
  const int64_t deadline_ms = SteadyMs() + 20000;
  while (SteadyMs() < deadline_ms) {
    dbsize = Integer(&conn, {"DBSIZE"});
    if (dbsize == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(dbsize, 0) << "keys left after 20 s";
  EXPECT_GE(std::stoll("0" + InfoField(&conn, "stats", "expired_keys")), key);
  // The forked BGSAVE child ran under the shim too and finished.
  while (InfoField(&conn, "persistence", "rdb_bgsave_in_progress") != "0" &&
         SteadyMs() < deadline_ms + 10000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(InfoField(&conn, "persistence", "rdb_bgsave_in_progress"), "0");
  EXPECT_EQ(InfoField(&conn, "persistence", "rdb_last_bgsave_status"), "ok");
  EXPECT_EQ(conn.Run({"PING"}).str, "PONG");
}

}  // namespace
}  // namespace lockstorm
