// RedisTransport: one TCP connection per node, RESP written by hand and parsed by hiredis'
// reader (no hiredis I/O), every wait bounded by the call's deadline.
//   - Call (one node, already connected): the request is formatted into a reused buffer and
//     sent with one non-blocking send; the reply is read with a blocking recv bounded by
//     SO_RCVTIMEO (two syscalls per round trip in the common case, as a blocking hiredis
//     client); only the last stretch before the deadline is waited with poll(), which is
//     precise where SO_RCVTIMEO is not. Connecting goes through the fan-out path. On a fiber
//     (harness/fiber.h) the recv is non-blocking and the wait parks the fiber instead.
//   - CallMany/CallManyUntil: connect, write the command to every node first, then poll all
//     sockets (MSG_DONTWAIT on every send and recv), so round trips overlap.
#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>

#include "harness/fiber.h"
#include "harness/resp.h"
#include "harness/tls.h"
#include "harness/transport.h"

namespace lockstorm {

std::string Reply::ToString() const {
  switch (type) {
    case Type::kStatus:
      return str;
    case Type::kError:
      return "(error) " + str;
    case Type::kInteger:
      return "(integer) " + std::to_string(integer);
    case Type::kString:
      return "\"" + str + "\"";
    case Type::kNil:
      return "(nil)";
    case Type::kTimeout:
      return "(timeout) " + str;
    case Type::kIoError:
      return "(io error) " + str;
    case Type::kArray: {
      std::string s = "[";
      for (size_t i = 0; i < elements.size(); ++i) {
        if (i) s += ", ";
        s += elements[i].ToString();
      }
      return s + "]";
    }
  }
  return "?";
}

namespace {

// Bound on the I/O rounds of one call: each round waits (bounded by the deadline) or makes
// progress, so this is never reached in practice.
constexpr int kMaxRounds = 1000000;

// SO_RCVTIMEO is kept this far (plus 1/9 of the rest) ahead of a call's deadline: the kernel
// rounds it up to whole jiffies (10 ms at HZ=100) and its timer wheel may fire a long timeout
// up to 1/8 late. The last stretch before the deadline is waited with poll(), which is
// precise (see Connection::SetRecvTimeout).
constexpr int64_t kRecvTimeoMarginUs = 20000;
// Bytes read per recv. Lock replies are tens of bytes; a small buffer keeps the stack of a
// fiber compact (a 16 KiB one spread each round trip over five pages of each of 1,000 stacks).
constexpr size_t kRecvChunkBytes = 2048;
// The TLS handshake and AUTH/SELECT on a new connection run until the call's deadline, but for
// at least kMinSetupUs and at most kHandshakeTimeoutUs: with a call's few milliseconds (a
// Redlock node gets TTL / 10) a handshake on a loaded machine never finished, and every later
// call started it over. So a call that sets up its connection may overrun a shorter timeout by
// up to kMinSetupUs (and a node that accepts but never answers costs each call that much).
constexpr int64_t kMinSetupUs = 250'000;
constexpr int64_t kHandshakeTimeoutUs = 2'000'000;
// Shortest SO_RCVTIMEO kept for a longer wait: such a wait wakes once per slice and
// re-checks its deadline.
constexpr int64_t kMinRecvSliceUs = 20000;

int64_t MonoUs() { return fiber::MonoNowUs(); }

Reply Convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      out.type = Reply::Type::kNil;
      break;
  }
  return out;
}

// True when hiredis' reader holds no unread bytes and no partial reply.
bool ReaderIsEmpty(const redisReader* r) { return r->pos == r->len && r->ridx == -1; }

// Appends "<kind><n>\r\n" (a RESP array or bulk-string header) to *out.
void AppendRespHeader(char kind, size_t n, std::string* out) {
  char buf[24];
  buf[0] = kind;
  char* end = std::to_chars(buf + 1, buf + sizeof buf - 2, n).ptr;
  end[0] = '\r';
  end[1] = '\n';
  out->append(buf, static_cast<size_t>(end + 2 - buf));
}

