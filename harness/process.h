// Child processes: every process lockstorm starts (redis-servers, exec plug-ins, sentinels)
// is started through Spawn, so that none is ever left behind:
//   - each child leads its own process group (so kill(-pgid) reaches its grandchildren too,
//     e.g. what `/bin/sh -c` starts);
//   - each child gets PR_SET_PDEATHSIG=SIGKILL (it dies if lockstorm dies);
//   - each group is registered with the Reaper, a tiny process forked at start-up that kills
//     every registered group when lockstorm's end of a pipe closes — which happens even when
//     lockstorm is killed with SIGKILL.
// Thread-safety: Spawn and the Process methods are thread-safe (Spawn forks from the
// "spawner" thread so that PDEATHSIG is tied to the process, not to a short-lived thread).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "harness/status.h"

namespace lockstorm {

struct SpawnOptions {
  std::vector<std::string> argv;           // argv[0] is looked up in PATH
  std::map<std::string, std::string> env;  // added to (overriding) the inherited environment
  std::string stdout_path;                 // "" = /dev/null; ignored if pipe_stdio
  std::string stderr_path;                 // "" = /dev/null
  bool pipe_stdio = false;                 // give the caller the child's stdin and stdout
  std::string cwd;                         // "" = inherit
};

class Process {
 public:
  ~Process();  // kills the group (SIGKILL) and reaps it if still running

  pid_t pid() const { return pid_; }
  int stdin_fd() const { return stdin_fd_; }    // -1 unless pipe_stdio
  int stdout_fd() const { return stdout_fd_; }  // -1 unless pipe_stdio
  void CloseStdin();

  // Sends `sig` to the whole process group. Safe after exit (no-op).
  void Signal(int sig);
  // Non-blocking: true if the child has exited (and reaps it); *status gets the wait status.
  bool Exited(int* wait_status = nullptr);
  // Waits at most `timeout_ms` for exit. True if exited.
  bool WaitFor(int64_t timeout_ms, int* wait_status = nullptr);
  // SIGTERM, wait up to `grace_ms`, then SIGKILL the group and reap. Always reaps.
  void Stop(int64_t grace_ms);

 private:
  friend Status Spawn(const SpawnOptions&, std::unique_ptr<Process>*);
  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  bool reaped_ = false;
  int wait_status_ = 0;
};

// The executable `prog` resolves to ("" if none): itself when it contains a '/' and is
// executable, else the first executable match in $PATH.
std::string FindExecutable(const std::string& prog);

// Starts a child. Fails with a one-line message if the program cannot be executed.
Status Spawn(const SpawnOptions& opts, std::unique_ptr<Process>* out);

// Starts the reaper process (idempotent). Call once early in main(), before threads start.
Status StartReaper();
// Registers / unregisters a process group with the reaper (no-op if it was not started).
void ReaperRegister(pid_t pgid);
void ReaperUnregister(pid_t pgid);

}  // namespace lockstorm
