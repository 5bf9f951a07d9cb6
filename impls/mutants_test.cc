// Unit tests of the mutant corpus (impls/mutants.cc): the table's shape, and per mutant the
// one bug it plants, shown mechanically against an in-memory Redis (tests/fake_redis.h) or a
// scripted transport (tests/fake_transport.h) — each next to its correct base, which does not
// have it. Time is a manual clock (or, for the watchdog's thread, a gated virtual clock):
// nothing here sleeps for real.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "impls/builtin.h"
#include "impls/common.h"
#include "impls/registry.h"
#include "tests/fake_redis.h"
#include "tests/fake_transport.h"

namespace lockstorm {
namespace {

using testing::FakeRedis;
using testing::Int;
using testing::ManualClock;
using testing::Nil;
using testing::Ok;
using testing::RecordedCall;
using testing::ScriptedTransport;
using testing::Tmo;

// A mutant or a built-in lock by name; throws (failing the test) if there is none.
std::unique_ptr<Lock> MakeLock(const std::string& name, const LockEnv& env) {
  if (const MutantInfo* m = FindMutant(name)) return m->impl.make(env);
  if (const ImplInfo* b = FindBuiltinImpl(name)) return b->make(env);
  throw std::invalid_argument("no lock named " + name);
}

LockEnv EnvOf(Transport* transport, Clock* clock, uint64_t seed, LockObserver* observer = nullptr) {
  LockEnv env;
  env.transport = transport;
  env.clock = clock;
  env.seed = seed;
  env.client_id = "c" + std::to_string(seed);
  env.observer = observer;
  return env;
}

// ---------------------------------------------------------------------------------------------
// The table.

TEST(MutantTableTest, HasSixteenUniquelyNamedEntriesFoundByName) {
  ASSERT_EQ(Mutants().size(), 16u);
  std::set<std::string> names;
  for (const MutantInfo& m : Mutants()) {
    EXPECT_TRUE(names.insert(m.impl.name).second) << "duplicate " << m.impl.name;
    EXPECT_EQ(FindMutant(m.impl.name), &m);
  }
  EXPECT_EQ(FindMutant("token-lua"), nullptr);
  EXPECT_EQ(FindMutant("no-such-mutant"), nullptr);
}

TEST(MutantTableTest, OnlySetnxExpireSharesANameWithABuiltinAndItsFactory) {
  using Factory = std::unique_ptr<Lock> (*)(const LockEnv&);
  for (const MutantInfo& m : Mutants()) {
    const ImplInfo* builtin = FindBuiltinImpl(m.impl.name);
    if (m.impl.name != "setnx-expire") {
      EXPECT_EQ(builtin, nullptr) << m.impl.name << " clashes with a built-in lock";
      continue;
    }
    ASSERT_NE(builtin, nullptr);
    const Factory* mine = m.impl.make.target<Factory>();
    const Factory* theirs = builtin->make.target<Factory>();
    ASSERT_NE(mine, nullptr);
    ASSERT_NE(theirs, nullptr);
    EXPECT_EQ(*mine, *theirs);
    EXPECT_EQ(*mine, &NewSetnxExpireLock);
  }
}

TEST(MutantTableTest, EveryEntryIsCompleteAndDerivedFromItsBase) {
  for (const MutantInfo& m : Mutants()) {
    SCOPED_TRACE(m.impl.name);
    EXPECT_FALSE(m.impl.description.empty());
    EXPECT_FALSE(m.impl.weakness.empty());
    EXPECT_FALSE(m.pattern.empty());
    EXPECT_TRUE(static_cast<bool>(m.impl.make));
    const ImplInfo* base = FindBuiltinImpl(m.base);
    ASSERT_NE(base, nullptr) << "base " << m.base << " is not a built-in lock";
    EXPECT_EQ(m.impl.min_nodes, base->min_nodes);
    EXPECT_EQ(m.impl.multi_node, base->multi_node);
    ASSERT_FALSE(m.exposed_by.empty());
    std::set<std::string> scenarios;
    for (const auto& [scenario, expect] : m.exposed_by) {
      EXPECT_TRUE(expect == "unsafe" || expect == "liveness") << scenario << ": " << expect;
      scenarios.insert(scenario);
    }
    EXPECT_EQ(m.impl.expected_unsafe, scenarios);
  }
}

TEST(MutantTableTest, BasesAndExposuresAreTheCorpusOfTheIssue) {
  using Exposure = std::map<std::string, std::string>;
  const std::map<std::string, std::pair<std::string, Exposure>> want = {
      {"del-release", {"token-lua", {{"contention", "unsafe"}}}},
      {"no-ttl", {"token-lua", {{"contention", "liveness"}, {"client-crash", "liveness"}}}},
      {"setnx-expire", {"token-lua", {{"kill-mid-acquire", "liveness"}}}},
      {"extend-no-owner", {"token-lua", {{"lease-edge", "unsafe"}}}},
      {"extend-resurrect", {"token-lua", {{"lease-edge", "unsafe"}}}},
      {"pexpire-zero", {"token-lua", {{"lease-edge", "unsafe"}}}},
      {"ttl-seconds", {"token-lua", {{"lease-edge", "unsafe"}}}},
      {"no-elapsed-check", {"redlock", {{"latency", "unsafe"}}}},
      {"no-drift", {"redlock", {{"clock-drift-small", "unsafe"}}}},
      {"bad-quorum", {"redlock", {{"contention", "unsafe"}}}},
      {"retry-keeps-partials", {"redlock", {{"contention", "unsafe"}, {"latency", "unsafe"}}}},
      {"cleanup-known-nodes-only", {"redlock", {{"lost-replies-try-once", "unsafe"}}}},
      {"silent-watchdog-death", {"watchdog", {{"overrun", "unsafe"}}}},
      {"wallclock-deadline", {"token-lua", {{"wall-clock-steps", "unsafe"}}}},
      {"token-dropped-before-release", {"token-lua", {{"contention", "liveness"}}}},
      {"get-then-set", {"token-lua", {{"contention", "unsafe"}}}},
  };
  ASSERT_EQ(Mutants().size(), want.size());
  for (const MutantInfo& m : Mutants()) {
    auto it = want.find(m.impl.name);
    ASSERT_NE(it, want.end()) << m.impl.name;
    EXPECT_EQ(m.base, it->second.first) << m.impl.name;
    EXPECT_EQ(m.exposed_by, it->second.second) << m.impl.name;
  }
}

// ---------------------------------------------------------------------------------------------
// Single-node mutants, against a FakeRedis on a manual clock.

class MutantSingleNodeTest : public ::testing::Test {
 protected:
  static constexpr int64_t kTtlMs = 1000;

