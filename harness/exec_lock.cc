#include "harness/exec_lock.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "harness/fiber.h"
#include "harness/process.h"
#include "harness/tls.h"

namespace lockstorm {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

constexpr char kExecPrefix[] = "exec:";
constexpr int64_t kMaxMarginMs = 3600 * 1000;
constexpr int64_t kExitGraceMs = 500;  // destructor: time for the child to exit on EOF

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

bool IsValidName(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!IsNameChar(c)) return false;
  return true;
}

// Splits "NAME=exec:REST" / "exec:REST". False if `v` is neither.
bool SplitExecValue(const std::string& v, std::string* name, std::string* rest) {
  const size_t plen = sizeof(kExecPrefix) - 1;
  if (v.compare(0, plen, kExecPrefix) == 0) {
    name->clear();
    *rest = v.substr(plen);
    return true;
  }
  size_t eq = v.find('=');
  if (eq == std::string::npos || eq == 0 || v.compare(eq + 1, plen, kExecPrefix) != 0) {
    return false;
  }
  for (size_t i = 0; i < eq; ++i)
    if (!IsNameChar(v[i])) return false;
  *name = v.substr(0, eq);
  *rest = v.substr(eq + 1 + plen);
  return true;
}

bool IsBlank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

// "exec:" + the basename of the first word of `command` that is not an interpreter, an
// option, a number or an environment assignment; characters outside [A-Za-z0-9._-] become _.
std::string DeriveName(const std::string& command) {
  static const std::regex kSkip(
      "(sh|bash|dash|zsh|env|exec|nice|nohup|timeout|stdbuf|python[0-9.]*|pypy[0-9.]*|node|"
      "nodejs|deno|bun|npx|ruby|perl|php|java|go|run|uv|poetry|cargo|dotnet)");
  std::istringstream in(command);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  auto base = [](const std::string& w) {
    size_t slash = w.find_last_of('/');
    return slash == std::string::npos ? w : w.substr(slash + 1);
  };
  std::string pick;
  for (const auto& w : words) {
    std::string b = base(w);
    if (b.empty() || w[0] == '-' || w.find('=') != std::string::npos ||
        b.find_first_not_of("0123456789.") == std::string::npos || std::regex_match(b, kSkip)) {
      continue;
    }
    pick = b;
    break;
  }
  if (pick.empty() && !words.empty()) pick = base(words[0]);
  for (char& c : pick)
    if (!IsNameChar(c)) c = '_';
  if (pick.empty()) pick = "command";
  return std::string(kExecPrefix) + pick;
}

// For messages: printable, one line, at most kExecMaxQuotedBytes (then "...").
std::string Quote(const std::string& s) {
  std::string out = "'";
  size_t n = std::min(s.size(), kExecMaxQuotedBytes);
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      char hex[8];
      snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > n) out += "...";
  out += "'";
  return out;
}

// The flag value as shown in messages: quoted, one line, bounded.
std::string FlagText(const std::string& v) { return Quote(v); }

Status FileError(const std::string& flag_value, const std::string& path, const std::string& what) {
  return Status::InvalidArgument("--impl " + FlagText(flag_value) + ": " + path + ": " + what);
}

