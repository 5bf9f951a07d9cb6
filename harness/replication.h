// Replication: a master and one asynchronously replicating replica whose replication link runs
// through a FaultProxy, so that the link can be cut; failover by explicit promotion
// (ReplicatedNode::Promote) or by three real redis-sentinel processes (SentinelGroup).
//
//   clients ──▶ master (EmbeddedServer, not owned) ◀── link proxy (FaultProxy) ◀── replica
//                  ▲                                                               (owned)
//                  └──────── SentinelGroup: 3 redis-sentinel, monitor the master's real address
//
// The replica's redis.conf says `replicaof 127.0.0.1 <link proxy port>`: the replica opens the
// replication connection to the proxy, so SetMode(kBlackhole) on it is a partition between
// master and replica only (clients and sentinels still reach both). Replication stays
// asynchronous: a write acknowledged by the master may never reach the replica, which is the
// point (a lock written on the master and lost on failover). docs/replication.md has the timings.
//
// Sentinels "fix" a replica that replicates from another address than the master they monitor
// (+fix-slave-config: they would send REPLICAOF <real master> and the replica would bypass the
// proxy). So the replica defines the ACL user kSentinelUser, used by the sentinels, that may run
// every command except REPLICAOF/SLAVEOF with a host: `REPLICAOF NO ONE` (promotion) is allowed,
// the "fix" is refused (NOPERM) and the link keeps going through the proxy. lockstorm itself uses
// the default user, which may do everything.
//
// Only embedded servers (started by lockstorm) are ever reconfigured, restarted or promoted.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "harness/fault_proxy.h"
#include "harness/process.h"
#include "harness/redis_server.h"
#include "harness/status.h"
#include "harness/transport.h"

namespace lockstorm {

// The ACL user the sentinels log in as (defined on the replica by its config, on the master by
// SentinelGroup::Start) and its password. Loopback-only test servers: not a secret.
inline constexpr char kSentinelUser[] = "lockstorm-sentinel";
inline constexpr char kSentinelPassword[] = "lockstorm-sentinel-pw";

struct ReplicationOptions {
  // Base options of the replica (binary, persistence, clock_control, start_timeout_ms...). The
  // replication lines (replicaof, repl-timeout, repl-ping-replica-period, the sentinel ACL
  // user) are appended to its extra_config.
  ServerOptions replica;
  // Both ends declare the link dead after more than repl_timeout_s without data or PING (Redis
  // checks once a second, in whole seconds); the master PINGs the replica every
  // repl_ping_replica_period_s. 4 s / 1 s: a cut is noticed ~5 s after it starts (measured
  // 5.03-5.05 s), and a healthy link flaps only if 4 consecutive PINGs are late (a 4 s stall of a
  // loaded machine). Redis defaults are 60 s / 10 s. Requires repl_timeout_s >
  // repl_ping_replica_period_s >= 1.
  int repl_timeout_s = 4;
  int repl_ping_replica_period_s = 1;
  // Bound on each command sent to a server (INFO, REPLICAOF, ...).
  int64_t command_timeout_ms = 2000;
  // Bound on Start()'s and Restore()'s wait for sync, and on Promote()'s wait for role:master.
  int64_t wait_timeout_ms = 15000;
  // Loop of the link proxy; null = a private loop thread.
  std::shared_ptr<ProxyLoop> loop;
};

// The redis.conf lines a master needs for `opts` (repl-timeout, repl-ping-replica-period, and
// repl-diskless-sync-delay 0 so that a full sync starts at once instead of after Redis's 5 s wait
// for more replicas). ReplicatedNode::Start and Restore apply them with CONFIG SET; add them to the
// master's ServerOptions::extra_config as well so that they survive restarts made by others.
std::vector<std::string> MasterReplicationConfig(const ReplicationOptions& opts);

// One replica of an embedded master, with a cuttable replication link.
//
// Thread-safety: the methods that act (Start, WaitInSync, CutLink, HealLink, Promote, Restore)
// are called from one control thread, like ServerSet's; they may run while client threads talk
// to the servers. The accessors and link()'s methods may be used from any thread.
class ReplicatedNode {
 public:
  // `master` must outlive this object; it is not owned, and only Restore() restarts it.
  // The replica lives in `run_dir`/<master name>-replica/ and is named "<master name>-replica".
  ReplicatedNode(EmbeddedServer* master, std::string run_dir, ReplicationOptions opts = {});
  // Stops the replica and the link proxy. Never stops the master.
  ~ReplicatedNode();
  ReplicatedNode(const ReplicatedNode&) = delete;
  ReplicatedNode& operator=(const ReplicatedNode&) = delete;

