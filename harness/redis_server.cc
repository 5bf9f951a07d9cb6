#include "harness/redis_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "harness/tls.h"

namespace lockstorm {
namespace {

constexpr int kMaxPortAttempts = 5;     // first Start only: the chosen port may be taken
constexpr int64_t kStopGraceMs = 1000;  // SIGTERM grace before SIGKILL
constexpr int64_t kInfoTimeoutMs = 2000;

using Clock = std::chrono::steady_clock;

std::string LowerFirst(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

// Connects to `addr` (AUTH, SELECT, TLS as it says) and sends `cmd`, all within `timeout_ms`.
// On success *reply gets the status or bulk string answer; otherwise *error gets a short
// reason ("connection refused", "timeout", "AUTH failed on ...", "LOADING ...").
bool SimpleCommand(const ServerAddress& addr, const Command& cmd, int64_t timeout_ms,
                   std::string* reply, std::string* error) {
  auto t = NewRedisTransport({addr});
  const Reply r = t->Call(0, cmd, std::max<int64_t>(timeout_ms, 1) * 1000);
  if (r.type == Reply::Type::kStatus || r.type == Reply::Type::kString) {
    *reply = r.str;
    return true;
  }
  if (r.type == Reply::Type::kTimeout) {
    *error = "timeout";
  } else if (r.type == Reply::Type::kIoError || r.type == Reply::Type::kError) {
    // "connect 127.0.0.1:1: Connection refused" -> "connection refused"
    const std::string connect = "connect " + addr.ToString() + ": ";
    *error = r.str.starts_with(connect) ? LowerFirst(r.str.substr(connect.size())) : r.str;
  } else {
    *error = "unexpected reply " + r.ToString();
  }
  return false;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "6379" -> 6379: one to five decimal digits, nothing else; -1 otherwise (a port, a database).
int ParseSmallDecimal(const std::string& s) {
  if (s.empty() || s.size() > 5) return -1;
  int v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return -1;
    v = v * 10 + (ch - '0');
  }
  return v;
}

// "%2C" -> ","; a malformed escape is kept as it is.
std::string PercentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool Ping(const ServerAddress& addr, int64_t timeout_ms, std::string* error) {
  std::string reply;
  if (!SimpleCommand(addr, {"PING"}, timeout_ms, &reply, error)) return false;
  if (reply != "PONG") {
    *error = "unexpected PING reply '" + reply + "'";
    return false;
  }
  return true;
}

// Quotes a value for redis.conf (double quotes, backslash escapes).
std::string ConfQuote(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}

// The log's contents from byte `from` on (at most the last 64 KiB of it).
std::string ReadLogFrom(const std::string& path, int64_t from) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  f.seekg(0, std::ios::end);
  int64_t size = static_cast<int64_t>(f.tellg());
  int64_t start = std::max<int64_t>(from, size - 65536);
  if (start >= size) return "";
  f.seekg(start);
  std::string s(static_cast<size_t>(size - start), '\0');
  f.read(s.data(), static_cast<std::streamsize>(s.size()));
  s.resize(static_cast<size_t>(f.gcount()));
  return s;
}

std::string LastLine(const std::string& text) {
  size_t end = text.find_last_not_of(" \t\r\n");
  if (end == std::string::npos) return "";
  size_t begin = text.find_last_of('\n', end);
  begin = begin == std::string::npos ? 0 : begin + 1;
  return text.substr(begin, end - begin + 1);
}

int64_t FileSize(const std::string& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(size);
}

std::string DescribeWaitStatus(int st) {
  if (WIFEXITED(st)) return "exit status " + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return std::string("killed by signal ") + strsignal(WTERMSIG(st));
  return "wait status " + std::to_string(st);
}

}  // namespace

const char* PersistenceName(Persistence p) {
  switch (p) {
    case Persistence::kNone:
      return "none";
    case Persistence::kRdb:
      return "rdb";
    case Persistence::kAofEverysec:
      return "aof-everysec";
    case Persistence::kAofAlways:
      return "aof-always";
  }
  return "?";
}

bool ParsePersistence(const std::string& s, Persistence* out) {
  for (Persistence p : {Persistence::kNone, Persistence::kRdb, Persistence::kAofEverysec,
                        Persistence::kAofAlways}) {
    if (s == PersistenceName(p)) {
      *out = p;
      return true;
    }
  }
  return false;
}

int PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = 0;
  int port = 0;
  socklen_t len = sizeof sa;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0) {
    port = ntohs(sa.sin_port);
  }
  close(fd);
  return port;
}

