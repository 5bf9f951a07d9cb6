// Nemesis: executes a scenario's fault timeline (Scenario::nemesis) against real processes,
// real links and real clocks while the runner's clients work, then heals everything.
//
//   node faults     kill-node, restart-node, pause-node  → EmbeddedServer Kill/Restart/Pause
//   clock faults    clock-jump, clock-rate               → EmbeddedServer::clock() (LD_PRELOAD
//   shim) link faults     partition, one-way-replies, drop-requests, latency, reset-connections,
//                   refuse-connections                   → the LinkGrid's fault proxies
//   replication     cut-replication, failover            → ReplicatedNode (harness/replication.h)
//   client faults   pause-holder, crash-client, crash-mid-acquire → the runner (ClientControl)
//   client clocks   client-clock-jump, client-clock-rate → the clients' SkewedClocks;
//                   client-wall-clock-jump → their wall clocks only (an NTP step)
//
// Every fault period is recorded in the history as a kFault event [start, end] naming the impl
// and scenario, whose note says what was done and what was observed to prove it happened
// (a stopped process's /proc state, PTTL before/after a jump, the rate PTTL ran at, proxy
// drop counters, lock keys surviving a restart, a replica's role). The same lines are kept in
// records() for the report.
//
// Thread-safety: Begin/HealAll/Reset from the runner's control thread; the timeline runs on a
// thread of its own, joined by HealAll.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness/fault_proxy.h"
#include "harness/history.h"
#include "harness/redis_server.h"
#include "harness/runner.h"
#include "scenarios/scenario.h"

namespace lockstorm {

// A node's master/replica pair, as the nemesis drives it (implemented over ReplicatedNode,
// harness/replication.h). Calls are bounded; failures say why in one line.
class ReplicaControl {
 public:
  virtual ~ReplicaControl() = default;
  virtual EmbeddedServer* master() = 0;
  virtual EmbeddedServer* replica() = 0;
  virtual Status CutLink() = 0;   // replication link blackholed
  virtual Status HealLink() = 0;  // ... passing again
  virtual Status Promote() = 0;   // REPLICAOF NO ONE on the replica; ok once it is master
  virtual Status Restore() = 0;   // original roles, link passing, replica in sync
};

// One fault proxy per (client, node) link, all served by one ProxyLoop thread. Clients are
// handed ClientServers(c) instead of the nodes' addresses.
class LinkGrid {
 public:
  // Starts clients × nodes proxies in kPass. Fails if a proxy cannot start.
  static Status Start(int clients, const std::vector<ServerAddress>& nodes, uint64_t seed,
                      std::unique_ptr<LinkGrid>* out);
  int clients() const { return clients_; }
  int nodes() const { return nodes_; }
  FaultProxy* link(int client, int node) {
    return links_[static_cast<size_t>(client * nodes_ + node)].get();
  }
  std::vector<ServerAddress> ClientServers(int client) const;
  // Every link back to pass with no latency (the heal).
  void PassAll();

 private:
  int clients_ = 0, nodes_ = 0;
  std::vector<std::unique_ptr<FaultProxy>> links_;
};

// What the nemesis acts on. Pointers are not owned and outlive the Nemesis.
struct NemesisTargets {
  ServerSet* servers = nullptr;  // node and clock faults need embedded servers
  LinkGrid* links = nullptr;     // link faults; null if the scenario has none
  // Per node: its replica (null where there is none). cut-replication and failover.
  std::vector<ReplicaControl*> replicas;
  HistoryWriter* history = nullptr;
  std::string impl;        // recorded on every kFault event
  int impl_nodes = 0;      // nodes the lock uses (a single-node lock: node 0 only); 0 = all
  std::string key_prefix;  // the run's key prefix (evidence probes write under it)
};

// A fault the nemesis applied (the report reads the same facts from the history's kFault
// events; these are for the console and tests).
struct FaultRecord {
  std::string fault;
  int64_t start_ms = 0, end_ms = 0;  // relative to the workload start
  std::string detail;                // what was done and the evidence it happened
  bool ok = true;                    // false if the fault could not be applied (why in detail)
};

class Nemesis : public FaultSchedule {
 public:
  Nemesis(const Scenario& scenario, NemesisTargets targets);
  ~Nemesis() override;  // HealAll() if still running

  // Whether `scenario` needs a link grid (link faults, failover with a grid to redirect).
  static bool NeedsLinks(const Scenario& scenario);

  // `scenario` made safe for servers lockstorm did not start (--servers): without the events
  // that kill, pause, restart, fail over or skew a redis-server, and without
  // replicas. Appends one line per dropped part to `skipped`, e.g.
  // "at 2.0 s: clock-jump nodes [0] by 500 ms" (why: the caller's words).
  static Scenario WithoutServerFaults(const Scenario& scenario, std::vector<std::string>* skipped);

  void Begin(ClientControl* clients, int64_t start_us) override;
  void HealAll() override;
  // Between two runs on the same servers: clock offsets back to 0, replication restored.
  Status Reset();

  std::vector<FaultRecord> records() const;

 private:
  struct Action;
  void Loop();
  void Apply(const Action& a);
  void Record(const std::string& fault, int64_t start_us, int64_t end_us, const std::string& detail,
              bool ok);
  // Waits (at most kStrikeWaitMs) until `node` holds a lock key of this impl with at least
  // 80% of the TTL left; says what it found.
  std::string StrikeWhenHeld(int node, bool via_replica_master);

  Scenario scenario_;
  NemesisTargets t_;
  ClientControl* clients_ = nullptr;
  int64_t start_us_ = 0;
  std::vector<Action> actions_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool healed_ = true;  // HealAll ran since the last Begin (control thread only)
  std::vector<FaultRecord> records_;
  struct Active;
  std::vector<std::unique_ptr<Active>> active_;  // faults begun and not yet ended
};

}  // namespace lockstorm
