// Embedded Redis: real redis-server processes that lockstorm starts, owns and always stops.
//
// A ServerSet starts N redis-server processes on free loopback ports, each with its own
// directory under the run directory (config file, data files, log), waits (bounded) until each
// answers PING, and stops them all when destroyed. Children are started through Spawn(), so
// they also die when lockstorm is interrupted (Ctrl-C/SIGTERM, handled by main) or killed with
// SIGKILL (PR_SET_PDEATHSIG + the reaper).
//
// Only servers started here may be crashed, paused, restarted or reconfigured: the methods
// that do so exist only on EmbeddedServer. Servers given by --servers are plain addresses.
//
// Thread-safety: a ServerSet is used from the runner's control thread; Kill/Restart/Pause may
// run concurrently with client threads talking to the servers (that is the point of them).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "harness/process.h"
#include "harness/server_clock.h"
#include "harness/status.h"
#include "harness/tls.h"
#include "harness/transport.h"

namespace lockstorm {

enum class Persistence { kNone, kRdb, kAofEverysec, kAofAlways };
const char* PersistenceName(Persistence p);  // "none", "rdb", "aof-everysec", "aof-always"
bool ParsePersistence(const std::string& s, Persistence* out);

struct ServerOptions {
  Persistence persistence = Persistence::kNone;
  std::string redis_server_path = "redis-server";  // looked up in PATH
  int64_t start_timeout_ms = 10000;                // bound on waiting for PING
  std::vector<std::string> extra_config;           // extra redis.conf lines
  // Start each server under the clock shim so that its wall clock can be skewed at run time
  // through EmbeddedServer::clock() (harness/server_clock.h, docs/clock-faults.md).
  bool clock_control = false;
};

class EmbeddedServer {
 public:
  // `name` "" = "redis-<index>"; otherwise the name used in messages (e.g. "redis-0-replica").
  EmbeddedServer(int index, std::string dir, ServerOptions opts, std::string name = "");
  ~EmbeddedServer();  // stops the process

  // Starts redis-server on a free loopback port (keeps the port across restarts) and waits
  // for PING. Fails with one line naming the server and the reason (binary missing, exited,
  // no PING within start_timeout_ms — the log path is named).
  Status Start();
  void Kill();    // SIGKILL, reaped; data files stay (for restart)
  void Pause();   // SIGSTOP
  void Resume();  // SIGCONT
  // The persistence the next Start()/Restart() uses (restart-node's "persistence").
  void set_persistence(Persistence p) { opts_.persistence = p; }
  Persistence persistence() const { return opts_.persistence; }
  const ServerOptions& options() const { return opts_; }
  Status Restart();  // Start() again on the same port and data dir
                     // (Kill()s first if still running)
  // Orderly stop: SIGCONT if paused, SIGTERM, a short grace, then SIGKILL; reaped. Bounded.
  // No-op if not running. The destructor calls it.
  void Stop();
  // "redis-<index>" (or the name given to the constructor), used in messages.
  std::string name() const;
  bool running() const { return process_ != nullptr; }
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  ServerAddress address() const { return {"127.0.0.1", port_}; }
  const std::string& log_path() const { return log_path_; }
  const std::string& dir() const { return dir_; }
  // The server's clock control (faults may be set before Start()): nullptr unless
  // opts.clock_control (or if its file could not be created: Start() then fails saying why).
  // The same clock, with its faults, survives Kill()/Restart().
  ServerClock* clock() { return clock_.get(); }

 private:
  int index_;
  std::string name_;  // "" = "redis-<index_>"
  std::string dir_;
  std::string log_path_;
  ServerOptions opts_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
  bool paused_ = false;
  std::unique_ptr<ServerClock> clock_;  // set by the constructor if opts_.clock_control
  Status clock_status_;                 // why clock_ could not be created

  // Writes dir_/redis.conf for port_ (creating dir_).
  Status WriteConfig(std::string* conf_path) const;
  // One start attempt on port_. If `port_taken` is non-null it is set when redis exited
  // because the port was in use (the caller may retry with another port).
  Status StartOnce(bool* port_taken);
};

class ServerSet {
 public:
  ServerSet() = default;
  ~ServerSet();  // stops every server

  // Starts `n` servers in `run_dir`/redis-<i>/. On failure stops what was started.
  Status StartEmbedded(const std::string& run_dir, int n, const ServerOptions& opts);
  // Uses servers the user runs: checks each answers PING within `timeout_ms`. Never starts,
  // stops or reconfigures them.
  Status UseExternal(const std::vector<ServerAddress>& addrs, int64_t timeout_ms);

  bool embedded() const { return !servers_.empty(); }
  std::vector<ServerAddress> addresses() const;
  EmbeddedServer* server(int i) { return servers_.at(static_cast<size_t>(i)).get(); }
  int size() const { return static_cast<int>(addresses_.size()); }
  // "7.0.15" from INFO server of node 0, "" if unknown.
  std::string RedisVersion() const;
  // Embedded servers only: undoes what a run's faults may have left, so the set can serve
  // another run. Resumes a paused server, restarts (same port) one that is down or whose
  // persistence a restart-node fault changed from `persistence`, resets every server clock,
  // then checks each answers PING within `timeout_ms`. Data under other keys is kept. Fails
  // with one line naming the server.
  Status Refresh(Persistence persistence, int64_t timeout_ms);
  void StopAll();

 private:
  std::vector<std::unique_ptr<EmbeddedServer>> servers_;
  std::vector<ServerAddress> addresses_;
};

// Parses a comma-separated list of servers as users write them: "host:port", "[v6]:port", or a
// URL "redis://[[user]:password@]host[:port][/db]" (port 6379 by default); "rediss://" is the
// same over TLS, configured by `tls_options` (one TlsContext for the whole list). A server with
// no password in its URL takes `env_password` (LOCKSTORM_REDIS_PASSWORD, when set) if not
// empty. Errors name the flag and the bad entry (or TLS file), never a password.
Status ParseServerList(const std::string& flag, const std::string& list,
                       std::vector<ServerAddress>* out, const std::string& env_password = "",
                       const TlsOptions& tls_options = {});

// --sentinel "SENTINELS/MASTERS": SENTINELS as ParseServerList takes them (host:port or
// redis[s]:// URLs; a password applies to that sentinel only), MASTERS comma-separated names.
// For each master name, asks the sentinels in order (SENTINEL get-master-addr-by-name, at most
// `timeout_ms` each) and appends the first answer to *out, with `env_password` and the TLS of
// the sentinel that answered. Errors are one line naming the flag, the master, and what each
// sentinel said.
Status ResolveSentinelMasters(const std::string& flag, const std::string& spec,
                              const std::string& env_password, const TlsOptions& tls_options,
                              int64_t timeout_ms, std::vector<ServerAddress>* out);

// `text` with the password of every redis:// URL in it replaced by "***": for command lines
// written to reports and logs.
std::string RedactPasswords(std::string text);

// Binds port 0 on 127.0.0.1 and returns the port the kernel chose (0 on failure).
int PickFreePort();

}  // namespace lockstorm
