#include "harness/shutdown.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>

namespace lockstorm {
namespace {

std::atomic<bool> g_requested{false};
std::atomic<int> g_signal{0};
// Self-pipe: one byte is written when shutdown is requested and never read, so the read end
// stays readable and every waiter (present and future) wakes.
std::atomic<int> g_wake_read_fd{-1};
std::atomic<int> g_wake_write_fd{-1};
std::mutex g_install_mu;
bool g_installed = false;

Status EnsurePipe() {
  if (g_wake_read_fd.load() >= 0) return Status::Ok();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    return Status::IoError(std::string("shutdown: pipe: ") + strerror(errno));
  }
  g_wake_write_fd.store(fds[1]);
  g_wake_read_fd.store(fds[0]);
  return Status::Ok();
}

// Async-signal-safe: atomics, write(2), _exit(2) only.
void Wake() {
  int fd = g_wake_write_fd.load();
  if (fd >= 0) {
    char b = 1;
    int saved = errno;
    (void)!write(fd, &b, 1);  // non-blocking; a full pipe is readable anyway
    errno = saved;
  }
}

void OnSignal(int sig) {
  if (g_requested.exchange(true)) _exit(128 + sig);  // second signal: the reaper cleans up
  g_signal.store(sig);
  Wake();
}

}  // namespace

Status InstallShutdownHandlers() {
  std::lock_guard<std::mutex> lock(g_install_mu);
  if (g_installed) return Status::Ok();
  Status s = EnsurePipe();
  if (!s.ok()) return s;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  // Block the other shutdown signals while one handler runs, so two cannot interleave.
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&sa.sa_mask, sig);
  sa.sa_flags = SA_RESTART;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    if (sigaction(sig, &sa, nullptr) != 0) {
      return Status::Internal(std::string("shutdown: sigaction: ") + strerror(errno));
    }
  }
  signal(SIGPIPE, SIG_IGN);
  g_installed = true;
  return Status::Ok();
}

bool ShutdownRequested() { return g_requested.load(std::memory_order_relaxed); }

int ShutdownSignal() { return g_signal.load(); }

void RequestShutdown() {
  {
    std::lock_guard<std::mutex> lock(g_install_mu);
    (void)EnsurePipe();
  }
  g_requested.store(true);
  Wake();
}

bool WaitForShutdownOrTimeout(int64_t timeout_ms) {
  if (ShutdownRequested()) return true;
  {
    std::lock_guard<std::mutex> lock(g_install_mu);
    if (!EnsurePipe().ok()) return ShutdownRequested();
  }
  int fd = g_wake_read_fd.load();
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(std::max<int64_t>(timeout_ms, 0));
  for (;;) {
    if (ShutdownRequested()) return true;
    int64_t left_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left_ms <= 0) return ShutdownRequested();
    pollfd pfd{fd, POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left_ms, 1 << 30)));
    if (r > 0) return true;  // the byte is only ever written after the flag is set
    if (r < 0 && errno != EINTR) return ShutdownRequested();
  }
}

}  // namespace lockstorm