// Appends `cmd` to *out as a RESP request: *N\r\n, then $len\r\narg\r\n per argument (what
// redisFormatCommandArgv writes, without its allocations).
void AppendRespCommand(const Command& cmd, std::string* out) {
  size_t size = 16;
  for (const std::string& a : cmd) size += a.size() + 16;
  out->reserve(out->size() + size);
  AppendRespHeader('*', cmd.size(), out);
  for (const std::string& a : cmd) {
    AppendRespHeader('$', a.size(), out);
    out->append(a);
    out->append("\r\n", 2);
  }
}

// Waits until `fd` is ready for `events` or the deadline passes (a thread polls in whole ms,
// rounded up; a fiber parks until the event or its timer). True if ready (or in error: the
// next send/recv reports it).
bool WaitReady(int fd, short events, int64_t deadline_us) {
  pollfd pfd{fd, events, 0};
  return fiber::Poll(&pfd, 1, deadline_us) != 0;
}

// One TCP connection to one node. Connects non-blocking (bounded by poll); once connected the
// socket is blocking: the single-node path (RedisTransport::Call) does a blocking recv bounded
// by SO_RCVTIMEO, the fan-out path passes MSG_DONTWAIT to every send and recv.
class Connection {
 public:
  explicit Connection(ServerAddress addr) : addr_(std::move(addr)) {}
  ~Connection() { Close(); }

  void Close() {
    tls_.reset();              // before its socket
    if (fd_ >= 0) close(fd_);  // its fd-table entry is forgotten by the next socket's WaitEdge
    drained_ = true;
    fd_ = -1;
    connected_ = false;
    rcvtimeo_us_ = 0;
    if (reader_) redisReaderFree(reader_);
    reader_ = nullptr;
    discard = 0;
  }

