// Transport: the only way lock implementations reach Redis.
//
// A Transport connects one client to N Redis nodes (node indexes 0..node_count()-1, in the
// order of --servers or of the embedded topology). A call sends one command and returns one
// Reply. Every call has a deadline; a Reply is one of
//   - a server answer (status, error, integer, bulk string, nil, array): the command ran;
//   - kTimeout or kIoError: the outcome is UNKNOWN — the command may or may not have run
//     (the request may have been applied and only the reply lost).
// After a kTimeout or kIoError the transport drops that node's connection and reconnects on
// the next call, so a late reply can never be taken for the answer to a later command.
//
// Implementations: RedisTransport (real sockets, RESP parsed by hiredis' reader); later the
// fault proxy sits between RedisTransport and the servers, and the deterministic simulator
// provides its own Transport.
//
// Thread-safety: a Transport belongs to one client thread. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lockstorm {

using Command = std::vector<std::string>;

struct Reply {
  enum class Type { kStatus, kError, kInteger, kString, kNil, kArray, kTimeout, kIoError };
  Type type = Type::kNil;
  std::string str;  // kStatus, kError, kString; the reason for kTimeout and kIoError
  int64_t integer = 0;
  std::vector<Reply> elements;  // kArray

  // True when the command's effect is unknown (it may have been applied).
  bool unknown() const { return type == Type::kTimeout || type == Type::kIoError; }
  bool is_ok_status() const { return type == Type::kStatus && str == "OK"; }
  bool is_integer(int64_t v) const { return type == Type::kInteger && integer == v; }
  std::string ToString() const;  // for logs and errors

  static Reply Timeout(std::string why) { return {Type::kTimeout, std::move(why), 0, {}}; }
  static Reply IoError(std::string why) { return {Type::kIoError, std::move(why), 0, {}}; }
};

class Transport {
 public:
  virtual ~Transport() = default;

  virtual int node_count() const = 0;

  // Sends `cmd` to `node` and waits at most `timeout_us` (the TCP connect included). A new
  // connection's TLS handshake and AUTH/SELECT get at least 250 ms, so a call that sets one up
  // may take that long; a connect still in progress at the deadline, or a connection set up
  // too late to send the command, is kept for the next call (the reply is kTimeout).
  virtual Reply Call(int node, const Command& cmd, int64_t timeout_us) = 0;

  // Sends `cmd` to every node in `nodes` at once and waits at most `timeout_us` for all of
  // them: the round trips overlap (Redlock's concurrent fan-out). Returns one Reply per entry
  // of `nodes`, in the same order; nodes that did not answer in time get kTimeout.
  virtual std::vector<Reply> CallMany(const std::vector<int>& nodes, const Command& cmd,
                                      int64_t timeout_us) = 0;

  // Decides, from the replies so far (nullptr = not answered yet), that the rest need not be
  // awaited — e.g. Redlock once a quorum said OK, or once a quorum became impossible.
  using Decided = std::function<bool(const std::vector<const Reply*>& replies)>;

  // Like CallMany, but returns as soon as `decided` is true. Replies not awaited come back as
  // kTimeout with str "not awaited": their commands were sent and may run (unknown outcome);
  // the transport reads and discards those replies before the next reply on the same
  // connection. Default: waits for every reply, exactly like CallMany.
  virtual std::vector<Reply> CallManyUntil(const std::vector<int>& nodes, const Command& cmd,
                                           int64_t timeout_us, const Decided& decided) {
    (void)decided;
    return CallMany(nodes, cmd, timeout_us);
  }
};

class TlsContext;  // harness/tls.h

struct ServerAddress {
  ServerAddress() = default;
  ServerAddress(std::string h, int p) : host(std::move(h)), port(p) {}
  std::string host = "127.0.0.1";
  int port = 0;
  // From a redis:// URL or LOCKSTORM_REDIS_PASSWORD (harness/redis_server.h ParseServerList):
  // sent as AUTH [user] password, then SELECT db, on every new connection. Never printed:
  // ToString() is host:port only, and reports use nothing else.
  std::string user;
  std::string password;
  int db = 0;
  // rediss://: TLS with this configuration (null = plain TCP). The certificate must name
  // tls_name ("" = host): a fault proxy's address keeps the real server's name here.
  std::shared_ptr<const TlsContext> tls;
  std::string tls_name;
  std::string ToString() const { return host + ":" + std::to_string(port); }
  const std::string& TlsName() const { return tls_name.empty() ? host : tls_name; }
  // `text` (a server's error, which may echo AUTH's arguments) with the password as "***".
  std::string HidePassword(std::string text) const {
    if (password.empty()) return text;
    for (size_t at = text.find(password); at != std::string::npos; at = text.find(password, at + 3))
      text.replace(at, password.size(), "***");
    return text;
  }
};

// Real sockets to real servers. Connects lazily; does not take ownership of anything.
std::unique_ptr<Transport> NewRedisTransport(std::vector<ServerAddress> nodes);

}  // namespace lockstorm