// ---------------------------------------------------------------------------------------------
// EmbeddedServer

EmbeddedServer::EmbeddedServer(int index, std::string dir, ServerOptions opts, std::string name)
    : index_(index), name_(std::move(name)), dir_(std::move(dir)), opts_(std::move(opts)) {
  log_path_ = dir_ + "/redis.log";
  if (opts_.clock_control) clock_status_ = ServerClock::Create(&clock_);
}

EmbeddedServer::~EmbeddedServer() { Stop(); }

std::string EmbeddedServer::name() const {
  return name_.empty() ? "redis-" + std::to_string(index_) : name_;
}

Status EmbeddedServer::Start() {
  if (process_) return Status::Internal(name() + ": already running");
  if (port_ != 0) return StartOnce(nullptr);  // a restart keeps its port
  Status s;
  for (int attempt = 0; attempt < kMaxPortAttempts; ++attempt) {
    port_ = PickFreePort();
    if (port_ == 0) {
      return Status::IoError(name() + ": cannot pick a free port on 127.0.0.1: " + strerror(errno));
    }
    bool port_taken = false;
    s = StartOnce(&port_taken);
    if (s.ok() || !port_taken) break;
  }
  if (!s.ok()) port_ = 0;
  return s;
}

Status EmbeddedServer::WriteConfig(std::string* conf_path) const {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return Status::IoError(name() + ": cannot create " + dir_ + ": " + ec.message());
  std::string abs_dir = std::filesystem::absolute(dir_, ec).string();
  if (ec) abs_dir = dir_;
  std::ostringstream conf;
  conf << "# Written by lockstorm; regenerated on every start.\n"
       << "bind 127.0.0.1\n"
       << "port " << port_ << "\n"
       << "protected-mode no\n"
       << "daemonize no\n"
       << "dir " << ConfQuote(abs_dir) << "\n"
       << "logfile " << ConfQuote(abs_dir + "/redis.log") << "\n"
       << "dbfilename dump.rdb\n"
       << "appendfilename appendonly.aof\n";
  switch (opts_.persistence) {
    case Persistence::kNone:
      conf << "save \"\"\nappendonly no\n";
      break;
    case Persistence::kRdb:
      conf << "save 1 1\nappendonly no\n";
      break;
    case Persistence::kAofEverysec:
      conf << "save \"\"\nappendonly yes\nappendfsync everysec\n";
      break;
    case Persistence::kAofAlways:
      conf << "save \"\"\nappendonly yes\nappendfsync always\n";
      break;
  }
  for (const auto& line : opts_.extra_config) conf << line << "\n";
  *conf_path = abs_dir + "/redis.conf";
  std::ofstream f(*conf_path, std::ios::trunc);
  f << conf.str();
  f.close();
  if (!f) return Status::IoError(name() + ": cannot write " + *conf_path);
  return Status::Ok();
}