  // Starts a non-blocking connect if there is no connection. Returns "" or an error.
  // `deadline_us` bounds the AUTH/SELECT a connect may need (the caller's call deadline).
  std::string StartConnect(int64_t deadline_us) {
    if (fd_ >= 0) return "";
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(addr_.port));
    if (inet_pton(AF_INET, addr_.host == "localhost" ? "127.0.0.1" : addr_.host.c_str(),
                  &sa.sin_addr) != 1) {
      addrinfo hints{}, *res = nullptr;
      hints.ai_family = AF_INET;
      if (getaddrinfo(addr_.host.c_str(), nullptr, &hints, &res) != 0 || !res) {
        return "cannot resolve " + addr_.host;
      }
      sa.sin_addr = reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr;
      freeaddrinfo(res);
    }
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return std::string("socket: ") + strerror(errno);
    fresh_ = true;
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    reader_ = redisReaderCreate();
    if (connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0)
      return Connected(deadline_us);
    if (errno != EINPROGRESS) {
      std::string e = "connect " + addr_.ToString() + ": " + strerror(errno);
      Close();
      return e;
    }
    return "";
  }

  // Called when a connecting socket is writable: "" if connected, else the error.
  std::string FinishConnect(int64_t deadline_us) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      std::string e = "connect " + addr_.ToString() + ": " + strerror(err);
      Close();
      return e;
    }
    return Connected(deadline_us);
  }

  // Arms SO_RCVTIMEO so that the next blocking recv returns (EAGAIN) before `left_us` has
  // passed, jiffy rounding and timer-wheel lateness included. False if there is too little
  // time left for that (or setsockopt failed): the caller waits with poll() instead. The
  // option is changed only when needed, to save a syscall per call: the current value is
  // kept while it expires in time and is not shorter than min(the longest allowed,
  // kMinRecvSliceUs) (a longer wait then wakes once per slice; the caller re-checks).
  bool SetRecvTimeout(int64_t left_us) {
    const int64_t max_us = (left_us - kRecvTimeoMarginUs) / 9 * 8;
    if (max_us < 1000) return false;
    if (rcvtimeo_us_ > 0 && rcvtimeo_us_ <= max_us &&
        rcvtimeo_us_ >= std::min(max_us, kMinRecvSliceUs)) {
      return true;
    }
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(max_us / 1000000);
    tv.tv_usec = static_cast<suseconds_t>(max_us % 1000000);
    if (setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
      rcvtimeo_us_ = 0;
      return false;
    }
    rcvtimeo_us_ = max_us;
    return true;
  }

  int fd() const { return fd_; }
  bool connected() const { return connected_; }
  bool tls() const { return tls_ != nullptr; }
  // send(2)/recv(2) on the socket, or through TLS: as send/recv with MSG_DONTWAIT (a TLS
  // socket is always non-blocking), -1 with errno EAGAIN when the socket must be waited for.
  ssize_t Send(const char* data, size_t n) {
    return tls_ ? tls_->Write(data, n) : send(fd_, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  ssize_t Recv(char* data, size_t n, int flags) {
    if (tls_) return tls_->Read(data, n);
    const ssize_t r = recv(fd_, data, n, flags);
    drained_ = r >= 0 ? static_cast<size_t>(r) < n : errno == EAGAIN || errno == EWOULDBLOCK;
    return r;
  }
  // The last Recv emptied the socket (EAGAIN, or fewer bytes than asked for): a fiber may wait
  // for its next edge (Wait). Not for TLS, whose reads are by record.
  bool drained() const { return !tls_ && drained_; }
  // Waits until the socket is ready for `events` after a send or recv said EAGAIN (or a recv
  // drained it): over TCP fiber::WaitEdge, over TLS poll. The first edge wait on a fiber since
  // the socket was created forgets what its fd number left in that thread's table (the
  // socket that had it may have been closed on another thread: a watchdog's renewer shares
  // the connection). 1 if ready, 0 at the deadline.
  int Wait(short events, int64_t deadline_us) {
    if (tls_) return WaitReady(fd_, events, deadline_us) ? 1 : 0;
    if (fresh_ && fiber::InFiber()) {
      fresh_ = false;
      fiber::ForgetFd(fd_);
    }
    return fiber::WaitEdge(fd_, events, deadline_us);
  }
  // Bytes TLS decrypted already: readable without waiting for the socket.
  bool Buffered() const { return tls_ && tls_->Buffered(); }
  // Why the last Send or Recv failed (call right after it: reads errno).
  std::string ErrorText() const {
    return tls_ && !tls_->error().empty() ? tls_->error() : std::string(strerror(errno));
  }
  // Replies of commands whose answer the caller stopped awaiting: read and dropped first.
  int discard = 0;
  redisReader* reader() { return reader_; }
  const ServerAddress& addr() const { return addr_; }

 private:
  // The connect completed: the socket becomes blocking (see the class comment), and a server
  // given with a password or a database gets AUTH and SELECT first.
  std::string Connected(int64_t deadline_us) {
    const int64_t now_us = MonoUs();
    const int64_t handshake_deadline_us =
        std::clamp(deadline_us, now_us + kMinSetupUs, now_us + kHandshakeTimeoutUs);
    if (addr_.tls) {  // TLS first; its socket stays non-blocking
      tls_ = std::make_unique<TlsSession>(*addr_.tls, fd_, addr_.TlsName());
      if (std::string e = tls_->Handshake(handshake_deadline_us); !e.empty()) {
        Close();
        return e + " (" + addr_.ToString() + ")";
      }
    } else {
      const int flags = fcntl(fd_, F_GETFL);
      if (flags < 0 || fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        std::string e = "fcntl " + addr_.ToString() + ": " + strerror(errno);
        Close();
        return e;
      }
    }
    if (std::string e = Handshake(handshake_deadline_us); !e.empty()) {
      Close();
      return e;
    }
    connected_ = true;
    return "";
  }

  // AUTH [user] password, SELECT db: written at once, both answers awaited until
  // `deadline_us`. "" or the error, naming the command; the password never appears in it.
  std::string Handshake(int64_t deadline_us) {
    std::vector<std::string> pending;  // the commands whose answers are awaited, in order
    std::string wire;
    if (!addr_.password.empty()) {
      Command auth = {"AUTH"};
      if (!addr_.user.empty()) auth.push_back(addr_.user);
      auth.push_back(addr_.password);
      AppendRespCommand(auth, &wire);
      pending.push_back("AUTH");
    }
    if (addr_.db != 0) {
      AppendRespCommand({"SELECT", std::to_string(addr_.db)}, &wire);
      pending.push_back("SELECT " + std::to_string(addr_.db));
    }
    if (pending.empty()) return "";
    auto what = [&](size_t got) {
      return pending[std::min(got, pending.size() - 1)] + " failed on " + addr_.ToString();
    };
    for (size_t sent = 0; sent < wire.size();) {
      const ssize_t n = Send(wire.data() + sent, wire.size() - sent);
      if (n > 0) {
        sent += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        pollfd pfd{fd_, POLLOUT, 0};
        if (fiber::Poll(&pfd, 1, deadline_us) <= 0) return what(0) + ": timeout";
        continue;
      }
      return what(0) + ": send: " + ErrorText();
    }
    char buf[kRecvChunkBytes];
    size_t got = 0;
    for (int round = 0; got < pending.size() && round < kMaxRounds; ++round) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader_, &raw) != REDIS_OK) return what(got) + ": protocol error";
      if (raw) {
        auto* r = static_cast<redisReply*>(raw);
        std::string err = r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "";
        freeReplyObject(raw);
        if (!err.empty()) {
          // A server (or something posing as one) may echo the arguments: never the password.
          return what(got) + ": " + addr_.HidePassword(err);
        }
        ++got;
        continue;
      }
      pollfd pfd{fd_, POLLIN, 0};
      if (!Buffered() && fiber::Poll(&pfd, 1, deadline_us) <= 0) return what(got) + ": timeout";
      const ssize_t n = Recv(buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        redisReaderFeed(reader_, buf, static_cast<size_t>(n));
      } else if (n == 0) {
        return what(got) + ": connection closed";
      } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
        return what(got) + ": recv: " + ErrorText();
      }
    }
    return got == pending.size() ? "" : what(got) + ": no answer";
  }

  ServerAddress addr_;
  int fd_ = -1;
  bool connected_ = false;
  int64_t rcvtimeo_us_ = 0;  // SO_RCVTIMEO as last set; 0 = not set (none)
  redisReader* reader_ = nullptr;
  std::unique_ptr<TlsSession> tls_;  // rediss:// only
  bool drained_ = true;              // see drained()
  bool fresh_ = false;               // see Wait()
};

