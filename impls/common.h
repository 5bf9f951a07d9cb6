// Pieces shared by the built-in single-node locks: the Lua scripts, the per-command timeout
// and the acquire retry loop. Everything goes through LockEnv (transport + clock).
#pragma once

#include <algorithm>
#include <functional>
#include <random>
#include <string>

#include "harness/lock.h"

namespace lockstorm {

// Deletes KEYS[1] only if it still holds our token ARGV[1]. Returns 1 if deleted, else 0.
inline constexpr const char* kCompareAndDeleteLua =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
    "else return 0 end";

// Sets KEYS[1]'s TTL to ARGV[2] ms only if it still holds our token ARGV[1]. 1 if done, else 0.
inline constexpr const char* kCompareAndPexpireLua =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], "
    "ARGV[2]) else return 0 end";

// Scripts that only the mutant corpus sends (impls/mutants.cc, RedlockOptions); no correct
// lock uses them. Here so that tests/fake_redis.h can recognize them.

// retry-keeps-partials: SET KEYS[1] ARGV[1] NX PX ARGV[2], or, if KEYS[1] already holds our
// token ARGV[1], status OK without touching it (its TTL keeps running from the earlier SET).
// Replies like SET NX: status OK or nil.
inline constexpr const char* kSetNxOrOursLua =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.status_reply('OK') end "
    "return redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])";

// ttl-seconds: sets KEYS[1]'s TTL to ARGV[2] whole SECONDS if it still holds our token
// ARGV[1]. 1 if done, else 0.
inline constexpr const char* kCompareAndExpireLua =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], "
    "ARGV[2]) else return 0 end";

// extend-resurrect: if KEYS[1] holds our token ARGV[1] OR is missing, SET it to ARGV[1] PX
// ARGV[2] (recreating an expired lock) and return 1; else 0.
inline constexpr const char* kExtendOrRecreateLua =
    "local v = redis.call('get', KEYS[1]) "
    "if v == ARGV[1] or v == false then "
    "redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end return 0";

// Microseconds as whole milliseconds, rounded up: the time a lock takes off its validity.
inline int64_t CeilMs(int64_t us) { return (us + 999) / 1000; }

// How long one command may take before its outcome is declared unknown: half the TTL,
// clamped to [10 ms, 1 s] (a lock whose reply takes longer than its TTL is worthless).
inline int64_t CommandTimeoutUs(int64_t ttl_ms) {
  return std::clamp<int64_t>(ttl_ms / 2, 10, 1000) * 1000;
}

// One try of an acquire. kOk fills lease; kFail = held by someone else; kUnknown = may hold.
using TryAcquireFn = std::function<Outcome(Lease* lease, std::string* error)>;

// Calls `try_once` until it returns kOk or kUnknown, or the wait budget is spent; between
// tries sleeps a random delay in [1, kMaxRetryDelayMs] ms on env.clock (never beyond the
// budget). With wait_ms <= 0 it tries exactly once. Bounded: at most kMaxAttempts tries.
inline constexpr int64_t kMaxRetryDelayMs = 10;
inline constexpr int kMaxAttempts = 1000000;
AcquireResult RetryAcquire(Clock* clock, Rng& rng, int64_t wait_ms, const TryAcquireFn& try_once);

// Maps a reply of a compare-and-delete / compare-and-pexpire script (or DEL / PEXPIRE) to
// an outcome: integer 1 → kOk, integer 0 → kFail, anything else → kUnknown (error in *why).
Outcome IntegerOutcome(const Reply& r, std::string* why);

}  // namespace lockstorm
