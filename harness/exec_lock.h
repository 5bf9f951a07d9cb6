// Exec locks: any lock, in any language, driven as a subprocess (exec protocol v1).
//
// `--impl 'exec:COMMAND LINE'` makes every client start COMMAND LINE with `/bin/sh -c` (its
// own child, in its own process group) and drive it with newline-delimited JSON on the child's
// stdin (requests) and stdout (responses). docs/exec-protocol.md is the normative description;
// in short:
//   -> {"id":0,"op":"hello","protocol":1,"client":"c3","servers":["127.0.0.1:7001",...]}
//   <- {"id":0,"name":"my-lock","ops":["acquire","release","extend"]}
//   -> {"id":1,"op":"acquire","key":"K","ttl_ms":1000,"wait_ms":0}
//   <- {"id":1,"acquired":true,"lease":"...","valid_ms":987,"fence":42} | {"id":1,"acquired":false}
//   -> {"id":2,"op":"release","key":"K","lease":"..."}           <- {"id":2,"released":true}
//   -> {"id":3,"op":"extend","key":"K","lease":"...","ttl_ms":1000}
//   <- {"id":3,"extended":true,"valid_ms":990} | {"id":3,"extended":false}
//   <- {"id":N,"error":"text"}                                     (any op: outcome unknown)
//
// Failure rules (the harness never hangs and never throws):
//   - no answer within the request's deadline (acquire: ttl + wait + margin; extend: ttl +
//     margin; release: margin; hello: kExecHelloTimeoutMs) -> the child's process group is
//     SIGKILLed, the op's outcome is kUnknown, the next op starts a fresh child;
//   - the child exits, or writes a line that is not a JSON object, lacks "id", has another
//     id, is longer than kExecMaxLineBytes, or misses the fields of its op -> the same, and
//     one line naming the impl and quoting the offending line (truncated to
//     kExecMaxQuotedBytes) is queued for DrainInfraErrors();
//   - an {"error": ...} response is the lock's own report: kUnknown, not an infra error.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "harness/lock.h"
#include "harness/status.h"
#include "harness/transport.h"

namespace lockstorm {

inline constexpr int kExecProtocolVersion = 1;
inline constexpr int64_t kExecHelloTimeoutMs = 10000;     // bound on the hello round trip
inline constexpr size_t kExecMaxLineBytes = 1024 * 1024;  // longer response lines are errors
inline constexpr size_t kExecMaxQuotedBytes = 200;        // offending lines quoted up to this

// A parsed `--impl exec:...` value.
struct ExecSpec {
  std::string name;     // display name: NAME= prefix, the file's "name", or derived from command
  std::string command;  // run with /bin/sh -c
  std::set<std::string> expected_unsafe;  // scenario names where violations are expected
  int64_t deadline_margin_ms = 2000;      // added to every request's deadline
};

// True if `v` is an exec impl value: "exec:..." or "NAME=exec:..." (NAME of [A-Za-z0-9._-]).
// Says nothing about whether the rest is well formed: ParseExecImpl does.
bool IsExecImpl(const std::string& v);

// Parses one --impl value of the forms
//   exec:COMMAND LINE            name derived from the command ("exec:proto_lock.py")
//   NAME=exec:COMMAND LINE       name NAME
//   exec:@path.json              {"name": ..., "command": ..., "expected_unsafe": [...],
//   NAME=exec:@path.json          "deadline_margin_ms": N}; only "command" is required;
//                                NAME overrides the file's "name"; path relative to the cwd.
// On error returns InvalidArgument with one line naming `--impl`, and for a file, the file
// and the JSON path of the bad field ("--impl exec:@x.json: x.json: /command: expected a
// non-empty string"). *out is written only on success.
Status ParseExecImpl(const std::string& impl_flag_value, ExecSpec* out);

// The Lock returned by NewExecLock, for callers that need the subprocess-specific hooks
// (fault injection, tests). Obtain it with dynamic_cast<ExecLock*>(lock.get()).
// Thread-safety: as Lock; in addition PauseChild, ResumeChild, child_pid, last_child_pid and
// children_started may be called from any thread.
class ExecLock : public Lock {
 public:
  // SIGSTOPs / SIGCONTs the current child's process group (no-op if there is no child). A
  // paused child misses its deadlines and is then killed and replaced like a hung one; a
  // replacement child starts unpaused.
  virtual void PauseChild() = 0;
  virtual void ResumeChild() = 0;
  // The current child's pid (== its process group id), or -1 if none is running.
  virtual pid_t child_pid() const = 0;
  // The pid (== process group id) of the most recently started child, even after it is gone
  // (to check that it is), or -1 if none was ever started.
  virtual pid_t last_child_pid() const = 0;
  // How many children were started so far (each answers one hello).
  virtual int children_started() const = 0;
};

// A Lock that drives `spec.command` as client `client_id`. The child is started lazily on
// the first operation (and again after each kill), with LOCKSTORM_SERVERS (host:port,... in
// node order), LOCKSTORM_CLIENT (`client_id`) and LOCKSTORM_SEED (`seed`, decimal) in its
// environment and its stderr appended to `stderr_path` ("" = discarded). Never fails to
// construct: a command that cannot start shows up as infra errors and kUnknown outcomes.
// Crash() SIGKILLs the child's group and wakes a waiting operation at once; the destructor
// closes the child's stdin (EOF = exit), waits briefly, then kills the group.
std::unique_ptr<Lock> NewExecLock(const ExecSpec& spec, const std::string& client_id, uint64_t seed,
                                  const std::vector<ServerAddress>& servers,
                                  const std::string& stderr_path);

// What a plug-in is told of `servers` (docs/exec-protocol.md):
//   LOCKSTORM_SERVERS           host:port per node, comma-separated
//   LOCKSTORM_SERVER_URLS       redis[s]://[user@]host:port/db per node, comma-separated (never
//                               a password)
//   LOCKSTORM_REDIS_PASSWORD    the servers' password (the first node's), when there is one
//   LOCKSTORM_TLS_CA_CERT, LOCKSTORM_TLS_CERT, LOCKSTORM_TLS_KEY, LOCKSTORM_TLS_INSECURE=1,
//   LOCKSTORM_TLS_SERVER_NAMES  for rediss://: the TLS files, and the name each node's
//                               certificate carries (a fault proxy's host is 127.0.0.1)
std::map<std::string, std::string> ServerEnvironment(const std::vector<ServerAddress>& servers);

}  // namespace lockstorm
