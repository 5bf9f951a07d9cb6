// The shape shared by the single-node built-in locks (impls/single_node.cc), and token-lua,
// exposed so that the mutant corpus (impls/mutants.cc) can derive a lock from token-lua and
// override the one method that carries its bug, instead of copying the lock.
//
// Every lock here talks to node 0 only, through LockEnv's transport, and reads time only from
// LockEnv's clock. No thread of its own: Acquire/Release/Extend run on the caller's thread.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "harness/lock.h"

namespace lockstorm {

// One key on node 0; subclasses provide the commands.
//   Acquire: RetryAcquire (impls/common.h) around TryOnce with a fresh random token per
//     attempt; on kOk, valid_ms = ttl - the attempt's elapsed time (ceil ms, on LeaseClockUs).
//   Extend: ExtendCommand; integer 1 → kOk with valid_ms = ttl - elapsed, 0 → kFail.
//   Release: ReleaseCommand; integer 1 → kOk, 0 → kFail.
class SingleNodeLock : public Lock {
 public:
  explicit SingleNodeLock(const LockEnv& env);

  AcquireResult Acquire(const std::string& key, int64_t ttl_ms, int64_t wait_ms) override;
  ExtendResult Extend(const Lease& lease, int64_t ttl_ms) override;
  ReleaseResult Release(const Lease& lease) override;

 protected:
  // One try: kOk if the lock is now ours, kFail if it definitely is not, kUnknown (with *why)
  // if it may be.
  virtual Outcome TryOnce(const std::string& key, const std::string& token, int64_t ttl_ms,
                          std::string* why) = 0;
  // Fills *cmd with the release command. *cmd is reused from release to release: assign its
  // elements (their strings keep their capacity), do not append.
  virtual void ReleaseCommand(const Lease& lease, Command* cmd) = 0;
  virtual Command ExtendCommand(const Lease& lease, int64_t ttl_ms) = 0;

  // Sends `cmd` to node 0 with the timeout of a `ttl_ms` lock (CommandTimeoutUs).
  virtual Reply Call(const Command& cmd, int64_t ttl_ms);

  // The clock on which acquire and extend measure their elapsed time, and so valid_ms:
  // env.clock->NowUs() (monotonic). Only the wallclock-deadline mutant reads another one.
  virtual int64_t LeaseClockUs();

  // SET key token NX PX ttl: see SetNxOutcome.
  Outcome SetNxPx(const std::string& key, const std::string& token, int64_t ttl_ms,
                  std::string* why);
  // The reply of a SET ... NX: OK → kOk, nil → kFail, anything else → kUnknown (in *why).
  static Outcome SetNxOutcome(const Reply& r, std::string* why);

  LockEnv env_;
  Rng rng_;
  Command set_cmd_;      // SetNxPx's command, reused
  Command release_cmd_;  // Release's command, reused
};

// The owner-blind commands of setnx-expire and set-nx-del (which the del-release and
// extend-no-owner mutants plant into token-lua): DEL key, and PEXPIRE key ttl. They act on
// whoever holds the key now.
Command UncheckedDelCommand(const Lease& lease);
Command UncheckedPexpireCommand(const Lease& lease, int64_t ttl_ms);

// token-lua: random token, SET NX PX, Lua compare-and-delete release, Lua compare-and-pexpire
// extend (the single-instance algorithm of the Redis docs).
class TokenLuaLock : public SingleNodeLock {
 public:
  using SingleNodeLock::SingleNodeLock;

 protected:
  Outcome TryOnce(const std::string& key, const std::string& token, int64_t ttl_ms,
                  std::string* why) override;
  void ReleaseCommand(const Lease& lease, Command* cmd) override;
  Command ExtendCommand(const Lease& lease, int64_t ttl_ms) override;
};

}  // namespace lockstorm
