// Shutdown on Ctrl-C / SIGTERM / SIGHUP, for main().
//
// InstallShutdownHandlers() makes SIGINT, SIGTERM and SIGHUP request an orderly shutdown: the
// first one sets a flag (ShutdownRequested()) and wakes every WaitForShutdownOrTimeout() caller;
// lockstorm then stops its runs, writes what it has and stops its servers. A second one of
// these signals while shutting down exits at once with _exit(128 + signal) (130 for SIGINT):
// nothing is flushed, but no child is left behind — every child has PR_SET_PDEATHSIG=SIGKILL
// and the reaper (harness/process.h) kills every registered process group once lockstorm is
// gone. SIGPIPE is ignored (writes to closed sockets fail with EPIPE instead).
//
// Thread-safety: all functions are thread-safe; ShutdownRequested() is a lock-free atomic load
// and may be polled from any thread.
#pragma once

#include <cstdint>

#include "harness/status.h"

namespace lockstorm {

// Installs the handlers (idempotent). Call once early in main(). Fails only if the wake-up
// pipe cannot be created or a handler cannot be installed.
Status InstallShutdownHandlers();

// True once a shutdown signal arrived (or RequestShutdown() was called).
bool ShutdownRequested();

// The signal that requested shutdown (e.g. SIGINT), 0 if none or if requested by code.
int ShutdownSignal();

// Requests shutdown from code (same effect as the first signal, but never exits).
void RequestShutdown();

// Blocks until shutdown is requested or `timeout_ms` passed (poll on a self-pipe, no busy
// wait). Returns ShutdownRequested(). Returns at once if shutdown was already requested.
// Without InstallShutdownHandlers() it only wakes for RequestShutdown().
bool WaitForShutdownOrTimeout(int64_t timeout_ms);

}  // namespace lockstorm
