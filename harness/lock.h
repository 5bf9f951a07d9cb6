// Lock: the interface every lock implementation under test provides.
//
// Every operation ends in exactly one Outcome, as in Jepsen:
//   kOk      — the operation definitely took effect (acquired / released / extended).
//   kFail    — it definitely did not (the lock is held by someone else, the lease expired...).
//   kUnknown — it may or may not have: a timeout or connection error on the way. An unknown
//              acquire MAY hold the lock in Redis (until its TTL) although the client does
//              not believe it does; the checker accounts for that.
//
// Implementations reach Redis only through LockEnv::transport and read time only through
// LockEnv::clock (never raw hiredis, never steady_clock): this is what lets the same code run
// over the fault proxy, under a skewed client clock, and on the deterministic simulator.
//
// Thread-safety: one Lock instance belongs to one client. Acquire/Release/Extend are called
// from that client's thread only, one at a time; Crash() may be called from another thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "harness/clock.h"
#include "harness/rng.h"
#include "harness/status.h"
#include "harness/transport.h"

namespace lockstorm {

enum class Outcome { kOk, kFail, kUnknown };
const char* OutcomeName(Outcome o);  // "ok", "fail", "unknown"

// What a successful acquire hands the client. Opaque to the runner except for the fields.
struct Lease {
  std::string key;
  std::string token;             // the lock's own identity of this grant (random value, ...)
  std::optional<int64_t> fence;  // fencing token, strictly increasing per key, if the lock has one
  int64_t valid_ms = 0;          // remaining validity at completion, as measured by the lock
};

struct AcquireResult {
  Outcome outcome = Outcome::kFail;
  Lease lease;          // meaningful when outcome == kOk; on kUnknown, key and token name what
                        // the lock may hold (built-in locks fill them; for ghost-lock reports)
  int attempts = 0;     // tries made within the wait budget (>= 1)
  int split_votes = 0;  // multi-node locks: tries that won some votes but not a quorum
  std::string error;    // why, when kUnknown (or a note when kFail)
};

struct ReleaseResult {
  Outcome outcome = Outcome::kFail;  // kFail: the lock was no longer ours (expired, taken)
  std::string error;
};

struct ExtendResult {
  Outcome outcome = Outcome::kFail;  // kFail: the lock was no longer ours
  int64_t valid_ms = 0;              // new remaining validity when kOk
  std::string error;
};

// Told about work a lock does on its own (a watchdog's renewals), so that the history holds
// every extension of a lease. Called from the lock's background thread; must be thread-safe.
class LockObserver {
 public:
  virtual ~LockObserver() = default;
  // A background extend of `lease` that took `elapsed_us` (lock clock) ended with `result`.
  virtual void OnBackgroundExtend(const Lease& lease, const ExtendResult& result,
                                  int64_t elapsed_us) = 0;
  // A lock whose acquire takes several commands (SETNX then PEXPIRE) calls this between them,
  // naming the point ("setnx-expire: after SETNX"). True means the client process dies right
  // there (the nemesis' crash-mid-acquire): the lock sends nothing more and returns kUnknown
  // at once. Called from the client's thread. Default: never.
  virtual bool CrashPoint(const char* where) {
    (void)where;
    return false;
  }
};

// What an implementation is given. Not owned by the lock; outlives it.
struct LockEnv {
  Transport* transport = nullptr;
  Clock* clock = nullptr;
  uint64_t seed = 0;                 // per-client: tokens and retry delays derive from it
  std::string client_id;             // "c3"
  LockObserver* observer = nullptr;  // may be null
};

class Lock {
 public:
  virtual ~Lock() = default;

  // Tries to take `key` for `ttl_ms`, retrying for at most `wait_ms` (0 = one try).
  virtual AcquireResult Acquire(const std::string& key, int64_t ttl_ms, int64_t wait_ms) = 0;

  // Gives the lease back. kFail means the lock was no longer held by this lease.
  virtual ReleaseResult Release(const Lease& lease) = 0;

  // Prolongs the lease to `ttl_ms` from now. kFail means it was no longer held.
  virtual ExtendResult Extend(const Lease& lease, int64_t ttl_ms) = 0;

  // Called once before the measured run starts, from the client's thread: start what the
  // lock needs (a plug-in process, its hello). A failure is an infrastructure error; the
  // first operation will try again. Default: nothing to prepare.
  virtual Status Prepare() { return Status::Ok(); }

  // The client process "dies": background work (renewal) stops at once, nothing is released.
  // After Crash() the instance is not used again. Default: nothing to stop.
  virtual void Crash() {}
  // The client process is frozen (a GC pause, SIGSTOP) from Freeze(true) until Freeze(false):
  // background work (a watchdog's renewal) makes no progress meanwhile; an exec plug-in's
  // process group is SIGSTOPped. The runner stalls the client's own thread. May be called
  // from another thread. Default: nothing runs in the background.
  virtual void Freeze(bool frozen) { (void)frozen; }

  // Infrastructure problems seen since the last call (a plug-in that crashed, hung or wrote
  // garbage and was replaced), one line each, naming the impl. The runner counts and reports
  // them. Built-in locks have none.
  virtual std::vector<std::string> DrainInfraErrors() { return {}; }
};

// Helpers shared by implementations.
std::string RandomToken(Rng& rng);  // 20 random bytes, hex

}  // namespace lockstorm