Status EmbeddedServer::StartOnce(bool* port_taken) {
  std::string exe = FindExecutable(opts_.redis_server_path);
  if (exe.empty()) {
    std::string what = opts_.redis_server_path.find('/') == std::string::npos
                           ? opts_.redis_server_path + ": not found in PATH"
                           : opts_.redis_server_path + ": not found or not executable";
    return Status::NotFound(what + " (install redis-server, or run scripts/setup.sh)");
  }
  if (!clock_status_.ok()) {
    std::string msg = name() + ": " + clock_status_.message();
    return clock_status_.code() == Status::Code::kNotFound ? Status::NotFound(msg)
                                                           : Status::IoError(msg);
  }
  std::string conf_path;
  Status s = WriteConfig(&conf_path);
  if (!s.ok()) return s;

  int64_t log_start = FileSize(log_path_);
  SpawnOptions so;
  so.argv = {exe, conf_path};
  so.cwd = dir_;
  // Until redis opens its logfile (e.g. config errors), it writes to stdout/stderr.
  so.stdout_path = log_path_;
  so.stderr_path = log_path_;
  uint32_t clock_attaches = 0;
  if (clock_) {
    so.env = clock_->Env();
    clock_attaches = clock_->attach_count();
  }
  std::unique_ptr<Process> p;
  s = Spawn(so, &p);
  if (!s.ok()) return Status::IoError(name() + ": " + s.message());

  const ServerAddress addr = address();
  const auto deadline = Clock::now() + std::chrono::milliseconds(opts_.start_timeout_ms);
  int64_t backoff_us = 1000;
  std::string last_error = "no answer";
  for (;;) {
    int st = 0;
    if (p->Exited(&st)) {
      std::string tail = ReadLogFrom(log_path_, log_start);
      bool in_use = tail.find("Address already in use") != std::string::npos;
      if (port_taken) *port_taken = in_use;
      p->Stop(0);
      return Status::IoError(
          name() + ": redis-server exited during start-up (" + DescribeWaitStatus(st) +
          (in_use ? "; port " + std::to_string(port_) + ": address already in use" : "") +
          "); log " + log_path_ + ": " + LastLine(tail));
    }
    auto now = Clock::now();
    if (now >= deadline) break;
    int64_t left_ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    if (Ping(addr, std::clamp<int64_t>(left_ms, 1, 500), &last_error)) {
      // The shim attaches in its constructor, before redis's main(); ld.so merely warns if it
      // cannot preload it, and a server with a real clock would silently void the clock faults.
      if (clock_ && clock_->attach_count() == clock_attaches) {
        p->Stop(0);
        return Status::Internal(name() + ": the clock shim " + ServerClock::ShimPath() +
                                " was not loaded into redis-server (LD_PRELOAD); log " + log_path_ +
                                ": " + LastLine(ReadLogFrom(log_path_, log_start)));
      }
      process_ = std::move(p);
      paused_ = false;
      return Status::Ok();
    }
    std::this_thread::sleep_for(std::chrono::microseconds(backoff_us));
    backoff_us = std::min<int64_t>(backoff_us * 2, 50000);
  }
  p->Stop(0);
  return Status::Timeout(name() + ": no PING answer on " + addr.ToString() + " within " +
                         std::to_string(opts_.start_timeout_ms) + " ms (" + last_error + "); log " +
                         log_path_ + ": " + LastLine(ReadLogFrom(log_path_, log_start)));
}

void EmbeddedServer::Kill() {
  if (!process_) return;
  process_->Stop(0);  // SIGCONT + SIGKILL to the group, reaped
  process_.reset();
  paused_ = false;
}

void EmbeddedServer::Stop() {
  if (!process_) return;
  if (paused_) process_->Signal(SIGCONT);  // a stopped process cannot act on SIGTERM
  process_->Stop(kStopGraceMs);
  process_.reset();
  paused_ = false;
}

void EmbeddedServer::Pause() {
  if (!process_) return;
  process_->Signal(SIGSTOP);
  paused_ = true;
}

void EmbeddedServer::Resume() {
  if (!process_) return;
  process_->Signal(SIGCONT);
  paused_ = false;
}

Status EmbeddedServer::Restart() {
  Kill();
  if (port_ == 0) return Start();
  return StartOnce(nullptr);
}

// ---------------------------------------------------------------------------------------------
// ServerSet

ServerSet::~ServerSet() { StopAll(); }

Status ServerSet::StartEmbedded(const std::string& run_dir, int n, const ServerOptions& opts) {
  if (!addresses_.empty()) return Status::Internal("servers already set up");
  if (n < 1) return Status::InvalidArgument("need at least one server, got " + std::to_string(n));
  for (int i = 0; i < n; ++i) {
    auto server =
        std::make_unique<EmbeddedServer>(i, run_dir + "/redis-" + std::to_string(i), opts);
    Status s = server->Start();
    if (!s.ok()) {
      server.reset();
      StopAll();
      return s;
    }
    servers_.push_back(std::move(server));
  }
  for (const auto& s : servers_) addresses_.push_back(s->address());
  return Status::Ok();
}

Status ServerSet::UseExternal(const std::vector<ServerAddress>& addrs, int64_t timeout_ms) {
  if (!addresses_.empty()) return Status::Internal("servers already set up");
  if (addrs.empty()) return Status::InvalidArgument("--servers: no servers given");
  for (const auto& a : addrs) {
    std::string error;
    if (!Ping(a, timeout_ms, &error)) {
      return Status::IoError("--servers: cannot reach " + a.ToString() + ": " + error);
    }
  }
  addresses_ = addrs;
  return Status::Ok();
}

std::vector<ServerAddress> ServerSet::addresses() const { return addresses_; }