Status ParseSpecFile(const std::string& flag_value, const std::string& path, ExecSpec* spec) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return FileError(flag_value, path, std::string("cannot read: ") + strerror(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return FileError(flag_value, path, "cannot read");
  Json doc;
  try {
    doc = Json::parse(ss.str());
  } catch (const Json::parse_error& e) {
    std::string what = e.what();
    size_t close = what.find("] ");  // drop "[json.exception.parse_error.101] "
    if (close != std::string::npos) what = what.substr(close + 2);
    return FileError(flag_value, path, "invalid JSON: " + what);
  }
  if (!doc.is_object()) return FileError(flag_value, path, "/: expected a JSON object");
  for (const auto& [k, v] : doc.items()) {
    if (k == "name") {
      if (!v.is_string() || !IsValidName(v.get<std::string>())) {
        return FileError(flag_value, path,
                         "/name: expected a string of 1-64 characters from [A-Za-z0-9._-]");
      }
      spec->name = v.get<std::string>();
    } else if (k == "command") {
      if (!v.is_string() || IsBlank(v.get<std::string>())) {
        return FileError(flag_value, path, "/command: expected a non-empty string");
      }
      spec->command = v.get<std::string>();
    } else if (k == "expected_unsafe") {
      if (!v.is_array()) {
        return FileError(flag_value, path, "/expected_unsafe: expected an array of strings");
      }
      for (size_t i = 0; i < v.size(); ++i) {
        if (!v[i].is_string() || v[i].get<std::string>().empty()) {
          return FileError(flag_value, path,
                           "/expected_unsafe/" + std::to_string(i) +
                               ": expected a scenario name (non-empty string)");
        }
        spec->expected_unsafe.insert(v[i].get<std::string>());
      }
    } else if (k == "deadline_margin_ms") {
      if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > kMaxMarginMs) {
        return FileError(
            flag_value, path,
            "/deadline_margin_ms: expected an integer in 1.." + std::to_string(kMaxMarginMs));
      }
      spec->deadline_margin_ms = v.get<int64_t>();
    } else {
      return FileError(flag_value, path,
                       "/" + k +
                           ": unknown field (expected name, command, expected_unsafe, "
                           "deadline_margin_ms)");
    }
  }
  if (spec->command.empty()) return FileError(flag_value, path, "/command: missing");
  return Status::Ok();
}

// Writes all of `s` to the non-blocking `fd` before `deadline`, without SIGPIPE. Returns 0,
// or ETIMEDOUT, EPIPE, ECANCELED (woken by `wake_fd`) or another errno.
int WriteAllBounded(int fd, int wake_fd, const std::string& s,
                    std::chrono::steady_clock::time_point deadline) {
  // A write to a pipe without reader raises SIGPIPE in the writing thread: block it here and
  // consume the one we cause, so that neither the process nor other threads see it.
  sigset_t pipe_set, old_set, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_set);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  int result = 0;
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      result = errno;
      break;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      result = ETIMEDOUT;
      break;
    }
    pollfd fds[2] = {{fd, POLLOUT, 0}, {wake_fd, POLLIN, 0}};
    int r = fiber::Poll(fds, 2, fiber::MonoNowUs() + std::min<int64_t>(left + 1, 60000) * 1000);
    if (r < 0 && errno != EINTR) {
      result = errno;
      break;
    }
    if (fds[1].revents != 0) {
      result = ECANCELED;
      break;
    }
    if (fds[0].revents & (POLLERR | POLLHUP)) {
      result = EPIPE;
      break;
    }
  }
  if (result == EPIPE && !was_pending) {
    timespec zero{0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_set, nullptr);
  return result;
}

std::string DescribeWaitStatus(int st) {
  if (WIFEXITED(st)) return "exit code " + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return std::string("killed by signal ") + strsignal(WTERMSIG(st));
  return "status " + std::to_string(st);
}

// Optional non-negative-ish integer milliseconds: absent/null -> false; number -> true.
// Returns false in *ok if present but not a number.
bool GetOptionalMs(const Json& obj, const char* field, int64_t* out, bool* ok) {
  *ok = true;
  auto it = obj.find(field);
  if (it == obj.end() || it->is_null()) return false;
  if (it->is_number_integer()) {
    *out = it->get<int64_t>();
    return true;
  }
  if (it->is_number_float()) {
    double d = it->get<double>();
    if (d > -1e15 && d < 1e15) {
      *out = static_cast<int64_t>(d);  // truncates toward zero: never more validity
      return true;
    }
  }
  *ok = false;
  return false;
}

class ExecLockImpl : public ExecLock {
 public:
  ExecLockImpl(ExecSpec spec, std::string client_id, uint64_t seed,
               std::vector<ServerAddress> servers, std::string stderr_path)
      : spec_(std::move(spec)),
        client_id_(std::move(client_id)),
        seed_(seed),
        servers_(std::move(servers)),
        child_env_(ServerEnvironment(servers_)),
        stderr_path_(std::move(stderr_path)) {
    child_env_["LOCKSTORM_CLIENT"] = client_id_;
    child_env_["LOCKSTORM_SEED"] = std::to_string(seed_);
    if (pipe2(wake_fds_, O_CLOEXEC | O_NONBLOCK) != 0) wake_fds_[0] = wake_fds_[1] = -1;
  }

