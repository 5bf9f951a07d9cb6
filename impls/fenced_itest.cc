// Integration tests of the fenced lock against a real redis-server, with the witness.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "harness/transport.h"
#include "harness/witness.h"
#include "impls/builtin.h"
#include "tests/test_util.h"

namespace lockstorm {
namespace {

using testing::TestServers;

constexpr int64_t kInspectTimeoutUs = 2'000'000;

struct Client {
  Client(const std::vector<ServerAddress>& addrs, uint64_t seed)
      : transport(NewRedisTransport(addrs)) {
    LockEnv env;
    env.transport = transport.get();
    env.clock = RealClock();
    env.seed = seed;
    env.client_id = "c" + std::to_string(seed);
    lock = NewFencedLock(env);
  }
  std::unique_ptr<Transport> transport;
  std::unique_ptr<Lock> lock;
};

class FencedITest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(servers_.status.ok()) << servers_.status.ToString();
    inspect_ = NewRedisTransport(servers_.set.addresses());
  }
  Reply Run(const Command& cmd) { return inspect_->Call(0, cmd, kInspectTimeoutUs); }

  TestServers servers_{1};
  std::unique_ptr<Transport> inspect_;
};

TEST_F(FencedITest, FencesStrictlyIncreaseAcrossClients) {
  std::vector<std::unique_ptr<Client>> clients;
  for (uint64_t i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<Client>(servers_.set.addresses(), i + 1));
  }
  int64_t last = 0;
  std::string last_token;
  for (int round = 0; round < 12; ++round) {
    Lock& lock = *clients[static_cast<size_t>(round) % clients.size()]->lock;
    AcquireResult a = lock.Acquire("k", 5000, /*wait_ms=*/1000);
    ASSERT_EQ(a.outcome, Outcome::kOk) << "round " << round << ": " << a.error;
    ASSERT_TRUE(a.lease.fence.has_value());
    EXPECT_GT(*a.lease.fence, last) << "round " << round;
    EXPECT_NE(a.lease.token, last_token);
    EXPECT_GT(a.lease.valid_ms, 0);
    EXPECT_LE(a.lease.valid_ms, 5000);
    last = *a.lease.fence;
    last_token = a.lease.token;
    ASSERT_EQ(lock.Release(a.lease).outcome, Outcome::kOk) << "round " << round;
  }
  // The counter never expires and holds the last fence issued.
  EXPECT_TRUE(Run({"GET", "k:fence"}).str == std::to_string(last));
  EXPECT_TRUE(Run({"PTTL", "k:fence"}).is_integer(-1));
}

TEST_F(FencedITest, HeldLockIsNotGrantedAndIssuesNoFence) {
  Client a(servers_.set.addresses(), 1);
  Client b(servers_.set.addresses(), 2);
  AcquireResult held = a.lock->Acquire("k", 10'000, 0);
  ASSERT_EQ(held.outcome, Outcome::kOk) << held.error;
  // A wait budget well above one attempt's duration (B's first attempt also connects), so that
  // B retries even on a loaded machine.
  AcquireResult other = b.lock->Acquire("k", 10'000, /*wait_ms=*/1000);
  EXPECT_EQ(other.outcome, Outcome::kFail) << other.error;
  EXPECT_GT(other.attempts, 1);
  EXPECT_EQ(Run({"GET", "k:fence"}).str, std::to_string(*held.lease.fence));
  ExtendResult e = a.lock->Extend(held.lease, 20'000);
  EXPECT_EQ(e.outcome, Outcome::kOk) << e.error;
  EXPECT_GT(Run({"PTTL", "k"}).integer, 10'000);
  EXPECT_EQ(a.lock->Release(held.lease).outcome, Outcome::kOk);
}

TEST_F(FencedITest, StaleLeaseCannotReleaseOrExtendTheNewHoldersLockNorWrite) {
  Client a(servers_.set.addresses(), 1);
  Client b(servers_.set.addresses(), 2);
  // A short lease, but long enough that it is surely still held when B's first attempt (which
  // also connects) reaches Redis on a loaded machine; a 100 ms TTL would also give A's acquire
  // only a 50 ms command timeout.
  AcquireResult stale = a.lock->Acquire("k", /*ttl_ms=*/2000, 0);
  ASSERT_EQ(stale.outcome, Outcome::kOk) << stale.error;
  // B waits (bounded) for A's lease to expire in Redis and takes the lock over.
  AcquireResult fresh = b.lock->Acquire("k", 10'000, /*wait_ms=*/10'000);
  ASSERT_EQ(fresh.outcome, Outcome::kOk) << fresh.error;
  EXPECT_GT(fresh.attempts, 1);  // it was held when B started
  ASSERT_TRUE(stale.lease.fence && fresh.lease.fence);
  EXPECT_GT(*fresh.lease.fence, *stale.lease.fence);

  // A still believes (lock-level overlap is possible); its operations must not hurt B.
  EXPECT_EQ(a.lock->Extend(stale.lease, 10'000).outcome, Outcome::kFail);
  EXPECT_EQ(a.lock->Release(stale.lease).outcome, Outcome::kFail);
  EXPECT_EQ(Run({"GET", "k"}).str, fresh.lease.token);

  // The fenced resource rejects the stale holder's write after the new holder's.
  Witness w;
  EXPECT_TRUE(w.Write("k", 2, *fresh.lease.fence).accepted);
  WitnessWrite late = w.Write("k", 1, *stale.lease.fence);
  EXPECT_FALSE(late.accepted);
  EXPECT_EQ(late.highest_before, *fresh.lease.fence);
  EXPECT_EQ(CountStaleAcceptedWrites(w.Writes()), 0);

  EXPECT_EQ(b.lock->Release(fresh.lease).outcome, Outcome::kOk);
  EXPECT_EQ(Run({"EXISTS", "k"}).integer, 0);
}

}  // namespace
}  // namespace lockstorm