  // Applies MasterReplicationConfig to the master (CONFIG SET), starts the link proxy (upstream:
  // the master's address) and the replica (replicaof the proxy), then WaitInSync(wait_timeout_ms).
  // Ok = the replica is up, replicating through the proxy and in sync. On failure the replica and
  // proxy are stopped again and the message names the server and the reason (kInvalidArgument for
  // bad options or a master that is not running; what EmbeddedServer::Start returns; kTimeout from
  // the sync). Call once.
  Status Start();

  // Waits until the replica has everything the master had when WaitInSync was called: the master
  // is role:master, and the replica's INFO replication says role:slave, master_port = the link
  // proxy, master_link_status:up and slave_repl_offset >= the master's master_repl_offset read at
  // the call. Polls INFO every 5 ms, at most `timeout_ms` in all. (After a full sync the master
  // starts streaming new writes only on the replica's first REPLCONF ACK, sent once a second:
  // writes made in that first second reach the replica up to ~1 s late, never lost.) kTimeout
  // (saying the last state seen: link down, offsets) if not in sync by then — e.g. while the link
  // is cut; kIoError if the master cannot be asked for its offset; kInternal if the replica
  // replicates from somewhere else than the link proxy (the link could not be cut: refuse to
  // pretend).
  Status WaitInSync(int64_t timeout_ms);

  // Partition between master and replica: every replication byte read by the proxy afterwards is
  // discarded, both ways (kBlackhole). When it returns ok, no write that the master starts
  // afterwards reaches the replica until HealLink(); writes made just before may be lost too (as
  // in-flight packets are). Both ends notice ~repl_timeout_s + 1 s later (link down, replica
  // dropped by the master). Errors: FaultProxy::SetMode's.
  Status CutLink();

  // Ends the partition (a no-op if the link is not cut and passes): resets the link's connections
  // (a replication stream with a hole in it must not be resumed: real TCP would have
  // retransmitted, or broken the connection), then lets bytes pass. The replica reconnects at
  // once (bytes are held, not discarded, between the reset and the pass, so its handshake is not
  // lost) and resyncs, partially from the master's backlog when possible: writes made during the
  // cut then arrive. Does not wait for the sync (WaitInSync does). Errors: FaultProxy's.
  Status HealLink();
  // True between a successful CutLink() and a successful HealLink().
  bool link_cut() const { return link_cut_; }

  // Explicit failover: REPLICAOF NO ONE on the replica, then waits (bounded by wait_timeout_ms)
  // until its INFO replication says role:master. Ok = the replica is a master and accepts writes;
  // it has exactly the writes that reached it (none made after a CutLink). The old master is not
  // touched (two masters: clients must be pointed at the new one, e.g. FaultProxy::SetUpstream).
  Status Promote();

  // Puts everything back for the next run, from whatever state: the master running (Restart()ed
  // if killed or not answering PING, resumed if paused) and a master (REPLICAOF NO ONE, in case a
  // sentinel demoted it), the replica running (likewise) and replicaof the link proxy again, the
  // link healed, then WaitInSync(wait_timeout_ms). Data on the replica is replaced by the master's
  // (full resync after a promotion). Stop a SentinelGroup first: sentinels would keep reporting,
  // and acting on, the failover. Ok = roles and sync are back; otherwise the step that failed is
  // named.
  Status Restore();

  EmbeddedServer* master() const { return master_; }
  EmbeddedServer* replica() const { return replica_.get(); }
  // The replication link's proxy (null before Start()). Its stats: link()->Stats().
  FaultProxy* link() const { return link_.get(); }
  LinkStats link_stats() const { return link_ ? link_->Stats() : LinkStats(); }

