// The four single-node built-in locks: setnx-expire, set-nx-del, token-lua and watchdog.
// Each talks to node 0 only, through LockEnv's transport, and reads time only from its clock.
// SingleNodeLock and TokenLuaLock are declared in impls/single_node.h (the mutants derive
// from them); the other two and watchdog stay private to this file.
#include "impls/single_node.h"

#include <atomic>
#include <mutex>
#include <thread>

#include "impls/builtin.h"
#include "impls/common.h"

namespace lockstorm {

std::string RandomToken(Rng& rng) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(40, '0');
  uint64_t bits = 0;
  for (size_t i = 0; i < s.size(); ++i, bits >>= 4) {
    if (i % 16 == 0) bits = rng();  // 16 hex digits per draw
    s[i] = kHex[bits & 15];
  }
  return s;
}

AcquireResult RetryAcquire(Clock* clock, Rng& rng, int64_t wait_ms, const TryAcquireFn& try_once) {
  AcquireResult res;
  const int64_t deadline_us = clock->NowUs() + std::max<int64_t>(wait_ms, 0) * 1000;
  for (int attempt = 1; attempt <= kMaxAttempts; ++attempt) {
    res.attempts = attempt;
    res.outcome = try_once(&res.lease, &res.error);
    if (res.outcome != Outcome::kFail) return res;
    int64_t left_us = deadline_us - clock->NowUs();
    if (left_us <= 0) return res;
    std::uniform_int_distribution<int64_t> delay(1000, kMaxRetryDelayMs * 1000);
    clock->SleepUs(std::min(delay(rng), left_us));
  }
  return res;
}

Outcome IntegerOutcome(const Reply& r, std::string* why) {
  if (r.is_integer(1)) return Outcome::kOk;
  if (r.is_integer(0)) return Outcome::kFail;
  *why = r.ToString();
  return Outcome::kUnknown;
}

SingleNodeLock::SingleNodeLock(const LockEnv& env) : env_(env), rng_(env.seed) {}

AcquireResult SingleNodeLock::Acquire(const std::string& key, int64_t ttl_ms, int64_t wait_ms) {
  return RetryAcquire(env_.clock, rng_, wait_ms, [&](Lease* lease, std::string* why) {
    const int64_t start_us = LeaseClockUs();
    std::string token = RandomToken(rng_);
    Outcome o = TryOnce(key, token, ttl_ms, why);
    lease->key = key;
    lease->token = token;  // also on kUnknown: what the lock may hold
    if (o == Outcome::kOk) {
      lease->valid_ms = ttl_ms - CeilMs(LeaseClockUs() - start_us);
    }
    return o;
  });
}

ExtendResult SingleNodeLock::Extend(const Lease& lease, int64_t ttl_ms) {
  ExtendResult res;
  const int64_t start_us = LeaseClockUs();
  Reply r = Call(ExtendCommand(lease, ttl_ms), ttl_ms);
  res.outcome = IntegerOutcome(r, &res.error);
  if (res.outcome == Outcome::kOk) {
    res.valid_ms = ttl_ms - CeilMs(LeaseClockUs() - start_us);
  }
  return res;
}

ReleaseResult SingleNodeLock::Release(const Lease& lease) {
  ReleaseResult res;
  ReleaseCommand(lease, &release_cmd_);
  Reply r = Call(release_cmd_, 1000);
  res.outcome = IntegerOutcome(r, &res.error);
  return res;
}

Reply SingleNodeLock::Call(const Command& cmd, int64_t ttl_ms) {
  return env_.transport->Call(0, cmd, CommandTimeoutUs(ttl_ms));
}

int64_t SingleNodeLock::LeaseClockUs() { return env_.clock->NowUs(); }

