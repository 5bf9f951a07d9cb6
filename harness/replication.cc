#include "harness/replication.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace lockstorm {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr int64_t kSyncPollMs = 5;
constexpr int64_t kFailoverPollMs = 10;
constexpr int64_t kSentinelReadyPollMs = 20;
constexpr int kMaxPortAttempts = 5;
constexpr int64_t kSentinelStopGraceMs = 1000;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

// Sleeps `ms`, but never past `deadline_ms`.
void SleepUntilAtMost(int64_t ms, int64_t deadline_ms) {
  const int64_t left_ms = deadline_ms - NowMs();
  if (left_ms <= 0) return;
  std::this_thread::sleep_for(std::chrono::milliseconds(std::min(ms, left_ms)));
}

// A bound for one command: `command_timeout_ms`, cut to what is left before `deadline_ms`
// (at least 1 ms).
int64_t CallTimeoutUs(int64_t command_timeout_ms, int64_t deadline_ms) {
  return std::max<int64_t>(1, std::min(command_timeout_ms, deadline_ms - NowMs())) * 1000;
}

// One command on a fresh connection (closed on return).
Reply CallOnce(const ServerAddress& addr, const Command& cmd, int64_t timeout_ms) {
  auto t = NewRedisTransport({addr});
  return t->Call(0, cmd, std::max<int64_t>(1, timeout_ms) * 1000);
}

std::string Join(const Command& cmd) {
  std::string s;
  for (const auto& a : cmd) s += (s.empty() ? "" : " ") + a;
  return s;
}

// Runs `cmd` on `server`; ok if the reply is a status starting with "OK".
Status ExpectOk(const EmbeddedServer& server, const Command& cmd, int64_t timeout_ms) {
  Reply r = CallOnce(server.address(), cmd, timeout_ms);
  if (r.type == Reply::Type::kStatus && r.str.rfind("OK", 0) == 0) return Status::Ok();
  std::string msg = server.name() + ": " + Join(cmd) + ": " + r.ToString();
  return r.unknown() ? Status::IoError(msg) : Status::Internal(msg);
}

