// Unit tests of the Redlock implementation against a scripted transport and a manual clock.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "impls/builtin.h"
#include "tests/fake_transport.h"

namespace lockstorm {
namespace {

using testing::Err;
using testing::Int;
using testing::ManualClock;
using testing::Nil;
using testing::Ok;
using testing::RecordedCall;
using testing::Tmo;

const std::vector<int> kAllFive = {0, 1, 2, 3, 4};
constexpr int64_t kTtlMs = 1000;
// drift for a 1000 ms TTL: 1% + 2 ms.
constexpr int64_t kDriftMs = 12;

bool IsSet(const RecordedCall& c) { return c.cmd.at(0) == "SET"; }
bool IsUnlock(const RecordedCall& c) {
  return c.cmd.at(0) == "EVAL" && c.cmd.at(1).find("'del'") != std::string::npos;
}
bool IsPexpire(const RecordedCall& c) {
  return c.cmd.at(0) == "EVAL" && c.cmd.at(1).find("'pexpire'") != std::string::npos;
}

class RedlockTest : public ::testing::Test {
 protected:
  explicit RedlockTest(int n = 5) : transport_(n, &clock_) {
    LockEnv env;
    env.transport = &transport_;
    env.clock = &clock_;
    env.seed = 42;
    env.client_id = "c0";
    lock_ = NewRedlockLock(env);
  }

