#include "harness/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

extern char** environ;

namespace lockstorm {
namespace {

int g_reaper_fd = -1;  // write end of the pipe to the reaper
std::mutex g_reaper_mu;

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

[[noreturn]] void ReaperMain(int read_fd) {
  // Survive the terminal's signals: the reaper's job starts when lockstorm is gone.
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  std::set<pid_t> groups;
  std::string buf;
  char chunk[512];
  for (;;) {
    ssize_t n = read(read_fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // lockstorm exited (normally or not)
    buf.append(chunk, static_cast<size_t>(n));
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (line.size() < 2) continue;
      pid_t pgid = static_cast<pid_t>(atol(line.c_str() + 1));
      if (pgid <= 1) continue;
      if (line[0] == '+') groups.insert(pgid);
      if (line[0] == '-') groups.erase(pgid);
    }
  }
  for (pid_t g : groups) kill(-g, SIGKILL);
  _exit(0);
}

// All forks happen on one long-lived thread: PR_SET_PDEATHSIG fires when the *thread* that
// forked the child exits, so forking from short-lived client threads would kill children early.
class Spawner {
 public:
  static Spawner& Get() {
    static Spawner* s = new Spawner();
    return *s;
  }
  Status Run(const std::function<Status()>& fn) {
    if (std::this_thread::get_id() == thread_id_) return fn();
    std::unique_lock<std::mutex> lock(mu_);
    Job job{&fn, Status(), false};
    queue_.push_back(&job);
    cv_.notify_all();
    done_cv_.wait(lock, [&] { return job.done; });
    return job.result;
  }

 private:
  struct Job {
    const std::function<Status()>* fn;
    Status result;
    bool done;
  };
  Spawner() {
    std::thread t([this] { Loop(); });
    thread_id_ = t.get_id();
    t.detach();
  }
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return !queue_.empty(); });
      Job* job = queue_.front();
      queue_.erase(queue_.begin());
      lock.unlock();
      Status s = (*job->fn)();
      lock.lock();
      job->result = s;
      job->done = true;
      done_cv_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<Job*> queue_;
  std::thread::id thread_id_;
};

Status SpawnNow(const SpawnOptions& opts, pid_t* pid_out, int* in_fd, int* out_fd) {
  if (opts.argv.empty()) return Status::InvalidArgument("spawn: empty command");
  std::string exe = FindExecutable(opts.argv[0]);
  if (exe.empty()) return Status::NotFound(opts.argv[0] + ": not found in PATH");

  // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    std::string k = kv.substr(0, kv.find('='));
    if (opts.env.count(k) == 0) env_strings.push_back(kv);
  }
  for (const auto& [k, v] : opts.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = opts.argv;
  for (auto& s : argv_copy) argv.push_back(s.data());
  argv.push_back(nullptr);

  int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  auto close_all = [&] {
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]})
      if (fd >= 0) close(fd);
  };
  if (pipe2(err_pipe, O_CLOEXEC) != 0 ||
      (opts.pipe_stdio && (pipe2(in_pipe, O_CLOEXEC) != 0 || pipe2(out_pipe, O_CLOEXEC) != 0))) {
    close_all();
    return Status::IoError(std::string("spawn: pipe: ") + strerror(errno));
  }
  int out_file = -1, err_file = -1;
  if (!opts.pipe_stdio) {
    out_file = open(opts.stdout_path.empty() ? "/dev/null" : opts.stdout_path.c_str(),
                    O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  }
  err_file = open(opts.stderr_path.empty() ? "/dev/null" : opts.stderr_path.c_str(),
                  O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int null_in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if ((!opts.pipe_stdio && out_file < 0) || err_file < 0 || null_in < 0) {
    std::string what = err_file < 0 ? opts.stderr_path : opts.stdout_path;
    close_all();
    for (int fd : {out_file, err_file, null_in})
      if (fd >= 0) close(fd);
    return Status::IoError("spawn: cannot open " + what + ": " + strerror(errno));
  }
  pid_t parent = getpid();
  const char* cwd = opts.cwd.empty() ? nullptr : opts.cwd.c_str();

  pid_t pid = fork();
  if (pid < 0) {
    close_all();
    return Status::IoError(std::string("spawn: fork: ") + strerror(errno));
  }
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // lockstorm died between fork and prctl
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s = 1; s < 32; ++s) signal(s, SIG_DFL);
    if (opts.pipe_stdio) {
      dup2(in_pipe[0], 0);
      dup2(out_pipe[1], 1);
    } else {
      dup2(null_in, 0);
      dup2(out_file, 1);
    }
    dup2(err_file, 2);
    if (cwd && chdir(cwd) != 0) {
      int e = errno;
      (void)!write(err_pipe[1], &e, sizeof e);
      _exit(127);
    }
    execve(exe.c_str(), argv.data(), envp.data());
    int e = errno;
    (void)!write(err_pipe[1], &e, sizeof e);
    _exit(127);
  }
  setpgid(pid, pid);  // also from the parent: no race with an early kill(-pgid)
  for (int fd : {out_file, err_file, null_in})
    if (fd >= 0) close(fd);
  close(err_pipe[1]);
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(err_pipe[0], &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  close(err_pipe[0]);
  if (n == sizeof child_errno) {
    int st;
    waitpid(pid, &st, 0);
    if (opts.pipe_stdio) {
      close(in_pipe[0]);
      close(in_pipe[1]);
      close(out_pipe[0]);
      close(out_pipe[1]);
    }
    return Status::IoError("cannot execute " + opts.argv[0] + ": " + strerror(child_errno));
  }
  if (opts.pipe_stdio) {
    close(in_pipe[0]);
    close(out_pipe[1]);
    *in_fd = in_pipe[1];
    *out_fd = out_pipe[0];
  }
  *pid_out = pid;
  ReaperRegister(pid);
  return Status::Ok();
}

}  // namespace

