#include "harness/placement.h"

#include <sched.h>

#include <filesystem>
#include <thread>

namespace lockstorm {

bool PinProcess(pid_t pid, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  bool ok = true;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    const pid_t tid = static_cast<pid_t>(std::stol(e.path().filename().string()));
    ok = sched_setaffinity(tid, sizeof set, &set) == 0 && ok;
  }
  return ok && !ec;
}

std::string CpuListOf(pid_t pid) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(pid, sizeof set, &set) != 0) return "?";
  std::string out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (!CPU_ISSET(c, &set)) continue;
    if (!out.empty()) out += ",";
    out += std::to_string(c);
  }
  return out;
}

bool IsPlacement(const std::string& pin) {
  return pin == "none" || pin == "same" || pin == "split";
}

int ClientCpu(const std::string& pin) { return pin == "none" ? -1 : 0; }

int ServerCpu(const std::string& pin) {
  if (pin == "none") return -1;
  return pin == "split" && std::thread::hardware_concurrency() > 1 ? 1 : 0;
}

}  // namespace lockstorm
