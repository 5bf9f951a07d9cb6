// Integration tests of the Redlock implementation against five real redis-servers.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "harness/transport.h"
#include "impls/builtin.h"
#include "tests/test_util.h"

namespace lockstorm {
namespace {

using testing::TestServers;

constexpr int kNodes = 5;
constexpr int64_t kTtlMs = 10'000;
// Generous bound for the test's own inspection commands (not the lock's).
constexpr int64_t kInspectTimeoutUs = 2'000'000;

// One lock client: its own transport (connections warmed up) and lock.
struct Client {
  Client(const std::vector<ServerAddress>& addrs, uint64_t seed)
      : transport(NewRedisTransport(addrs)) {
    std::vector<int> all;
    for (int i = 0; i < transport->node_count(); ++i) all.push_back(i);
    // Connect before the lock's first fan-out so that connection setup on a loaded machine
    // does not eat into its small per-node timeout.
    transport->CallMany(all, {"PING"}, kInspectTimeoutUs);
    LockEnv env;
    env.transport = transport.get();
    env.clock = RealClock();
    env.seed = seed;
    env.client_id = "c" + std::to_string(seed);
    lock = NewRedlockLock(env);
  }
  std::unique_ptr<Transport> transport;
  std::unique_ptr<Lock> lock;
};

class RedlockITest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(servers_.status.ok()) << servers_.status.ToString();
    inspect_ = NewRedisTransport(servers_.set.addresses());
  }

  // GET key on node i (a running one).
  Reply Get(int node, const std::string& key) {
    return inspect_->Call(node, {"GET", key}, kInspectTimeoutUs);
  }
  int64_t Pttl(int node, const std::string& key) {
    Reply r = inspect_->Call(node, {"PTTL", key}, kInspectTimeoutUs);
    EXPECT_EQ(r.type, Reply::Type::kInteger) << r.ToString();
    return r.integer;
  }

  TestServers servers_{kNodes};
  std::unique_ptr<Transport> inspect_;
};

TEST_F(RedlockITest, AcquireExtendRelease) {
  Client c(servers_.set.addresses(), 1);
  AcquireResult a = c.lock->Acquire("k", kTtlMs, 0);
  ASSERT_EQ(a.outcome, Outcome::kOk) << a.error;
  EXPECT_GT(a.lease.valid_ms, 0);
  EXPECT_LT(a.lease.valid_ms, kTtlMs);
  for (int i = 0; i < kNodes; ++i) {
    Reply r = Get(i, "k");
    EXPECT_EQ(r.type, Reply::Type::kString) << "node " << i << ": " << r.ToString();
    EXPECT_EQ(r.str, a.lease.token) << "node " << i;
    EXPECT_LE(Pttl(i, "k"), kTtlMs);
  }

  ExtendResult e = c.lock->Extend(a.lease, 3 * kTtlMs);
  ASSERT_EQ(e.outcome, Outcome::kOk) << e.error;
  EXPECT_GT(e.valid_ms, kTtlMs);
  for (int i = 0; i < kNodes; ++i) EXPECT_GT(Pttl(i, "k"), kTtlMs) << "node " << i;

  ReleaseResult r = c.lock->Release(a.lease);
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  for (int i = 0; i < kNodes; ++i) EXPECT_EQ(Get(i, "k").type, Reply::Type::kNil) << i;
  // Released twice: no longer ours anywhere.
  EXPECT_EQ(c.lock->Release(a.lease).outcome, Outcome::kFail);
}

TEST_F(RedlockITest, SecondClientCannotAcquireWhileHeld) {
  Client a(servers_.set.addresses(), 1);
  Client b(servers_.set.addresses(), 2);
  AcquireResult held = a.lock->Acquire("k", kTtlMs, 0);
  ASSERT_EQ(held.outcome, Outcome::kOk) << held.error;

  AcquireResult once = b.lock->Acquire("k", kTtlMs, 0);
  EXPECT_EQ(once.outcome, Outcome::kFail) << once.error;
  EXPECT_EQ(once.attempts, 1);
  // A wait budget well above one attempt's duration, so that B retries even on a loaded machine.
  AcquireResult waited = b.lock->Acquire("k", kTtlMs, /*wait_ms=*/1000);
  EXPECT_EQ(waited.outcome, Outcome::kFail) << waited.error;
  EXPECT_GT(waited.attempts, 1);
  // B's failed attempts cleaned up after themselves and did not touch A's keys.
  for (int i = 0; i < kNodes; ++i) EXPECT_EQ(Get(i, "k").str, held.lease.token) << i;
  // B's lease cannot release A's lock.
  Lease forged = held.lease;
  forged.token = "not-the-token";
  EXPECT_EQ(b.lock->Release(forged).outcome, Outcome::kFail);

  ASSERT_EQ(a.lock->Release(held.lease).outcome, Outcome::kOk);
  AcquireResult after = b.lock->Acquire("k", kTtlMs, 0);
  EXPECT_EQ(after.outcome, Outcome::kOk) << after.error;
  EXPECT_NE(after.lease.token, held.lease.token);
}

TEST_F(RedlockITest, AcquiresWithTwoOfFiveServersDown) {
  servers_.set.server(0)->Kill();
  servers_.set.server(3)->Kill();
  Client c(servers_.set.addresses(), 1);
  AcquireResult a = c.lock->Acquire("k", kTtlMs, 0);
  ASSERT_EQ(a.outcome, Outcome::kOk) << a.error;
  for (int i : {1, 2, 4}) EXPECT_EQ(Get(i, "k").str, a.lease.token) << i;
  ExtendResult e = c.lock->Extend(a.lease, kTtlMs);
  EXPECT_EQ(e.outcome, Outcome::kOk) << e.error;
  ReleaseResult r = c.lock->Release(a.lease);
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.error;
  for (int i : {1, 2, 4}) EXPECT_EQ(Get(i, "k").type, Reply::Type::kNil) << i;
}

TEST_F(RedlockITest, CannotAcquireWithThreeOfFiveServersDown) {
  for (int i : {0, 2, 4}) servers_.set.server(i)->Kill();
  Client c(servers_.set.addresses(), 1);
  AcquireResult a = c.lock->Acquire("k", kTtlMs, 0);
  // The dead nodes' replies are I/O errors, whose effect the transport cannot rule out, so
  // the outcome is unknown rather than fail — but never ok.
  EXPECT_NE(a.outcome, Outcome::kOk) << a.error;
  EXPECT_EQ(a.attempts, 1);
  // The two live nodes were cleaned up.
  for (int i : {1, 3}) EXPECT_EQ(Get(i, "k").type, Reply::Type::kNil) << i;
}

}  // namespace
}  // namespace lockstorm
