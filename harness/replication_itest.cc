// Integration tests of ReplicatedNode and SentinelGroup: a real master, a real replica behind a
// FaultProxy, real redis-sentinel processes. Every wait is bounded and awaits a condition (proxy
// counters through WaitForStats, INFO polled against a deadline); no sleep synchronizes.
// Timings printed as "[measure] ..." are the figures in docs/replication.md.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "harness/replication.h"
#include "tests/test_util.h"

namespace lockstorm {
namespace {

using testing::TempDir;

constexpr int64_t kCallTimeoutUs = 5 * 1000 * 1000;
constexpr int64_t kSyncTimeoutMs = 15000;
constexpr int64_t kFailoverTimeoutMs = 15000;
constexpr int kRepliesDir = static_cast<int>(Direction::kReplies);  // master -> replica

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Reply Call(const ServerAddress& a, const Command& cmd) {
  return NewRedisTransport({a})->Call(0, cmd, kCallTimeoutUs);
}

std::string Info(const ServerAddress& a, const std::string& field) {
  Reply r = Call(a, {"INFO", "replication"});
  return r.type == Reply::Type::kString ? InfoField(r.str, field) : "<" + r.ToString() + ">";
}

// Polls `pred` every 10 ms until it holds or `timeout_ms` passes.
template <typename Pred>
bool Eventually(Pred pred, int64_t timeout_ms) {
  const int64_t deadline_ms = NowMs() + timeout_ms;
  for (;;) {
    if (pred()) return true;
    if (NowMs() >= deadline_ms) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

class ReplicationITest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions mo;
    mo.extra_config = MasterReplicationConfig(ReplicationOptions());
    master_ = std::make_unique<EmbeddedServer>(0, dir_.path() + "/redis-0", mo);
    ASSERT_TRUE(master_->Start().ok());
    node_ = std::make_unique<ReplicatedNode>(master_.get(), dir_.path());
    const int64_t start_ms = NowMs();
    Status s = node_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    std::printf("[measure] replica start + initial sync: %lld ms\n",
                static_cast<long long>(NowMs() - start_ms));
  }

  ServerAddress M() const { return master_->address(); }
  ServerAddress R() const { return node_->replica()->address(); }

  // SETs `key` on the master with a 4 KiB value (so that dropped bytes >= 4096 can only be it)
  // and waits until the link proxy discarded it.
  void SetOnMasterDuringCut(const std::string& key) {
    const int64_t dropped_before = node_->link_stats().dropped_bytes[kRepliesDir];
    ASSERT_TRUE(Call(M(), {"SET", key, std::string(4096, 'x')}).is_ok_status());
    EXPECT_TRUE(node_->link()->WaitForStats(
        [&](const LinkStats& s) { return s.dropped_bytes[kRepliesDir] >= dropped_before + 4096; },
        5000))
        << "the write was never propagated toward the replica";
  }

  TempDir dir_;
  std::unique_ptr<EmbeddedServer> master_;
  std::unique_ptr<ReplicatedNode> node_;
};

TEST_F(ReplicationITest, ReplicationWorksThroughTheLinkProxy) {
  EXPECT_EQ(node_->replica()->name(), "redis-0-replica");
  EXPECT_EQ(node_->replica()->dir(), dir_.path() + "/redis-0-replica");
  EXPECT_EQ(Info(R(), "role"), "slave");
  EXPECT_EQ(Info(R(), "master_port"), std::to_string(node_->link()->address().port));
  ASSERT_TRUE(Call(M(), {"SET", "lock:a", "holder-1"}).is_ok_status());
  const int64_t start_ms = NowMs();
  Status s = node_->WaitInSync(kSyncTimeoutMs);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::printf("[measure] one SET replicated (WaitInSync): %lld ms\n",
              static_cast<long long>(NowMs() - start_ms));
  EXPECT_EQ(Call(R(), {"GET", "lock:a"}).str, "holder-1");
  Reply r = Call(R(), {"SET", "x", "y"});  // a replica is read-only
  EXPECT_EQ(r.type, Reply::Type::kError) << r.ToString();
  EXPECT_GT(node_->link_stats().forwarded_bytes[kRepliesDir], 0);  // the stream went via proxy
}

TEST_F(ReplicationITest, CutLinkKeepsLaterWritesOffTheReplicaUntilHealed) {
  ASSERT_TRUE(Call(M(), {"SET", "before", "1"}).is_ok_status());
  ASSERT_TRUE(node_->WaitInSync(kSyncTimeoutMs).ok());
  ASSERT_TRUE(node_->CutLink().ok());
  EXPECT_TRUE(node_->link_cut());
  SetOnMasterDuringCut("after");
  EXPECT_EQ(Call(R(), {"GET", "before"}).str, "1");
  EXPECT_EQ(Call(R(), {"GET", "after"}).type, Reply::Type::kNil);
  Status s = node_->WaitInSync(300);
  EXPECT_EQ(s.code(), Status::Code::kTimeout) << s.ToString();

  const int64_t heal_ms = NowMs();
  ASSERT_TRUE(node_->HealLink().ok());
  s = node_->WaitInSync(kSyncTimeoutMs);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::printf("[measure] heal -> in sync (reconnect + partial resync): %lld ms\n",
              static_cast<long long>(NowMs() - heal_ms));
  // Asynchronous replication: the write made during the cut arrives after the heal.
  EXPECT_EQ(Call(R(), {"GET", "after"}).str, std::string(4096, 'x'));
}

TEST_F(ReplicationITest, BothEndsNoticeACutWithinTheReplTimeout) {
  ASSERT_TRUE(node_->CutLink().ok());
  const int64_t cut_ms = NowMs();
  const int64_t bound_ms = (ReplicationOptions().repl_timeout_s + 3) * 1000;
  EXPECT_TRUE(Eventually([&] { return Info(R(), "master_link_status") == "down"; }, bound_ms));
  std::printf("[measure] cut -> replica master_link_status:down: %lld ms\n",
              static_cast<long long>(NowMs() - cut_ms));
  EXPECT_TRUE(Eventually([&] { return Info(M(), "connected_slaves") == "0"; }, bound_ms));
  std::printf("[measure] cut -> master connected_slaves:0: %lld ms\n",
              static_cast<long long>(NowMs() - cut_ms));
  ASSERT_TRUE(node_->HealLink().ok());
  Status s = node_->WaitInSync(kSyncTimeoutMs);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

// The "lock lost on failover" shape: the lock is acknowledged by the master, the link is cut
// before it reaches the replica, the replica is promoted without it.
TEST_F(ReplicationITest, PromoteAfterCutLosesTheWriteMadeDuringTheCut) {
  ASSERT_TRUE(Call(M(), {"SET", "lock:old", "holder-1"}).is_ok_status());
  ASSERT_TRUE(node_->WaitInSync(kSyncTimeoutMs).ok());
  ASSERT_TRUE(node_->CutLink().ok());
  SetOnMasterDuringCut("lock:new");
  const int64_t start_ms = NowMs();
  Status s = node_->Promote();
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::printf("[measure] Promote (REPLICAOF NO ONE -> role:master): %lld ms\n",
              static_cast<long long>(NowMs() - start_ms));
  EXPECT_EQ(Info(R(), "role"), "master");
  EXPECT_EQ(Call(R(), {"GET", "lock:new"}).type, Reply::Type::kNil);  // the lock is gone
  EXPECT_EQ(Call(R(), {"GET", "lock:old"}).str, "holder-1");
  Reply r = Call(R(), {"SET", "lock:new", "holder-2", "NX"});  // someone else takes it
  EXPECT_TRUE(r.is_ok_status()) << r.ToString();
  EXPECT_EQ(Call(M(), {"GET", "lock:new"}).str, std::string(4096, 'x'));  // two masters now
}

TEST_F(ReplicationITest, RestoreBringsBackRolesAndSyncAfterPromotionAndMasterKill) {
  ASSERT_TRUE(node_->CutLink().ok());
  ASSERT_TRUE(node_->Promote().ok());
  ASSERT_TRUE(Call(R(), {"SET", "only-on-promoted", "1"}).is_ok_status());
  const pid_t old_pid = master_->pid();
  master_->Kill();
  ASSERT_FALSE(master_->running());

  const int64_t start_ms = NowMs();
  Status s = node_->Restore();
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::printf("[measure] Restore after promotion + master kill (restart, full resync): %lld ms\n",
              static_cast<long long>(NowMs() - start_ms));
  EXPECT_TRUE(master_->running());
  EXPECT_NE(master_->pid(), old_pid);
  EXPECT_FALSE(node_->link_cut());
  EXPECT_EQ(node_->link()->mode(), LinkMode::kPass);
  EXPECT_EQ(Info(M(), "role"), "master");
  EXPECT_EQ(Info(R(), "role"), "slave");
  EXPECT_EQ(Info(R(), "master_port"), std::to_string(node_->link()->address().port));
  // The replica's data was replaced by the (restarted, empty) master's.
  EXPECT_EQ(Call(R(), {"GET", "only-on-promoted"}).type, Reply::Type::kNil);
  ASSERT_TRUE(Call(M(), {"SET", "after-restore", "1"}).is_ok_status());
  ASSERT_TRUE(node_->WaitInSync(kSyncTimeoutMs).ok());
  EXPECT_EQ(Call(R(), {"GET", "after-restore"}).str, "1");
  // And the link can be cut again.
  ASSERT_TRUE(node_->CutLink().ok());
  SetOnMasterDuringCut("after-second-cut");
  EXPECT_EQ(Call(R(), {"GET", "after-second-cut"}).type, Reply::Type::kNil);
}

TEST_F(ReplicationITest, RestoreFromAHealthyStateIsANoOpThatKeepsSync) {
  ASSERT_TRUE(Call(M(), {"SET", "k", "v"}).is_ok_status());
  Status s = node_->Restore();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Info(M(), "role"), "master");
  EXPECT_EQ(Call(R(), {"GET", "k"}).str, "v");
}

class SentinelITest : public ReplicationITest {
 protected:
  void SetUp() override {
    ReplicationITest::SetUp();
    if (HasFatalFailure()) return;
    sentinels_ = std::make_unique<SentinelGroup>(dir_.path());
    const int64_t start_ms = NowMs();
    Status s = sentinels_->Start(node_.get());
    ASSERT_TRUE(s.ok()) << s.ToString();
    std::printf("[measure] 3 sentinels started and ready (see replica + each other): %lld ms\n",
                static_cast<long long>(NowMs() - start_ms));
  }
  void TearDown() override {
    if (sentinels_) sentinels_->Stop();
  }

