// Integration tests of the exec protocol: real plug-ins (tests/plugins/), the shipped adapters
// (impls/exec/) and real redis-servers.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "harness/clock.h"
#include "harness/exec_lock.h"
#include "harness/transport.h"
#include "tests/test_util.h"

namespace lockstorm {
namespace {

using ::lockstorm::testing::TempDir;
using ::lockstorm::testing::TestServers;
using SteadyClock = std::chrono::steady_clock;

const std::string kSourceDir = LOCKSTORM_SOURCE_DIR;
const std::string kPython = "/usr/bin/python3";  // has redis-py (the pyenv python may not)

ExecSpec Spec(const std::string& flag) {
  ExecSpec spec;
  Status s = ParseExecImpl(flag, &spec);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return spec;
}

std::string Plugin(const std::string& file) { return kSourceDir + "/tests/plugins/" + file; }

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

size_t CountOccurrences(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

// Live (non-zombie) processes whose process group is `pgid`.
std::vector<pid_t> LiveMembersOfGroup(pid_t pgid) {
  std::vector<pid_t> out;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = readdir(proc)) {
    pid_t pid = static_cast<pid_t>(atoi(e->d_name));
    if (pid <= 0) continue;
    std::string stat = ReadFile("/proc/" + std::string(e->d_name) + "/stat");
    size_t close = stat.rfind(')');  // "pid (comm) state ppid pgrp ..."; comm may have spaces
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 1));
    char state = 0;
    long ppid = 0, pgrp = 0;
    rest >> state >> ppid >> pgrp;
    if (pgrp == pgid && state != 'Z' && state != 'X') out.push_back(pid);
  }
  closedir(proc);
  return out;
}

// Waits (bounded) until no live process is left in group `pgid`.
bool GroupGone(pid_t pgid, int64_t timeout_ms = 5000) {
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(timeout_ms);
  while (!LiveMembersOfGroup(pgid).empty()) {
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Waits (bounded) until the file at `path` contains `text`.
bool FileContains(const std::string& path, const std::string& text, int64_t timeout_ms = 10000) {
  auto deadline = SteadyClock::now() + std::chrono::milliseconds(timeout_ms);
  while (ReadFile(path).find(text) == std::string::npos) {
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

ExecLock* AsExec(const std::unique_ptr<Lock>& lock) {
  auto* exec = dynamic_cast<ExecLock*>(lock.get());
  EXPECT_NE(exec, nullptr);
  return exec;
}

// Addresses for plug-ins that never talk to Redis.
const std::vector<ServerAddress> kNoServers = {{"127.0.0.1", 1}};

// --- proto_lock.py: a correct lock, under contention ------------------------------------

TEST(ExecLockTest, ProtoLockIsMutuallyExclusiveUnderContention) {
  TestServers servers(1);
  ASSERT_TRUE(servers.status.ok()) << servers.status.ToString();
  TempDir dir;
  const ExecSpec spec = Spec("proto=exec:" + kPython + " " + Plugin("proto_lock.py"));
  constexpr int kThreads = 8;
  constexpr int kTargetAcquires = 4;   // per thread
  constexpr int kMaxIterations = 100;  // per thread: the bound on the loop
  constexpr int64_t kTtlMs = 10000;    // holds are ~1 ms: always within validity
  constexpr int64_t kWaitMs = 1000;

  struct Hold {
    int64_t acquired_us;  // completion of the acquire
    int64_t fence;
  };
  std::atomic<int> holders{0};
  std::atomic<int> overlaps{0};
  std::vector<int> acquired(kThreads, 0);
  std::vector<std::vector<Hold>> holds(kThreads);
  std::vector<std::vector<std::string>> problems(kThreads);

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto lock = NewExecLock(spec, "c" + std::to_string(t), 1000 + t, servers.set.addresses(),
                              dir.path() + "/proto.stderr");
      for (int i = 0; i < kMaxIterations && acquired[t] < kTargetAcquires; ++i) {
        AcquireResult a = lock->Acquire("contended", kTtlMs, kWaitMs);
        if (a.outcome == Outcome::kUnknown) problems[t].push_back("acquire: " + a.error);
        if (a.outcome != Outcome::kOk) continue;
        const int64_t now_us = RealClock()->NowUs();
        const int64_t valid_until_us = now_us + a.lease.valid_ms * 1000;
        if (holders.fetch_add(1) != 0 && RealClock()->NowUs() < valid_until_us) {
          overlaps.fetch_add(1);
        }
        ++acquired[t];
        holds[t].push_back({now_us, a.lease.fence.value_or(-1)});
        if (a.lease.valid_ms <= 0 || a.lease.valid_ms > kTtlMs) {
          problems[t].push_back("valid_ms " + std::to_string(a.lease.valid_ms));
        }
        RealClock()->SleepUs(1000);  // the hold itself (not synchronization)
        holders.fetch_sub(1);
        ReleaseResult r = lock->Release(a.lease);
        if (r.outcome != Outcome::kOk) problems[t].push_back("release: " + r.error);
      }
      for (const auto& e : lock->DrainInfraErrors()) problems[t].push_back("infra: " + e);
    });
  }
  for (auto& th : threads) th.join();

  EXPECT_EQ(overlaps.load(), 0) << "two holders within validity at once";
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_GE(acquired[t], 1) << "client c" << t << " never acquired";
    for (const auto& p : problems[t]) ADD_FAILURE() << "c" << t << ": " << p;
  }
  // Holds never overlapped, so acquisition order is fence order: strictly increasing.
  std::vector<Hold> all;
  for (const auto& h : holds) all.insert(all.end(), h.begin(), h.end());
  std::sort(all.begin(), all.end(),
            [](const Hold& a, const Hold& b) { return a.acquired_us < b.acquired_us; });
  ASSERT_FALSE(all.empty());
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_LT(all[i - 1].fence, all[i].fence) << "hold " << i;
  }
  EXPECT_GT(all.front().fence, 0);
}

