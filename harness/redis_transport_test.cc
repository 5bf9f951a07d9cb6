// RedisTransport against a scripted in-process RESP server on 127.0.0.1: request framing,
// reply conversion, deadlines (kTimeout) and failures (kIoError), reconnection, replies split
// across segments, and the replies CallManyUntil stopped awaiting.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "harness/transport.h"

namespace lockstorm {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void SendAll(int fd, const std::string& s) {
  size_t off = 0;
  for (int i = 0; i < 100000 && off < s.size(); ++i) {
    ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

std::string Bulk(const std::string& s) {
  return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
}

// Parses one RESP request (*N\r\n then N bulk strings) from the front of *buf. False if
// incomplete.
bool ParseRequest(std::string* buf, Command* out) {
  size_t pos = 0;
  auto line = [&](char kind, long* n) {
    if (pos >= buf->size() || (*buf)[pos] != kind) return false;
    size_t end = buf->find("\r\n", pos);
    if (end == std::string::npos) return false;
    *n = std::stol(buf->substr(pos + 1, end - pos - 1));
    pos = end + 2;
    return true;
  };
  long argc = 0;
  if (!line('*', &argc)) return false;
  Command cmd;
  for (long i = 0; i < argc; ++i) {
    long len = 0;
    if (!line('$', &len)) return false;
    if (pos + static_cast<size_t>(len) + 2 > buf->size()) return false;
    cmd.push_back(buf->substr(pos, static_cast<size_t>(len)));
    pos += static_cast<size_t>(len) + 2;
  }
  buf->erase(0, pos);
  *out = std::move(cmd);
  return true;
}

// A RESP server on one thread. Commands: PING, ECHO x, INT n, NIL, ERR, ARR, NOREPLY (no
// answer), CLOSE (closes the connection), SPLIT x (x as a bulk string, one byte per segment),
// BIG n (a bulk string of n bytes), SLEEP ms x (x after ms). Every answer waits delay_ms first.
class ScriptedServer {
 public:
  explicit ScriptedServer(int delay_ms = 0) : delay_ms_(delay_ms) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    socklen_t len = sizeof sa;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    listen(listen_fd_, 16);
    thread_ = std::thread([this] { Loop(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    thread_.join();
    close(listen_fd_);
  }

  ServerAddress address() const { return {"127.0.0.1", port_}; }
  int connections() const { return connections_.load(); }
  std::string received() const {
    std::lock_guard<std::mutex> lock(mu_);
    return received_;
  }

 private:
  struct Conn {
    int fd;
    std::string buf;
  };

  void Loop() {
    std::vector<Conn> conns;
    for (int round = 0; round < 1000000 && !stop_; ++round) {  // 10 ms per idle round
      std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
      for (const Conn& c : conns) fds.push_back({c.fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), 10) <= 0) continue;
      if (fds[0].revents != 0) {
        int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) {
          conns.push_back({fd, ""});
          ++connections_;
        }
      }
      for (size_t k = 1; k < fds.size(); ++k) {
        if (fds[k].revents == 0) continue;
        Conn& c = conns[k - 1];
        char buf[4096];
        ssize_t n = recv(c.fd, buf, sizeof buf, 0);
        bool open = n > 0;
        if (open) {
          c.buf.append(buf, static_cast<size_t>(n));
          std::lock_guard<std::mutex> lock(mu_);
          received_.append(buf, static_cast<size_t>(n));
        }
        Command cmd;
        while (open && ParseRequest(&c.buf, &cmd)) open = Answer(c.fd, cmd);
        if (!open) {
          close(c.fd);
          c.fd = -1;
        }
      }
      std::erase_if(conns, [](const Conn& c) { return c.fd < 0; });
    }
    for (const Conn& c : conns) close(c.fd);
  }

  // Answers one command; false closes the connection.
  bool Answer(int fd, const Command& c) {
    if (delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
    const std::string& op = c.at(0);
    if (op == "PING") SendAll(fd, "+PONG\r\n");
    if (op == "ECHO") SendAll(fd, Bulk(c.at(1)));
    if (op == "INT") SendAll(fd, ":" + c.at(1) + "\r\n");
    if (op == "NIL") SendAll(fd, "$-1\r\n");
    if (op == "ERR") SendAll(fd, "-ERR boom\r\n");
    if (op == "ARR") SendAll(fd, "*3\r\n:1\r\n$1\r\na\r\n*1\r\n+OK\r\n");
    if (op == "CLOSE") return false;
    if (op == "BIG") SendAll(fd, Bulk(std::string(std::stoul(c.at(1)), 'x')));
    if (op == "SLEEP") {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(c.at(1))));
      SendAll(fd, Bulk(c.at(2)));
    }
    if (op == "SPLIT") {
      for (char ch : Bulk(c.at(1))) {
        SendAll(fd, std::string(1, ch));
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    return true;
  }

  const int delay_ms_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::string received_;
  std::thread thread_;
};

constexpr int64_t kLongUs = 5000000;

TEST(TransportTest, CallWritesRespAndConvertsEveryReplyType) {
  ScriptedServer server;
  auto t = NewRedisTransport({server.address()});
  Reply r = t->Call(0, {"PING"}, kLongUs);
  EXPECT_EQ(r.type, Reply::Type::kStatus);
  EXPECT_EQ(r.str, "PONG");
  r = t->Call(0, {"ECHO", std::string("a b\r\n\0z", 7)}, kLongUs);
  EXPECT_EQ(r.type, Reply::Type::kString);
  EXPECT_EQ(r.str, std::string("a b\r\n\0z", 7));
  r = t->Call(0, {"ECHO", ""}, kLongUs);
  EXPECT_EQ(r.type, Reply::Type::kString);
  EXPECT_EQ(r.str, "");
  EXPECT_TRUE(t->Call(0, {"INT", "-7"}, kLongUs).is_integer(-7));
  EXPECT_EQ(t->Call(0, {"NIL"}, kLongUs).type, Reply::Type::kNil);
  r = t->Call(0, {"ERR"}, kLongUs);
  EXPECT_EQ(r.type, Reply::Type::kError);
  EXPECT_EQ(r.str, "ERR boom");
  r = t->Call(0, {"ARR"}, kLongUs);
  ASSERT_EQ(r.type, Reply::Type::kArray);
  ASSERT_EQ(r.elements.size(), 3u);
  EXPECT_TRUE(r.elements[0].is_integer(1));
  EXPECT_EQ(r.elements[1].str, "a");
  ASSERT_EQ(r.elements[2].elements.size(), 1u);
  EXPECT_TRUE(r.elements[2].elements[0].is_ok_status());
  EXPECT_EQ(server.received().substr(0, 39),
            std::string("*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$7\r\na b\r\n\0z\r\n", 39));
  EXPECT_EQ(server.connections(), 1);
}

TEST(TransportTest, TimeoutIsUnknownAndTheLateReplyIsNeverTakenForTheNext) {
  ScriptedServer server;
  auto t = NewRedisTransport({server.address()});
  ASSERT_EQ(t->Call(0, {"PING"}, kLongUs).str, "PONG");
  const int64_t start = NowMs();
  Reply r = t->Call(0, {"SLEEP", "300", "late"}, 50000);
  const int64_t took = NowMs() - start;
  EXPECT_EQ(r.type, Reply::Type::kTimeout) << r.ToString();
  EXPECT_TRUE(r.unknown());
  EXPECT_NE(r.str.find("within 50 ms"), std::string::npos) << r.str;
  EXPECT_GE(took, 49);
  EXPECT_LT(took, 290);  // not the server's 300 ms
  r = t->Call(0, {"ECHO", "now"}, kLongUs);
  EXPECT_EQ(r.str, "now");  // the late reply went with the dropped connection
  EXPECT_EQ(server.connections(), 2);
}

TEST(TransportTest, EachCallGetsItsOwnDeadline) {
  ScriptedServer server;
  auto t = NewRedisTransport({server.address()});
  for (int i = 0; i < 2; ++i) {  // connects, then a call with a long receive timeout
    ASSERT_EQ(t->Call(0, {"PING"}, kLongUs).str, "PONG");
  }
  int64_t start = NowMs();
  EXPECT_EQ(t->Call(0, {"NOREPLY"}, 30000).type, Reply::Type::kTimeout);
  EXPECT_LT(NowMs() - start, 1000);
  for (int i = 0; i < 2; ++i) {  // reconnects, then a long timeout that runs out
    ASSERT_EQ(t->Call(0, {"PING"}, kLongUs).str, "PONG");
  }
  start = NowMs();
  EXPECT_EQ(t->Call(0, {"NOREPLY"}, 700000).type, Reply::Type::kTimeout);
  const int64_t took = NowMs() - start;
  EXPECT_GE(took, 699);
  EXPECT_LT(took, 790);          // the last stretch is polled: no timer-wheel lateness
  for (int i = 0; i < 2; ++i) {  // reconnects, then a call with a short one...
    ASSERT_EQ(t->Call(0, {"PING"}, 30000).str, "PONG");
  }
  start = NowMs();
  Reply r = t->Call(0, {"SLEEP", "200", "slow"}, kLongUs);  // ...does not cut a longer wait
  EXPECT_EQ(r.str, "slow") << r.ToString();
  EXPECT_GE(NowMs() - start, 199);
}

TEST(TransportTest, ClosedConnectionIsAnIoErrorAndTheNextCallReconnects) {
  ScriptedServer server;
  auto t = NewRedisTransport({server.address()});
  Reply r = t->Call(0, {"CLOSE"}, kLongUs);
  EXPECT_EQ(r.type, Reply::Type::kIoError) << r.ToString();
  EXPECT_TRUE(r.unknown());
  EXPECT_EQ(t->Call(0, {"PING"}, kLongUs).str, "PONG");
  EXPECT_EQ(server.connections(), 2);
}

TEST(TransportTest, RefusedConnectionIsAnIoError) {
  int port = 0;
  {
    ScriptedServer gone;
    port = gone.address().port;
  }
  auto t = NewRedisTransport({{"127.0.0.1", port}});
  Reply r = t->Call(0, {"PING"}, kLongUs);
  EXPECT_EQ(r.type, Reply::Type::kIoError) << r.ToString();
  r = t->CallMany({0}, {"PING"}, kLongUs)[0];
  EXPECT_EQ(r.type, Reply::Type::kIoError) << r.ToString();
}

TEST(TransportTest, SplitAndLargeRepliesAreReassembled) {
  ScriptedServer server;
  auto t = NewRedisTransport({server.address()});
  EXPECT_EQ(t->Call(0, {"SPLIT", "hello"}, kLongUs).str, "hello");
  Reply r = t->Call(0, {"BIG", "100000"}, kLongUs);
  EXPECT_EQ(r.str, std::string(100000, 'x'));
  EXPECT_EQ(t->CallMany({0}, {"BIG", "70000"}, kLongUs)[0].str.size(), 70000u);
  EXPECT_EQ(t->Call(0, {"ECHO", std::string(50000, 'y')}, kLongUs).str, std::string(50000, 'y'));
}

TEST(TransportTest, CallManyOverlapsTheRoundTrips) {
  ScriptedServer a(200), b(200);
  auto t = NewRedisTransport({a.address(), b.address()});
  ASSERT_EQ(t->CallMany({0, 1}, {"PING"}, kLongUs).size(), 2u);  // connected
  const int64_t start = NowMs();
  std::vector<Reply> rs = t->CallMany({0, 1}, {"ECHO", "x"}, kLongUs);
  EXPECT_LT(NowMs() - start, 390);
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[0].str, "x");
  EXPECT_EQ(rs[1].str, "x");
  rs = t->CallMany({1, 0}, {"NOREPLY"}, 50000);
  EXPECT_EQ(rs[0].type, Reply::Type::kTimeout);
  EXPECT_EQ(rs[1].type, Reply::Type::kTimeout);
}

TEST(TransportTest, RepliesNotAwaitedAreDroppedBeforeTheNextOnBothPaths) {
  ScriptedServer fast, slow(150);
  auto t = NewRedisTransport({fast.address(), slow.address()});
  const auto first_answered = [](const std::vector<const Reply*>& rs) { return rs[0] != nullptr; };
  ASSERT_EQ(t->CallMany({0, 1}, {"PING"}, kLongUs)[1].str, "PONG");  // connected
  std::vector<Reply> rs = t->CallManyUntil({0, 1}, {"ECHO", "one"}, kLongUs, first_answered);
  EXPECT_EQ(rs[0].str, "one");
  EXPECT_EQ(rs[1].type, Reply::Type::kTimeout);
  EXPECT_EQ(rs[1].str, "not awaited");
  EXPECT_EQ(t->Call(1, {"ECHO", "two"}, kLongUs).str, "two");  // the fast path drops "one"
  rs = t->CallManyUntil({0, 1}, {"ECHO", "three"}, kLongUs, first_answered);
  EXPECT_EQ(rs[1].str, "not awaited");
  EXPECT_EQ(t->CallMany({1}, {"ECHO", "four"}, kLongUs)[0].str, "four");  // and the fan-out
  EXPECT_EQ(slow.connections(), 1);
}

}  // namespace
}  // namespace lockstorm
