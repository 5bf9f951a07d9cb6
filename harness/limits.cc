#include "harness/limits.h"

#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace lockstorm {
namespace {

int64_t FromRlim(rlim_t v) { return v == RLIM_INFINITY ? -1 : static_cast<int64_t>(v); }

std::string LimitText(int64_t v) { return v < 0 ? "unlimited" : std::to_string(v); }

}  // namespace

int64_t FileDescriptorsNeeded(int clients, int nodes, bool contract_samples, bool proxies) {
  const int64_t c = std::max(clients, 0);
  const int64_t n = std::max(nodes, 1);
  int64_t fds = c * n;                 // each client's transport
  if (contract_samples) fds += c * n;  // each client's sampler
  if (proxies) fds += 2 * c * n;       // both ends of every proxied link
  fds += n;                            // key observer
  return fds + kFileLimitSlack;
}

int64_t FileLimitTarget(int64_t wanted, FileLimit current) {
  if (current.soft < 0) return -1;  // already unlimited
  int64_t target = wanted;
  if (current.hard >= 0) target = std::min(target, current.hard);
  return std::max(target, current.soft);
}

FileLimit CurrentFileLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return {};
  return {FromRlim(rl.rlim_cur), FromRlim(rl.rlim_max)};
}

Status RaiseFileLimit(int64_t wanted, FileLimit* now) {
  FileLimit cur = CurrentFileLimit();
  const int64_t target = FileLimitTarget(wanted, cur);
  Status result;
  if (target != cur.soft) {
    rlimit rl{};
    rl.rlim_cur = target < 0 ? RLIM_INFINITY : static_cast<rlim_t>(target);
    rl.rlim_max = cur.hard < 0 ? RLIM_INFINITY : static_cast<rlim_t>(cur.hard);
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      result = Status::IoError("cannot raise the open-file limit from " + LimitText(cur.soft) +
                               " to " + std::to_string(target) + ": " + std::strerror(errno));
    }
    cur = CurrentFileLimit();
  }
  if (now != nullptr) *now = cur;
  if (!result.ok()) return result;
  if (cur.soft >= 0 && cur.soft < wanted) {
    return Status::IoError(
        "need " + std::to_string(wanted) + " open files, but the hard limit is " +
        LimitText(cur.hard) + " (soft now " + LimitText(cur.soft) +
        "): connections beyond it fail (EMFILE) and embedded redis-servers cut maxclients to "
        "it; raise the hard limit (ulimit -Hn " +
        std::to_string(wanted) + " as root, LimitNOFILE= in systemd, docker --ulimit nofile=" +
        std::to_string(wanted) + ")");
  }
  return Status::Ok();
}

}  // namespace lockstorm
