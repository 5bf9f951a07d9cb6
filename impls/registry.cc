// The table of built-in lock implementations.
#include "impls/registry.h"

#include "impls/builtin.h"

namespace lockstorm {

const std::vector<ImplInfo>& BuiltinImpls() {
  static const std::vector<ImplInfo>* table = new std::vector<ImplInfo>{
      {.name = "setnx-expire",
       .description = "SETNX then PEXPIRE as two commands, DEL to release (the pre-2.6.12 "
                      "idiom still found in tutorials and old cron wrappers)",
       .weakness = "a crash between SETNX and PEXPIRE leaves a lock with no TTL; DEL releases "
                   "whoever holds the lock now",
       .expected_unsafe = {"contention", "overrun"},
       .make = NewSetnxExpireLock},
      {.name = "set-nx-del",
       .description = "SET key value NX PX ttl, release with an unconditional DEL (the cron / "
                      "Celery once-only pattern)",
       .weakness = "a holder that outlives its TTL deletes the next holder's lock on release",
       .expected_unsafe = {"contention", "overrun"},
       .make = NewSetNxDelLock},
      {.name = "token-lua",
       .description = "random token, SET NX PX, Lua compare-and-delete release, Lua "
                      "compare-and-pexpire extend (the single-instance algorithm of the Redis "
                      "docs)",
       .weakness = "a holder paused past its TTL keeps acting (no fencing); a failover can "
                   "lose the key",
       .expected_unsafe = {"overrun"},
       .make = NewTokenLuaLock},
      {.name = "watchdog",
       .description = "token-lua plus a renewal thread extending the lease every ttl/3 while "
                      "held (Redisson's lock watchdog)",
       .weakness = "a paused process pauses its watchdog too; the lease then expires under it",
       .expected_unsafe = {},
       .make = NewWatchdogLock},
      {.name = "redlock",
       .description = "Redlock over N independent nodes: concurrent SET NX PX, quorum N/2+1, "
                      "validity = ttl - elapsed - drift, cleanup on all nodes",
       .weakness = "no fencing: a paused holder keeps acting; a node restarting without "
                   "persistence or a clock jump can give a second majority",
       .min_nodes = 3,
       .multi_node = true,
       .expected_unsafe = {"overrun"},
       .make = NewRedlockLock},
      {.name = "fenced",
       .description = "token-lua plus a fencing token (INCR in the same script as SET NX), "
                      "checked by the witness resource",
       .weakness = "lock-level overlaps still happen; only a resource that checks the token "
                   "is protected",
       .expected_unsafe = {"overrun"},
       .make = NewFencedLock},
  };
  return *table;
}

const ImplInfo* FindBuiltinImpl(const std::string& name) {
  for (const ImplInfo& i : BuiltinImpls())
    if (i.name == name) return &i;
  return nullptr;
}

}  // namespace lockstorm