// --- misbehaving plug-ins ---------------------------------------------------------------

TEST(ExecLockTest, HungChildIsKilledWithItsGroupAndReplaced) {
  TempDir dir;
  ExecSpec spec = Spec("sleepy=exec:" + Plugin("sleeper.sh"));
  // deadline = ttl 100 + wait 0 + 2000: ample time for the plug-in to log the request (checked
  // below) before it is killed, even when a loaded machine runs it late.
  spec.deadline_margin_ms = 2000;
  auto lock = NewExecLock(spec, "c1", 1, kNoServers, dir.path() + "/sleeper.stderr");
  ExecLock* exec = AsExec(lock);

  AcquireResult a = lock->Acquire("K", 100, 0);
  EXPECT_EQ(a.outcome, Outcome::kUnknown);
  EXPECT_NE(a.error.find("sleepy"), std::string::npos) << a.error;
  auto errors = lock->DrainInfraErrors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("sleepy"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("no answer to acquire"), std::string::npos) << errors[0];
  EXPECT_TRUE(lock->DrainInfraErrors().empty()) << "drained twice";

  // The plug-in really got the request (it is hung, not absent)...
  EXPECT_TRUE(FileContains(dir.path() + "/sleeper.stderr", "waiting forever on: {\"id\":1"));
  // ...and its whole group, the `sleep` grandchild included, is gone.
  const pid_t first = exec->last_child_pid();
  ASSERT_GT(first, 0);
  EXPECT_EQ(exec->child_pid(), -1);
  EXPECT_TRUE(GroupGone(first)) << "left behind in group " << first;

  // The next operation uses a fresh child (which hangs too).
  ExtendResult e = lock->Extend(Lease{"K", "t", std::nullopt, 0}, 100);
  EXPECT_EQ(e.outcome, Outcome::kUnknown);
  EXPECT_EQ(exec->children_started(), 2);
  EXPECT_NE(exec->last_child_pid(), first);
  errors = lock->DrainInfraErrors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("no answer to extend"), std::string::npos) << errors[0];
  EXPECT_TRUE(GroupGone(exec->last_child_pid()));
}

