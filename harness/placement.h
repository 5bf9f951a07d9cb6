// CPU placement: on a 2-vCPU machine whether the client and the servers share a CPU changes a
// loopback round trip several-fold, so every run and benchmark records and can control it.
//   none  — the scheduler decides;
//   same  — lockstorm (or the benchmark) and every server on CPU 0;
//   split — lockstorm on CPU 0, the servers on CPU 1 (CPU 0 if there is only one).
#pragma once

#include <sys/types.h>

#include <string>

namespace lockstorm {

// Pins every thread of `pid` (threads started later inherit it) to `cpu`. False if refused.
bool PinProcess(pid_t pid, int cpu);
// The CPUs `pid` may run on, as "0,1".
std::string CpuListOf(pid_t pid);
// True for "none", "same", "split".
bool IsPlacement(const std::string& pin);
// Where lockstorm's own process and the servers go under `pin` (-1 = not pinned).
int ClientCpu(const std::string& pin);
int ServerCpu(const std::string& pin);

}  // namespace lockstorm
