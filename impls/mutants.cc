// The mutant corpus: each entry is a correct built-in lock with exactly one real-world bug
// planted, which lockstorm must catch (issue "Detection power"). A mutant is built from its
// base's code: a subclass of TokenLuaLock (impls/single_node.h) overriding the one method
// that carries the bug, or the base's factory with one knob of WatchdogOptions /
// RedlockOptions (impls/builtin.h) turned. Like every lock it uses only LockEnv's transport
// and clock, and draws its randomness from env.seed.
#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "impls/builtin.h"
#include "impls/common.h"
#include "impls/registry.h"
#include "impls/single_node.h"
#include "scenarios/scenario.h"

namespace lockstorm {
namespace {

// del-release: release is an unconditional DEL; ok if it deleted a key (anyone's).
class DelReleaseLock final : public TokenLuaLock {
 public:
  using TokenLuaLock::TokenLuaLock;

 protected:
  void ReleaseCommand(const Lease& lease, Command* cmd) override {
    *cmd = UncheckedDelCommand(lease);
  }
};

// no-ttl: acquire is SET key token NX with no expiry: a lock nobody releases stays forever.
class NoTtlLock final : public TokenLuaLock {
 public:
  using TokenLuaLock::TokenLuaLock;

 protected:
  Outcome TryOnce(const std::string& key, const std::string& token, int64_t ttl_ms,
                  std::string* why) override {
    return SetNxOutcome(Call({"SET", key, token, "NX"}, ttl_ms), why);
  }
};

// extend-no-owner: extend is a plain PEXPIRE: prolongs whoever holds the key now.
class ExtendNoOwnerLock final : public TokenLuaLock {
 public:
  using TokenLuaLock::TokenLuaLock;

 protected:
  Command ExtendCommand(const Lease& lease, int64_t ttl_ms) override {
    return UncheckedPexpireCommand(lease, ttl_ms);
  }
};

// extend-resurrect: extend re-creates the key when it is missing (the lease had expired).
class ExtendResurrectLock final : public TokenLuaLock {
 public:
  using TokenLuaLock::TokenLuaLock;

 protected:
  Command ExtendCommand(const Lease& lease, int64_t ttl_ms) override {
    return {"EVAL", kExtendOrRecreateLua, "1", lease.key, lease.token, std::to_string(ttl_ms)};
  }
};

// pexpire-zero: extend's compare-and-pexpire carries ttl - (ms since the lease was acquired),
// "extend to" read as "extend by"; at <= 0 Redis deletes the key and still answers 1.
// Acquire times are kept per token on env.clock until the release, or for kForgetUs; a lease
// not (or no longer) known counts as acquired ttl ago, which sends 0.
class PexpireZeroLock final : public TokenLuaLock {
 public:
  using TokenLuaLock::TokenLuaLock;

 protected:
  Outcome TryOnce(const std::string& key, const std::string& token, int64_t ttl_ms,
                  std::string* why) override {
    const int64_t start_us = env_.clock->NowUs();
    Outcome o = TokenLuaLock::TryOnce(key, token, ttl_ms, why);
    if (o == Outcome::kOk) {
      std::erase_if(acquired_us_,
                    [start_us](const auto& e) { return start_us - e.second > kForgetUs; });
      acquired_us_[token] = start_us;
    }
    return o;
  }
  Command ExtendCommand(const Lease& lease, int64_t ttl_ms) override {
    auto it = acquired_us_.find(lease.token);
    const int64_t since_ms =
        it == acquired_us_.end() ? ttl_ms : (env_.clock->NowUs() - it->second) / 1000;
    const std::string pexpire_ms = std::to_string(ttl_ms - since_ms);  // may be <= 0
    return {"EVAL", kCompareAndPexpireLua, "1", lease.key, lease.token, pexpire_ms};
  }
  void ReleaseCommand(const Lease& lease, Command* cmd) override {
    acquired_us_.erase(lease.token);
    TokenLuaLock::ReleaseCommand(lease, cmd);
  }

 private:
  // 1 h, far beyond any lease TTL here: a lease that old sends <= 0 whether known or not.
  static constexpr int64_t kForgetUs = 3'600'000'000;
  std::map<std::string, int64_t> acquired_us_;  // token -> acquire start (env.clock)
};

// ttl-seconds: the TTL goes to Redis in whole seconds, truncated (at least 1), while valid_ms
// still counts the full ttl_ms.
class TtlSecondsLock final : public TokenLuaLock {
 public:
  using TokenLuaLock::TokenLuaLock;

 protected:
  Outcome TryOnce(const std::string& key, const std::string& token, int64_t ttl_ms,
                  std::string* why) override {
    return SetNxOutcome(Call({"SET", key, token, "NX", "EX", Seconds(ttl_ms)}, ttl_ms), why);
  }
  Command ExtendCommand(const Lease& lease, int64_t ttl_ms) override {
    return {"EVAL", kCompareAndExpireLua, "1", lease.key, lease.token, Seconds(ttl_ms)};
  }