  ~ExecLockImpl() override {
    std::unique_ptr<Process> proc;
    {
      std::lock_guard<std::mutex> lock(mu_);
      proc = std::move(proc_);
    }
    if (proc) {
      proc->Signal(SIGCONT);
      proc->CloseStdin();  // EOF: a well-behaved child exits by itself
      proc->WaitFor(kExitGraceMs);
      proc->Stop(0);
    }
    for (int fd : wake_fds_)
      if (fd >= 0) close(fd);
  }

  AcquireResult Acquire(const std::string& key, int64_t ttl_ms, int64_t wait_ms) override {
    AcquireResult res;
    res.attempts = 1;
    res.outcome = Outcome::kUnknown;
    try {
      OrderedJson req = {{"op", "acquire"}, {"key", key}, {"ttl_ms", ttl_ms}, {"wait_ms", wait_ms}};
      Json resp;
      int64_t rtt_us = 0;
      if (!Call(&req, SafeAdd(ttl_ms, wait_ms, spec_.deadline_margin_ms), &resp, &rtt_us,
                &res.error)) {
        return res;
      }
      auto acquired = resp.find("acquired");
      if (acquired == resp.end() || !acquired->is_boolean()) {
        Malformed("acquire", "\"acquired\" is not true or false", resp, &res.error);
        return res;
      }
      if (!acquired->get<bool>()) {
        res.outcome = Outcome::kFail;
        return res;
      }
      auto lease = resp.find("lease");
      if (lease == resp.end() || !lease->is_string()) {
        Malformed("acquire", "\"lease\" is not a string", resp, &res.error);
        return res;
      }
      bool ok = true;
      int64_t valid_ms = 0;
      if (!GetOptionalMs(resp, "valid_ms", &valid_ms, &ok)) {
        if (!ok) {
          Malformed("acquire", "\"valid_ms\" is not a number", resp, &res.error);
          return res;
        }
        valid_ms = ttl_ms - (rtt_us + 999) / 1000;
      }
      auto fence = resp.find("fence");
      if (fence != resp.end() && !fence->is_null()) {
        if (!fence->is_number_integer()) {
          Malformed("acquire", "\"fence\" is not an integer", resp, &res.error);
          return res;
        }
        res.lease.fence = fence->get<int64_t>();
      }
      res.lease.key = key;
      res.lease.token = lease->get<std::string>();
      res.lease.valid_ms = valid_ms;
      res.outcome = Outcome::kOk;
    } catch (const std::exception& e) {
      res.outcome = Outcome::kUnknown;
      res.error = spec_.name + ": internal error: " + e.what();
    }
    return res;
  }

  ReleaseResult Release(const Lease& lease) override {
    ReleaseResult res;
    res.outcome = Outcome::kUnknown;
    try {
      OrderedJson req = {{"op", "release"}, {"key", lease.key}, {"lease", lease.token}};
      Json resp;
      int64_t rtt_us = 0;
      if (!Call(&req, spec_.deadline_margin_ms, &resp, &rtt_us, &res.error)) return res;
      auto released = resp.find("released");
      if (released == resp.end() || !released->is_boolean()) {
        Malformed("release", "\"released\" is not true or false", resp, &res.error);
        return res;
      }
      res.outcome = released->get<bool>() ? Outcome::kOk : Outcome::kFail;
    } catch (const std::exception& e) {
      res.outcome = Outcome::kUnknown;
      res.error = spec_.name + ": internal error: " + e.what();
    }
    return res;
  }

