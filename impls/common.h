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
AcquireResult RetryAcquire(Clock* clock, std::mt19937_64& rng, int64_t wait_ms,
                           const TryAcquireFn& try_once);

// Maps a reply of a compare-and-delete / compare-and-pexpire script (or DEL / PEXPIRE) to
// an outcome: integer 1 → kOk, integer 0 → kFail, anything else → kUnknown (error in *why).
Outcome IntegerOutcome(const Reply& r, std::string* why);

}  // namespace lockstorm
