// Unit tests for harness/process.h (and harness/shutdown.h, whose signal handling is tested in
// a separate process so that the test binary's own signal dispositions stay untouched).
//
// Some tests re-execute this binary as a helper process (LOCKSTORM_PROCESS_TEST_HELPER set):
// the helper runs from a static initializer, before gtest, and never returns. A fresh exec
// avoids fork()ing the multi-threaded test process and continuing to run code in the child.
#include "harness/process.h"

#include <gtest/gtest.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "harness/shutdown.h"

namespace lockstorm {
namespace {

constexpr char kHelperEnv[] = "LOCKSTORM_PROCESS_TEST_HELPER";
constexpr int64_t kWaitMs = 10000;  // bound on every wait in these tests

void WriteString(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// Reads one '\n'-terminated line (without it) from `fd`, waiting at most `timeout_ms`.
// Reads byte by byte so nothing after the line is consumed. False on timeout or EOF.
bool ReadLine(int fd, int64_t timeout_ms, std::string* line) {
  line->clear();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int64_t left_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left_ms <= 0) return false;
    pollfd pfd{fd, POLLIN, 0};
    int r = poll(&pfd, 1, static_cast<int>(left_ms));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    char ch;
    ssize_t n = read(fd, &ch, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    if (ch == '\n') return true;
    *line += ch;
  }
}

// True if `pid` no longer exists or is a zombie (dead, just not yet reaped by its parent).
bool ProcessGone(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content;
  if (!std::getline(stat, content)) return true;
  size_t paren = content.rfind(')');
  return paren != std::string::npos && paren + 2 < content.size() &&
         (content[paren + 2] == 'Z' || content[paren + 2] == 'X');
}

// Polls (with backoff) until `pid` is gone, at most `timeout_ms`. The death of a process that
// is not our child gives us no event to wait on, hence the polling.
bool WaitGone(pid_t pid, int64_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int64_t sleep_us = 200;
  while (!ProcessGone(pid)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
    sleep_us = std::min<int64_t>(sleep_us * 2, 20000);
  }
  return true;
}

std::string SelfExe() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  return std::string(buf, static_cast<size_t>(n));
}

// --- helper processes (run instead of the tests when kHelperEnv is set) --------------------

// Starts the reaper, spawns `/bin/sh -c 'sleep 1000 & ...'`, prints "<sh pid> <sleep pid>"
// and waits to be killed. The sleep is the shell's child: it has no PDEATHSIG, so only the
// reaper can kill it once this helper is gone.
int ReaperHelper() {
  if (!StartReaper().ok()) return 3;
  SpawnOptions so;
  so.argv = {"/bin/sh", "-c", "sleep 1000 & echo $!; wait"};
  so.pipe_stdio = true;
  std::unique_ptr<Process> sh;
  if (!Spawn(so, &sh).ok()) return 4;
  std::string sleep_pid;
  if (!ReadLine(sh->stdout_fd(), kWaitMs, &sleep_pid)) return 5;
  WriteString(1, std::to_string(sh->pid()) + " " + sleep_pid + "\n");
  sh.release();  // never stopped here: the helper is SIGKILLed while the children run
  for (;;) pause();
}

// Installs the shutdown handlers and reports, one line per step:
//   "ready <waited-without-signal> <sigpipe-ignored>", then after the first signal
//   "shutdown <requested> <signal>"; then waits for the second signal, which must _exit.
int ShutdownHelper() {
  if (!InstallShutdownHandlers().ok()) return 3;
  bool early = WaitForShutdownOrTimeout(10);
  struct sigaction sa;
  sigaction(SIGPIPE, nullptr, &sa);
  bool sigpipe_ignored = sa.sa_handler == SIG_IGN;
  WriteString(1, "ready " + std::to_string(early) + " " + std::to_string(sigpipe_ignored) + "\n");
  bool requested = WaitForShutdownOrTimeout(kWaitMs);
  WriteString(
      1, "shutdown " + std::to_string(requested) + " " + std::to_string(ShutdownSignal()) + "\n");
  // The second signal ends the process from its handler; this bound only stops a broken
  // handler from leaving the helper behind.
  poll(nullptr, 0, static_cast<int>(kWaitMs));
  return 4;
}

int RunHelperIfAsked() {
  const char* mode = getenv(kHelperEnv);
  if (mode == nullptr) return 0;
  if (strcmp(mode, "reaper") == 0) _exit(ReaperHelper());
  if (strcmp(mode, "shutdown") == 0) _exit(ShutdownHelper());
  _exit(2);
}

[[maybe_unused]] const int kHelperRan = RunHelperIfAsked();

Status SpawnHelper(const std::string& mode, std::unique_ptr<Process>* out) {
  SpawnOptions so;
  so.argv = {SelfExe()};
  so.env[kHelperEnv] = mode;
  so.pipe_stdio = true;
  return Spawn(so, out);
}

// --- tests ----------------------------------------------------------------------------------

TEST(ProcessTest, SpawnRunsProgramAndCapturesExitStatus) {
  std::unique_ptr<Process> p;
  ASSERT_TRUE(Spawn({.argv = {"/bin/sh", "-c", "exit 7"}}, &p).ok());
  int st = 0;
  ASSERT_TRUE(p->WaitFor(kWaitMs, &st));
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 7);