std::string LastLogLine(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  f.seekg(0, std::ios::end);
  const int64_t size = static_cast<int64_t>(f.tellg());
  const int64_t start = std::max<int64_t>(0, size - 4096);
  f.seekg(start);
  std::string s(static_cast<size_t>(size - start), '\0');
  f.read(s.data(), static_cast<std::streamsize>(s.size()));
  s.resize(static_cast<size_t>(f.gcount()));
  size_t end = s.find_last_not_of(" \t\r\n");
  if (end == std::string::npos) return "";
  size_t begin = s.find_last_of('\n', end);
  begin = begin == std::string::npos ? 0 : begin + 1;
  return s.substr(begin, end - begin + 1);
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

// "k1=v1,k2=v2" -> map.
std::map<std::string, std::string> ParseCommaPairs(const std::string& s) {
  std::map<std::string, std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t eq = item.find('=');
    if (eq != std::string::npos) out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

int64_t ToInt(const std::string& s, int64_t fallback) {
  if (s.empty()) return fallback;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  return end != nullptr && *end == '\0' ? static_cast<int64_t>(v) : fallback;
}

}  // namespace

std::string InfoField(const std::string& info, const std::string& key) {
  const std::string needle = key + ":";
  size_t pos = 0;
  while ((pos = info.find(needle, pos)) != std::string::npos) {
    if (pos == 0 || info[pos - 1] == '\n') {
      pos += needle.size();
      size_t end = info.find_first_of("\r\n", pos);
      return info.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    }
    pos += needle.size();
  }
  return "";
}

std::vector<std::string> MasterReplicationConfig(const ReplicationOptions& opts) {
  return {"repl-timeout " + std::to_string(opts.repl_timeout_s),
          "repl-ping-replica-period " + std::to_string(opts.repl_ping_replica_period_s),
          "repl-diskless-sync-delay 0"};
}

// ---------------------------------------------------------------------------------------------
// ReplicatedNode

ReplicatedNode::ReplicatedNode(EmbeddedServer* master, std::string run_dir, ReplicationOptions opts)
    : master_(master), run_dir_(std::move(run_dir)), opts_(std::move(opts)) {}

ReplicatedNode::~ReplicatedNode() {
  if (replica_) replica_->Stop();
  replica_.reset();
  link_.reset();
}

Status ReplicatedNode::ConfigureMaster() {
  for (const std::string& line : MasterReplicationConfig(opts_)) {
    const size_t sp = line.find(' ');
    Status s = ExpectOk(*master_, {"CONFIG", "SET", line.substr(0, sp), line.substr(sp + 1)},
                        opts_.command_timeout_ms);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status ReplicatedNode::Start() {
  if (master_ == nullptr) return Status::InvalidArgument("replication: no master");
  if (replica_ || link_) return Status::Internal(master_->name() + ": replica already started");
  if (opts_.repl_ping_replica_period_s < 1 ||
      opts_.repl_timeout_s <= opts_.repl_ping_replica_period_s) {
    return Status::InvalidArgument(
        "replication: need repl_timeout_s > repl_ping_replica_period_s >= 1");
  }
  if (opts_.command_timeout_ms < 1 || opts_.wait_timeout_ms < 1) {
    return Status::InvalidArgument("replication: timeouts must be positive");
  }
  if (!master_->running()) {
    return Status::InvalidArgument(master_->name() + ": not running, cannot add a replica");
  }
  Status s = ConfigureMaster();
  if (!s.ok()) return s;
  s = FaultProxy::Start(master_->address(), FaultProxyOptions(), opts_.loop, &link_);
  if (!s.ok()) {
    return s.code() == Status::Code::kInvalidArgument
               ? Status::InvalidArgument(master_->name() + ": link proxy: " + s.message())
               : Status::IoError(master_->name() + ": link proxy: " + s.message());
  }

  ServerOptions so = opts_.replica;
  so.extra_config.push_back("replicaof 127.0.0.1 " + std::to_string(link_->address().port));
  for (std::string& line : MasterReplicationConfig(opts_)) so.extra_config.push_back(line);
  so.extra_config.push_back(std::string("user ") + kSentinelUser + " on >" + kSentinelPassword +
                            " allchannels +@all -slaveof -replicaof +slaveof|no +replicaof|no");
  const std::string name = master_->name() + "-replica";
  replica_ = std::make_unique<EmbeddedServer>(0, run_dir_ + "/" + name, std::move(so), name);
  s = replica_->Start();
  if (s.ok()) s = WaitInSync(opts_.wait_timeout_ms);
  if (!s.ok()) {
    replica_.reset();
    link_.reset();
  }
  return s;
}

Status ReplicatedNode::WaitInSync(int64_t timeout_ms) {
  if (!replica_ || !link_) return Status::Internal("replication: not started");
  const int64_t deadline_ms = NowMs() + std::max<int64_t>(1, timeout_ms);
  auto master_conn = NewRedisTransport({master_->address()});
  Reply r = master_conn->Call(0, {"INFO", "replication"},
                              CallTimeoutUs(opts_.command_timeout_ms, deadline_ms));
  if (r.type != Reply::Type::kString) {
    return Status::IoError(master_->name() + ": INFO replication: " + r.ToString());
  }
  if (InfoField(r.str, "role") != "master") {
    return Status::Internal(master_->name() + ": not a master (role:" + InfoField(r.str, "role") +
                            "), nothing to be in sync with");
  }
  const int64_t target = ToInt(InfoField(r.str, "master_repl_offset"), -1);
  if (target < 0) return Status::IoError(master_->name() + ": no master_repl_offset in INFO");
  const std::string link_port = std::to_string(link_->address().port);

  auto replica_conn = NewRedisTransport({replica_->address()});
  std::string last = "no answer";
  for (;;) {
    r = replica_conn->Call(0, {"INFO", "replication"},
                           CallTimeoutUs(opts_.command_timeout_ms, deadline_ms));
    if (r.type == Reply::Type::kString) {
      const std::string role = InfoField(r.str, "role");
      const std::string link = InfoField(r.str, "master_link_status");
      const int64_t offset = ToInt(InfoField(r.str, "slave_repl_offset"), -1);
      if (role == "slave" && InfoField(r.str, "master_port") != link_port) {
        return Status::Internal(replica_->name() + ": replicates from " +
                                InfoField(r.str, "master_host") + ":" +
                                InfoField(r.str, "master_port") + ", not through its link proxy " +
                                link_->address().ToString());
      }
      if (role == "slave" && link == "up" && offset >= target) return Status::Ok();
      last = "role:" + role;
      if (role == "slave") {
        last += ", master_link_status:" + link + ", slave_repl_offset:" + std::to_string(offset) +
                " < master_repl_offset:" + std::to_string(target);
      }
    } else {
      last = r.ToString();
    }
    if (NowMs() >= deadline_ms) break;
    SleepUntilAtMost(kSyncPollMs, deadline_ms);
  }
  return Status::Timeout(replica_->name() + ": not in sync with " + master_->name() + " within " +
                         std::to_string(timeout_ms) + " ms (" + last + ")");
}

Status ReplicatedNode::CutLink() {
  if (!link_) return Status::Internal("replication: not started");
  Status s = link_->SetMode(LinkMode::kBlackhole);
  if (s.ok()) link_cut_ = true;
  return s;
}

Status ReplicatedNode::HealLink() {
  if (!link_) return Status::Internal("replication: not started");
  if (!link_cut_ && link_->mode() == LinkMode::kPass) return Status::Ok();
  // The replica reconnects as soon as its connection is reset, so a connection may be accepted
  // between the reset and the pass: its first bytes (PING) must not be discarded, or its handshake
  // hangs for repl_timeout_s. Hence: hold bytes (kStall) instead of discarding them, reset every
  // connection (those with a hole in their stream; bytes held for them are discarded), then pass
  // (connections made after the reset get their held bytes, in order).
  Status s = link_->SetMode(LinkMode::kStall);
  if (!s.ok()) return s;
  s = link_->ResetConnections();
  if (!s.ok()) return s;
  s = link_->SetMode(LinkMode::kPass);
  if (!s.ok()) return s;
  link_cut_ = false;
  return Status::Ok();
}

Status ReplicatedNode::Promote() {
  if (!replica_) return Status::Internal("replication: not started");
  const int64_t deadline_ms = NowMs() + opts_.wait_timeout_ms;
  Status s = ExpectOk(*replica_, {"REPLICAOF", "NO", "ONE"}, opts_.command_timeout_ms);
  if (!s.ok()) return s;
  auto conn = NewRedisTransport({replica_->address()});
  std::string last = "no answer";
  for (;;) {
    Reply r = conn->Call(0, {"INFO", "replication"},
                         CallTimeoutUs(opts_.command_timeout_ms, deadline_ms));
    if (r.type == Reply::Type::kString) {
      last = "role:" + InfoField(r.str, "role");
      if (last == "role:master") return Status::Ok();
    } else {
      last = r.ToString();
    }
    if (NowMs() >= deadline_ms) break;
    SleepUntilAtMost(kSyncPollMs, deadline_ms);
  }
  return Status::Timeout(replica_->name() + ": not a master " +
                         std::to_string(opts_.wait_timeout_ms) + " ms after REPLICAOF NO ONE (" +
                         last + ")");
}

Status ReplicatedNode::PointReplicaAtLink() {
  return ExpectOk(*replica_, {"REPLICAOF", "127.0.0.1", std::to_string(link_->address().port)},
                  opts_.command_timeout_ms);
}

Status ReplicatedNode::Restore() {
  if (!replica_ || !link_) return Status::Internal("replication: not started");
  auto step = [](const std::string& what, const Status& s) {
    if (s.ok()) return s;
    std::string msg = "restore: " + what + ": " + s.message();
    switch (s.code()) {
      case Status::Code::kTimeout:
        return Status::Timeout(msg);
      case Status::Code::kIoError:
        return Status::IoError(msg);
      default:
        return Status::Internal(msg);
    }
  };
  // Running and answering PING, restarted otherwise (a crashed process still counts as running).
  auto ensure_up = [&](EmbeddedServer* server) {
    if (server->running()) {
      server->Resume();  // no-op unless paused
      Reply r = CallOnce(server->address(), {"PING"}, opts_.command_timeout_ms);
      if (r.type == Reply::Type::kStatus && r.str == "PONG") return Status::Ok();
    }
    return step("restart " + server->name(), server->Restart());
  };
  Status s = ensure_up(master_);
  if (!s.ok()) return s;
  s = step("make " + master_->name() + " a master",
           ExpectOk(*master_, {"REPLICAOF", "NO", "ONE"}, opts_.command_timeout_ms));
  if (!s.ok()) return s;
  s = step("configure " + master_->name(), ConfigureMaster());
  if (!s.ok()) return s;
  s = ensure_up(replica_.get());
  if (!s.ok()) return s;
  // Heal first: a replica pointed at a blackholed link would hang in its handshake.
  s = step("heal the link", HealLink());
  if (!s.ok()) return s;
  s = step("point " + replica_->name() + " at the link", PointReplicaAtLink());
  if (!s.ok()) return s;
  return step("sync", WaitInSync(opts_.wait_timeout_ms));
}

// ---------------------------------------------------------------------------------------------
// SentinelGroup

SentinelGroup::SentinelGroup(std::string run_dir, SentinelOptions opts)
    : run_dir_(std::move(run_dir)), opts_(std::move(opts)) {}

SentinelGroup::~SentinelGroup() { Stop(); }

std::vector<ServerAddress> SentinelGroup::addresses() const {
  std::vector<ServerAddress> out;
  for (const auto& s : sentinels_) out.push_back({"127.0.0.1", s.port});
  return out;
}

Status SentinelGroup::StartOne(int i, const ServerAddress& master, int64_t deadline_ms) {
  Sentinel& sn = sentinels_.at(static_cast<size_t>(i));
  const std::string name = "sentinel-" + std::to_string(i);
  const std::string exe = FindExecutable(opts_.redis_sentinel_path);
  if (exe.empty()) {
    return Status::NotFound(opts_.redis_sentinel_path +
                            ": not found (install redis-sentinel, or run scripts/setup.sh)");
  }
  std::error_code ec;
  std::filesystem::create_directories(sn.dir, ec);
  if (ec) return Status::IoError(name + ": cannot create " + sn.dir + ": " + ec.message());
  std::string abs_dir = std::filesystem::absolute(sn.dir, ec).string();
  if (ec) abs_dir = sn.dir;
  sn.log = abs_dir + "/sentinel.log";
  const std::string conf_path = abs_dir + "/sentinel.conf";
  const std::string& m = opts_.master_name;

  Status last;
  for (int attempt = 0; attempt < kMaxPortAttempts; ++attempt) {
    sn.port = PickFreePort();
    if (sn.port == 0) return Status::IoError(name + ": cannot pick a free port on 127.0.0.1");
    std::ostringstream conf;
    conf << "# Written by lockstorm; rewritten by the sentinel.\n"
         << "port " << sn.port << "\n"
         << "bind 127.0.0.1\n"
         << "protected-mode no\n"
         << "daemonize no\n"
         << "dir \"" << abs_dir << "\"\n"
         << "logfile \"" << sn.log << "\"\n"
         << "sentinel monitor " << m << " " << master.host << " " << master.port << " "
         << opts_.quorum << "\n"
         << "sentinel down-after-milliseconds " << m << " " << opts_.down_after_ms << "\n"
         << "sentinel failover-timeout " << m << " " << opts_.failover_timeout_ms << "\n"
         << "sentinel parallel-syncs " << m << " 1\n"
         << "sentinel auth-user " << m << " " << kSentinelUser << "\n"
         << "sentinel auth-pass " << m << " " << kSentinelPassword << "\n";
    {
      std::ofstream f(conf_path, std::ios::trunc);
      f << conf.str();
      f.close();
      if (!f) return Status::IoError(name + ": cannot write " + conf_path);
    }
    SpawnOptions so;
    so.argv = {exe, conf_path};
    so.cwd = abs_dir;
    so.stdout_path = sn.log;  // until the sentinel opens its logfile
    so.stderr_path = sn.log;
    std::unique_ptr<Process> p;
    Status s = Spawn(so, &p);
    if (!s.ok()) return Status::IoError(name + ": " + s.message());
    const ServerAddress addr{"127.0.0.1", sn.port};
    bool port_taken = false;
    for (;;) {
      int st = 0;
      if (p->Exited(&st)) {
        std::string log;
        ReadFile(sn.log, &log);
        port_taken = log.find("Address already in use") != std::string::npos;
        last = Status::IoError(name + ": redis-sentinel exited during start-up; log " + sn.log +
                               ": " + LastLogLine(sn.log));
        break;
      }
      if (NowMs() >= deadline_ms) {
        p->Stop(0);
        return Status::Timeout(name + ": no PING answer on " + addr.ToString() + "; log " + sn.log +
                               ": " + LastLogLine(sn.log));
      }
      Reply r = CallOnce(addr, {"PING"}, std::min<int64_t>(500, deadline_ms - NowMs()));
      if (r.type == Reply::Type::kStatus && r.str == "PONG") {
        sn.process = std::move(p);
        return Status::Ok();
      }
      SleepUntilAtMost(kSentinelReadyPollMs, deadline_ms);
    }
    if (!port_taken) return last;
  }
  return last;
}

Status SentinelGroup::Start(ReplicatedNode* node) {
  if (!sentinels_.empty()) return Status::Internal("sentinels already started");
  if (node == nullptr || node->replica() == nullptr || !node->master()->running()) {
    return Status::InvalidArgument("sentinels: the replicated node must be started");
  }
  if (opts_.count < 1 || opts_.quorum < 1 || opts_.quorum > opts_.count) {
    return Status::InvalidArgument("sentinels: need 1 <= quorum <= count");
  }
  const int64_t deadline_ms = NowMs() + opts_.start_timeout_ms;
  EmbeddedServer* master = node->master();
  initial_master_ = master->address();
  Status s = ExpectOk(*master,
                      {"ACL", "SETUSER", kSentinelUser, "on", std::string(">") + kSentinelPassword,
                       "allchannels", "+@all"},
                      opts_.command_timeout_ms);
  if (!s.ok()) return s;

  sentinels_.resize(static_cast<size_t>(opts_.count));
  for (int i = 0; i < opts_.count; ++i) {
    sentinels_[static_cast<size_t>(i)].dir = run_dir_ + "/sentinel-" + std::to_string(i);
    s = StartOne(i, initial_master_, deadline_ms);
    if (!s.ok()) {
      Stop();
      return s;
    }
  }
  // Ready when each one sees the master (ok), the replica and every sentinel: the replica comes
  // from the master's INFO, the other sentinels from hello messages (every 2 s).
  for (int i = 0; i < opts_.count; ++i) {
    const ServerAddress addr{"127.0.0.1", sentinels_[static_cast<size_t>(i)].port};
    std::string last = "no answer";
    for (;;) {
      Reply r = CallOnce(addr, {"INFO", "sentinel"},
                         CallTimeoutUs(opts_.command_timeout_ms, deadline_ms) / 1000);
      if (r.type == Reply::Type::kString) {
        auto f = ParseCommaPairs(InfoField(r.str, "master0"));
        last = "status=" + f["status"] + ",slaves=" + f["slaves"] + ",sentinels=" + f["sentinels"];
        if (f["name"] == opts_.master_name && f["status"] == "ok" && ToInt(f["slaves"], 0) >= 1 &&
            ToInt(f["sentinels"], 0) >= opts_.count) {
          break;
        }
      } else {
        last = r.ToString();
      }
      if (NowMs() >= deadline_ms) {
        Stop();
        return Status::Timeout(
            "sentinel-" + std::to_string(i) + ": not ready within " +
            std::to_string(opts_.start_timeout_ms) + " ms (" + last +
            "; want status=ok, slaves>=1, sentinels=" + std::to_string(opts_.count) + ")");
      }
      SleepUntilAtMost(kSentinelReadyPollMs, deadline_ms);
    }
  }
  return Status::Ok();
}

std::vector<ServerAddress> SentinelGroup::MasterAddresses() {
  std::vector<ServerAddress> out;
  for (const auto& sn : sentinels_) {
    ServerAddress a{"", 0};
    if (sn.process) {
      Reply r = CallOnce({"127.0.0.1", sn.port},
                         {"SENTINEL", "get-master-addr-by-name", opts_.master_name},
                         opts_.command_timeout_ms);
      if (r.type == Reply::Type::kArray && r.elements.size() == 2 &&
          r.elements[0].type == Reply::Type::kString &&
          r.elements[1].type == Reply::Type::kString) {
        a.host = r.elements[0].str;
        a.port = static_cast<int>(ToInt(r.elements[1].str, 0));
      }
    }
    out.push_back(a);
  }
  return out;
}

Status SentinelGroup::WaitForFailover(int64_t timeout_ms, ServerAddress* new_master) {
  if (sentinels_.empty()) return Status::Internal("sentinels: not started");
  const int64_t deadline_ms = NowMs() + std::max<int64_t>(1, timeout_ms);
  std::string last;
  for (;;) {
    std::vector<ServerAddress> seen = MasterAddresses();
    std::map<std::string, int> votes;
    last.clear();
    for (const auto& a : seen) {
      last += (last.empty() ? "" : ", ") + (a.host.empty() ? std::string("?") : a.ToString());
      if (a.host.empty()) continue;
      if (a.host == initial_master_.host && a.port == initial_master_.port) continue;
      if (++votes[a.ToString()] * 2 > static_cast<int>(sentinels_.size())) {
        *new_master = a;
        return Status::Ok();
      }
    }
    if (NowMs() >= deadline_ms) break;
    SleepUntilAtMost(kFailoverPollMs, deadline_ms);
  }
  return Status::Timeout("sentinels: no failover away from " + initial_master_.ToString() +
                         " within " + std::to_string(timeout_ms) + " ms (they report " + last +
                         ")");
}

void SentinelGroup::Stop() {
  for (auto& sn : sentinels_) {
    if (sn.process) sn.process->Signal(SIGTERM);  // overlap the shutdowns
  }
  for (auto& sn : sentinels_) {
    if (sn.process) sn.process->Stop(kSentinelStopGraceMs);
    sn.process.reset();
  }
}

}  // namespace lockstorm