  ExtendResult Extend(const Lease& lease, int64_t ttl_ms) override {
    ExtendResult res;
    res.outcome = Outcome::kUnknown;
    try {
      if (!EnsureChild(&res.error)) return res;
      if (ops_.count("extend") == 0) {
        res.outcome = Outcome::kFail;
        res.error = spec_.name + " does not support extend (not in its hello \"ops\")";
        return res;
      }
      OrderedJson req = {
          {"op", "extend"}, {"key", lease.key}, {"lease", lease.token}, {"ttl_ms", ttl_ms}};
      Json resp;
      int64_t rtt_us = 0;
      if (!Call(&req, SafeAdd(ttl_ms, 0, spec_.deadline_margin_ms), &resp, &rtt_us, &res.error)) {
        return res;
      }
      auto extended = resp.find("extended");
      if (extended == resp.end() || !extended->is_boolean()) {
        Malformed("extend", "\"extended\" is not true or false", resp, &res.error);
        return res;
      }
      if (!extended->get<bool>()) {
        res.outcome = Outcome::kFail;
        return res;
      }
      bool ok = true;
      int64_t valid_ms = 0;
      if (!GetOptionalMs(resp, "valid_ms", &valid_ms, &ok)) {
        if (!ok) {
          Malformed("extend", "\"valid_ms\" is not a number", resp, &res.error);
          return res;
        }
        valid_ms = ttl_ms - (rtt_us + 999) / 1000;
      }
      res.valid_ms = valid_ms;
      res.outcome = Outcome::kOk;
    } catch (const std::exception& e) {
      res.outcome = Outcome::kUnknown;
      res.error = spec_.name + ": internal error: " + e.what();
    }
    return res;
  }

  void Crash() override {
    std::lock_guard<std::mutex> lock(mu_);
    crashed_ = true;
    if (proc_) {
      proc_->Signal(SIGKILL);
      proc_->Signal(SIGCONT);
    }
    if (wake_fds_[1] >= 0) (void)!write(wake_fds_[1], "x", 1);
  }

  std::vector<std::string> DrainInfraErrors() override {
    std::lock_guard<std::mutex> lock(infra_mu_);
    std::vector<std::string> out;
    out.swap(infra_errors_);
    return out;
  }

  void Freeze(bool frozen) override {
    if (frozen) {
      PauseChild();
    } else {
      ResumeChild();
    }
  }