Outcome SingleNodeLock::SetNxPx(const std::string& key, const std::string& token, int64_t ttl_ms,
                                std::string* why) {
  // The command is rebuilt in place: its strings keep their capacity from try to try.
  set_cmd_.resize(6);
  set_cmd_[0] = "SET";
  set_cmd_[1] = key;
  set_cmd_[2] = token;
  set_cmd_[3] = "NX";
  set_cmd_[4] = "PX";
  set_cmd_[5] = std::to_string(ttl_ms);
  return SetNxOutcome(Call(set_cmd_, ttl_ms), why);
}

Outcome SingleNodeLock::SetNxOutcome(const Reply& r, std::string* why) {
  if (r.is_ok_status()) return Outcome::kOk;
  if (r.type == Reply::Type::kNil) return Outcome::kFail;
  *why = r.ToString();
  return Outcome::kUnknown;
}

Command UncheckedDelCommand(const Lease& lease) { return {"DEL", lease.key}; }

Command UncheckedPexpireCommand(const Lease& lease, int64_t ttl_ms) {
  return {"PEXPIRE", lease.key, std::to_string(ttl_ms)};
}

Outcome TokenLuaLock::TryOnce(const std::string& key, const std::string& token, int64_t ttl_ms,
                              std::string* why) {
  return SetNxPx(key, token, ttl_ms, why);
}

void TokenLuaLock::ReleaseCommand(const Lease& lease, Command* cmd) {
  cmd->resize(5);
  (*cmd)[0] = "EVAL";
  (*cmd)[1] = kCompareAndDeleteLua;
  (*cmd)[2] = "1";
  (*cmd)[3] = lease.key;
  (*cmd)[4] = lease.token;
}

Command TokenLuaLock::ExtendCommand(const Lease& lease, int64_t ttl_ms) {
  return {"EVAL", kCompareAndPexpireLua, "1", lease.key, lease.token, std::to_string(ttl_ms)};
}

namespace {

// SETNX then PEXPIRE: two commands, so a client dying between them leaves a key with no TTL.
class SetnxExpireLock : public SingleNodeLock {
 public:
  using SingleNodeLock::SingleNodeLock;

 protected:
  Outcome TryOnce(const std::string& key, const std::string& token, int64_t ttl_ms,
                  std::string* why) override {
    Reply r = Call({"SETNX", key, token}, ttl_ms);
    if (r.is_integer(0)) return Outcome::kFail;
    if (!r.is_integer(1)) {
      *why = r.ToString();
      return Outcome::kUnknown;
    }
    if (env_.observer && env_.observer->CrashPoint("setnx-expire: after SETNX, before PEXPIRE")) {
      *why = "client crashed after SETNX, before PEXPIRE";
      return Outcome::kUnknown;  // the key stays, with no TTL
    }
    Reply e = Call({"PEXPIRE", key, std::to_string(ttl_ms)}, ttl_ms);
    if (!e.is_integer(1)) {
      *why = "SETNX succeeded but PEXPIRE gave " + e.ToString();
      return Outcome::kUnknown;  // we hold a key that may never expire
    }
    return Outcome::kOk;
  }
  void ReleaseCommand(const Lease& lease, Command* cmd) override {
    *cmd = UncheckedDelCommand(lease);
  }
  Command ExtendCommand(const Lease& lease, int64_t ttl_ms) override {
    return UncheckedPexpireCommand(lease, ttl_ms);
  }
};

// SET NX PX, release = unconditional DEL: deletes whoever holds the lock now.
class SetNxDelLock : public SingleNodeLock {
 public:
  using SingleNodeLock::SingleNodeLock;

 protected:
  Outcome TryOnce(const std::string& key, const std::string& token, int64_t ttl_ms,
                  std::string* why) override {
    return SetNxPx(key, token, ttl_ms, why);
  }
  void ReleaseCommand(const Lease& lease, Command* cmd) override {
    *cmd = UncheckedDelCommand(lease);
  }
  Command ExtendCommand(const Lease& lease, int64_t ttl_ms) override {
    return UncheckedPexpireCommand(lease, ttl_ms);
  }
};

// token-lua plus a renewal loop (Redisson's watchdog): while a lease is held, a background
// thread extends it to the full TTL every ttl/3; release (or Crash) stops the loop first.
// The transport is shared between the client and the renewal thread under mu_.
// options_.renew_once (the silent-watchdog-death mutant) ends the loop after its first renewal.
class WatchdogLock : public TokenLuaLock {
 public:
  WatchdogLock(const LockEnv& env, const WatchdogOptions& options)
      : TokenLuaLock(env), options_(options) {}
  ~WatchdogLock() override { StopRenewal(); }