TEST(ExecLockTest, GarbageIsReportedWithImplNameAndLine) {
  TempDir dir;
  auto lock = NewExecLock(Spec("junky=exec:" + Plugin("garbage.sh")), "c1", 1, kNoServers,
                          dir.path() + "/garbage.stderr");
  ExecLock* exec = AsExec(lock);
  AcquireResult a = lock->Acquire("K", 1000, 0);
  EXPECT_EQ(a.outcome, Outcome::kUnknown);
  auto errors = lock->DrainInfraErrors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("junky"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("this is not json"), std::string::npos) << errors[0];
  EXPECT_EQ(exec->child_pid(), -1) << "the garbage writer must be killed";
  EXPECT_TRUE(GroupGone(exec->last_child_pid()));

  ReleaseResult r = lock->Release(Lease{"K", "t", std::nullopt, 0});
  EXPECT_EQ(r.outcome, Outcome::kUnknown);
  EXPECT_EQ(exec->children_started(), 2);
  EXPECT_EQ(lock->DrainInfraErrors().size(), 1u);
}

TEST(ExecLockTest, CrashedChildIsReportedAndReplacedByAFreshOne) {
  TempDir dir;
  const std::string stderr_path = dir.path() + "/crasher.stderr";
  auto lock = NewExecLock(Spec("crashy=exec:" + Plugin("crasher.sh")), "c7", 4242,
                          {{"127.0.0.1", 7001}, {"127.0.0.1", 7002}}, stderr_path);
  ExecLock* exec = AsExec(lock);

  AcquireResult a = lock->Acquire("K", 1000, 0);
  EXPECT_EQ(a.outcome, Outcome::kUnknown);
  auto errors = lock->DrainInfraErrors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("crashy"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("exit code 3"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find(stderr_path), std::string::npos) << errors[0];
  const pid_t first = exec->last_child_pid();

  // The next op: a fresh child, a new hello, a definite answer.
  ReleaseResult r = lock->Release(Lease{"K", "t", std::nullopt, 0});
  EXPECT_EQ(r.outcome, Outcome::kFail) << r.error;
  EXPECT_EQ(exec->children_started(), 2);
  EXPECT_NE(exec->last_child_pid(), first);
  EXPECT_TRUE(lock->DrainInfraErrors().empty());

  // stderr is appended to, and each child saw the environment of the spec.
  const std::string log = ReadFile(stderr_path);
  EXPECT_EQ(CountOccurrences(log,
                             "crasher: started as client c7 seed 4242 servers "
                             "127.0.0.1:7001,127.0.0.1:7002\n"),
            2u)
      << log;
}

TEST(ExecLockTest, CrashWakesAWaitingOperationAndKillsTheChild) {
  TempDir dir;
  const std::string stderr_path = dir.path() + "/sleeper.stderr";
  ExecSpec spec = Spec("sleepy=exec:" + Plugin("sleeper.sh"));
  spec.deadline_margin_ms = 120000;  // only Crash() can end the acquire early
  auto lock = NewExecLock(spec, "c1", 1, kNoServers, stderr_path);
  ExecLock* exec = AsExec(lock);

  auto pending = std::async(std::launch::async, [&] { return lock->Acquire("K", 1000, 0); });
  ASSERT_TRUE(FileContains(stderr_path, "waiting forever on:")) << "request never arrived";
  const pid_t child = exec->last_child_pid();
  lock->Crash();
  ASSERT_EQ(pending.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  AcquireResult a = pending.get();
  EXPECT_EQ(a.outcome, Outcome::kUnknown);
  EXPECT_NE(a.error.find("crashed"), std::string::npos) << a.error;
  EXPECT_TRUE(lock->DrainInfraErrors().empty()) << "a crash is not the plug-in's fault";
  EXPECT_TRUE(GroupGone(child));
  // After Crash() nothing is started again.
  EXPECT_EQ(lock->Acquire("K", 1000, 0).outcome, Outcome::kUnknown);
  EXPECT_EQ(exec->children_started(), 1);
}

TEST(ExecLockTest, CommandThatCannotRunIsAnInfraErrorNotAHang) {
  TempDir dir;
  auto lock = NewExecLock(Spec("ghost=exec:/nonexistent/lockstorm-plugin"), "c1", 1, kNoServers,
                          dir.path() + "/ghost.stderr");
  AcquireResult a = lock->Acquire("K", 1000, 0);
  EXPECT_EQ(a.outcome, Outcome::kUnknown);
  auto errors = lock->DrainInfraErrors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("ghost"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("exit code 127"), std::string::npos) << errors[0];
  EXPECT_NE(ReadFile(dir.path() + "/ghost.stderr").find("lockstorm-plugin"), std::string::npos);
}

TEST(ExecLockTest, ErrorResponsesDefaultsAndMissingOps) {
  // A scripted plug-in: its answers are queued before the requests arrive.
  const std::string script =
      R"(printf '%s\n' '{"id":0,"name":"scripted","ops":["acquire","release"]}' )"
      R"('{"id":1,"acquired":true,"lease":"L1"}' '{"id":2,"error":"connection refused"}'; )"
      R"(exec cat >/dev/null)";
  TempDir dir;
  auto lock = NewExecLock(Spec("scripted=exec:" + script), "c1", 1, kNoServers,
                          dir.path() + "/scripted.stderr");
  ExecLock* exec = AsExec(lock);

  // A long ttl: valid_ms > 0 must not depend on the round trip staying under 1 s.
  AcquireResult a = lock->Acquire("K", 10000, 0);
  ASSERT_EQ(a.outcome, Outcome::kOk) << a.error;
  EXPECT_EQ(a.lease.token, "L1");
  EXPECT_EQ(a.lease.key, "K");
  EXPECT_FALSE(a.lease.fence.has_value());
  // No valid_ms in the answer: ttl minus the measured round trip.
  EXPECT_GT(a.lease.valid_ms, 0);
  EXPECT_LE(a.lease.valid_ms, 9999);

  ReleaseResult r = lock->Release(a.lease);
  EXPECT_EQ(r.outcome, Outcome::kUnknown);
  EXPECT_NE(r.error.find("connection refused"), std::string::npos) << r.error;

  ExtendResult e = lock->Extend(a.lease, 1000);  // not in "ops": never sent
  EXPECT_EQ(e.outcome, Outcome::kFail);
  EXPECT_NE(e.error.find("does not support extend"), std::string::npos) << e.error;

  EXPECT_TRUE(lock->DrainInfraErrors().empty()) << "the lock's own errors are not infra errors";
  EXPECT_EQ(exec->children_started(), 1);
  EXPECT_GT(exec->child_pid(), 0);
}

TEST(ExecLockTest, PausedChildMissesItsDeadlineAndIsReplaced) {
  TestServers servers(1);
  ASSERT_TRUE(servers.status.ok()) << servers.status.ToString();
  TempDir dir;
  ExecSpec spec = Spec("proto=exec:" + kPython + " " + Plugin("proto_lock.py"));
  spec.deadline_margin_ms = 300;  // a release's whole deadline
  auto lock = NewExecLock(spec, "c1", 1, servers.set.addresses(), dir.path() + "/p.stderr");
  ExecLock* exec = AsExec(lock);

  // The key must outlive the release deadline plus the replacement child's start-up (a python
  // with redis-py, slow on a loaded machine) for the second acquire to find it held.
  AcquireResult a = lock->Acquire("paused-key", 60000, 0);
  ASSERT_EQ(a.outcome, Outcome::kOk) << a.error;
  const pid_t first = exec->child_pid();
  exec->PauseChild();
  ReleaseResult r = lock->Release(a.lease);
  EXPECT_EQ(r.outcome, Outcome::kUnknown);
  auto errors = lock->DrainInfraErrors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("no answer to release"), std::string::npos) << errors[0];
  EXPECT_TRUE(GroupGone(first)) << "a stopped child must be killed too";

  // The release never ran: the key is still held; a fresh, running child says so.
  AcquireResult again = lock->Acquire("paused-key", 5000, 0);
  EXPECT_EQ(again.outcome, Outcome::kFail) << again.error;
  EXPECT_EQ(exec->children_started(), 2);
  EXPECT_TRUE(lock->DrainInfraErrors().empty());
}

// The nemesis' client faults on a plug-in: Freeze (pause-holder) SIGSTOPs the child's group
// and thaws it; Crash (crash-client) SIGKILLs it and the key stays held until its TTL.
TEST(ExecLockTest, FreezeStopsTheChildAndCrashKillsIt) {
  TestServers servers(1);
  ASSERT_TRUE(servers.status.ok()) << servers.status.ToString();
  TempDir dir;
  auto lock = NewExecLock(Spec("proto=exec:" + kPython + " " + Plugin("proto_lock.py")), "c1", 1,
                          servers.set.addresses(), dir.path() + "/p.stderr");
  ExecLock* exec = AsExec(lock);
  AcquireResult a = lock->Acquire("frozen-key", 60000, 0);
  ASSERT_EQ(a.outcome, Outcome::kOk) << a.error;
  const pid_t child = exec->child_pid();
  auto state = [child] {
    std::ifstream f("/proc/" + std::to_string(child) + "/stat");
    std::string line;
    std::getline(f, line);
    const size_t rp = line.rfind(')');
    return rp == std::string::npos || rp + 2 >= line.size() ? '?' : line[rp + 2];
  };
  auto await_state = [&](bool stopped) {  // the signal is delivered asynchronously
    for (int i = 0; i < 2000; ++i) {
      if ((state() == 'T') == stopped) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  };
  lock->Freeze(true);
  EXPECT_TRUE(await_state(true)) << "state " << state();
  lock->Freeze(false);
  EXPECT_TRUE(await_state(false)) << "state " << state();
  EXPECT_EQ(lock->Release(a.lease).outcome, Outcome::kOk);  // thawed: it answers again

  AcquireResult b = lock->Acquire("crashed-key", 60000, 0);
  ASSERT_EQ(b.outcome, Outcome::kOk) << b.error;
  const pid_t second = exec->child_pid();
  lock->Crash();
  EXPECT_TRUE(GroupGone(second));
  auto direct = NewRedisTransport(servers.set.addresses());
  EXPECT_EQ(direct->Call(0, {"GET", "crashed-key"}, 2000000).str, b.lease.token);  // not released
}

// --- the shipped adapters ---------------------------------------------------------------

// Runs acquire / contended acquire / extend / release / re-release through two clients and
// checks the key in Redis (on every node in `check_nodes`) holds the lease while held.
void ExerciseAdapter(const ExecSpec& spec, const std::vector<ServerAddress>& servers,
                     int check_nodes, const std::string& stderr_path) {
  auto c1 = NewExecLock(spec, "c1", 1, servers, stderr_path);
  auto c2 = NewExecLock(spec, "c2", 2, servers, stderr_path);
  // Start both plug-ins now: a child started lazily between c1's acquire and its extend (c2's,
  // slow on a loaded machine) could outlast c1's 5 s TTL.
  for (auto* lock : {c1.get(), c2.get()}) {
    Status s = lock->Prepare();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  auto redis = NewRedisTransport(servers);
  const std::string key = "adapter-key";

  AcquireResult a = c1->Acquire(key, 5000, 0);
  ASSERT_EQ(a.outcome, Outcome::kOk) << a.error;
  EXPECT_FALSE(a.lease.token.empty());
  EXPECT_GT(a.lease.valid_ms, 0);
  EXPECT_LE(a.lease.valid_ms, 5000);
  // A multi-node lock counts with a quorum: that many nodes must hold the key (a node whose
  // reply came late may not).
  const int quorum = check_nodes / 2 + 1;
  int holding = 0;
  for (int n = 0; n < check_nodes; ++n) {
    Reply v = redis->Call(n, {"PTTL", key}, 2000000);
    EXPECT_EQ(v.type, Reply::Type::kInteger) << v.ToString();
    if (v.integer > 0) ++holding;
  }
  EXPECT_GE(holding, quorum) << "the key is held on too few nodes";

  AcquireResult b = c2->Acquire(key, 5000, 0);
  EXPECT_EQ(b.outcome, Outcome::kFail) << b.error;
  AcquireResult b_wait = c2->Acquire(key, 5000, 150);  // the retrying path
  EXPECT_EQ(b_wait.outcome, Outcome::kFail) << b_wait.error;

  ExtendResult e = c1->Extend(a.lease, 20000);
  ASSERT_EQ(e.outcome, Outcome::kOk) << e.error;
  EXPECT_GT(e.valid_ms, 5000);
  int extended = 0;
  for (int n = 0; n < check_nodes; ++n) {
    Reply v = redis->Call(n, {"PTTL", key}, 2000000);
    if (v.integer > 5000) ++extended;
  }
  EXPECT_GE(extended, quorum) << "extend reached too few nodes";
  EXPECT_EQ(c2->Extend(a.lease, 20000).outcome, Outcome::kUnknown)
      << "c2 never had this lease object";

  ReleaseResult r = c1->Release(a.lease);
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
  int freed = 0;
  for (int n = 0; n < check_nodes; ++n) {
    if (redis->Call(n, {"EXISTS", key}, 2000000).is_integer(0)) ++freed;
  }
  EXPECT_GE(freed, quorum) << "release freed too few nodes";

  AcquireResult b2 = c2->Acquire(key, 5000, 0);
  ASSERT_EQ(b2.outcome, Outcome::kOk) << b2.error;
  EXPECT_NE(b2.lease.token, a.lease.token);
  // A lease whose key vanished (as on expiry): extend and release are a definite "no".
  AcquireResult a2 = c1->Acquire(key + "-2", 5000, 0);
  ASSERT_EQ(a2.outcome, Outcome::kOk) << a2.error;
  for (int n = 0; n < check_nodes; ++n) redis->Call(n, {"DEL", key + "-2"}, 2000000);
  EXPECT_EQ(c1->Extend(a2.lease, 5000).outcome, Outcome::kFail);
  EXPECT_EQ(c1->Release(a2.lease).outcome, Outcome::kFail);
  EXPECT_EQ(c2->Release(b2.lease).outcome, Outcome::kOk);

  for (auto* lock : {c1.get(), c2.get()}) {
    for (const auto& err : lock->DrainInfraErrors()) ADD_FAILURE() << "infra: " << err;
  }
}

TEST(ExecLockTest, RedisPyLockAdapter) {
  TestServers servers(1);
  ASSERT_TRUE(servers.status.ok()) << servers.status.ToString();
  TempDir dir;
  const std::string stderr_path = dir.path() + "/redis-py.stderr";
  ExerciseAdapter(
      Spec("redis-py=exec:" + kPython + " " + kSourceDir + "/impls/exec/python/redis_py_lock.py"),
      servers.set.addresses(), 1, stderr_path);
  EXPECT_EQ(ReadFile(stderr_path), "") << "the adapter complained";
}

TEST(ExecLockTest, NodeRedlockAdapter) {
  const std::string node_dir = kSourceDir + "/impls/exec/node";
  if (!std::filesystem::exists(node_dir + "/node_modules/redlock/package.json") ||
      !std::filesystem::exists(node_dir + "/node_modules/ioredis/package.json")) {
    GTEST_SKIP() << node_dir << "/node_modules is missing: run " << node_dir << "/install.sh";
  }
  TestServers servers(3);
  ASSERT_TRUE(servers.status.ok()) << servers.status.ToString();
  TempDir dir;
  const std::string stderr_path = dir.path() + "/node-redlock.stderr";
  ExerciseAdapter(Spec("node-redlock=exec:node " + node_dir + "/redlock_adapter.js"),
                  servers.set.addresses(), 3, stderr_path);
  EXPECT_EQ(ReadFile(stderr_path), "") << "the adapter complained";
}

}  // namespace
}  // namespace lockstorm