 private:
  EmbeddedServer* master_;
  std::string run_dir_;
  ReplicationOptions opts_;
  std::unique_ptr<FaultProxy> link_;
  std::unique_ptr<EmbeddedServer> replica_;
  bool link_cut_ = false;

  // Sends REPLICAOF <link proxy> to the replica.
  Status PointReplicaAtLink();
  // CONFIG SET of MasterReplicationConfig(opts_) on the master.
  Status ConfigureMaster();
};

struct SentinelOptions {
  std::string redis_sentinel_path = "redis-sentinel";  // looked up in PATH
  std::string master_name = "lockstorm";               // SENTINEL monitor <name>
  int count = 3;                                       // sentinel processes
  int quorum = 2;                                      // sentinels that must agree on ODOWN
  // SDOWN after this long without a valid PING reply. 1 s: a failover starts ~1-2 s after the
  // master dies; a master stalled for 1 s (SIGSTOP, a long fork) is failed over too.
  int64_t down_after_ms = 1000;
  // Bounds each failover step, and a failed attempt (e.g. a split vote) is retried after twice
  // this. 3 s: retries come fast; steps take milliseconds on loopback.
  int64_t failover_timeout_ms = 3000;
  // Bound on Start(): each sentinel answers PING, then all see the replica and each other.
  int64_t start_timeout_ms = 15000;
  int64_t command_timeout_ms = 2000;  // bound on each command sent to a sentinel or server
};

// `count` real redis-sentinel processes monitoring one ReplicatedNode's master (its real
// address, not a proxy). When the master dies they elect a leader that promotes the replica.
// Each sentinel lives in `run_dir`/sentinel-<i>/ (sentinel.conf, rewritten by the sentinel;
// sentinel.log). Processes are started by Spawn (they die with lockstorm).
//
// Thread-safety: Start/Stop from one control thread; WaitForFailover/MasterAddresses from any
// thread once Start returned (they only open their own connections).
class SentinelGroup {
 public:
  explicit SentinelGroup(std::string run_dir, SentinelOptions opts = {});
  ~SentinelGroup();  // Stop()
  SentinelGroup(const SentinelGroup&) = delete;
  SentinelGroup& operator=(const SentinelGroup&) = delete;

  // Defines kSentinelUser on the master (ACL SETUSER; the replica has it from its config),
  // starts the sentinels on free loopback ports, and waits (bounded by start_timeout_ms) until
  // every sentinel answers PING and its INFO sentinel reports the master with status ok, the
  // replica, and all `count` sentinels: only then can a failover be agreed on. `node` must be
  // Start()ed, in sync, and outlive the group. On failure stops what was started; the message
  // names the sentinel and its log. Call once.
  Status Start(ReplicatedNode* node);

  // Polls every sentinel's SENTINEL get-master-addr-by-name every 10 ms until a majority of them
  // report one same address other than the master's at Start(), at most `timeout_ms`. Ok: that
  // address in *new_master (sentinels announce it after the promoted replica reported
  // role:master). kTimeout saying what each sentinel reported last otherwise.
  Status WaitForFailover(int64_t timeout_ms, ServerAddress* new_master);

  // What each sentinel currently reports as the master (empty host for one that did not answer).
  std::vector<ServerAddress> MasterAddresses();

  // SIGTERM to all, then waits (bounded, 1 s grace) and SIGKILLs what is left; reaped.
  // Idempotent.
  void Stop();

  std::vector<ServerAddress> addresses() const;
  const std::string& log_path(int i) const { return sentinels_.at(static_cast<size_t>(i)).log; }

 private:
  struct Sentinel {
    std::string dir;
    std::string log;
    int port = 0;
    std::unique_ptr<Process> process;
  };
  std::string run_dir_;
  SentinelOptions opts_;
  ServerAddress initial_master_;
  std::vector<Sentinel> sentinels_;

  // Starts sentinel `i` (retrying other ports if its port was taken) and waits for PING.
  Status StartOne(int i, const ServerAddress& master, int64_t deadline_ms);
};

// The value of `key` in an INFO reply ("role" -> "master"), "" if absent. Exposed for tests.
std::string InfoField(const std::string& info, const std::string& key);

}  // namespace lockstorm