  bool AnySentinelLogHas(const std::string& needle) {
    for (int i = 0; i < 3; ++i) {
      std::ifstream f(sentinels_->log_path(i));
      std::stringstream ss;
      ss << f.rdbuf();
      if (ss.str().find(needle) != std::string::npos) return true;
    }
    return false;
  }

  // True if the replica's ACL LOG has a refused SLAVEOF/REPLICAOF by the sentinel user.
  bool ReplicaRefusedSlaveOf() {
    Reply r = Call(R(), {"ACL", "LOG"});
    if (r.type != Reply::Type::kArray) return false;
    for (const Reply& entry : r.elements) {
      bool by_sentinel = false, slaveof = false;
      for (size_t i = 0; i + 1 < entry.elements.size(); i += 2) {
        const std::string& k = entry.elements[i].str;
        const std::string& v = entry.elements[i + 1].str;
        if (k == "username" && v == kSentinelUser) by_sentinel = true;
        if (k == "object" && (v == "slaveof" || v == "replicaof")) slaveof = true;
      }
      if (by_sentinel && slaveof) return true;
    }
    return false;
  }

  std::unique_ptr<SentinelGroup> sentinels_;
};

TEST_F(SentinelITest, KillingTheMasterFailsOverToTheReplicaAndClientsFollow) {
  std::unique_ptr<FaultProxy> client_link;  // what clients are handed instead of the master
  ASSERT_TRUE(FaultProxy::Start(M(), &client_link).ok());
  auto client = NewRedisTransport({client_link->address()});
  ASSERT_TRUE(client->Call(0, {"SET", "lock:a", "holder-1"}, kCallTimeoutUs).is_ok_status());
  ASSERT_TRUE(node_->WaitInSync(kSyncTimeoutMs).ok());
  for (const ServerAddress& a : sentinels_->MasterAddresses()) EXPECT_EQ(a.port, M().port);

  master_->Kill();
  const int64_t kill_ms = NowMs();
  ServerAddress new_master;
  Status s = sentinels_->WaitForFailover(kFailoverTimeoutMs, &new_master);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::printf("[measure] master SIGKILL -> majority of sentinels report the replica: %lld ms\n",
              static_cast<long long>(NowMs() - kill_ms));
  EXPECT_EQ(new_master.port, R().port);
  EXPECT_EQ(Info(R(), "role"), "master");

  // Clients follow: the client link now leads to the new master.
  ASSERT_TRUE(client_link->SetUpstream(new_master).ok());
  Reply r = client->Call(0, {"GET", "lock:a"}, kCallTimeoutUs);
  if (r.unknown()) r = client->Call(0, {"GET", "lock:a"}, kCallTimeoutUs);
  EXPECT_EQ(r.str, "holder-1") << r.ToString();
  r = client->Call(0, {"SET", "lock:b", "holder-2"}, kCallTimeoutUs);
  EXPECT_TRUE(r.is_ok_status()) << r.ToString();
  EXPECT_EQ(Call(R(), {"GET", "lock:b"}).str, "holder-2");

  // Sentinels stopped, Restore puts the original roles back.
  sentinels_->Stop();
  s = node_->Restore();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Info(M(), "role"), "master");
  EXPECT_EQ(Info(R(), "role"), "slave");
}

// Sentinels try to point the replica at the master's real address (+fix-slave-config), which
// would bypass the link proxy; the replica's ACL refuses it, so the link stays cuttable.
TEST_F(SentinelITest, SentinelsCannotRedirectTheReplicaAroundTheLinkProxy) {
  // Sentinels act on INFO replies, which they ask replicas for every 10 s.
  const int64_t bound_ms = SentinelOptions().failover_timeout_ms + 20000;
  // The replica's ACL LOG records the refused SLAVEOF: proof that the attempt was made and
  // processed (the sentinels' "+fix-slave-config" log line only says it was sent).
  ASSERT_TRUE(Eventually([&] { return ReplicaRefusedSlaveOf(); }, bound_ms))
      << "no sentinel tried to fix the replica's master address (sentinel log has "
         "+fix-slave-config: "
      << AnySentinelLogHas("+fix-slave-config") << ")";
  Status s = node_->WaitInSync(kSyncTimeoutMs);  // fails if the replica bypasses the proxy
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Info(R(), "master_port"), std::to_string(node_->link()->address().port));
  ASSERT_TRUE(node_->CutLink().ok());
  SetOnMasterDuringCut("cut-with-sentinels");
  EXPECT_EQ(Call(R(), {"GET", "cut-with-sentinels"}).type, Reply::Type::kNil);
}

}  // namespace
}  // namespace lockstorm