std::string FindExecutable(const std::string& prog) {
  if (prog.find('/') != std::string::npos) return access(prog.c_str(), X_OK) == 0 ? prog : "";
  const char* path = getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string dir = p.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + prog;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

Status Spawn(const SpawnOptions& opts, std::unique_ptr<Process>* out) {
  pid_t pid = -1;
  int in_fd = -1, out_fd = -1;
  Status s = Spawner::Get().Run([&] { return SpawnNow(opts, &pid, &in_fd, &out_fd); });
  if (!s.ok()) return s;
  auto p = std::unique_ptr<Process>(new Process());
  p->pid_ = pid;
  p->stdin_fd_ = in_fd;
  p->stdout_fd_ = out_fd;
  *out = std::move(p);
  return Status::Ok();
}

Process::~Process() { Stop(0); }

void Process::CloseStdin() {
  if (stdin_fd_ >= 0) close(stdin_fd_);
  stdin_fd_ = -1;
}

void Process::Signal(int sig) {
  if (!reaped_ && pid_ > 0) kill(-pid_, sig);
}

bool Process::Exited(int* wait_status) {
  if (!reaped_) {
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_ || (r < 0 && errno == ECHILD)) {
      reaped_ = true;
      wait_status_ = st;
    }
  }
  if (reaped_ && wait_status) *wait_status = wait_status_;
  return reaped_;
}

bool Process::WaitFor(int64_t timeout_ms, int* wait_status) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int64_t sleep_us = 200;
  while (!Exited(wait_status)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
    sleep_us = std::min<int64_t>(sleep_us * 2, 20000);
  }
  return true;
}

void Process::Stop(int64_t grace_ms) {
  if (pid_ <= 0) return;
  if (!Exited()) {
    if (grace_ms > 0) {
      Signal(SIGTERM);
      WaitFor(grace_ms);
    }
    if (!Exited()) {
      // SIGKILL first: it ends a stopped process too. A SIGCONT sent before it would let a
      // paused child run (e.g. act on a request it was sent while paused) until the SIGKILL
      // lands; after it, SIGCONT is harmless (kept for processes that were stopped).
      Signal(SIGKILL);
      Signal(SIGCONT);
      WaitFor(10000);
    }
  }
  // Grandchildren may outlive the leader: the group gets a final SIGKILL.
  kill(-pid_, SIGKILL);
  ReaperUnregister(pid_);
  CloseStdin();
  if (stdout_fd_ >= 0) close(stdout_fd_);
  stdout_fd_ = -1;
  pid_ = -1;
}

Status StartReaper() {
  std::lock_guard<std::mutex> lock(g_reaper_mu);
  if (g_reaper_fd >= 0) return Status::Ok();
  int fds[2];
  if (pipe(fds) != 0) return Status::IoError(std::string("reaper: pipe: ") + strerror(errno));
  pid_t pid = fork();
  if (pid < 0) return Status::IoError(std::string("reaper: fork: ") + strerror(errno));
  if (pid == 0) {
    close(fds[1]);
    for (int fd = 3; fd < 1024; ++fd)
      if (fd != fds[0]) close(fd);
    ReaperMain(fds[0]);
  }
  close(fds[0]);
  fcntl(fds[1], F_SETFD, FD_CLOEXEC);
  g_reaper_fd = fds[1];
  return Status::Ok();
}

void ReaperRegister(pid_t pgid) {
  std::lock_guard<std::mutex> lock(g_reaper_mu);
  if (g_reaper_fd >= 0) WriteAll(g_reaper_fd, "+" + std::to_string(pgid) + "\n");
}

void ReaperUnregister(pid_t pgid) {
  std::lock_guard<std::mutex> lock(g_reaper_mu);
  if (g_reaper_fd >= 0) WriteAll(g_reaper_fd, "-" + std::to_string(pgid) + "\n");
}

}  // namespace lockstorm