  void PauseChild() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (proc_) proc_->Signal(SIGSTOP);
  }

  void ResumeChild() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (proc_) proc_->Signal(SIGCONT);
  }

  pid_t child_pid() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return proc_ ? proc_->pid() : -1;
  }

  pid_t last_child_pid() const override { return last_child_pid_.load(); }

  int children_started() const override { return children_started_.load(); }

 private:
  using SteadyClock = std::chrono::steady_clock;

  static int64_t SafeAdd(int64_t a, int64_t b, int64_t c) {
    auto clamp = [](int64_t v) { return std::clamp<int64_t>(v, 0, int64_t{1} << 40); };
    return clamp(a) + clamp(b) + clamp(c);
  }

  bool Crashed() const {
    std::lock_guard<std::mutex> lock(mu_);
    return crashed_;
  }

  std::string StderrNote() const {
    return stderr_path_.empty() ? "" : " (stderr: " + stderr_path_ + ")";
  }

  void AddInfraError(const std::string& msg) {
    std::lock_guard<std::mutex> lock(infra_mu_);
    infra_errors_.push_back(msg);
  }

  // A response that is JSON with the right id but not a valid answer: a protocol violation,
  // treated like garbage (reported, child replaced, outcome unknown).
  void Malformed(const char* op, const std::string& what, const Json& resp, std::string* error) {
    std::string msg = spec_.name + ": malformed " + op + " response: " + what + ": " +
                      Quote(resp.dump(-1, ' ', false, Json::error_handler_t::replace)) +
                      "; child killed" + StderrNote();
    KillChild();
    AddInfraError(msg);
    *error = msg;
  }

  // SIGKILLs and reaps the current child (if any) and forgets its state.
  void KillChild() {
    std::unique_ptr<Process> proc;
    {
      std::lock_guard<std::mutex> lock(mu_);
      proc = std::move(proc_);
      if (proc) proc->Stop(0);  // under mu_: Crash() must not signal a reaped pid
    }
    buf_.clear();
    ops_.clear();
  }

  // The child has failed (`what`): records the infra error unless the client crashed (a
  // crash is not the plug-in's fault), kills it, and sets *error.
  void Fail(const std::string& what, std::string* error) {
    if (Crashed()) {
      KillChild();
      *error = spec_.name + ": client crashed";
      return;
    }
    KillChild();
    *error = spec_.name + ": " + what + StderrNote();
    AddInfraError(*error);
  }

  // After EOF or EPIPE: how the child ended, waiting briefly for it to exit.
  std::string ExitDescription() {
    std::lock_guard<std::mutex> lock(mu_);
    int st = 0;
    // A child that closed stdout is normally exiting: bounded wait, generous for loaded machines.
    if (proc_ && proc_->WaitFor(2000, &st)) return "child exited (" + DescribeWaitStatus(st) + ")";
    return "child closed its stdout";
  }

  Status Prepare() override {
    std::string error;
    if (EnsureChild(&error)) return Status::Ok();
    return Status::IoError(error);
  }

  // Starts a child and exchanges hello. False (with *error set, infra error recorded) if
  // that fails.
  bool EnsureChild(std::string* error) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (crashed_) {
        *error = spec_.name + ": client crashed";
        return false;
      }
      if (proc_) return true;
      SpawnOptions opts;
      opts.argv = {"/bin/sh", "-c", spec_.command};
      opts.env = child_env_;
      opts.stderr_path = stderr_path_;
      opts.pipe_stdio = true;
      Status s = Spawn(opts, &proc_);
      if (!s.ok()) {
        proc_.reset();
        *error = spec_.name + ": cannot start child: " + s.message();
        AddInfraError(*error);
        return false;
      }
      fcntl(proc_->stdin_fd(), F_SETFL, fcntl(proc_->stdin_fd(), F_GETFL) | O_NONBLOCK);
      fcntl(proc_->stdout_fd(), F_SETFL, fcntl(proc_->stdout_fd(), F_GETFL) | O_NONBLOCK);
      in_fd_ = proc_->stdin_fd();
      out_fd_ = proc_->stdout_fd();
      children_started_.fetch_add(1);
      last_child_pid_.store(proc_->pid());
    }
    buf_.clear();
    ops_.clear();
    next_id_ = 0;
    OrderedJson servers = OrderedJson::array();
    for (const auto& a : servers_) servers.push_back(a.ToString());
    OrderedJson hello = {{"op", "hello"},
                         {"protocol", kExecProtocolVersion},
                         {"client", client_id_},
                         {"servers", servers}};
    Json resp;
    int64_t rtt_us = 0;
    if (!RoundTrip(&hello, kExecHelloTimeoutMs, &resp, &rtt_us, error)) return false;
    auto ops = resp.find("ops");
    bool ops_ok = ops != resp.end() && ops->is_array();
    std::set<std::string> got;
    if (ops_ok) {
      for (const auto& o : *ops) {
        if (!o.is_string()) {
          ops_ok = false;
          break;
        }
        got.insert(o.get<std::string>());
      }
    }
    if (!ops_ok || got.count("acquire") == 0 || got.count("release") == 0) {
      Fail(
          "bad hello response: \"ops\" must be an array of strings including \"acquire\" and "
          "\"release\": " +
              Quote(resp.dump(-1, ' ', false, Json::error_handler_t::replace)),
          error);
      return false;
    }
    ops_ = std::move(got);
    return true;
  }

  // Sends `req` (its "id" is set here) to a live child, starting one if needed, and waits at
  // most `timeout_ms` for the answer. True with *resp a non-error response; false with
  // *error set (and the child killed if it misbehaved).
  bool Call(OrderedJson* req, int64_t timeout_ms, Json* resp, int64_t* rtt_us, std::string* error) {
    if (!EnsureChild(error)) return false;
    if (!RoundTrip(req, timeout_ms, resp, rtt_us, error)) return false;
    auto err = resp->find("error");
    if (err != resp->end() && !err->is_null()) {
      std::string text = err->is_string()
                             ? err->get<std::string>()
                             : err->dump(-1, ' ', false, Json::error_handler_t::replace);
      *error = spec_.name + ": " + text;
      return false;
    }
    return true;
  }

  bool RoundTrip(OrderedJson* req, int64_t timeout_ms, Json* resp, int64_t* rtt_us,
                 std::string* error) {
    const int64_t id = next_id_++;
    const std::string op = (*req)["op"].get<std::string>();
    // "id" first: easier to read in transcripts.
    OrderedJson msg = {{"id", id}};
    for (auto& [k, v] : req->items()) msg[k] = v;
    const std::string line = msg.dump(-1, ' ', false, OrderedJson::error_handler_t::replace) + "\n";
    const std::string what = op + " (id " + std::to_string(id) + ")";

    const auto start = SteadyClock::now();
    const auto deadline = start + std::chrono::milliseconds(timeout_ms);
    int werr = WriteAllBounded(in_fd_, wake_fds_[0], line, deadline);
    if (werr == ECANCELED) {
      Fail("operation interrupted", error);  // only Crash() wakes us
      return false;
    }
    if (werr == ETIMEDOUT) {
      Fail("child did not read its stdin for " + what + " within " + std::to_string(timeout_ms) +
               " ms; child killed",
           error);
      return false;
    }
    if (werr != 0) {
      Fail(ExitDescription() + " before " + what + " could be sent (" + strerror(werr) +
               "); will be replaced",
           error);
      return false;
    }

    std::string resp_line;
    bool too_long = false;
    for (;;) {
      size_t nl = buf_.find('\n');
      if (nl != std::string::npos) {
        if (nl > kExecMaxLineBytes) {
          too_long = true;
          break;
        }
        resp_line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (IsBlank(resp_line)) continue;  // empty lines are ignored
        break;
      }
      if (buf_.size() > kExecMaxLineBytes) {
        too_long = true;
        break;
      }
      auto left_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now())
              .count();
      if (left_ms < 0) {
        Fail("no answer to " + what + " within " + std::to_string(timeout_ms) + " ms; child killed",
             error);
        return false;
      }
      pollfd fds[2] = {{out_fd_, POLLIN, 0}, {wake_fds_[0], POLLIN, 0}};
      int r =
          fiber::Poll(fds, 2, fiber::MonoNowUs() + std::min<int64_t>(left_ms + 1, 60000) * 1000);
      if (r < 0 && errno != EINTR) {
        Fail(std::string("poll: ") + strerror(errno), error);
        return false;
      }
      if (fds[1].revents != 0) {
        Fail("operation interrupted", error);  // only Crash() wakes us
        return false;
      }
      if (fds[0].revents == 0) continue;
      char chunk[65536];
      ssize_t n = read(out_fd_, chunk, sizeof chunk);
      if (n > 0) {
        buf_.append(chunk, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR && errno != EWOULDBLOCK)) {
        std::string tail = buf_.empty() ? "" : " after a partial line " + Quote(buf_);
        Fail(ExitDescription() + " during " + what + tail + "; will be replaced", error);
        return false;
      }
    }
    if (too_long) {
      Fail("response line to " + what + " longer than " + std::to_string(kExecMaxLineBytes) +
               " bytes: " + Quote(buf_) + "; child killed",
           error);
      return false;
    }
    *rtt_us =
        std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - start).count();

    Json parsed = Json::parse(resp_line, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      Fail("response to " + what + " is not a JSON object: " + Quote(resp_line) + "; child killed",
           error);
      return false;
    }
    auto rid = parsed.find("id");
    if (rid == parsed.end()) {
      Fail("response to " + what + " lacks \"id\": " + Quote(resp_line) + "; child killed", error);
      return false;
    }
    if (!rid->is_number_integer() || rid->get<int64_t>() != id) {
      Fail("response to " + what + " has the wrong id " +
               rid->dump(-1, ' ', false, Json::error_handler_t::replace) + ": " + Quote(resp_line) +
               "; child killed",
           error);
      return false;
    }
    *resp = std::move(parsed);
    return true;
  }

  const ExecSpec spec_;
  const std::string client_id_;
  const uint64_t seed_;
  const std::vector<ServerAddress> servers_;
  std::map<std::string, std::string> child_env_;  // the plug-in's environment (set once)
  const std::string stderr_path_;

  mutable std::mutex mu_;  // guards proc_ and crashed_ (Crash runs on another thread)
  std::unique_ptr<Process> proc_;
  bool crashed_ = false;
  int wake_fds_[2] = {-1, -1};  // Crash() writes a byte: wakes a waiting op at once
  std::atomic<int> children_started_{0};
  std::atomic<pid_t> last_child_pid_{-1};

  // The current child's state; touched only by the client's thread.
  int in_fd_ = -1;
  int out_fd_ = -1;
  std::string buf_;            // bytes read from stdout, not yet consumed
  std::set<std::string> ops_;  // from hello
  int64_t next_id_ = 0;

  std::mutex infra_mu_;
  std::vector<std::string> infra_errors_;
};

}  // namespace

