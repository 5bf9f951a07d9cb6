// KeyObserver: watches lock keys on every node and records when each value was present; and
// FindGhostLocks: which of those values were "ghost locks" (issue #4).
//
// A ghost lock is a lock key present in Redis whose value is the token of an acquire the
// client does NOT believe succeeded (outcome fail or unknown) — e.g. its SET was applied but
// the fault proxy dropped the reply. A correct Redlock deletes such keys on every node right
// after the failed quorum, so its ghosts live for milliseconds; a single-node lock has no
// cleanup, and its ghost lives until its TTL (blocking every other client meanwhile).
//
// The observer talks to the nodes DIRECTLY (not through the fault proxy) so that what it sees
// is the servers' state, not the faults'. It only reads (a read-only Lua script of GET and
// PTTL per key), so it is safe on --servers addresses.
//
// Resolution. Every poll_interval_us the observer runs one EVAL per node (per chunk of at most
// kMaxKeysPerPoll keys), all nodes at once (Transport::CallManyUntil). Each node's answer is
// stamped with HistoryNowUs() when its reply was read (the server ran the script within the
// round trip before that; tens of µs on loopback), so stamps compare with history events. A
// value that appears and disappears between two polls is never seen: everything below is a
// sample, with a resolution of one poll interval (plus a round trip).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "harness/history.h"
#include "harness/lock.h"
#include "harness/status.h"
#include "harness/transport.h"

namespace lockstorm {

// One interval during which `key` on `node` held `value`, as sampled by the polls.
//   first_seen_us: the first poll that saw the value (the key held it at some moment of that
//     poll's round trip, so it was set no later than first_seen_us).
//   last_seen_us: the last poll that saw it. The key held the value at least over
//     [first_seen_us, last_seen_us] (a lower bound on its lifetime).
//   gone_us: the first poll that found the key absent or holding another value (so it was
//     gone by gone_us); -1 if still present when the observer stopped, or when the node
//     stopped answering and never answered again. Polls that fail do not end a presence.
//   pttl_ms_first: PTTL at the first sighting (-1: the key had no TTL).
// All times are HistoryNowUs().
struct KeyPresence {
  int node = -1;
  std::string key;
  std::string value;
  int64_t first_seen_us = 0;
  int64_t last_seen_us = 0;
  int64_t gone_us = -1;
  int64_t pttl_ms_first = 0;
};

struct KeyObserverOptions {
  int64_t poll_interval_us = 2000;  // start of one poll round to the start of the next
  // Bound on one node's answer to one poll; a node that does not answer within it is
  // skipped for that round (counted in errors).
  int64_t command_timeout_us = 20'000;
  // After a node TIMED OUT (paused, overloaded) it is not polled again for this long, so that
  // a paused node does not slow every round down to command_timeout_us. A node that refuses
  // connections (killed) fails at once and is retried every round.
  int64_t timeout_backoff_us = 200'000;
  size_t max_presences = 100'000;                // intervals kept; more are counted in dropped
  int64_t max_run_us = 24LL * 3600 * 1'000'000;  // the thread stops by itself after this
};

struct KeyObserverStats {
  int64_t rounds = 0;   // poll rounds completed (not cut short by Stop())
  int64_t polls = 0;    // node polls (one per node per chunk) answered with a well-formed reply
  int64_t errors = 0;   // node polls that failed (timeout, I/O error, error or malformed reply)
  int64_t skipped = 0;  // node polls not sent because the node was in timeout backoff
  int64_t dropped = 0;  // presences not recorded because max_presences was reached
  std::vector<int64_t> errors_per_node;
  std::string last_error;  // "node 1: (timeout) no reply from ..." — the latest error
};

// Polls `keys` on every node from its own thread and keeps their presence intervals.
//
// Thread-safety: Start() and Stop() are called from one controlling thread; Presences(),
// Stats() and WaitFor() may be called from any thread at any time. The Transport is created
// by Start() and then used by the observer's thread only.
//
// Bounds: every command has command_timeout_us; Stop() returns within about
// command_timeout_us (it waits for the poll in flight, then joins); at most max_presences
// intervals are kept; at most kMaxKeys keys.
class KeyObserver {
 public:
  static constexpr size_t kMaxKeys = 100'000;
  static constexpr size_t kMaxKeysPerPoll = 1000;  // keys per EVAL; more keys → more EVALs
  static constexpr size_t kMaxValueBytes = 4096;   // a longer value is kept truncated

  using TransportFactory = std::function<std::unique_ptr<Transport>()>;

  // Observes the nodes at `nodes` (their DIRECT addresses, not the proxy's), node i being
  // nodes[i] — the same indexes as the run's transports.
  KeyObserver(std::vector<ServerAddress> nodes, std::vector<std::string> keys,
              KeyObserverOptions opts = {});
  // Observes through a transport made by `make_transport` (called once, by Start()); node
  // indexes are that transport's.
  KeyObserver(TransportFactory make_transport, std::vector<std::string> keys,
              KeyObserverOptions opts = {});
  ~KeyObserver();  // Stop()s

  KeyObserver(const KeyObserver&) = delete;
  KeyObserver& operator=(const KeyObserver&) = delete;

  // Validates the options and keys, creates the transport and starts the polling thread; the
  // first round starts at once. InvalidArgument for no keys, more than kMaxKeys, no
  // transport or one with no nodes, an interval or timeout out of range, or a zero
  // max_presences; Internal if called after Start() or Stop() (an observer runs once).
  // Unreachable nodes are not an error (they are counted per poll).
  Status Start();

  // Stops polling and joins the thread. Presences still open keep gone_us = -1. Idempotent;
  // a no-op if never started.
  void Stop();