Status ServerSet::Refresh(Persistence persistence, int64_t timeout_ms) {
  if (!embedded()) return Status::Internal("Refresh: not embedded servers");
  for (const auto& s : servers_) {
    s->Resume();
    if (ServerClock* c = s->clock()) c->Reset();
    if (!s->running() || s->persistence() != persistence) {
      s->set_persistence(persistence);
      if (Status st = s->Restart(); !st.ok()) return st;
    }
    std::string error;
    if (!Ping(s->address(), timeout_ms, &error))
      return Status::IoError(s->name() + ": no PING answer on " + s->address().ToString() +
                             " after the previous run: " + error);
  }
  return Status::Ok();
}

std::string ServerSet::RedisVersion() const {
  if (addresses_.empty()) return "";
  std::string info, error;
  if (!SimpleCommand(addresses_[0], {"INFO", "server"}, kInfoTimeoutMs, &info, &error)) return "";
  const std::string key = "redis_version:";
  size_t pos = info.find(key);
  if (pos == std::string::npos) return "";
  pos += key.size();
  size_t end = info.find_first_of("\r\n", pos);
  return info.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
}

void ServerSet::StopAll() {
  // SIGTERM every server first so that their shutdowns (redis acts on SIGTERM from its 100 ms
  // cron) overlap; Stop() then waits for each, bounded, and SIGKILLs what is left.
  for (auto& s : servers_) {
    if (!s->running()) continue;
    s->Resume();  // a paused server cannot act on SIGTERM
    kill(s->pid(), SIGTERM);
  }
  for (auto& s : servers_) s->Stop();
  servers_.clear();
  addresses_.clear();
}

// ---------------------------------------------------------------------------------------------

std::string RedactPasswords(std::string text) {
  // Each URL's authority runs from "://" to the next space or the next URL; its user-info ends
  // at the last '@' in it. "user:password" keeps the user, a lone "password" goes entirely.
  for (size_t at = text.find("://"); at != std::string::npos; at = text.find("://", at + 3)) {
    const size_t start = at + 3;
    size_t end = std::min(text.find(' ', start), text.find("://", start));
    if (end == std::string::npos) end = text.size();
    const size_t sep = text.rfind('@', end - 1);
    if (sep == std::string::npos || sep < start) continue;
    const size_t colon = text.find(':', start);
    const size_t from = colon != std::string::npos && colon < sep ? colon + 1 : start;
    text.replace(from, sep - from, "***");
  }
  return text;
}