  AcquireResult Acquire(const std::string& key, int64_t ttl_ms, int64_t wait_ms) override {
    AcquireResult r = TokenLuaLock::Acquire(key, ttl_ms, wait_ms);
    if (r.outcome == Outcome::kOk) {
      // The validity is what is left when Acquire returns: starting the renewal thread takes
      // time off it (15 ms was seen under TSan on a loaded machine; the checker's contract
      // check caught the overclaim).
      const int64_t start_us = LeaseClockUs();
      StartRenewal(r.lease, ttl_ms);
      r.lease.valid_ms -= CeilMs(std::max<int64_t>(LeaseClockUs() - start_us, 0));
    }
    return r;
  }
  ReleaseResult Release(const Lease& lease) override {
    StopRenewal();
    return TokenLuaLock::Release(lease);
  }
  void Crash() override { StopRenewal(); }
  void Freeze(bool frozen) override { frozen_ = frozen; }

 protected:
  Reply Call(const Command& cmd, int64_t ttl_ms) override {
    std::lock_guard<std::mutex> lock(mu_);
    return TokenLuaLock::Call(cmd, ttl_ms);
  }

 private:
  static constexpr int64_t kStopPollUs = 1000;  // how often the renewal thread checks stop_

  void StartRenewal(Lease lease, int64_t ttl_ms) {
    StopRenewal();
    stop_ = false;
    renewer_ = std::thread([this, lease, ttl_ms] {
      const int64_t period_us = std::max<int64_t>(ttl_ms * 1000 / 3, kStopPollUs);
      for (;;) {  // ends when stop_ is set, or the lease is lost
        const int64_t wake_us = env_.clock->NowUs() + period_us;
        // A frozen process renews nothing: wait out the freeze, then the period.
        while (!stop_ && (frozen_ || env_.clock->NowUs() < wake_us))
          env_.clock->SleepUs(kStopPollUs);
        if (stop_) return;
        const int64_t start_us = env_.clock->NowUs();
        ExtendResult r = Extend(lease, ttl_ms);
        if (stop_) return;  // released meanwhile: this renewal does not count for the client
        if (env_.observer) {
          env_.observer->OnBackgroundExtend(lease, r, env_.clock->NowUs() - start_us);
        }
        if (r.outcome == Outcome::kFail) return;  // lost the lock: nothing more to renew
        if (options_.renew_once) return;          // the mutant's one-shot timer: tells no one
      }
    });
  }
  void StopRenewal() {
    stop_ = true;
    if (renewer_.joinable()) renewer_.join();
  }

  const WatchdogOptions options_;
  std::mutex mu_;
  std::atomic<bool> stop_{true};
  std::atomic<bool> frozen_{false};
  std::thread renewer_;
};

}  // namespace

std::unique_ptr<Lock> NewSetnxExpireLock(const LockEnv& env) {
  return std::make_unique<SetnxExpireLock>(env);
}
std::unique_ptr<Lock> NewSetNxDelLock(const LockEnv& env) {
  return std::make_unique<SetNxDelLock>(env);
}
std::unique_ptr<Lock> NewTokenLuaLock(const LockEnv& env) {
  return std::make_unique<TokenLuaLock>(env);
}
std::unique_ptr<Lock> NewWatchdogLock(const LockEnv& env) {
  return NewWatchdogLockWith(env, WatchdogOptions{});
}
std::unique_ptr<Lock> NewWatchdogLockWith(const LockEnv& env, const WatchdogOptions& options) {
  return std::make_unique<WatchdogLock>(env, options);
}

}  // namespace lockstorm