  // argv[0] without a '/' is looked up in PATH.
  std::unique_ptr<Process> q;
  ASSERT_TRUE(Spawn({.argv = {"true"}}, &q).ok());
  ASSERT_TRUE(q->WaitFor(kWaitMs, &st));
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0);
  EXPECT_TRUE(q->Exited());  // stays exited; safe to ask again
}

TEST(ProcessTest, SpawnOfMissingProgramFailsWithOneLineMessage) {
  std::unique_ptr<Process> p;
  Status s = Spawn({.argv = {"lockstorm-no-such-program"}}, &p);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(p, nullptr);
  EXPECT_NE(s.message().find("lockstorm-no-such-program"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("not found"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find('\n'), std::string::npos);

  s = Spawn({.argv = {"/nonexistent/lockstorm-prog"}}, &p);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("/nonexistent/lockstorm-prog"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find('\n'), std::string::npos);

  EXPECT_FALSE(Spawn({.argv = {}}, &p).ok());
}

TEST(ProcessTest, SignalKillsWholeGroupIncludingGrandchild) {
  std::unique_ptr<Process> p;
  SpawnOptions so;
  so.argv = {"/bin/sh", "-c", "sleep 1000 & echo $!; wait"};
  so.pipe_stdio = true;
  ASSERT_TRUE(Spawn(so, &p).ok());
  std::string line;
  ASSERT_TRUE(ReadLine(p->stdout_fd(), kWaitMs, &line));
  pid_t grandchild = static_cast<pid_t>(std::stol(line));
  ASSERT_GT(grandchild, 1);
  ASSERT_FALSE(ProcessGone(grandchild));
  EXPECT_EQ(getpgid(grandchild), p->pid());  // the shell's child shares the shell's group

  p->Signal(SIGKILL);
  int st = 0;
  ASSERT_TRUE(p->WaitFor(kWaitMs, &st));
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  bool gone = WaitGone(grandchild, kWaitMs);
  if (!gone) kill(grandchild, SIGKILL);
  EXPECT_TRUE(gone) << "grandchild " << grandchild << " survived kill of its group";
  p->Signal(SIGKILL);  // after exit: a no-op
}

TEST(ProcessTest, PipeStdioRoundTrip) {
  std::unique_ptr<Process> p;
  SpawnOptions so;
  so.argv = {"cat"};
  so.pipe_stdio = true;
  ASSERT_TRUE(Spawn(so, &p).ok());
  ASSERT_GE(p->stdin_fd(), 0);
  ASSERT_GE(p->stdout_fd(), 0);
  WriteString(p->stdin_fd(), "hello lockstorm\nsecond\n");
  std::string line;
  ASSERT_TRUE(ReadLine(p->stdout_fd(), kWaitMs, &line));
  EXPECT_EQ(line, "hello lockstorm");
  ASSERT_TRUE(ReadLine(p->stdout_fd(), kWaitMs, &line));
  EXPECT_EQ(line, "second");
  p->CloseStdin();  // cat sees EOF and exits 0
  int st = 0;
  ASSERT_TRUE(p->WaitFor(kWaitMs, &st));
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 0);
}

TEST(ProcessTest, StopEscalatesToSigkillWhenSigtermIsIgnored) {
  std::unique_ptr<Process> p;
  SpawnOptions so;
  so.argv = {"/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"};
  so.pipe_stdio = true;
  ASSERT_TRUE(Spawn(so, &p).ok());
  std::string line;
  ASSERT_TRUE(ReadLine(p->stdout_fd(), kWaitMs, &line));  // the trap is in place
  ASSERT_EQ(line, "ready");
  pid_t pid = p->pid();
  p->Stop(50);
  EXPECT_EQ(p->pid(), -1);
  EXPECT_TRUE(ProcessGone(pid));  // Stop reaps: the pid no longer exists
}

TEST(ProcessTest, StopResumesAStoppedProcess) {
  std::unique_ptr<Process> p;
  ASSERT_TRUE(Spawn({.argv = {"sleep", "1000"}}, &p).ok());
  pid_t pid = p->pid();
  p->Signal(SIGSTOP);
  p->Stop(50);
  EXPECT_TRUE(ProcessGone(pid));
}

TEST(ProcessTest, DestructorKillsTheGroup) {
  pid_t pid;
  {
    std::unique_ptr<Process> p;
    ASSERT_TRUE(Spawn({.argv = {"sleep", "1000"}}, &p).ok());
    pid = p->pid();
    ASSERT_FALSE(ProcessGone(pid));
  }
  EXPECT_TRUE(ProcessGone(pid));
}

TEST(ProcessTest, ReaperKillsRegisteredGroupsWhenOwnerIsKilled) {
  std::string exe = SelfExe();
  ASSERT_FALSE(exe.empty());
  std::unique_ptr<Process> helper;
  ASSERT_TRUE(SpawnHelper("reaper", &helper).ok());
  std::string line;
  ASSERT_TRUE(ReadLine(helper->stdout_fd(), kWaitMs, &line)) << "helper did not report";
  std::istringstream in(line);
  pid_t sh_pid = 0, sleep_pid = 0;
  in >> sh_pid >> sleep_pid;
  ASSERT_GT(sh_pid, 1) << line;
  ASSERT_GT(sleep_pid, 1) << line;
  ASSERT_FALSE(ProcessGone(sleep_pid));

  // SIGKILL the helper alone (not its group: the reaper it forked is in that group).
  ASSERT_EQ(kill(helper->pid(), SIGKILL), 0);
  ASSERT_TRUE(helper->WaitFor(kWaitMs));

  bool sh_gone = WaitGone(sh_pid, kWaitMs);
  bool sleep_gone = WaitGone(sleep_pid, kWaitMs);
  if (!sh_gone) kill(-sh_pid, SIGKILL);  // clean up before failing
  if (!sleep_gone) kill(sleep_pid, SIGKILL);
  EXPECT_TRUE(sh_gone) << "spawned shell " << sh_pid << " outlived its owner";
  EXPECT_TRUE(sleep_gone) << "grandchild " << sleep_pid << " outlived its owner (reaper)";
}

TEST(ShutdownTest, FirstSignalRequestsShutdownSecondExitsAt130) {
  std::string exe = SelfExe();
  ASSERT_FALSE(exe.empty());
  std::unique_ptr<Process> helper;
  ASSERT_TRUE(SpawnHelper("shutdown", &helper).ok());
  std::string line;
  ASSERT_TRUE(ReadLine(helper->stdout_fd(), kWaitMs, &line)) << "helper did not start";
  EXPECT_EQ(line, "ready 0 1");  // no early wake-up; SIGPIPE ignored

  ASSERT_EQ(kill(helper->pid(), SIGTERM), 0);
  ASSERT_TRUE(ReadLine(helper->stdout_fd(), kWaitMs, &line)) << "no wake-up on SIGTERM";
  EXPECT_EQ(line, "shutdown 1 " + std::to_string(SIGTERM));

  ASSERT_EQ(kill(helper->pid(), SIGINT), 0);
  int st = 0;
  ASSERT_TRUE(helper->WaitFor(kWaitMs, &st)) << "second signal did not end the process";
  ASSERT_TRUE(WIFEXITED(st)) << "wait status " << st;
  EXPECT_EQ(WEXITSTATUS(st), 128 + SIGINT);
}

}  // namespace
}  // namespace lockstorm