Status ParseServerList(const std::string& flag, const std::string& list,
                       std::vector<ServerAddress>* out, const std::string& env_password,
                       const TlsOptions& tls_options) {
  std::shared_ptr<const TlsContext> tls_context;
  auto trim = [](const std::string& s) {
    size_t b = s.find_first_not_of(" \t");
    if (b == std::string::npos) return std::string();
    size_t e = s.find_last_not_of(" \t");
    return s.substr(b, e - b + 1);
  };
  std::vector<ServerAddress> result;
  if (trim(list).empty()) return Status::InvalidArgument(flag + ": empty server list");
  size_t start = 0;
  for (;;) {
    size_t comma = list.find(',', start);
    std::string entry =
        trim(list.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (entry.empty()) {
      return Status::InvalidArgument(flag + ": empty entry in '" + RedactPasswords(list) +
                                     "' (expected host:port,host:port)");
    }
    std::string host, port_str, user, password;
    int db = 0;
    const std::string scheme = Lower(entry.substr(0, std::min<size_t>(entry.size(), 9)));
    const bool tls = scheme.rfind("rediss://", 0) == 0;
    if (tls && !tls_context) {  // one TLS configuration for the whole list
      std::shared_ptr<TlsContext> created;
      if (Status s = TlsContext::Create(tls_options, &created); !s.ok()) return s;
      tls_context = std::move(created);
    }
    if (tls || scheme.rfind("redis://", 0) == 0) {  // redis[s]://[[user]:password@]host[:port][/db]
      entry = entry.substr(tls ? 9 : 8);
      // The user-info ends at the last '@' (a password may hold '/', ':' or '@'; a ',' must
      // be written %2C, since ',' separates servers); percent-escapes in it are decoded.
      const size_t at = entry.rfind('@');
      if (at != std::string::npos) {
        const std::string auth = entry.substr(0, at);
        entry = entry.substr(at + 1);
        const size_t colon = auth.find(':');
        user = PercentDecode(colon == std::string::npos ? "" : auth.substr(0, colon));
        password = PercentDecode(colon == std::string::npos ? auth : auth.substr(colon + 1));
      }
      const size_t slash = entry.find('/');
      if (slash != std::string::npos) {
        const std::string d = entry.substr(slash + 1);
        const int parsed = ParseSmallDecimal(d);
        if (!d.empty() && parsed < 0)
          return Status::InvalidArgument(flag + ": bad database '" + d +
                                         "' in a redis:// URL (expected a number: /0 .. /15)");
        db = parsed < 0 ? 0 : parsed;
        entry = entry.substr(0, slash);
      }
      if (entry.find(':') == std::string::npos && !entry.empty() && entry[0] != '[')
        entry += ":6379";
    }
    if (entry[0] == '[') {  // [ipv6]:port
      size_t close = entry.find(']');
      if (close == std::string::npos || close + 1 >= entry.size() || entry[close + 1] != ':') {
        return Status::InvalidArgument(
            flag + ": bad entry '" + RedactPasswords(entry) +
            "' (expected host:port or redis://[user:password@]host:port[/db])");
      }
      host = entry.substr(1, close - 1);
      port_str = entry.substr(close + 2);
    } else {
      size_t colon = entry.rfind(':');
      if (colon == std::string::npos || entry.find(':') != colon) {
        return Status::InvalidArgument(
            flag + ": bad entry '" + RedactPasswords(entry) +
            "' (expected host:port or redis://[user:password@]host:port[/db])");
      }
      host = entry.substr(0, colon);
      port_str = entry.substr(colon + 1);
    }
    if (host.empty()) {
      return Status::InvalidArgument(
          flag + ": missing host in '" + RedactPasswords(entry) +
          "' (expected host:port or redis://[user:password@]host:port[/db])");
    }
    const int port = ParseSmallDecimal(port_str);
    if (port < 1 || port > 65535) {
      return Status::InvalidArgument(flag + ": bad port in '" + RedactPasswords(entry) +
                                     "' (must be 1..65535)");
    }
    ServerAddress a;
    a.host = host;
    a.port = port;
    a.user = user;
    a.password = password.empty() ? env_password : password;
    a.db = db;
    if (tls) a.tls = tls_context;
    result.push_back(std::move(a));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  *out = std::move(result);
  return Status::Ok();
}

Status ResolveSentinelMasters(const std::string& flag, const std::string& spec,
                              const std::string& env_password, const TlsOptions& tls_options,
                              int64_t timeout_ms, std::vector<ServerAddress>* out) {
  const size_t slash = spec.rfind('/');
  const std::string expected = " (expected HOST:PORT[,HOST:PORT...]/MASTER[,MASTER...])";
  if (slash == std::string::npos || slash + 1 >= spec.size())
    return Status::InvalidArgument(flag + ": no master name in '" + RedactPasswords(spec) + "'" +
                                   expected);
  std::vector<ServerAddress> sentinels;
  if (Status s = ParseServerList(flag, spec.substr(0, slash), &sentinels, "", tls_options); !s.ok())
    return s;
  std::vector<std::string> names;
  std::stringstream list(spec.substr(slash + 1));
  for (std::string name; std::getline(list, name, ',');) {
    if (name.empty() || name.find_first_of(" \t:") != std::string::npos)
      return Status::InvalidArgument(flag + ": bad master name '" + name + "'" + expected);
    names.push_back(name);
  }
  std::vector<ServerAddress> masters;
  auto t = NewRedisTransport(sentinels);  // one connection per sentinel, for every name
  for (const std::string& name : names) {
    std::string said;
    bool found = false;
    for (int i = 0; i < t->node_count(); ++i) {
      const ServerAddress& sentinel = sentinels[static_cast<size_t>(i)];
      const Reply r = t->Call(i, {"SENTINEL", "get-master-addr-by-name", name}, timeout_ms * 1000);
      if (r.type == Reply::Type::kArray && r.elements.size() == 2) {
        const std::string& port = r.elements[1].str;
        const int port_number = ParseSmallDecimal(port);
        if (port_number < 0) {
          said += (said.empty() ? "" : "; ") + sentinel.ToString() + ": bad port '" + port + "'";
          continue;
        }
        ServerAddress m(r.elements[0].str, port_number);
        m.password = env_password;
        m.tls = sentinel.tls;
        masters.push_back(std::move(m));
        found = true;
        break;
      }
      said += (said.empty() ? "" : "; ") + sentinel.ToString() + ": " +
              (r.type == Reply::Type::kNil ? std::string("no such master") : r.ToString());
    }
    if (!found)
      return Status::IoError(flag + ": no sentinel named master '" + name + "' (" + said + ")");
  }
  *out = std::move(masters);
  return Status::Ok();
}

}  // namespace lockstorm
