// RedisTransport: one non-blocking TCP connection per node, RESP formatted and parsed by
// hiredis' reader (no hiredis I/O), every wait bounded by poll() deadlines. CallMany writes the
// command to every node first and then polls all sockets, so round trips overlap.
#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

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

int64_t MonoUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

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
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      out.type = Reply::Type::kNil;
      break;
  }
  return out;
}

class Connection {
 public:
  explicit Connection(ServerAddress addr) : addr_(std::move(addr)) {}
  ~Connection() { Close(); }

  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    connected_ = false;
    if (reader_) redisReaderFree(reader_);
    reader_ = nullptr;
    discard = 0;
  }

  // Starts a non-blocking connect if there is no connection. Returns "" or an error.
  std::string StartConnect() {
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
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    reader_ = redisReaderCreate();
    if (connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
      connected_ = true;
      return "";
    }
    if (errno != EINPROGRESS) {
      std::string e = "connect " + addr_.ToString() + ": " + strerror(errno);
      Close();
      return e;
    }
    return "";
  }

  // Called when a connecting socket is writable: "" if connected, else the error.
  std::string FinishConnect() {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      std::string e = "connect " + addr_.ToString() + ": " + strerror(err);
      Close();
      return e;
    }
    connected_ = true;
    return "";
  }

  int fd() const { return fd_; }
  bool connected() const { return connected_; }
  // Replies of commands whose answer the caller stopped awaiting: read and dropped first.
  int discard = 0;
  redisReader* reader() { return reader_; }
  const ServerAddress& addr() const { return addr_; }

 private:
  ServerAddress addr_;
  int fd_ = -1;
  bool connected_ = false;
  redisReader* reader_ = nullptr;
};

class RedisTransport : public Transport {
 public:
  explicit RedisTransport(std::vector<ServerAddress> nodes) {
    for (auto& a : nodes) conns_.push_back(std::make_unique<Connection>(a));
  }

  int node_count() const override { return static_cast<int>(conns_.size()); }

  Reply Call(int node, const Command& cmd, int64_t timeout_us) override {
    return CallMany({node}, cmd, timeout_us)[0];
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
  std::vector<Reply> Fanout(const std::vector<int>& nodes, const Command& cmd, int64_t timeout_us,
                            const Decided* decided) {
    const int64_t deadline_us = MonoUs() + timeout_us;
    std::vector<const char*> argv;
    std::vector<size_t> argvlen;
    for (const auto& a : cmd) {
      argv.push_back(a.data());
      argvlen.push_back(a.size());
    }
    char* wire = nullptr;
    int wire_len =
        redisFormatCommandArgv(&wire, static_cast<int>(argv.size()), argv.data(), argvlen.data());
    std::vector<Reply> replies(nodes.size());
    if (wire_len < 0) {
      for (auto& r : replies) r = Reply::IoError("cannot format command");
      return replies;
    }
    enum class St { kConnecting, kWriting, kReading, kDone };
    struct Pending {
      Connection* conn;
      St st;
      size_t written;
    };
    std::vector<Pending> p(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
      Connection* c = conns_.at(static_cast<size_t>(nodes[i])).get();
      p[i] = {c, St::kWriting, 0};
      std::string err = c->StartConnect();
      if (!err.empty()) {
        replies[i] = Reply::IoError(err);
        p[i].st = St::kDone;
      } else if (!c->connected()) {
        p[i].st = St::kConnecting;
      }
    }
    auto fail = [&](size_t i, Reply r) {
      p[i].conn->Close();  // a late reply must never be read as the next command's
      replies[i] = std::move(r);
      p[i].st = St::kDone;
    };
    auto try_write = [&](size_t i) {
      while (p[i].written < static_cast<size_t>(wire_len)) {
        ssize_t n =
            send(p[i].conn->fd(), wire + p[i].written, wire_len - p[i].written, MSG_NOSIGNAL);
        if (n > 0) {
          p[i].written += static_cast<size_t>(n);
        } else if (n < 0 && errno == EINTR) {
          continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          return;
        } else {
          fail(i, Reply::IoError("send " + p[i].conn->addr().ToString() + ": " + strerror(errno)));
          return;
        }
      }
      p[i].st = St::kReading;
    };
    auto try_read = [&](size_t i) {
      char buf[16384];
      for (;;) {
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
        ssize_t n = recv(p[i].conn->fd(), buf, sizeof buf, 0);
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
          fail(i, Reply::IoError("recv " + p[i].conn->addr().ToString() + ": " + strerror(errno)));
          return;
        }
      }
    };
    for (size_t i = 0; i < p.size(); ++i)
      if (p[i].st == St::kWriting) try_write(i);

    std::vector<pollfd> fds;
    std::vector<size_t> idx;
    std::vector<const Reply*> so_far(p.size(), nullptr);
    auto is_decided = [&] {
      if (!decided) return false;
      for (size_t i = 0; i < p.size(); ++i)
        so_far[i] = p[i].st == St::kDone ? &replies[i] : nullptr;
      return (*decided)(so_far);
    };
    for (int round = 0; round < 1000000; ++round) {  // bounded: each round waits or progresses
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
      for (size_t i = 0; i < p.size(); ++i) {
        if (p[i].st == St::kDone) continue;
        short ev = p[i].st == St::kReading ? POLLIN : POLLOUT;
        fds.push_back({p[i].conn->fd(), ev, 0});
        idx.push_back(i);
      }
      if (fds.empty()) break;
      int64_t left_us = deadline_us - MonoUs();
      if (left_us <= 0) break;
      int ms = static_cast<int>((left_us + 999) / 1000);
      int n = poll(fds.data(), fds.size(), ms);
      if (n < 0 && errno != EINTR) break;
      if (n <= 0) continue;
      for (size_t k = 0; k < fds.size(); ++k) {
        if (fds[k].revents == 0) continue;
        size_t i = idx[k];
        if (p[i].st == St::kConnecting) {
          std::string err = p[i].conn->FinishConnect();
          if (!err.empty()) {
            replies[i] = Reply::IoError(err);
            p[i].st = St::kDone;
            continue;
          }
          p[i].st = St::kWriting;
          try_write(i);
        } else if (p[i].st == St::kWriting) {
          try_write(i);
        }
        if (p[i].st == St::kReading && (fds[k].revents & (POLLIN | POLLHUP | POLLERR))) {
          try_read(i);
        }
      }
    }
    for (size_t i = 0; i < p.size(); ++i) {
      if (p[i].st != St::kDone) {
        fail(i, Reply::Timeout("no reply from " + p[i].conn->addr().ToString() + " within " +
                               std::to_string(timeout_us / 1000) + " ms"));
      }
    }
    redisFreeCommand(wire);
    return replies;
  }

  std::vector<std::unique_ptr<Connection>> conns_;
};

}  // namespace

std::unique_ptr<Transport> NewRedisTransport(std::vector<ServerAddress> nodes) {
  return std::make_unique<RedisTransport>(std::move(nodes));
}

}  // namespace lockstorm