bool IsExecImpl(const std::string& v) {
  std::string name, rest;
  return SplitExecValue(v, &name, &rest);
}

Status ParseExecImpl(const std::string& impl_flag_value, ExecSpec* out) {
  const std::string& v = impl_flag_value;
  std::string name, rest;
  if (!SplitExecValue(v, &name, &rest)) {
    return Status::InvalidArgument("--impl " + FlagText(v) +
                                   ": not an exec impl (expected exec:COMMAND, "
                                   "NAME=exec:COMMAND or exec:@FILE.json)");
  }
  if (!name.empty() && !IsValidName(name)) {
    return Status::InvalidArgument("--impl " + FlagText(v) + ": name '" + name +
                                   "' is longer than 64 characters");
  }
  ExecSpec spec;
  if (!rest.empty() && rest[0] == '@') {
    std::string path = rest.substr(1);
    if (IsBlank(path)) {
      return Status::InvalidArgument("--impl " + FlagText(v) + ": missing file name after '@'");
    }
    Status s = ParseSpecFile(v, path, &spec);
    if (!s.ok()) return s;
  } else {
    if (IsBlank(rest)) {
      return Status::InvalidArgument("--impl " + FlagText(v) +
                                     ": empty command (expected exec:COMMAND or "
                                     "exec:@FILE.json)");
    }
    spec.command = rest;
  }
  if (!name.empty()) spec.name = name;
  if (spec.name.empty()) spec.name = DeriveName(spec.command);
  *out = std::move(spec);
  return Status::Ok();
}