class RedisTransport : public Transport {
 public:
  explicit RedisTransport(std::vector<ServerAddress> nodes) {
    for (auto& a : nodes) conns_.push_back(std::make_unique<Connection>(a));
  }

  int node_count() const override { return static_cast<int>(conns_.size()); }

  // The single-node fast path: no vectors, the request formatted into a reused buffer, one
  // send and (usually) one blocking recv. A connection that is not up yet goes through Fanout,
  // which connects within the same deadline.
  Reply Call(int node, const Command& cmd, int64_t timeout_us) override {
    Connection* c = conns_.at(static_cast<size_t>(node)).get();
    if (!c->connected()) {
      one_node_.assign(1, node);
      return std::move(Fanout(one_node_, cmd, timeout_us, nullptr)[0]);
    }
    const int64_t deadline_us = MonoUs() + timeout_us;
    // Formatted into the thread's scratch buffer (hot in cache, where 1000 clients' own
    // buffers would be cold); a send that must wait moves the rest into this transport's own
    // buffer first, since other fibers of the thread reuse the scratch meanwhile.
    thread_local std::string scratch;
    scratch.clear();
    AppendRespCommand(cmd, &scratch);
    const std::string* wire = &scratch;
    size_t written = 0;
    bool waited = false;  // for the socket to drain: the time left is no longer timeout_us
    for (int round = 0; round < kMaxRounds && written < wire->size(); ++round) {
      const ssize_t n = c->Send(wire->data() + written, wire->size() - written);
      if (n > 0) {
        written += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (wire == &scratch) {
          wire_.assign(scratch, written);
          wire = &wire_;
          written = 0;
        }
        if (c->Wait(POLLOUT, deadline_us) <= 0) break;
        waited = true;
      } else {
        return Fail(c, Reply::IoError("send " + c->addr().ToString() + ": " + c->ErrorText()));
      }
    }
    if (written < wire->size()) return Fail(c, NoReply(c, timeout_us));
    // Usually the send went straight out: the time left is still timeout_us, less the few
    // microseconds of the send (which the SO_RCVTIMEO margin covers) — no clock read.
    return ReadReply(c, deadline_us, timeout_us, waited ? -1 : timeout_us);
  }