  // Acquires with every node answering OK, then forgets the recorded calls.
  Lease AcquireOnAll() {
    transport_.Script({Ok(), Ok(), Ok(), Ok(), Ok()}, 10'000);
    AcquireResult r = lock_->Acquire("k", kTtlMs, 0);
    EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
    transport_.calls.clear();
    return r.lease;
  }

  ManualClock clock_;
  testing::ScriptedTransport transport_;
  std::unique_ptr<Lock> lock_;
};

TEST_F(RedlockTest, ThreeOfFiveOkAcquiresWithOneConcurrentFanOut) {
  transport_.Script({Ok(), Tmo(), Ok(), Nil(), Ok()});
  AcquireResult r = lock_->Acquire("k", kTtlMs, 0);
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.lease.key, "k");
  EXPECT_FALSE(r.lease.token.empty());
  EXPECT_FALSE(r.lease.fence.has_value());
  // Exactly one fan-out, to all five nodes, no cleanup after a success.
  ASSERT_EQ(transport_.calls.size(), 1u);
  const RecordedCall& c = transport_.calls[0];
  EXPECT_TRUE(c.many);
  EXPECT_EQ(c.nodes, kAllFive);
  EXPECT_EQ(c.cmd, (Command{"SET", "k", r.lease.token, "NX", "PX", "1000"}));
  // The per-node timeout is small relative to the TTL: ttl/10 clamped to [5, 50] ms.
  EXPECT_EQ(c.timeout_us, 50'000);
}

TEST_F(RedlockTest, NodeTimeoutScalesWithTtl) {
  transport_.Script({Ok(), Ok(), Ok(), Ok(), Ok()});
  ASSERT_EQ(lock_->Acquire("a", 200, 0).outcome, Outcome::kOk);
  transport_.Script({Ok(), Ok(), Ok(), Ok(), Ok()});
  ASSERT_EQ(lock_->Acquire("b", 20, 0).outcome, Outcome::kOk);
  ASSERT_EQ(transport_.calls.size(), 2u);
  EXPECT_EQ(transport_.calls[0].timeout_us, 20'000);  // 200 ms / 10
  EXPECT_EQ(transport_.calls[1].timeout_us, 5'000);   // floor
}

TEST_F(RedlockTest, TwoOfFiveOkFailsAndCleansUpOnAllNodesIncludingTimedOut) {
  transport_.Script({Ok(), Nil(), Tmo(), Ok(), Tmo()});
  transport_.Script({Int(1), Int(0), Tmo(), Int(1), Tmo()});  // cleanup
  AcquireResult r = lock_->Acquire("k", kTtlMs, 0);
  // Nodes 2 and 4 may still hold the token (their SET and cleanup timed out): a minority.
  EXPECT_EQ(r.outcome, Outcome::kFail) << r.error;
  EXPECT_EQ(r.attempts, 1);
  ASSERT_EQ(transport_.calls.size(), 2u);
  ASSERT_TRUE(IsSet(transport_.calls[0]));
  const std::string token = transport_.calls[0].cmd.at(2);
  const RecordedCall& cleanup = transport_.calls[1];
  EXPECT_TRUE(IsUnlock(cleanup));
  EXPECT_TRUE(cleanup.many);
  EXPECT_EQ(cleanup.nodes, kAllFive);
  EXPECT_EQ(cleanup.cmd.at(2), "1");
  EXPECT_EQ(cleanup.cmd.at(3), "k");
  EXPECT_EQ(cleanup.cmd.at(4), token);
  EXPECT_TRUE(transport_.steps.empty());
}

TEST_F(RedlockTest, UnknownRepliesThatCouldMakeAQuorumGiveUnknown) {
  // One OK and three timeouts: had the timeouts been OKs, that is a quorum.
  transport_.Script({Ok(), Tmo(), Tmo(), Nil(), Tmo()});
  // The cleanup reaches node 0 and gets 0 from the timed-out nodes 1 and 2: a SET still in
  // flight on their dropped connections may land after it, so they may still become ours.
  transport_.Script({Int(1), Int(0), Int(0), Int(0), Tmo()});
  AcquireResult r = lock_->Acquire("k", kTtlMs, 0);
  EXPECT_EQ(r.outcome, Outcome::kUnknown) << r.error;
  EXPECT_EQ(r.lease.token, transport_.calls.at(0).cmd.at(2));
}

TEST_F(RedlockTest, CleanupThatDeletesTimedOutNodesMakesItAFail) {
  transport_.Script({Ok(), Tmo(), Tmo(), Nil(), Tmo()});
  // 1 from a timed-out node: its SET did run, and the cleanup removed it.
  transport_.Script({Int(1), Int(1), Int(1), Int(0), Tmo()});
  AcquireResult r = lock_->Acquire("k", kTtlMs, 0);
  EXPECT_EQ(r.outcome, Outcome::kFail) << r.error;
}

TEST_F(RedlockTest, ErrorRepliesDoNotCountAsOk) {
  transport_.Script({Ok(), Ok(), Err(), Err(), Nil()});
  transport_.Script({Int(1), Int(1), Int(0), Int(0), Int(0)});
  EXPECT_EQ(lock_->Acquire("k", kTtlMs, 0).outcome, Outcome::kFail);
}

TEST_F(RedlockTest, ValidityIsTtlMinusElapsedMinusDrift) {
  transport_.Script({Ok(), Ok(), Ok(), Ok(), Ok()}, /*elapsed_us=*/30'000);
  AcquireResult r = lock_->Acquire("k", kTtlMs, 0);
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(r.lease.valid_ms, kTtlMs - 30 - kDriftMs);
}

TEST_F(RedlockTest, ElapsedAtLeastTtlIsNotAcquiredAndIsCleanedUp) {
  transport_.Script({Ok(), Ok(), Ok(), Ok(), Ok()}, /*elapsed_us=*/kTtlMs * 1000);
  transport_.Script({Int(1), Int(1), Int(0), Int(0), Int(0)});
  AcquireResult r = lock_->Acquire("k", kTtlMs, 0);
  EXPECT_EQ(r.outcome, Outcome::kFail) << r.error;
  ASSERT_EQ(transport_.calls.size(), 2u);
  EXPECT_TRUE(IsUnlock(transport_.calls[1]));
  EXPECT_EQ(transport_.calls[1].nodes, kAllFive);
}

TEST_F(RedlockTest, QuorumWithoutPositiveValidityIsNotAcquired) {
  // elapsed < ttl, but ttl - elapsed - drift <= 0.
  transport_.Script({Ok(), Ok(), Ok(), Nil(), Nil()}, /*elapsed_us=*/(kTtlMs - kDriftMs) * 1000);
  transport_.Script({Int(1), Int(1), Int(1), Int(0), Int(0)});
  AcquireResult r = lock_->Acquire("k", kTtlMs, 0);
  EXPECT_EQ(r.outcome, Outcome::kFail) << r.error;
  EXPECT_EQ(transport_.calls.size(), 2u);
}

TEST_F(RedlockTest, QuorumWithoutValidityAndUnreachableCleanupIsUnknown) {
  transport_.Script({Ok(), Ok(), Ok(), Nil(), Nil()}, /*elapsed_us=*/kTtlMs * 1000);
  transport_.Script({Tmo(), Tmo(), Int(1), Int(0), Int(0)});
  // Nodes 0 and 1 may still hold the key, node 2 was cleaned: 2 < 3 → fail.
  EXPECT_EQ(lock_->Acquire("k", kTtlMs, 0).outcome, Outcome::kFail);
  transport_.Script({Ok(), Ok(), Ok(), Nil(), Nil()}, /*elapsed_us=*/kTtlMs * 1000);
  transport_.Script({Tmo(), Tmo(), Tmo(), Int(0), Int(0)});
  // Now a quorum of our keys may still exist.
  AcquireResult r = lock_->Acquire("k", kTtlMs, 0);
  EXPECT_EQ(r.outcome, Outcome::kUnknown) << r.error;
}

TEST_F(RedlockTest, WaitZeroMakesExactlyOneAttempt) {
  transport_.Script({Nil(), Nil(), Nil(), Nil(), Nil()});
  transport_.Script({Int(0), Int(0), Int(0), Int(0), Int(0)});
  AcquireResult r = lock_->Acquire("k", kTtlMs, 0);
  EXPECT_EQ(r.outcome, Outcome::kFail);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(transport_.calls.size(), 2u);  // one SET fan-out + one cleanup
  EXPECT_TRUE(clock_.sleeps_us.empty());
}

TEST_F(RedlockTest, RetriesWithinTheWaitBudgetWithFreshTokens) {
  transport_.Script({Nil(), Nil(), Nil(), Ok(), Ok()});
  transport_.Script({Int(0), Int(0), Int(0), Int(1), Int(1)});
  transport_.Script({Ok(), Ok(), Ok(), Nil(), Nil()});
  AcquireResult r = lock_->Acquire("k", kTtlMs, /*wait_ms=*/500);
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.error;
  EXPECT_EQ(r.attempts, 2);
  ASSERT_EQ(transport_.calls.size(), 3u);
  EXPECT_NE(transport_.calls[0].cmd.at(2), transport_.calls[2].cmd.at(2));
  EXPECT_EQ(r.lease.token, transport_.calls[2].cmd.at(2));
  // One random delay in [1 ms, ttl/10 = 100 ms].
  ASSERT_EQ(clock_.sleeps_us.size(), 1u);
  EXPECT_GE(clock_.sleeps_us[0], 1'000);
  EXPECT_LE(clock_.sleeps_us[0], 100'000);
}

TEST_F(RedlockTest, GivesUpWhenTheWaitBudgetIsSpent) {
  int sets = 0;
  transport_.fallback = [&](const Command& cmd) {
    if (cmd.at(0) == "SET") ++sets;
    return std::vector<Reply>(5, cmd.at(0) == "SET" ? Nil() : Int(0));
  };
  const int64_t start_us = clock_.now_us;
  AcquireResult r = lock_->Acquire("k", kTtlMs, /*wait_ms=*/300);
  EXPECT_EQ(r.outcome, Outcome::kFail);
  EXPECT_GT(r.attempts, 1);
  EXPECT_EQ(r.attempts, sets);
  // Sleeps never go past the budget (the fake fan-outs take no time).
  EXPECT_LE(clock_.now_us - start_us, 300'000);
}

TEST_F(RedlockTest, UnknownAttemptEndsTheWait) {
  transport_.Script({Tmo(), Tmo(), Tmo(), Tmo(), Tmo()});
  transport_.Script({Tmo(), Tmo(), Tmo(), Tmo(), Tmo()});
  AcquireResult r = lock_->Acquire("k", kTtlMs, /*wait_ms=*/500);
  EXPECT_EQ(r.outcome, Outcome::kUnknown);
  EXPECT_EQ(r.attempts, 1);
}

TEST_F(RedlockTest, ExtendNeedsAQuorumOfOnes) {
  Lease lease = AcquireOnAll();
  transport_.Script({Int(1), Int(1), Int(1), Int(0), Tmo()}, /*elapsed_us=*/20'000);
  ExtendResult e = lock_->Extend(lease, 2000);
  ASSERT_EQ(e.outcome, Outcome::kOk) << e.error;
  EXPECT_EQ(e.valid_ms, 2000 - 20 - (20 + 2));  // drift of a 2000 ms TTL: 22 ms
  ASSERT_EQ(transport_.calls.size(), 1u);
  const RecordedCall& c = transport_.calls[0];
  EXPECT_TRUE(c.many);
  EXPECT_EQ(c.nodes, kAllFive);
  EXPECT_TRUE(IsPexpire(c));
  EXPECT_EQ(c.cmd.at(3), "k");
  EXPECT_EQ(c.cmd.at(4), lease.token);
  EXPECT_EQ(c.cmd.at(5), "2000");
}

TEST_F(RedlockTest, ExtendWithoutQuorumFailsAndSurrendersTheLease) {
  Lease lease = AcquireOnAll();
  transport_.Script({Int(1), Int(1), Int(0), Int(0), Int(0)});
  transport_.Script({Int(1), Int(1), Int(0), Int(0), Int(0)});
  ExtendResult e = lock_->Extend(lease, kTtlMs);
  EXPECT_EQ(e.outcome, Outcome::kFail) << e.error;
  ASSERT_EQ(transport_.calls.size(), 2u);
  EXPECT_TRUE(IsUnlock(transport_.calls[1]));
  EXPECT_EQ(transport_.calls[1].nodes, kAllFive);
  // Once surrendered, the lease cannot be extended again.
  transport_.calls.clear();
  EXPECT_EQ(lock_->Extend(lease, kTtlMs).outcome, Outcome::kFail);
  EXPECT_TRUE(transport_.calls.empty());
}

TEST_F(RedlockTest, ExtendThatMayHaveReachedAQuorumIsUnknown) {
  Lease lease = AcquireOnAll();
  transport_.Script({Int(1), Tmo(), Tmo(), Int(0), Int(0)});
  transport_.Script({Tmo(), Tmo(), Tmo(), Int(0), Int(0)});
  EXPECT_EQ(lock_->Extend(lease, kTtlMs).outcome, Outcome::kUnknown);
}

TEST_F(RedlockTest, ExtendCompletingAfterTheValidityDoesNotCount) {
  Lease lease = AcquireOnAll();  // validity ends 1000 - 12 ms after the fan-out started
  // Starts while valid, completes after the old validity has ended.
  clock_.now_us += (lease.valid_ms - 5) * 1000;
  transport_.Script({Int(1), Int(1), Int(1), Int(1), Int(1)}, /*elapsed_us=*/10'000);
  transport_.Script({Int(1), Int(1), Int(1), Int(1), Int(1)});
  ExtendResult e = lock_->Extend(lease, kTtlMs);
  EXPECT_EQ(e.outcome, Outcome::kFail) << e.error;
  EXPECT_EQ(transport_.calls.size(), 2u);
}

TEST_F(RedlockTest, ExtendAfterTheValidityEndedSendsNothing) {
  Lease lease = AcquireOnAll();
  clock_.now_us += kTtlMs * 1000;
  ExtendResult e = lock_->Extend(lease, kTtlMs);
  EXPECT_EQ(e.outcome, Outcome::kFail);
  EXPECT_TRUE(transport_.calls.empty());
}

TEST_F(RedlockTest, ReleaseOkWithAQuorumOfDeletes) {
  Lease lease = AcquireOnAll();
  transport_.Script({Int(1), Int(1), Int(0), Int(1), Tmo()});
  ReleaseResult r = lock_->Release(lease);
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  ASSERT_EQ(transport_.calls.size(), 1u);
  EXPECT_TRUE(transport_.calls[0].many);
  EXPECT_EQ(transport_.calls[0].nodes, kAllFive);
  EXPECT_TRUE(IsUnlock(transport_.calls[0]));
  EXPECT_EQ(transport_.calls[0].cmd.at(4), lease.token);
}

TEST_F(RedlockTest, ReleaseFailWhenAQuorumAnsweredZero) {
  Lease lease = AcquireOnAll();
  transport_.Script({Int(0), Int(1), Int(0), Int(0), Tmo()});
  EXPECT_EQ(lock_->Release(lease).outcome, Outcome::kFail);
}

TEST_F(RedlockTest, ReleaseUnknownWithoutAQuorumOfDefiniteAnswers) {
  Lease lease = AcquireOnAll();
  transport_.Script({Int(1), Int(1), Int(0), Tmo(), Err()});
  EXPECT_EQ(lock_->Release(lease).outcome, Outcome::kUnknown);
}

class RedlockEvenTest : public RedlockTest {
 protected:
  RedlockEvenTest() : RedlockTest(4) {}
};

TEST_F(RedlockEvenTest, FourNodesNeedThree) {
  transport_.Script({Ok(), Ok(), Nil(), Nil()});
  transport_.Script({Int(1), Int(1), Int(0), Int(0)});
  EXPECT_EQ(lock_->Acquire("k", kTtlMs, 0).outcome, Outcome::kFail);
  transport_.Script({Ok(), Ok(), Ok(), Nil()});
  EXPECT_EQ(lock_->Acquire("k", kTtlMs, 0).outcome, Outcome::kOk);
  EXPECT_EQ(transport_.calls.back().nodes, (std::vector<int>{0, 1, 2, 3}));
}

}  // namespace
}  // namespace lockstorm