  // A lock and what its acquire of "k" gave.
  struct Held {
    std::unique_ptr<Lock> lock;
    AcquireResult acquired;
  };

  std::unique_ptr<Lock> New(const std::string& name, uint64_t seed,
                            LockObserver* observer = nullptr) {
    return MakeLock(name, EnvOf(&transport_, &clock_, seed, observer));
  }
  // Empties "k", then lock `name` (seed 1) acquires it for ttl_ms, with no retries.
  Held AcquireFresh(const std::string& name, int64_t ttl_ms, LockObserver* observer = nullptr) {
    Redis({"DEL", "k"});
    Held held{New(name, 1, observer), {}};
    held.acquired = held.lock->Acquire("k", ttl_ms, 0);
    return held;
  }
  // Another client, with token-lua (seed 2), tries "k" once.
  AcquireResult OtherAcquires(int64_t ttl_ms) {
    return New("token-lua", 2)->Acquire("k", ttl_ms, 0);
  }
  Reply Redis(const Command& cmd) { return redis_.Execute(cmd); }
  void AdvanceMs(int64_t ms) { clock_.now_us += ms * 1000; }
  // The value at "k", or "" if there is none.
  std::string HolderOfK() {
    Reply r = Redis({"GET", "k"});
    return r.type == Reply::Type::kString ? r.str : "";
  }
  int64_t PttlOfK() { return Redis({"PTTL", "k"}).integer; }

