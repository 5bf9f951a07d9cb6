// fenced: token-lua plus a fencing token issued atomically with the grant.
//
// Acquire: one Lua script on node 0 sets the lock key (random token, NX, PX ttl) and, only if
// that succeeded, INCRs the key's fence counter KEYS[2] = key + ":fence" in the same atomic
// step, returning the new counter value as the lease's fence. The counter never expires, so
// fences are strictly increasing per key across all grants (as long as node 0 keeps its
// data). Release is the compare-and-delete script, extend the compare-and-pexpire script.
// Retries with small random delays on env.clock (RetryAcquire) within the wait budget.
//
// Outcomes of one acquire attempt:
//   integer → granted; valid_ms = ttl − elapsed of this attempt (rounded up to whole ms).
//     If that is <= 0 the grant expired before its reply arrived: the key is deleted again
//     (compare-and-delete) and the attempt fails (kFail if the delete answered, else kUnknown).
//   nil     → held by someone else: kFail.
//   anything else (timeout, I/O error, error reply — a script error may come after its SET
//     ran) → kUnknown: the lock may be ours in Redis until its TTL.
//
// The fence protects only a resource that checks it (harness/witness.h): lock-level overlaps
// (a paused holder waking up after its lease expired) still happen, stale writes must not.
#include <string>

#include "impls/builtin.h"
#include "impls/common.h"

namespace lockstorm {
namespace {

// KEYS[1] = lock key, KEYS[2] = fence counter, ARGV[1] = token, ARGV[2] = ttl ms.
// Returns the new fence (integer) if the lock was granted, nil if it is held.
constexpr const char* kAcquireWithFenceLua =
    "if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then "
    "return redis.call('incr', KEYS[2]) else return nil end";

// Release has no TTL to scale its timeout with; it gets that of a 1 s TTL.
constexpr int64_t kReleaseTimeoutTtlMs = 1000;

class FencedLock : public Lock {
 public:
  explicit FencedLock(const LockEnv& env) : env_(env), rng_(env.seed) {}

  AcquireResult Acquire(const std::string& key, int64_t ttl_ms, int64_t wait_ms) override {
    if (ttl_ms <= 0) {
      AcquireResult r;
      r.error = "ttl_ms must be > 0";
      return r;
    }
    return RetryAcquire(env_.clock, rng_, wait_ms, [&](Lease* lease, std::string* why) {
      return TryOnce(key, ttl_ms, lease, why);
    });
  }

  ExtendResult Extend(const Lease& lease, int64_t ttl_ms) override {
    ExtendResult res;
    const int64_t start_us = env_.clock->NowUs();
    Reply r = env_.transport->Call(
        0, {"EVAL", kCompareAndPexpireLua, "1", lease.key, lease.token, std::to_string(ttl_ms)},
        CommandTimeoutUs(ttl_ms));
    res.outcome = IntegerOutcome(r, &res.error);
    if (res.outcome == Outcome::kOk) {
      res.valid_ms = ttl_ms - CeilMs(env_.clock->NowUs() - start_us);
    }
    return res;
  }

  ReleaseResult Release(const Lease& lease) override {
    ReleaseResult res;
    Reply r = env_.transport->Call(0, {"EVAL", kCompareAndDeleteLua, "1", lease.key, lease.token},
                                   CommandTimeoutUs(kReleaseTimeoutTtlMs));
    res.outcome = IntegerOutcome(r, &res.error);
    return res;
  }

 private:
  Outcome TryOnce(const std::string& key, int64_t ttl_ms, Lease* lease, std::string* why) {
    *lease = Lease{};  // nothing of an earlier attempt survives
    const std::string token = RandomToken(rng_);
    const int64_t start_us = env_.clock->NowUs();
    Reply r = env_.transport->Call(
        0, {"EVAL", kAcquireWithFenceLua, "2", key, key + ":fence", token, std::to_string(ttl_ms)},
        CommandTimeoutUs(ttl_ms));
    const int64_t valid_ms = ttl_ms - CeilMs(env_.clock->NowUs() - start_us);
    if (r.type == Reply::Type::kNil) return Outcome::kFail;
    lease->key = key;
    lease->token = token;
    if (r.type != Reply::Type::kInteger) {
      *why = r.ToString();
      return Outcome::kUnknown;
    }
    lease->fence = r.integer;
    if (valid_ms > 0) {
      lease->valid_ms = valid_ms;
      return Outcome::kOk;
    }
    // Granted, but its TTL was used up before we knew: give it back.
    Reply del = env_.transport->Call(0, {"EVAL", kCompareAndDeleteLua, "1", key, token},
                                     CommandTimeoutUs(ttl_ms));
    *why = "granted (fence " + std::to_string(r.integer) +
           ") but the reply took the whole ttl; cleanup: " + del.ToString();
    return del.type == Reply::Type::kInteger ? Outcome::kFail : Outcome::kUnknown;
  }

  LockEnv env_;
  Rng rng_;
};

}  // namespace

std::unique_ptr<Lock> NewFencedLock(const LockEnv& env) {
  return std::make_unique<FencedLock>(env);
}

}  // namespace lockstorm