std::map<std::string, std::string> ServerEnvironment(const std::vector<ServerAddress>& servers) {
  std::map<std::string, std::string> env;
  std::string host_ports, urls, names;
  const ServerAddress* first_tls = nullptr;
  for (size_t i = 0; i < servers.size(); ++i) {
    const ServerAddress& a = servers[i];
    std::string user;
    for (char c : a.user) {  // percent-encoded: '@', ':', '/' and ',' would break the URL
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') {
        user += c;
      } else {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
        user += buf;
      }
    }
    const std::string sep = i ? "," : "";
    host_ports += sep + a.ToString();
    urls += sep + (a.tls ? "rediss://" : "redis://") + (user.empty() ? "" : user + "@") +
            a.ToString() + "/" + std::to_string(a.db);
    names += sep + a.TlsName();
    if (a.tls && !first_tls) first_tls = &a;
  }
  env["LOCKSTORM_SERVERS"] = host_ports;
  env["LOCKSTORM_SERVER_URLS"] = urls;
  if (!servers.empty() && !servers[0].password.empty())
    env["LOCKSTORM_REDIS_PASSWORD"] = servers[0].password;
  if (first_tls) {
    const TlsOptions& o = first_tls->tls->options();
    if (!o.ca_file.empty()) env["LOCKSTORM_TLS_CA_CERT"] = o.ca_file;
    if (!o.cert_file.empty()) env["LOCKSTORM_TLS_CERT"] = o.cert_file;
    if (!o.key_file.empty()) env["LOCKSTORM_TLS_KEY"] = o.key_file;
    if (!o.verify) env["LOCKSTORM_TLS_INSECURE"] = "1";
    env["LOCKSTORM_TLS_SERVER_NAMES"] = names;
  }
  return env;
}

std::unique_ptr<Lock> NewExecLock(const ExecSpec& spec, const std::string& client_id, uint64_t seed,
                                  const std::vector<ServerAddress>& servers,
                                  const std::string& stderr_path) {
  return std::make_unique<ExecLockImpl>(spec, client_id, seed, servers, stderr_path);
}

}  // namespace lockstorm
