// Process limits that many concurrent clients run into.
//
// Every client of a run holds one connection per node it uses (and a second one, its sampler,
// when contract samples are on); every embedded redis-server holds one per connected client.
// With the common default soft RLIMIT_NOFILE of 1024, 1000 clients break in two quiet ways:
// embedded redis-servers (which inherit lockstorm's limits) cut maxclients to limit - 32 and
// reset the connections beyond it, and lockstorm's own sockets fail with EMFILE — samplers
// then silently record no samples, leaving the contract checks vacuous.
//
// RaiseFileLimit raises the soft limit (never above the hard limit, never downwards); call it
// before starting embedded servers so that they inherit the raised limit.
#pragma once

#include <cstdint>

#include "harness/status.h"

namespace lockstorm {

struct FileLimit {
  int64_t soft = 0;  // -1 = unlimited (RLIM_INFINITY)
  int64_t hard = 0;  // -1 = unlimited
};

// The file descriptors a run needs in lockstorm's own process: `clients` × `nodes`
// connections, doubled with contract samples, plus two per client per node for fault proxies
// (each proxied link is a client-side and a server-side socket inside lockstorm), plus one
// key-observer connection per node, plus kFileLimitSlack for logs, history, pipes and the
// reaper. Pure.
inline constexpr int64_t kFileLimitSlack = 64;
int64_t FileDescriptorsNeeded(int clients, int nodes, bool contract_samples, bool proxies);

// The soft limit RaiseFileLimit sets: max(soft, min(wanted, hard)), treating -1 as unlimited.
// Pure.
int64_t FileLimitTarget(int64_t wanted, FileLimit current);

// This process's RLIMIT_NOFILE.
FileLimit CurrentFileLimit();

// Raises this process's RLIMIT_NOFILE soft limit toward `wanted`: to min(wanted, hard), and
// never lowers it (a soft limit already >= wanted is left alone). Children spawned afterwards
// inherit it. Ok when the soft limit is now >= wanted. Otherwise the soft limit has been
// raised as far as the hard limit allows and the result is an IoError naming wanted, soft and
// hard and the fix ("raise the hard limit: ulimit -Hn N as root, or LimitNOFILE=/--ulimit
// nofile=N"); a caller may treat it as a warning. `*now` (if given) gets the limit after the
// call. Thread-safe (setrlimit is process-wide; concurrent callers each only raise).
Status RaiseFileLimit(int64_t wanted, FileLimit* now = nullptr);

}  // namespace lockstorm