  ManualClock clock_;
  FakeRedis redis_{&clock_};
  testing::FakeTransport transport_{&redis_};
};

TEST_F(MutantSingleNodeTest, DelReleaseDeletesTheNextHoldersLock) {
  for (const std::string name : {"del-release", "token-lua"}) {
    SCOPED_TRACE(name);
    Held a = AcquireFresh(name, 100);
    ASSERT_EQ(a.acquired.outcome, Outcome::kOk);
    AdvanceMs(150);  // a's lease expired; b takes the lock
    AcquireResult b = OtherAcquires(kTtlMs);
    ASSERT_EQ(b.outcome, Outcome::kOk);
    const Outcome released = a.lock->Release(a.acquired.lease).outcome;
    if (name == "del-release") {
      EXPECT_EQ(released, Outcome::kOk);  // it deleted b's key
      EXPECT_EQ(HolderOfK(), "");
    } else {
      EXPECT_EQ(released, Outcome::kFail);
      EXPECT_EQ(HolderOfK(), b.lease.token);
    }
  }
}

TEST_F(MutantSingleNodeTest, NoTtlLeavesALockThatNeverExpires) {
  for (const std::string name : {"no-ttl", "token-lua"}) {
    SCOPED_TRACE(name);
    Held a = AcquireFresh(name, kTtlMs);  // the holder never releases
    ASSERT_EQ(a.acquired.outcome, Outcome::kOk);
    EXPECT_EQ(a.acquired.lease.valid_ms, kTtlMs);
    EXPECT_EQ(PttlOfK(), name == "no-ttl" ? -1 : kTtlMs);
    AdvanceMs(10 * kTtlMs);
    if (name == "no-ttl") {
      EXPECT_EQ(HolderOfK(), a.acquired.lease.token);
      EXPECT_EQ(OtherAcquires(kTtlMs).outcome, Outcome::kFail);
    } else {
      EXPECT_EQ(OtherAcquires(kTtlMs).outcome, Outcome::kOk);
    }
  }
}

// Says yes at every crash point, and counts them.
class CrashEverywhere : public LockObserver {
 public:
  void OnBackgroundExtend(const Lease&, const ExtendResult&, int64_t) override {}
  bool CrashPoint(const char*) override {
    ++crash_points;
    return true;
  }
  int crash_points = 0;
};

TEST_F(MutantSingleNodeTest, SetnxExpireCrashBetweenItsCommandsLeavesAKeyWithoutTtl) {
  CrashEverywhere crash;
  Held a = AcquireFresh("setnx-expire", kTtlMs, &crash);
  EXPECT_EQ(a.acquired.outcome, Outcome::kUnknown);
  EXPECT_EQ(crash.crash_points, 1);
  EXPECT_EQ(HolderOfK(), a.acquired.lease.token);
  EXPECT_EQ(PttlOfK(), -1);

  // token-lua takes the lock in one command: no crash point, the key has its TTL.
  CrashEverywhere crash_base;
  Held base = AcquireFresh("token-lua", kTtlMs, &crash_base);
  EXPECT_EQ(base.acquired.outcome, Outcome::kOk);
  EXPECT_EQ(crash_base.crash_points, 0);
  EXPECT_EQ(PttlOfK(), kTtlMs);
}

TEST_F(MutantSingleNodeTest, ExtendNoOwnerProlongsTheNextHoldersLock) {
  for (const std::string name : {"extend-no-owner", "token-lua"}) {
    SCOPED_TRACE(name);
    Held a = AcquireFresh(name, 100);
    ASSERT_EQ(a.acquired.outcome, Outcome::kOk);
    AdvanceMs(150);
    AcquireResult b = OtherAcquires(100);
    ASSERT_EQ(b.outcome, Outcome::kOk);
    AdvanceMs(50);
    const ExtendResult e = a.lock->Extend(a.acquired.lease, 5000);
    EXPECT_EQ(HolderOfK(), b.lease.token);
    if (name == "extend-no-owner") {
      EXPECT_EQ(e.outcome, Outcome::kOk);
      EXPECT_EQ(e.valid_ms, 5000);
      EXPECT_EQ(PttlOfK(), 5000);  // b's lock now lives as long as a believes its own does
    } else {
      EXPECT_EQ(e.outcome, Outcome::kFail);
      EXPECT_EQ(PttlOfK(), 50);
    }
  }
}

TEST_F(MutantSingleNodeTest, ExtendResurrectRecreatesAnExpiredLock) {
  for (const std::string name : {"extend-resurrect", "token-lua"}) {
    SCOPED_TRACE(name);
    Held a = AcquireFresh(name, 100);
    ASSERT_EQ(a.acquired.outcome, Outcome::kOk);
    AdvanceMs(150);  // expired; meanwhile b holds the lock and lets it go
    auto b = New("token-lua", 2);
    AcquireResult rb = b->Acquire("k", 100, 0);
    ASSERT_EQ(rb.outcome, Outcome::kOk);
    ASSERT_EQ(b->Release(rb.lease).outcome, Outcome::kOk);
    const ExtendResult e = a.lock->Extend(a.acquired.lease, kTtlMs);
    if (name == "extend-resurrect") {
      EXPECT_EQ(e.outcome, Outcome::kOk);  // as if a had held the lock all along
      EXPECT_EQ(HolderOfK(), a.acquired.lease.token);
      EXPECT_EQ(PttlOfK(), kTtlMs);
    } else {
      EXPECT_EQ(e.outcome, Outcome::kFail);
      EXPECT_EQ(HolderOfK(), "");
    }
  }
  // The mutant still refuses while someone else holds the key.
  Redis({"SET", "k", "someone-else", "PX", "1000"});
  Lease mine;
  mine.key = "k";
  mine.token = "mine";
  EXPECT_EQ(New("extend-resurrect", 3)->Extend(mine, kTtlMs).outcome, Outcome::kFail);
  EXPECT_EQ(HolderOfK(), "someone-else");
}

TEST_F(MutantSingleNodeTest, PexpireZeroLateExtendDeletesTheKeyYetReportsOk) {
  for (const std::string name : {"pexpire-zero", "token-lua"}) {
    SCOPED_TRACE(name);
    Held a = AcquireFresh(name, 300);
    ASSERT_EQ(a.acquired.outcome, Outcome::kOk);
    AdvanceMs(200);
    const ExtendResult e = a.lock->Extend(a.acquired.lease, 100);  // mutant: 100 - 200 ms
    EXPECT_EQ(e.outcome, Outcome::kOk);
    EXPECT_EQ(e.valid_ms, 100);
    if (name == "pexpire-zero") {
      EXPECT_EQ(HolderOfK(), "");  // deleted by PEXPIRE -100, which answered 1
      EXPECT_EQ(OtherAcquires(100).outcome, Outcome::kOk);
    } else {
      EXPECT_EQ(HolderOfK(), a.acquired.lease.token);
      EXPECT_EQ(PttlOfK(), 100);
    }
  }
}

TEST_F(MutantSingleNodeTest, PexpireZeroExtendDoesNotProlongTheKey) {
  for (const std::string name : {"pexpire-zero", "token-lua"}) {
    SCOPED_TRACE(name);
    Held a = AcquireFresh(name, kTtlMs);
    ASSERT_EQ(a.acquired.outcome, Outcome::kOk);
    AdvanceMs(600);
    const ExtendResult e = a.lock->Extend(a.acquired.lease, kTtlMs);
    ASSERT_EQ(e.outcome, Outcome::kOk);
    EXPECT_EQ(e.valid_ms, kTtlMs);
    EXPECT_EQ(PttlOfK(), name == "pexpire-zero" ? 400 : kTtlMs);
  }
}

TEST_F(MutantSingleNodeTest, TtlSecondsKeyExpiresBeforeTheReportedValidity) {
  constexpr int64_t kTtl = 1500;
  for (const std::string name : {"ttl-seconds", "token-lua"}) {
    SCOPED_TRACE(name);
    const int64_t redis_ttl_ms = name == "ttl-seconds" ? 1000 : kTtl;
    Held a = AcquireFresh(name, kTtl);
    ASSERT_EQ(a.acquired.outcome, Outcome::kOk);
    EXPECT_EQ(a.acquired.lease.valid_ms, kTtl);
    EXPECT_EQ(PttlOfK(), redis_ttl_ms);
    const ExtendResult e = a.lock->Extend(a.acquired.lease, kTtl);
    ASSERT_EQ(e.outcome, Outcome::kOk);
    EXPECT_EQ(e.valid_ms, kTtl);
    EXPECT_EQ(PttlOfK(), redis_ttl_ms);
    AdvanceMs(1100);  // inside the validity a believes in
    EXPECT_EQ(OtherAcquires(kTtl).outcome, name == "ttl-seconds" ? Outcome::kOk : Outcome::kFail);
  }
}

TEST_F(MutantSingleNodeTest, WallclockDeadlineStepBackMidAcquireGivesValidityBeyondTtl) {
  // An NTP step of -5 s lands while each command is in flight.
  transport_.after_execute = [this](const Command&, const Reply&) {
    clock_.wall_offset_us -= 5'000'000;
  };
  for (const std::string name : {"wallclock-deadline", "token-lua"}) {
    SCOPED_TRACE(name);
    Held a = AcquireFresh(name, kTtlMs);
    ASSERT_EQ(a.acquired.outcome, Outcome::kOk);
    const ExtendResult e = a.lock->Extend(a.acquired.lease, kTtlMs);
    ASSERT_EQ(e.outcome, Outcome::kOk);
    if (name == "wallclock-deadline") {
      EXPECT_GT(a.acquired.lease.valid_ms, kTtlMs + 4000);
      EXPECT_GT(e.valid_ms, kTtlMs + 4000);
    } else {
      EXPECT_EQ(a.acquired.lease.valid_ms, kTtlMs);
      EXPECT_EQ(e.valid_ms, kTtlMs);
    }
    EXPECT_EQ(PttlOfK(), kTtlMs);  // Redis keeps the TTL it was given either way
  }
}

TEST_F(MutantSingleNodeTest, TokenDroppedReleaseFailsAndTheLockStaysUntilItsTtl) {
  for (const std::string name : {"token-dropped-before-release", "token-lua"}) {
    SCOPED_TRACE(name);
    Held a = AcquireFresh(name, kTtlMs);
    ASSERT_EQ(a.acquired.outcome, Outcome::kOk);
    const Outcome released = a.lock->Release(a.acquired.lease).outcome;
    if (name == "token-dropped-before-release") {
      EXPECT_EQ(released, Outcome::kFail);
      EXPECT_EQ(HolderOfK(), a.acquired.lease.token);
      EXPECT_EQ(OtherAcquires(kTtlMs).outcome, Outcome::kFail);
      AdvanceMs(kTtlMs);
    } else {
      EXPECT_EQ(released, Outcome::kOk);
    }
    EXPECT_EQ(OtherAcquires(kTtlMs).outcome, Outcome::kOk);
  }
}

TEST_F(MutantSingleNodeTest, GetThenSetInterleavingGivesTwoOkAcquires) {
  for (const std::string name : {"get-then-set", "token-lua"}) {
    SCOPED_TRACE(name);
    Redis({"DEL", "k"});
    auto a = New(name, 1);
    auto b = New(name, 2);
    // b's whole acquire runs right after a's first command, before a sees its reply.
    AcquireResult rb;
    bool interleaved = false;
    transport_.after_execute = [&](const Command&, const Reply&) {
      if (interleaved) return;
      interleaved = true;
      rb = b->Acquire("k", kTtlMs, 0);
    };
    AcquireResult ra = a->Acquire("k", kTtlMs, 0);
    transport_.after_execute = nullptr;
    ASSERT_TRUE(interleaved);
    EXPECT_EQ(ra.outcome, Outcome::kOk);
    EXPECT_EQ(HolderOfK(), ra.lease.token);  // the mutant's a overwrote b's key
    EXPECT_EQ(rb.outcome, name == "get-then-set" ? Outcome::kOk : Outcome::kFail);
  }
}

// ---------------------------------------------------------------------------------------------
// Redlock mutants, against a scripted transport (5 nodes).

class MutantRedlockTest : public ::testing::Test {
 protected:
  static constexpr int64_t kTtlMs = 1000;
  static constexpr int64_t kDriftMs = 12;  // 1% of 1000 ms + 2 ms

