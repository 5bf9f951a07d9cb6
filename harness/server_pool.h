// ServerPool: embedded redis-servers kept running from one run to the next (lockstorm explore
// runs hundreds of short cases; starting five servers for each costs more than many cases).
//
// Get() hands out the pool's ServerSet when its shape fits the run (same number of servers,
// same persistence, a clock shim if the run needs one), after ServerSet::Refresh has undone
// what the previous run's faults left (paused, killed or re-persisted servers, skewed clocks).
// Otherwise it stops the old set and starts a new one under `dir`. Runs never share keys: each
// uses its own random key prefix and deletes only those keys at its end, as against external
// servers. Servers the pool started are lockstorm's own, so faults on them stay allowed.
//
// Ownership: the pool owns its servers and stops them when destroyed. Thread-safety: none; one
// run at a time uses the set it was given, until the next Get().
#pragma once

#include <memory>
#include <string>

#include "harness/redis_server.h"
#include "harness/status.h"

namespace lockstorm {

class ServerPool {
 public:
  explicit ServerPool(std::string dir) : dir_(std::move(dir)) {}

  // A running set of `n` servers for `opts` (extra_config must be empty: replicated
  // topologies are not pooled). *out stays valid until the next Get() or the pool's end.
  // Fails with one line (from starting or refreshing a server).
  Status Get(int n, const ServerOptions& opts, ServerSet** out);

  int starts() const { return starts_; }  // sets started (the first, and after a shape change)
  int reuses() const { return reuses_; }  // Get()s served by the running set

 private:
  std::string dir_;
  std::unique_ptr<ServerSet> set_;
  ServerOptions opts_;  // what set_ was started with
  int generation_ = 0;  // set_'s directory: dir_/set-<generation_>
  int starts_ = 0;
  int reuses_ = 0;
};

}  // namespace lockstorm