  // A copy of every interval recorded so far, in the order they were first seen.
  std::vector<KeyPresence> Presences() const;
  KeyObserverStats Stats() const;

  // Waits until `pred(Presences())` is true, re-evaluating after every poll round, for at
  // most `timeout_us`. Returns whether it became true. `pred` runs under the observer's lock:
  // it must be quick and must not call back into the observer.
  bool WaitFor(const std::function<bool(const std::vector<KeyPresence>&)>& pred,
               int64_t timeout_us) const;

 private:
  // What is known of one (node, key) between polls.
  struct Open {
    bool present = false;
    std::string value;
    int64_t index = -1;  // into presences_, -1 if dropped
  };

  void Loop(std::unique_ptr<Transport> transport);
  // One round: every node not in backoff, every chunk of keys. False if Stop() cut it short.
  bool PollRound(Transport* transport, std::vector<int64_t>* backoff_until_us);
  // Applies one node's answer for keys_[first, first + count) (`reply` is the script's flat
  // array value, pttl, value, pttl...). False (and nothing applied) if malformed.
  bool Apply(int node, size_t first, size_t count, const Reply& reply, int64_t at_us);
  void NoteError(int node, const std::string& what);

  TransportFactory make_transport_;
  const std::vector<std::string> keys_;
  const KeyObserverOptions opts_;

  mutable std::mutex mu_;
  mutable std::condition_variable round_cv_;  // notified after every round and on stop
  bool started_ = false;
  bool stop_ = false;
  int node_count_ = 0;                  // set by Start()
  std::vector<Open> open_;              // node * keys_.size() + key index
  std::vector<KeyPresence> presences_;  // bounded by opts_.max_presences
  KeyObserverStats stats_;
  std::thread thread_;
};

// One ghost presence, for examples in a report.
struct GhostLock {
  int node = -1;
  std::string key;
  std::string token;  // the presence's value = the acquire's token
  int64_t acquire_op = 0;
  Outcome outcome = Outcome::kUnknown;  // of that acquire: kFail or kUnknown
  int client = -1;
  int64_t first_seen_us = 0;
  double lifetime_ms = 0;  // see GhostReport
  bool still_present = false;
};

// What FindGhostLocks found for one (impl, scenario).
//
// Lifetime of a presence: first_seen_us → gone_us, or → last_seen_us if it was still present
// when the observer stopped (then a lower bound). It is SAMPLED: it may miss up to one poll
// interval before first_seen_us and includes up to one poll interval after the last sighting,
// so it is accurate to one poll interval; last_seen_us - first_seen_us is a strict lower
// bound. A ghost that lived less than one poll interval may not be seen at all: `count` is a
// lower bound too.
struct GhostReport {
  std::string impl;
  std::string scenario;
  int64_t examined = 0;       // presences on keys this (impl, scenario) used
  int64_t other_keys = 0;     // presences on keys it never used (not examined)
  int64_t legit = 0;          // value = token of an acquire with outcome ok
  int64_t count = 0;          // ghosts: value = token of an acquire with outcome fail/unknown
  int64_t ghost_tokens = 0;   // distinct acquires that left at least one ghost
  int64_t still_present = 0;  // ghosts still present when the observer stopped
  int64_t foreign = 0;        // value = no acquire token of this (impl, scenario)
  int64_t other_runs = 0;     // value = token of an acquire of another (impl, scenario)
  // Acquires of this (impl, scenario) with outcome fail/unknown and no token in the history:
  // their ghosts, if any, cannot be recognized and count as foreign.
  int64_t untokened_acquires = 0;
  double p50_lifetime_ms = 0;  // nearest-rank median over ghosts; 0 if none
  double max_lifetime_ms = 0;
  std::vector<int64_t> per_node;    // ghosts per node index (size: largest node seen + 1)
  std::vector<GhostLock> examples;  // the longest-lived ghosts, longest first
};

inline constexpr size_t kDefaultGhostExamples = 10;

// Classifies each presence on a key used by (impl, scenario) by its value, against the
// `token` of that pair's acquire events (OpType::kAcquire):
//   value == token of an acquire with outcome kOk           → legit
//   value == token of an acquire with outcome kFail/kUnknown → ghost
//   value == the token of no acquire of the pair            → foreign (or other_runs when it
//                                                              is another pair's token)
// The rule is exact equality: every built-in lock stores its Lease.token as the key's value
// (set-nx-del, token-lua, watchdog, setnx-expire, redlock: SET/SETNX key token; fenced: the
// script's SET key token, its fence counter living in the separate key "<key>:fence", which
// is never an event key and so is not examined). Acquire events with an empty token are never
// matched (counted in untokened_acquires): redlock records no token for an acquire that ended
// kFail, so a minority of its keys left behind by a failed cleanup counts as foreign; and only
// the LAST attempt's token of a retried acquire is recorded. If several acquires carry the
// same token, an ok one wins. Pure function.
GhostReport FindGhostLocks(const std::vector<KeyPresence>& presences,
                           const std::vector<Event>& events, const std::string& impl,
                           const std::string& scenario,
                           size_t max_examples = kDefaultGhostExamples);

// {"impl","scenario","count","ghost_tokens","still_present","examined","other_keys","legit",
//  "foreign","other_runs","untokened_acquires","p50_lifetime_ms","max_lifetime_ms",
//  "per_node":[..],"examples":[{"node","key","token","acquire_op","outcome","client",
//  "first_seen_us","lifetime_ms","still_present"}]}
nlohmann::json GhostReportToJson(const GhostReport& r);

}  // namespace lockstorm