 private:
  static std::string Seconds(int64_t ttl_ms) {
    return std::to_string(std::max<int64_t>(1, ttl_ms / 1000));
  }
};

// wallclock-deadline: acquire and extend time themselves on the wall clock; a step back
// during the operation makes valid_ms longer than the TTL.
class WallclockDeadlineLock final : public TokenLuaLock {
 public:
  using TokenLuaLock::TokenLuaLock;

 protected:
  int64_t LeaseClockUs() override { return env_.clock->WallUs(); }
};

// token-dropped-before-release: the release's compare-and-delete carries an empty token (the
// token lived in thread-local storage the releasing code does not see): it never deletes.
class TokenDroppedLock final : public TokenLuaLock {
 public:
  using TokenLuaLock::TokenLuaLock;

 protected:
  void ReleaseCommand(const Lease& lease, Command* cmd) override {
    *cmd = {"EVAL", kCompareAndDeleteLua, "1", lease.key, ""};
  }
};

// get-then-set: GET, and if nil, SET key token PX ttl without NX: check-then-act. A GET that
// fails wrote nothing, so the attempt is a definite kFail.
class GetThenSetLock final : public TokenLuaLock {
 public:
  using TokenLuaLock::TokenLuaLock;

 protected:
  Outcome TryOnce(const std::string& key, const std::string& token, int64_t ttl_ms,
                  std::string* why) override {
    Reply got = Call({"GET", key}, ttl_ms);
    if (got.type != Reply::Type::kNil) {
      if (got.type != Reply::Type::kString) *why = "GET gave " + got.ToString();
      return Outcome::kFail;
    }
    Reply set = Call({"SET", key, token, "PX", std::to_string(ttl_ms)}, ttl_ms);
    if (set.is_ok_status()) return Outcome::kOk;
    *why = set.ToString();
    return Outcome::kUnknown;
  }
};

template <typename L>
std::unique_ptr<Lock> Make(const LockEnv& env) {
  return std::make_unique<L>(env);
}

using Factory = std::function<std::unique_ptr<Lock>(const LockEnv&)>;

Factory RedlockWith(RedlockOptions options) {
  return [options](const LockEnv& env) { return NewRedlockLockWith(env, options); };
}
Factory WatchdogWith(WatchdogOptions options) {
  return [options](const LockEnv& env) { return NewWatchdogLockWith(env, options); };
}

// What the table says of one mutant; Entry derives the rest.
struct Spec {
  std::string name{};
  std::string base{};         // a built-in lock (registry.h)
  std::string description{};  // what it does wrong, one sentence
  std::string weakness{};     // the consequence
  std::string pattern{};      // the real-world pattern, with a citation
  std::map<std::string, std::string> exposed_by{};
  Factory make{};
};

// The MutantInfo of `spec`: min_nodes and multi_node as its base, expected_unsafe = the
// scenarios of exposed_by.
MutantInfo Entry(Spec spec) {
  MutantInfo m;
  m.impl.name = std::move(spec.name);
  m.impl.description = std::move(spec.description);
  m.impl.weakness = std::move(spec.weakness);
  if (const ImplInfo* base = FindBuiltinImpl(spec.base)) {
    m.impl.min_nodes = base->min_nodes;
    m.impl.multi_node = base->multi_node;
  }
  for (const auto& [scenario, expect] : spec.exposed_by) m.impl.expected_unsafe.insert(scenario);
  m.impl.make = std::move(spec.make);
  m.base = std::move(spec.base);
  m.pattern = std::move(spec.pattern);
  m.exposed_by = std::move(spec.exposed_by);
  return m;
}

}  // namespace

const std::vector<MutantInfo>& Mutants() {
  static const std::vector<MutantInfo>* table = new std::vector<MutantInfo>{
      Entry(
          {.name = "del-release",
           .base = "token-lua",
           .description = "token-lua whose release is an unconditional DEL key, with no token "
                          "check",
           .weakness = "a holder that outlived its TTL deletes the next holder's lock",
           .pattern =
               "Redis docs, Distributed Locks with Redis: release must 'remove the key only if it "
               "exists and the value stored at the key is exactly the one I expect'; a plain DEL "
               "is the cron / Celery once-only idiom",
           .exposed_by = {{"contention", kExpectUnsafe}},
           .make = Make<DelReleaseLock>}),
      Entry({.name = "no-ttl",
             .base = "token-lua",
             .description = "token-lua whose acquire is SET key token NX with no PX/EX: the "
                            "lock never expires",
             .weakness = "a holder that never releases (crashed, or a release lost) blocks "
                         "everyone forever",
             .pattern =
                 "Redis docs, SETNX, 'Handling deadlocks': a client that crashes while holding a "
                 "lock set without an expiry leaves it locked",
             .exposed_by = {{"contention", kExpectLiveness}, {"client-crash", kExpectLiveness}},
             .make = Make<NoTtlLock>}),
      Entry({.name = "setnx-expire",
             .base = "token-lua",
             .description = "SETNX then PEXPIRE as two commands (the built-in setnx-expire "
                            "lock)",
             .weakness = "a client dying between SETNX and PEXPIRE leaves a lock with no TTL",
             .pattern =
                 "the pre-2.6.12 idiom; redis-py PR #902 and laravel/horizon PR #1747 replaced "
                 "SETNX + EXPIRE with one SET NX EX for exactly this crash",
             .exposed_by = {{"kill-mid-acquire", kExpectLiveness}},
             .make = NewSetnxExpireLock}),
      Entry({.name = "extend-no-owner",
             .base = "token-lua",
             .description = "token-lua whose extend is a plain PEXPIRE key ttl, with no token "
                            "check",
             .weakness = "a holder whose lease expired prolongs the next holder's lock and "
                         "believes it still holds its own",
             .pattern = "sbertrang/redis-distlock issue #2: its extend prolonged the key without "
                        "checking that "
                        "it still held the lock's value (PR #3 adds the check)",
             .exposed_by = {{"lease-edge", kExpectUnsafe}},
             .make = Make<ExtendNoOwnerLock>}),
      Entry({.name = "extend-resurrect",
             .base = "token-lua",
             .description = "token-lua whose extend sets key token PX ttl when the key holds "
                            "our token OR is missing",
             .weakness = "an extend after the lease expired re-creates the lock over a gap in "
                         "which another client may have held it",
             .pattern =
                 "leandromoreira/redlock-rb issue #36, 'Lock extension via lock method allows "
                 "extending expired locks' (a lock script that sets the key if it does not exist "
                 "or holds our value)",
             .exposed_by = {{"lease-edge", kExpectUnsafe}},
             .make = Make<ExtendResurrectLock>}),
      Entry({.name = "pexpire-zero",
             .base = "token-lua",
             .description = "token-lua whose extend sends ttl - (ms since the lease was "
                            "acquired) to the compare-and-pexpire: a deadline read as a "
                            "duration",
             .weakness = "a late extend shortens the lock, or (<= 0) deletes it while "
                         "reporting ok with a full validity",
             .pattern =
                 "extend-by vs extend-to confusion: redis-py Lock.extend(additional_time) adds "
                 "time unless replace_ttl=True (redis-py issue #629); Redis docs, EXPIRE: a "
                 "non-positive timeout deletes the key",
             .exposed_by = {{"lease-edge", kExpectUnsafe}},
             .make = Make<PexpireZeroLock>}),
      Entry({.name = "ttl-seconds",
             .base = "token-lua",
             .description = "token-lua that sends the TTL as whole seconds (SET NX EX, "
                            "truncated, at least 1) but reports valid_ms from the TTL in ms",
             .weakness = "a 1.5 s lease lives 1 s in Redis: the key expires while its "
                         "holder still believes it valid",
             .pattern = "second-granularity lock APIs, e.g. Laravel Cache::lock($name, $seconds) "
                        "(RedisLock: SET ... EX seconds NX), fed a millisecond lease",
             .exposed_by = {{"lease-edge", kExpectUnsafe}},
             .make = Make<TtlSecondsLock>}),
      Entry({.name = "no-elapsed-check",
             .base = "redlock",
             .description = "redlock whose validity is ttl - drift, ignoring the time the "
                            "acquire took (and not refusing when it took longer than the TTL)",
             .weakness = "under latency the reported validity outlives the keys",
             .pattern =
                 "Redis docs, Distributed Locks with Redis (Redlock step 3): the lock is acquired "
                 "only if 'the total time elapsed to acquire the lock is less than lock validity "
                 "time', and the validity is 'the initial validity time minus the time elapsed'",
             .exposed_by = {{"latency", kExpectUnsafe}},
             .make = RedlockWith({.subtract_elapsed = false})}),
      Entry({.name = "no-drift",
             .base = "redlock",
             .description = "redlock whose validity is ttl - elapsed with no clock-drift "
                            "allowance",
             .weakness = "a server clock running slightly fast expires the keys before the "
                         "reported validity ends",
             .pattern =
                 "Redis docs, Distributed Locks with Redis, and antirez's redlock-rb: validity = "
                 "ttl - elapsed - CLOCK_DRIFT_FACTOR * ttl - 2 ms; Kleppmann, How to do "
                 "distributed locking (2016), on the timing assumptions this leans on",
             .exposed_by = {{"clock-drift-small", kExpectUnsafe}},
             .make = RedlockWith({.drift_allowance = false})}),
      Entry(
          {.name = "bad-quorum",
           .base = "redlock",
           .description = "redlock with quorum N/2 (2 of 5) instead of N/2+1, in acquire, "
                          "its early stop, extend and release",
           .weakness = "two clients each hold 2 of 5 nodes and both believe they won",
           .pattern =
               "Redis docs, Distributed Locks with Redis: an acquire fails if the client 'was not "
               "able to lock N/2+1 instances'; quorum arithmetic bugs recur in ports, e.g. "
               "ronnylt/redlock-php PR #16 and SPSCommerce/redlock-py PR #6",
           .exposed_by = {{"contention", kExpectUnsafe}},
           .make = RedlockWith({.majority_quorum = false})}),
      Entry({.name = "retry-keeps-partials",
             .base = "redlock",
             .description = "redlock that keeps one token for all retries, leaves a failed "
                            "attempt's keys in place, counts a node already holding its token "
                            "as acquired and measures validity from the last attempt",
             .weakness = "keys set by earlier attempts expire before the reported validity "
                         "ends",
             .pattern =
                 "node-redlock v5 (Redlock.acquire) keeps one value for the whole retry window and "
                 "releases partial locks only after the last attempt; combined here with a "
                 "re-entrant acquire script and validity taken from the last attempt",
             .exposed_by = {{"contention", kExpectUnsafe}, {"latency", kExpectUnsafe}},
             .make = RedlockWith({.retry_keeps_partials = true})}),
      Entry({.name = "cleanup-known-nodes-only",
             .base = "redlock",
             .description = "redlock that, after a failed attempt, deletes only on nodes whose "
                            "SET answered OK and reports a definite failure counting only them",
             .weakness = "SETs whose replies were lost stay applied: a quorum of its keys may "
                         "exist while it reported kFail",
             .pattern =
                 "Redis docs, Distributed Locks with Redis: after a failed acquire the client "
                 "'will try to unlock all the instances (even the instances it believed it was "
                 "not able to lock)'",
             .exposed_by = {{"lost-replies-try-once", kExpectUnsafe}},
             .make = RedlockWith({.cleanup_unknown_nodes = false})}),
      Entry({.name = "silent-watchdog-death",
             .base = "watchdog",
             .description = "watchdog whose renewal is a one-shot timer: it renews once, then "
                            "stops without telling anyone",
             .weakness = "a long hold outlives the lease its holder believes is being renewed",
             .pattern =
                 "Redisson RedissonLock watchdog that stops renewing: redisson issues #5698 "
                 "('Watchdog doesn't renew RLock intermittently which leads to premature release') "
                 "and #3194 (watchdog no longer renews after a reconnect)",
             .exposed_by = {{"overrun", kExpectUnsafe}},
             .make = WatchdogWith({.renew_once = true})}),
      Entry(
          {.name = "wallclock-deadline",
           .base = "token-lua",
           .description = "token-lua that measures its acquire and extend on the wall clock "
                          "(WallUs) instead of the monotonic clock",
           .weakness = "an NTP step back during an acquire yields a validity longer than "
                       "the TTL",
           .pattern =
               "node-redlock computes expiration from Date.now(); leandromoreira/redlock-rb issue "
               "#50 ('Uses monotonic time') moved off Time.now for this reason",
           .exposed_by = {{"wall-clock-steps", kExpectUnsafe}},
           .make = Make<WallclockDeadlineLock>}),
      Entry({.name = "token-dropped-before-release",
             .base = "token-lua",
             .description = "token-lua whose release sends the compare-and-delete with an "
                            "empty token: the token was dropped between acquire and release",
             .weakness = "every release fails; the lock stays until its TTL",
             .pattern =
                 "redis-py Lock keeps its token in thread-local storage (thread_local=True): a "
                 "release from another thread has no token (sqlalchemy/dogpile.cache issue #171, "
                 "'Default Redis Locking (thread locals) Incompatible with Async Creators')",
             .exposed_by = {{"contention", kExpectLiveness}},
             .make = Make<TokenDroppedLock>}),
      Entry({.name = "get-then-set",
             .base = "token-lua",
             .description = "token-lua whose acquire is GET key, then SET key token PX ttl "
                            "(no NX) if it was nil",
             .weakness = "two clients that both read nil both set the key and both believe "
                         "they hold the lock",
             .pattern =
                 "check-then-act: songkick/mega_mutex PR #6, 'Fix race condition when setting "
                 "mutex key' (GET nil, then SET without NX)",
             .exposed_by = {{"contention", kExpectUnsafe}},
             .make = Make<GetThenSetLock>}),
  };
  return *table;
}

const MutantInfo* FindMutant(const std::string& name) {
  for (const MutantInfo& m : Mutants())
    if (m.impl.name == name) return &m;
  return nullptr;
}

}  // namespace lockstorm
