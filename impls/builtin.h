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

}  // namespace lockstorm
