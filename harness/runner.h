// Runner: drives one lock implementation through one scenario's workload.
//
// For each client a thread (or a fiber: RunContext::client_threads) owns one Lock (built with its
// own Transport and Clock) and loops
//   acquire(key, ttl, wait) → critical section → release
// until the duration ends. The critical section reads the guarded resource (a deliberately
// non-atomic read-modify-write per key), holds for a time drawn from the scenario's hold
// mixture (some holds overrun the TTL), optionally extends, writes value+1, writes the fenced
// witness when the lease carries a fencing token, and releases — always, as a finally block
// would, even after the lease has expired. An honest client (check_lease) abandons its
// write once its validity deadline passes; a careless/paused one writes anyway.
//
// Every operation goes to the HistoryWriter; latencies go to per-client histograms merged at
// the end. One seed reproduces every random choice of the workload (keys, holds, tokens).
// Thread-safety: RunWorkload is called from one thread; it starts and joins its own.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "harness/clock.h"
#include "harness/histogram.h"
#include "harness/history.h"
#include "harness/lock.h"
#include "harness/witness.h"
#include "scenarios/scenario.h"

namespace lockstorm {

// A lock under test, whatever its origin (built-in table or exec plug-in).
struct ImplUnderTest {
  std::string name;
  std::set<std::string> expected_unsafe;
  // Scenario → kExpectUnsafe | kExpectLiveness, for locks that declare more than "unsafe"
  // (the mutants); takes precedence over expected_unsafe. The scenario's own expectations
  // override both.
  std::map<std::string, std::string> expected_by_scenario;
  bool multi_node = false;
  bool builtin = true;
  // Builds client `index`'s lock. `env` carries that client's transport, clock and seed;
  // `servers` are the addresses, for plug-ins that connect by themselves (built-in locks
  // must use env.transport).
  std::function<std::unique_ptr<Lock>(int index, const LockEnv& env,
                                      const std::vector<ServerAddress>& servers)>
      make;
};

// A direct PING to one node every kHealthIntervalMs during the safety phase (not through the
// fault links): the node's own health while the run goes.
struct NodeHealth {
  int node = 0;
  std::string address;
  int64_t pings = 0;   // answered PONG
  int64_t errors = 0;  // no answer within the timeout, or an error reply
  Histogram ping_us;   // round trip of the answered pings
};

// Live counters of a running workload, for the progress line (harness/run.cc). Written by the
// client threads (relaxed atomics), read by anyone.
struct RunProgress {
  std::atomic<int64_t> cycles{0};         // acquire operations completed
  std::atomic<int64_t> acquired{0};       // ... ok
  std::atomic<int64_t> overlaps_seen{0};  // ok acquires while another client held the key
};

struct RunStats {
  std::string impl;
  std::string scenario;
  int64_t attempts = 0;   // acquire tries (a waiting acquire retries)
  int64_t acquires = 0;   // acquire operations
  int64_t acquired = 0;   // ... that returned ok
  int64_t contended = 0;  // ... that returned fail (wait budget spent)
  int64_t unknown = 0;    // ... that returned unknown
  int64_t releases_ok = 0, releases_fail = 0, releases_unknown = 0;
  int64_t extends_ok = 0, extends_fail = 0, extends_unknown = 0;
  int64_t abandoned = 0;              // critical sections given up because validity ran out
  int64_t pauses = 0, crashes = 0;    // client faults applied
  int64_t probes = 0, probes_ok = 0;  // liveness-phase probe acquires
  int64_t witness_rejected = 0;
  std::vector<int64_t> acquired_per_client;
  std::vector<std::string> infra_errors;  // plug-in crashes/hangs/garbage (capped)
  int64_t infra_error_count = 0;
  // The safety phase, from its start to the last client's return: cycles begun before the
  // deadline finish after it, so this exceeds the duration by up to a hold + a wait.
  int64_t elapsed_us = 0;
  // The duration window [start, start + duration] (shorter if stopped early) and the ok
  // acquires completed in it: throughput = acquired_in_window / window_us.
  int64_t window_us = 0;
  int64_t acquired_in_window = 0;
  int64_t start_us = 0;       // the safety phase's start on the history clock (HistoryNowUs)
  int64_t overlaps_seen = 0;  // online hint: ok acquires while another client held the key
  Histogram acquire_us;       // ok acquires, invoke → complete (includes waiting and retries)
  Histogram acquire_contended_us;  // acquires that ended fail (wait budget spent)
  // Ok acquires, from the cycle's intended start (open loop: its slot in the schedule; closed
  // loop: the acquire's invoke) to the acquire's completion.
  Histogram time_to_acquire_us;
  Histogram release_us;
  Histogram extend_us;
  Histogram cycle_us;  // intended start → release complete, for cycles that released
  std::vector<NodeHealth> node_health;  // one per node, in node order
};

// Client faults the nemesis asks the runner for (the runner owns the clients).
enum class ClientFault {
  kPause,            // stall inside the critical section, after the validity check and
                     // before the write, for duration_us; background renewal frozen too
  kCrash,            // die holding the lease: no write, no release, renewal stops
  kCrashMidAcquire,  // die inside an acquire: at the lock's CrashPoint between its commands,
                     // or (atomic acquires) after the acquire command, before seeing the reply
};
const char* ClientFaultName(ClientFault f);  // "pause-holder", "crash-client", ...

struct ClientFaultRequest {
  ClientFault kind = ClientFault::kPause;
  std::vector<int> clients;  // these clients (each once); empty = the first client to get there
  int64_t duration_us = 0;   // pause length; crash: down time before a restart (0 = until the
                             // safety phase ends)
  int64_t expires_us = 0;    // HistoryNowUs() after which an unclaimed request lapses
  std::string label;         // the scenario's description of the event, for the history
};

// The runner's side of client faults; given to the FaultSchedule when the workload starts.
// Thread-safe: called from the nemesis thread while clients run.
class ClientControl {
 public:
  virtual ~ClientControl() = default;
  virtual int client_count() const = 0;
  // Queues a client fault; the target client applies it at its next fault point.
  virtual void Request(const ClientFaultRequest& r) = 0;
  // Client `i`'s clock (what its lock and its validity checks read): the client clock faults.
  virtual SkewedClock* ClientClock(int i) = 0;
};

// The nemesis as the runner sees it: told when the workload starts and when the safety phase
// is over. Implemented by Nemesis (harness/nemesis.h).
class FaultSchedule {
 public:
  virtual ~FaultSchedule() = default;
  // The workload starts now (`start_us` on the history clock): run the timeline (on a thread
  // of its own; returns at once). `clients` lives until HealAll returns.
  virtual void Begin(ClientControl* clients, int64_t start_us) = 0;
  // The safety phase is over: stop the timeline and undo every fault still in effect (bounded).
  // After it returns every node is up and every link passes; the liveness phase follows.
  virtual void HealAll() = 0;
};

struct RunContext {
  std::vector<ServerAddress> servers;  // node order
  HistoryWriter* history = nullptr;    // not owned
  Witness* witness = nullptr;          // not owned
  std::string key_prefix;              // every key this run touches starts with it
  uint64_t seed = 0;
  const std::atomic<bool>* stop = nullptr;  // set to end early (Ctrl-C)
  // Builds each client's transport; default NewRedisTransport. The seam through which unit
  // tests (an in-memory Redis), the fault proxy and the simulator reach the runner.
  std::function<std::unique_ptr<Transport>(const std::vector<ServerAddress>&)> new_transport;
  // Client i's view of the nodes (through its fault-proxy links when the scenario has network
  // faults). Default: `servers` for every client.
  std::function<std::vector<ServerAddress>(int client)> client_servers;
  FaultSchedule* faults = nullptr;  // the nemesis; null = no faults. Not owned.
  int64_t liveness_bound_ms = 0;    // liveness probe wait; 0 = ttl + 1000
  bool liveness_phase = true;       // run the liveness phase after the safety phase
  // Sample lock keys directly on the nodes (GET + PTTL) after each ok acquire / ok extend /
  // failed acquire and after the run, as kSample events for the contract checks. Costs one
  // round trip per sampled operation outside the measured latencies.
  bool contract_samples = true;
  // PING every node directly every kHealthIntervalMs during the safety phase (node_health).
  bool node_health = true;
  RunProgress* progress = nullptr;  // live counters; null = none. Not owned.
  // 0: every client runs on an OS thread of its own. N > 0: the clients run as fibers on N
  // threads (harness/fiber.h) — the way to drive hundreds of clients without the harness
  // spending more CPU on thread wakeups than Redis spends serving them.
  int client_threads = 0;
};

// The client_threads `lockstorm run` uses unless told (--client-threads): an OS thread per
// client up to kMaxThreadPerClient clients; beyond, fibers on one thread per CPU the process
// may run on.
inline constexpr int kMaxThreadPerClient = 64;
int AutoClientThreads(int clients);

inline constexpr int64_t kHealthIntervalMs = 100;

// Runs `impl` through `scenario`. Never throws; infrastructure errors are counted in stats.
RunStats RunWorkload(const ImplUnderTest& impl, const Scenario& scenario, const RunContext& ctx);

// The name of lock key `k` of `impl` in `scenario` (every key starts with the run's `prefix`).
std::string LockKey(const std::string& prefix, const std::string& impl, const std::string& scenario,
                    int k);

// Deterministic per-purpose seeds: SplitMix64 of (seed, a, b).
uint64_t DeriveSeed(uint64_t seed, uint64_t a, uint64_t b = 0);

}  // namespace lockstorm