  std::unique_ptr<Lock> New(const std::string& name) {
    return MakeLock(name, EnvOf(&transport_, &clock_, 42));
  }
  // `lock` acquires `key` once, every node answering OK within `elapsed_us`.
  AcquireResult AcquireOnAll(Lock& lock, const std::string& key, int64_t elapsed_us) {
    transport_.Script({Ok(), Ok(), Ok(), Ok(), Ok()}, elapsed_us);
    return lock.Acquire(key, kTtlMs, 0);
  }

  ManualClock clock_;
  ScriptedTransport transport_{5, &clock_};
};

TEST_F(MutantRedlockTest, NoElapsedCheckIgnoresTheAcquiresDuration) {
  for (const std::string name : {"no-elapsed-check", "redlock"}) {
    SCOPED_TRACE(name);
    auto lock = New(name);
    AcquireResult slow = AcquireOnAll(*lock, "k", /*elapsed_us=*/300'000);
    ASSERT_EQ(slow.outcome, Outcome::kOk);
    EXPECT_EQ(slow.lease.valid_ms,
              name == "no-elapsed-check" ? kTtlMs - kDriftMs : kTtlMs - 300 - kDriftMs);
    // An acquire that took the whole TTL: the keys may already be gone.
    transport_.Script({Ok(), Ok(), Ok(), Ok(), Ok()}, /*elapsed_us=*/kTtlMs * 1000);
    if (name == "redlock") transport_.Script({Int(0), Int(0), Int(0), Int(0), Int(0)});
    AcquireResult late = lock->Acquire("k2", kTtlMs, 0);
    if (name == "no-elapsed-check") {
      EXPECT_EQ(late.outcome, Outcome::kOk);
      EXPECT_EQ(late.lease.valid_ms, kTtlMs - kDriftMs);
    } else {
      EXPECT_EQ(late.outcome, Outcome::kFail);
    }
    EXPECT_TRUE(transport_.steps.empty());
  }
}

TEST_F(MutantRedlockTest, NoDriftValidityHasNoClockDriftAllowance) {
  for (const std::string name : {"no-drift", "redlock"}) {
    SCOPED_TRACE(name);
    auto lock = New(name);
    AcquireResult r = AcquireOnAll(*lock, "k", /*elapsed_us=*/30'000);
    ASSERT_EQ(r.outcome, Outcome::kOk);
    EXPECT_EQ(r.lease.valid_ms, name == "no-drift" ? kTtlMs - 30 : kTtlMs - 30 - kDriftMs);
    transport_.Script({Int(1), Int(1), Int(1), Int(1), Int(1)}, /*elapsed_us=*/10'000);
    ExtendResult e = lock->Extend(r.lease, kTtlMs);
    ASSERT_EQ(e.outcome, Outcome::kOk);
    EXPECT_EQ(e.valid_ms, name == "no-drift" ? kTtlMs - 10 : kTtlMs - 10 - kDriftMs);
  }
}

TEST_F(MutantRedlockTest, BadQuorumAcceptsTwoOfFiveEverywhere) {
  transport_.honor_decided = true;
  for (const std::string name : {"bad-quorum", "redlock"}) {
    SCOPED_TRACE(name);
    const bool mutant = name == "bad-quorum";
    auto lock = New(name);
    transport_.decided_after = -1;
    transport_.Script({Ok(), Ok(), Nil(), Nil(), Nil()});
    if (!mutant) transport_.Script({Int(1), Int(1), Int(0), Int(0), Int(0)});  // cleanup
    AcquireResult r = lock->Acquire("k", kTtlMs, 0);
    EXPECT_EQ(r.outcome, mutant ? Outcome::kOk : Outcome::kFail);
    // The mutant stops waiting after 2 OKs; redlock only once 3 refusals rule a quorum out.
    EXPECT_EQ(transport_.decided_after, mutant ? 2 : 5);
    EXPECT_TRUE(transport_.steps.empty());
    if (!mutant) continue;
    transport_.Script({Int(1), Int(1), Int(0), Int(0), Int(0)});
    EXPECT_EQ(lock->Extend(r.lease, kTtlMs).outcome, Outcome::kOk);
    transport_.Script({Int(1), Int(1), Int(0), Int(0), Int(0)});
    EXPECT_EQ(lock->Release(r.lease).outcome, Outcome::kOk);
  }
  // The correct lock refuses the same 2-of-5 extend and release.
  auto lock = New("redlock");
  transport_.Script({Ok(), Ok(), Ok(), Ok(), Ok()});
  AcquireResult r = lock->Acquire("k", kTtlMs, 0);
  ASSERT_EQ(r.outcome, Outcome::kOk);
  transport_.Script({Int(1), Int(1), Int(0), Int(0), Int(0)});
  transport_.Script({Int(1), Int(1), Int(0), Int(0), Int(0)});  // the surrender's cleanup
  EXPECT_EQ(lock->Extend(r.lease, kTtlMs).outcome, Outcome::kFail);
  transport_.Script({Int(1), Int(1), Int(0), Int(0), Int(0)});
  EXPECT_EQ(lock->Release(r.lease).outcome, Outcome::kFail);
}

// ---------------------------------------------------------------------------------------------
// Redlock mutants, against five FakeRedis nodes.

// Five FakeRedis nodes on a manual clock. A fan-out runs the command on every node it names,
// then moves the clock by fan_out_us (its round trip). A node in drop_replies applies the
// command but its reply is lost (kTimeout), as under the one-way-replies fault.
class FakeCluster : public Transport {
 public:
  explicit FakeCluster(ManualClock* clock) : clock_(clock) {
    for (int i = 0; i < 5; ++i) nodes_.push_back(std::make_unique<FakeRedis>(clock));
  }
  int node_count() const override { return static_cast<int>(nodes_.size()); }
  Reply Call(int node, const Command& cmd, int64_t timeout_us) override {
    ADD_FAILURE() << "sequential Call() used for " << cmd.at(0);
    return CallMany({node}, cmd, timeout_us).at(0);
  }
  std::vector<Reply> CallMany(const std::vector<int>& nodes, const Command& cmd,
                              int64_t timeout_us) override {
    calls.push_back({true, nodes, cmd, timeout_us});
    std::vector<Reply> out;
    for (int i : nodes) {
      Reply r = nodes_.at(i)->Execute(cmd);
      out.push_back(drop_replies.count(i) ? Reply::Timeout("reply lost") : r);
    }
    clock_->now_us += fan_out_us;
    return out;
  }
  FakeRedis& node(int i) { return *nodes_.at(i); }

  std::set<int> drop_replies;
  int64_t fan_out_us = 0;
  std::vector<RecordedCall> calls;

 private:
  ManualClock* clock_;
  std::vector<std::unique_ptr<FakeRedis>> nodes_;
};

bool IsUnlockCall(const RecordedCall& c) {
  return c.cmd.at(0) == "EVAL" && c.cmd.at(1) == kCompareAndDeleteLua;
}

class MutantRedlockClusterTest : public ::testing::Test {
 protected:
  std::unique_ptr<Lock> New(const std::string& name) {
    return MakeLock(name, EnvOf(&cluster_, &clock_, 42));
  }
  std::string Holder(int node, const std::string& key) {
    Reply r = cluster_.node(node).Execute({"GET", key});
    return r.type == Reply::Type::kString ? r.str : "";
  }
  int64_t Pttl(int node, const std::string& key) {
    return cluster_.node(node).Execute({"PTTL", key}).integer;
  }

  ManualClock clock_;
  FakeCluster cluster_{&clock_};
};

TEST_F(MutantRedlockClusterTest, RetryKeepsPartialsReportsValidityBeyondItsEarliestKey) {
  constexpr int64_t kTtlMs = 1000;
  cluster_.fan_out_us = 20'000;
  for (const std::string name : {"retry-keeps-partials", "redlock"}) {
    SCOPED_TRACE(name);
    const bool mutant = name == "retry-keeps-partials";
    cluster_.calls.clear();
    for (int i = 0; i < 5; ++i) cluster_.node(i).Execute({"DEL", "k"});
    // Nodes 2-4 are held by someone else for 5 ms: the first attempt gets 2 of 5.
    for (int i = 2; i < 5; ++i) cluster_.node(i).Execute({"SET", "k", "other", "PX", "5"});
    AcquireResult r = New(name)->Acquire("k", kTtlMs, /*wait_ms=*/500);
    ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
    EXPECT_EQ(r.attempts, 2);
    EXPECT_EQ(r.lease.valid_ms, kTtlMs - 20 - 12);  // from the last attempt's start
    ASSERT_EQ(cluster_.calls.size(), mutant ? 2u : 3u);
    const RecordedCall& first = cluster_.calls.front();
    const RecordedCall& last = cluster_.calls.back();
    int64_t shortest_ms = kTtlMs;
    for (int i = 0; i < 5; ++i) {
      EXPECT_EQ(Holder(i, "k"), r.lease.token) << "node " << i;
      shortest_ms = std::min(shortest_ms, Pttl(i, "k"));
    }
    if (mutant) {
      // One token, no cleanup in between: nodes 0 and 1 keep the first attempt's keys.
      EXPECT_EQ(first.cmd.at(1), kSetNxOrOursLua);
      EXPECT_EQ(first.cmd.at(4), last.cmd.at(4));
      EXPECT_LT(shortest_ms, r.lease.valid_ms);
      EXPECT_LT(Pttl(0, "k"), r.lease.valid_ms);
      EXPECT_LT(Pttl(1, "k"), r.lease.valid_ms);
    } else {
      EXPECT_EQ(first.cmd.at(0), "SET");
      EXPECT_TRUE(IsUnlockCall(cluster_.calls[1]));
      EXPECT_NE(first.cmd.at(2), last.cmd.at(2));
      EXPECT_GE(shortest_ms, r.lease.valid_ms);
    }
  }
}

TEST_F(MutantRedlockClusterTest, RetryKeepsPartialsCleansUpOnlyAfterTheLastAttempt) {
  cluster_.fan_out_us = 20'000;
  for (int i = 2; i < 5; ++i) cluster_.node(i).Execute({"SET", "k", "other", "PX", "100000"});
  AcquireResult r = New("retry-keeps-partials")->Acquire("k", 1000, /*wait_ms=*/200);
  EXPECT_EQ(r.outcome, Outcome::kFail);
  EXPECT_GT(r.attempts, 1);
  int unlocks = 0;
  for (const RecordedCall& c : cluster_.calls) unlocks += IsUnlockCall(c) ? 1 : 0;
  EXPECT_EQ(unlocks, 1);
  ASSERT_FALSE(cluster_.calls.empty());
  EXPECT_TRUE(IsUnlockCall(cluster_.calls.back()));
  EXPECT_EQ(cluster_.calls.back().nodes, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(Holder(0, "k"), "");
  EXPECT_EQ(Holder(1, "k"), "");
  EXPECT_EQ(Holder(2, "k"), "other");
}

TEST_F(MutantRedlockClusterTest, CleanupKnownNodesOnlyReportsFailWhileAQuorumHoldsItsToken) {
  for (const std::string name : {"cleanup-known-nodes-only", "redlock"}) {
    SCOPED_TRACE(name);
    const bool mutant = name == "cleanup-known-nodes-only";
    cluster_.calls.clear();
    cluster_.drop_replies.clear();
    for (int i = 0; i < 5; ++i) cluster_.node(i).Execute({"DEL", "k"});
    cluster_.node(4).Execute({"SET", "k", "other", "PX", "100000"});
    cluster_.drop_replies = {1, 2, 3};  // their SETs apply, the replies are lost
    AcquireResult r = New(name)->Acquire("k", 1000, 0);
    ASSERT_FALSE(r.lease.token.empty());
    ASSERT_EQ(cluster_.calls.size(), 2u);
    const RecordedCall& cleanup = cluster_.calls[1];
    ASSERT_TRUE(IsUnlockCall(cleanup));
    int holding = 0;
    for (int i = 0; i < 5; ++i) holding += Holder(i, "k") == r.lease.token ? 1 : 0;
    if (mutant) {
      EXPECT_EQ(r.outcome, Outcome::kFail) << r.error;  // "definitely not held"...
      EXPECT_EQ(cleanup.nodes, (std::vector<int>{0}));
      EXPECT_EQ(holding, 3);  // ...while nodes 1-3, a quorum, hold its token
    } else {
      EXPECT_EQ(r.outcome, Outcome::kUnknown) << r.error;
      EXPECT_EQ(cleanup.nodes, (std::vector<int>{0, 1, 2, 3, 4}));
      EXPECT_EQ(holding, 0);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// silent-watchdog-death: the watchdog's renewal thread against a gated virtual clock.

// Virtual time for one background thread. SleepUs moves the time forward at once, up to
// `limit_us`; a sleep that would cross the limit blocks until Open(). The clock notes when
// a thread that slept on it has exited (a thread_local sentinel's destructor tells it), so a
// test can wait for "blocked at the limit, or gone" without sleeping. Thread-safe.
class GatedClock : public Clock {
 public:
  explicit GatedClock(int64_t limit_us) : limit_us_(limit_us) {}

  int64_t NowUs() override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_us_;
  }
  int64_t WallUs() override { return NowUs(); }
  void SleepUs(int64_t duration_us) override {
    if (duration_us <= 0) return;
    thread_local ExitSentinel sentinel;
    sentinel.Watch(this);
    std::unique_lock<std::mutex> lock(mu_);
    if (!open_ && now_us_ + duration_us > limit_us_) {
      ++blocked_;
      changed_.notify_all();
      changed_.wait(lock, [this] { return open_; });
      --blocked_;
    }
    now_us_ += duration_us;
  }

  // Waits until a sleeper is blocked at the limit or a sleeper thread has exited; false if
  // neither happened within 10 s of real time (a bound, not a synchronization).
  bool AwaitBlockedOrExited() {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, std::chrono::seconds(10),
                             [this] { return blocked_ > 0 || exited_ > 0; });
  }
  // Lets every sleep through from now on.
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    changed_.notify_all();
  }
  // Moves the time (only while no thread is using the clock).
  void AdvanceUs(int64_t us) {
    std::lock_guard<std::mutex> lock(mu_);
    now_us_ += us;
  }
  int blocked() {
    std::lock_guard<std::mutex> lock(mu_);
    return blocked_;
  }
  int exited() {
    std::lock_guard<std::mutex> lock(mu_);
    return exited_;
  }

 private:
  // One per thread that slept here; tells the clock when that thread ends.
  struct ExitSentinel {
    GatedClock* clock = nullptr;
    void Watch(GatedClock* c) { clock = c; }
    ~ExitSentinel() {
      if (clock == nullptr) return;
      std::lock_guard<std::mutex> lock(clock->mu_);
      ++clock->exited_;
      clock->changed_.notify_all();
    }
  };

  std::mutex mu_;
  std::condition_variable changed_;
  int64_t now_us_ = 0;
  const int64_t limit_us_;
  bool open_ = false;
  int blocked_ = 0;
  int exited_ = 0;
};

// Opens a GatedClock when it goes out of scope.
class OpenOnExit {
 public:
  explicit OpenOnExit(GatedClock* clock) : clock_(clock) {}
  ~OpenOnExit() { clock_->Open(); }

 private:
  GatedClock* clock_;
};

// Counts the background renewals a lock reports.
class RenewalCounter : public LockObserver {
 public:
  void OnBackgroundExtend(const Lease&, const ExtendResult& result, int64_t) override {
    ++renewals;
    if (result.outcome != Outcome::kOk) ++not_ok;
  }
  std::atomic<int> renewals{0};
  std::atomic<int> not_ok{0};
};

TEST(MutantWatchdogTest, SilentWatchdogDeathRenewsOnceThenStopsTellingNoOne) {
  constexpr int64_t kTtlMs = 300;             // renewal every 100 ms
  constexpr int64_t kLimitUs = 10 * 100'000;  // the renewer may run 10 periods
  for (const std::string name : {"silent-watchdog-death", "watchdog"}) {
    SCOPED_TRACE(name);
    GatedClock clock(kLimitUs);
    FakeRedis redis(&clock);
    testing::FakeTransport transport(&redis);
    RenewalCounter observer;
    auto lock = MakeLock(name, EnvOf(&transport, &clock, 1, &observer));
    // Destroyed before the lock: however the test ends, a renewer blocked at the limit is
    // let through, so that the lock's destructor can stop and join it.
    const OpenOnExit open_on_exit(&clock);
    AcquireResult r = lock->Acquire("k", kTtlMs, 0);
    ASSERT_EQ(r.outcome, Outcome::kOk);
    ASSERT_TRUE(clock.AwaitBlockedOrExited());
    EXPECT_EQ(observer.not_ok.load(), 0);
    if (name == "silent-watchdog-death") {
      // Gone after one renewal, a third of the way into the first TTL, the lease still held.
      EXPECT_EQ(clock.exited(), 1);
      EXPECT_EQ(clock.blocked(), 0);
      EXPECT_EQ(observer.renewals.load(), 1);
      EXPECT_LT(clock.NowUs(), kTtlMs * 1000);
      EXPECT_EQ(redis.Execute({"GET", "k"}).str, r.lease.token);
      clock.AdvanceUs(kLimitUs);  // the holder is still working; nothing renews
      EXPECT_EQ(redis.Execute({"GET", "k"}).type, Reply::Type::kNil);
      EXPECT_EQ(observer.renewals.load(), 1);
      clock.Open();  // (no renewer is left to let through; Release joins at once)
      EXPECT_EQ(lock->Release(r.lease).outcome, Outcome::kFail);
    } else {
      // Still renewing at the limit, ten periods (3.3 TTLs) later: the lease is alive.
      EXPECT_EQ(clock.blocked(), 1);
      EXPECT_EQ(clock.exited(), 0);
      EXPECT_GE(observer.renewals.load(), 9);
      EXPECT_EQ(redis.Execute({"GET", "k"}).str, r.lease.token);
      clock.Open();
      EXPECT_EQ(lock->Release(r.lease).outcome, Outcome::kOk);
    }
  }
}

}  // namespace
}  // namespace lockstorm
