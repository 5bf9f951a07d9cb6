// Factories of the built-in locks (see registry.h for their descriptions).
// Each is written only against LockEnv's transport and clock.
#pragma once

#include <memory>

#include "harness/lock.h"

namespace lockstorm {

std::unique_ptr<Lock> NewSetnxExpireLock(const LockEnv& env);  // impls/single_node.cc
std::unique_ptr<Lock> NewSetNxDelLock(const LockEnv& env);     // impls/single_node.cc
std::unique_ptr<Lock> NewTokenLuaLock(const LockEnv& env);     // impls/single_node.cc
std::unique_ptr<Lock> NewWatchdogLock(const LockEnv& env);     // impls/single_node.cc
std::unique_ptr<Lock> NewRedlockLock(const LockEnv& env);      // impls/redlock.cc
std::unique_ptr<Lock> NewFencedLock(const LockEnv& env);       // impls/fenced.cc

// Knobs of the built-in locks. The defaults are the correct lock (what the factories above
// build); every other value plants one bug of the mutant corpus (impls/mutants.cc) and is
// used only there. The factories taking options have their own names so that the ones above
// stay unambiguous as `ImplInfo::make`.

struct WatchdogOptions {
  // true: the renewal runs once and then stops, telling no one (silent-watchdog-death).
  bool renew_once = false;
};
std::unique_ptr<Lock> NewWatchdogLockWith(const LockEnv& env,  // impls/single_node.cc
                                          const WatchdogOptions& options);

struct RedlockOptions {
  // false: validity = ttl - drift, ignoring the operation's elapsed time, and an acquire that
  // took longer than the TTL is not refused (no-elapsed-check).
  bool subtract_elapsed = true;
  // false: no clock-drift allowance, drift = 0 (no-drift).
  bool drift_allowance = true;
  // false: quorum = N/2 (at least 1) instead of N/2+1, everywhere: acquire, its early stop,
  // extend and release (bad-quorum).
  bool majority_quorum = true;
  // true: one token for all attempts of an acquire; a failed attempt that cannot have left a
  // quorum is not cleaned up; SET counts a node already holding our token as acquired;
  // only the final failure cleans up (retry-keeps-partials).
  bool retry_keeps_partials = false;
  // false: a failed attempt cleans up, and counts as possibly holding, only the nodes whose
  // SET answered OK, not those whose outcome is unknown (cleanup-known-nodes-only).
  bool cleanup_unknown_nodes = true;
};
std::unique_ptr<Lock> NewRedlockLockWith(const LockEnv& env,  // impls/redlock.cc
                                         const RedlockOptions& options);

}  // namespace lockstorm