  std::vector<Reply> CallMany(const std::vector<int>& nodes, const Command& cmd,
                              int64_t timeout_us) override {
    return Fanout(nodes, cmd, timeout_us, nullptr);
  }

  std::vector<Reply> CallManyUntil(const std::vector<int>& nodes, const Command& cmd,
                                   int64_t timeout_us, const Decided& decided) override {
    return Fanout(nodes, cmd, timeout_us, &decided);
  }

 private:
  // Closes c (a late reply must never be read as the next command's) and returns r.
  static Reply Fail(Connection* c, Reply r) {
    c->Close();
    return r;
  }

  static Reply NoReply(const Connection* c, int64_t timeout_us) {
    return Reply::Timeout("no reply from " + c->addr().ToString() + " within " +
                          std::to_string(timeout_us / 1000) + " ms");
  }

  // Reads c's next awaited reply (dropping the `discard` ones before it) by the deadline:
  // blocking recvs bounded by SO_RCVTIMEO while there is time enough, then poll() and a
  // non-blocking recv. `left_us` is the time left now if the caller knows it, else -1.
  Reply ReadReply(Connection* c, int64_t deadline_us, int64_t timeout_us, int64_t left_us) {
    char buf[kRecvChunkBytes];
    bool yielded = false;  // a fiber yields once before its first read
    for (int round = 0; round < kMaxRounds; ++round) {
      void* raw = nullptr;
      // Only when hiredis holds bytes or a partial reply: called on an empty buffer it would
      // start a read task (ridx 0) and so turn the RESP fast path below off.
      if (!ReaderIsEmpty(c->reader()) && redisReaderGetReply(c->reader(), &raw) != REDIS_OK) {
        return Fail(c, Reply::IoError("protocol error from " + c->addr().ToString()));
      }
      if (raw != nullptr) {
        if (c->discard > 0) {  // a reply nobody awaits any more
          freeReplyObject(raw);
          --c->discard;
          continue;
        }
        Reply r = Convert(static_cast<redisReply*>(raw));
        freeReplyObject(raw);
        return r;
      }
      if (left_us < 0) left_us = deadline_us - MonoUs();
      if (left_us <= 0) break;
      int flags = 0;
      if (fiber::InFiber()) {
        // A fiber never blocks its thread in recv. Over TCP it parks until the socket's next
        // edge once the last read emptied it (no system call), else reads without waiting.
        // Over TLS it lets the other ready fibers run once, then reads without waiting; if
        // nothing came, it parks until the socket is readable.
        if (c->drained()) {
          if (c->Wait(POLLIN, deadline_us) <= 0) break;
        } else if (!c->tls()) {
          // read on: the last read filled the buffer
        } else if (!yielded && fiber::Yield()) {
          yielded = true;
        } else if (!c->Buffered() && c->Wait(POLLIN, deadline_us) <= 0) {
          break;
        }
        flags = MSG_DONTWAIT;
      } else if (c->tls() || !c->SetRecvTimeout(left_us)) {  // a thread blocks in recv; near
        // the deadline (and always with TLS, whose socket is non-blocking) it polls precisely
        if (!c->Buffered() && c->Wait(POLLIN, deadline_us) <= 0) break;
        flags = MSG_DONTWAIT;
      }
      left_us = -1;  // unknown after this recv
      const ssize_t n = c->Recv(buf, sizeof buf, flags);
      if (n > 0) {
        // The usual case: the whole awaited reply, alone, in this one read (harness/resp.h).
        Reply fast;
        if (c->discard == 0 && ReaderIsEmpty(c->reader()) &&
            ParseOneSimpleReply({buf, static_cast<size_t>(n)}, &fast)) {
          return fast;
        }
        redisReaderFeed(c->reader(), buf, static_cast<size_t>(n));
      } else if (n == 0) {
        return Fail(c, Reply::IoError("connection closed by " + c->addr().ToString()));
      } else if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
        return Fail(c, Reply::IoError("recv " + c->addr().ToString() + ": " + c->ErrorText()));
      }  // EAGAIN: SO_RCVTIMEO expired (or poll's readiness was spurious); re-check the time
    }
    return Fail(c, NoReply(c, timeout_us));
  }

  std::vector<Reply> Fanout(const std::vector<int>& nodes, const Command& cmd, int64_t timeout_us,
                            const Decided* decided) {
    const int64_t deadline_us = MonoUs() + timeout_us;
    wire_.clear();
    AppendRespCommand(cmd, &wire_);
    const std::string& wire = wire_;
    std::vector<Reply> replies(nodes.size());
    enum class St { kConnecting, kWriting, kReading, kDone };
    struct Pending {
      Connection* conn;
      St st;
      size_t written;
    };
    std::vector<Pending> p(nodes.size());
    bool set_up = false;  // a connection was set up in this call (its handshake took time)
    for (size_t i = 0; i < nodes.size(); ++i) {
      Connection* c = conns_.at(static_cast<size_t>(nodes[i])).get();
      p[i] = {c, St::kWriting, 0};
      const bool was_connected = c->connected();
      std::string err = c->StartConnect(deadline_us);
      if (!err.empty()) {
        replies[i] = Reply::IoError(err);
        p[i].st = St::kDone;
      } else if (!c->connected()) {
        p[i].st = St::kConnecting;
      } else if (!was_connected) {
        set_up = true;
      }
    }
    auto fail = [&](size_t i, Reply r) {
      p[i].conn->Close();  // a late reply must never be read as the next command's
      replies[i] = std::move(r);
      p[i].st = St::kDone;
    };
    auto try_write = [&](size_t i) {
      while (p[i].written < wire.size()) {
        ssize_t n = p[i].conn->Send(wire.data() + p[i].written, wire.size() - p[i].written);
        if (n > 0) {
          p[i].written += static_cast<size_t>(n);
        } else if (n < 0 && errno == EINTR) {
          continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          return;
        } else {
          fail(i, Reply::IoError("send " + p[i].conn->addr().ToString() + ": " +
                                 p[i].conn->ErrorText()));
          return;
        }
      }
      p[i].st = St::kReading;
    };
    auto try_read = [&](size_t i) {
      char buf[kRecvChunkBytes];
      for (int round = 0; round < kMaxRounds; ++round) {  // ends at EAGAIN or a reply
        void* raw = nullptr;
        if (redisReaderGetReply(p[i].conn->reader(), &raw) != REDIS_OK) {
          fail(i, Reply::IoError("protocol error from " + p[i].conn->addr().ToString()));
          return;
        }
        if (raw && p[i].conn->discard > 0) {  // a reply nobody awaits any more
          freeReplyObject(raw);
          --p[i].conn->discard;
          continue;
        }
        if (raw) {
          replies[i] = Convert(static_cast<redisReply*>(raw));
          freeReplyObject(raw);
          p[i].st = St::kDone;
          return;
        }
        ssize_t n = p[i].conn->Recv(buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
          redisReaderFeed(p[i].conn->reader(), buf, static_cast<size_t>(n));
        } else if (n == 0) {
          fail(i, Reply::IoError("connection closed by " + p[i].conn->addr().ToString()));
          return;
        } else if (errno == EINTR) {
          continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
          return;
        } else {
          fail(i, Reply::IoError("recv " + p[i].conn->addr().ToString() + ": " +
                                 p[i].conn->ErrorText()));
          return;
        }
      }
    };
    // A command is not started past its deadline (a handshake may have run over it): the
    // connection, with nothing sent, is kept for the next call.
    const bool late = set_up && MonoUs() >= deadline_us;
    for (size_t i = 0; i < p.size(); ++i)
      if (p[i].st == St::kWriting && !late) try_write(i);

    std::vector<pollfd> fds;
    std::vector<size_t> idx;
    std::vector<const Reply*> so_far(p.size(), nullptr);
    auto is_decided = [&] {
      if (!decided) return false;
      for (size_t i = 0; i < p.size(); ++i)
        so_far[i] = p[i].st == St::kDone ? &replies[i] : nullptr;
      return (*decided)(so_far);
    };
    for (int round = 0; round < kMaxRounds; ++round) {  // each round waits or progresses
      if (is_decided()) {
        for (size_t i = 0; i < p.size(); ++i) {
          if (p[i].st == St::kDone) continue;
          if (p[i].st == St::kReading) {
            ++p[i].conn->discard;  // sent in full: its reply is dropped when it comes
            replies[i] = Reply::Timeout("not awaited");
            p[i].st = St::kDone;
          } else {
            fail(i, Reply::Timeout("not awaited"));  // half-written or connecting: start over
          }
        }
        break;
      }
      fds.clear();
      idx.clear();
      bool buffered = false;  // TLS held decrypted bytes, which poll() cannot see: read them
      for (size_t i = 0; i < p.size(); ++i) {
        if (p[i].st == St::kReading && p[i].conn->Buffered()) {
          try_read(i);
          buffered = true;
        }
        if (p[i].st == St::kDone) continue;
        short ev = p[i].st == St::kReading ? POLLIN : POLLOUT;
        fds.push_back({p[i].conn->fd(), ev, 0});
        idx.push_back(i);
      }
      if (buffered) continue;  // decided, or read again without waiting
      if (fds.empty()) break;
      int64_t left_us = deadline_us - MonoUs();
      if (left_us <= 0) break;
      const int n = fiber::Poll(fds.data(), fds.size(), deadline_us);
      if (n < 0) break;
      if (n == 0) continue;
      for (size_t k = 0; k < fds.size(); ++k) {
        if (fds[k].revents == 0) continue;
        size_t i = idx[k];
        if (p[i].st == St::kConnecting) {
          std::string err = p[i].conn->FinishConnect(deadline_us);
          if (!err.empty()) {
            replies[i] = Reply::IoError(err);
            p[i].st = St::kDone;
            continue;
          }
          p[i].st = St::kWriting;
          if (MonoUs() < deadline_us) try_write(i);
        } else if (p[i].st == St::kWriting) {
          try_write(i);
        }
        if (p[i].st == St::kReading && (fds[k].revents & (POLLIN | POLLHUP | POLLERR))) {
          try_read(i);
        }
      }
    }
    for (size_t i = 0; i < p.size(); ++i) {
      if (p[i].st == St::kDone) continue;
      // A connect still in progress, or a connection that has not sent a byte of this
      // command, carries no late reply: kept for the next call, which goes on from there.
      // Not over TLS once connected: SSL_write may hold the record it could not send.
      if (p[i].st == St::kConnecting ||
          (p[i].st == St::kWriting && p[i].written == 0 && !p[i].conn->tls())) {
        replies[i] = NoReply(p[i].conn, timeout_us);
        continue;
      }
      fail(i, NoReply(p[i].conn, timeout_us));
    }
    return replies;
  }

  std::vector<std::unique_ptr<Connection>> conns_;
  std::string wire_;           // the request being sent, reused across calls
  std::vector<int> one_node_;  // Call's node list for Fanout, reused
};

}  // namespace

std::unique_ptr<Transport> NewRedisTransport(std::vector<ServerAddress> nodes) {
  return std::make_unique<RedisTransport>(std::move(nodes));
}

}  // namespace lockstorm
