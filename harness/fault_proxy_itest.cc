// Integration tests of FaultProxy against a real redis-server: every mode, latency, resets.
// Waits are bounded and event-driven (replies, proxy counters via WaitForStats); the only
// "nothing happens" checks (a blackholed socket stays silent and open) use a short bounded poll.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "harness/fault_proxy.h"
#include "tests/test_util.h"

namespace lockstorm {
namespace {

using testing::TestServers;

constexpr int64_t kShortTimeoutUs = 300 * 1000;  // a call expected to time out
constexpr int64_t kLongTimeoutUs = 5 * 1000 * 1000;
constexpr int64_t kWaitMs = 5000;

int64_t MonoUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A plain blocking TCP socket to a loopback port, with deadline-bounded reads.
class RawConn {
 public:
  explicit RawConn(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(static_cast<uint16_t>(port));
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  }
  ~RawConn() {
    if (fd_ >= 0) close(fd_);
  }
  bool connected() const { return connected_; }
  int fd() const { return fd_; }

  bool Send(const std::string& s) {
    size_t off = 0;
    for (int i = 0; i < 1000 && off < s.size(); ++i) {
      ssize_t n = send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return off == s.size();
  }

  // Reads until `want` bytes arrived, EOF/error, or timeout_ms. Returns what was read.
  std::string Read(size_t want, int64_t timeout_ms) {
    std::string out;
    const int64_t deadline_us = MonoUs() + timeout_ms * 1000;
    for (int i = 0; i < 100000 && out.size() < want; ++i) {
      const int64_t left_us = deadline_us - MonoUs();
      if (left_us <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>((left_us + 999) / 1000)) <= 0) continue;
      char buf[4096];
      ssize_t n = recv(fd_, buf, std::min(sizeof buf, want - out.size()), 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

  // True if within `window_ms` nothing arrives and the socket is neither closed nor reset.
  bool StaysSilentAndOpen(int window_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, window_ms) != 0) return false;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    char c;
    ssize_t n = recv(fd_, &c, 1, MSG_DONTWAIT | MSG_PEEK);
    return err == 0 && n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::string Resp(const std::vector<std::string>& args) {
  std::string s = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) s += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return s;
}

class FaultProxyITest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(servers_.status.ok()) << servers_.status.ToString();
    server_ = servers_.set.addresses()[0];
    ASSERT_TRUE(FaultProxy::Start(server_, &proxy_).ok());
    direct_ = NewRedisTransport({server_});
    via_ = NewRedisTransport({proxy_->address()});
  }

  Reply Direct(const Command& cmd) { return direct_->Call(0, cmd, kLongTimeoutUs); }
  Reply Via(const Command& cmd, int64_t timeout_us = kLongTimeoutUs) {
    return via_->Call(0, cmd, timeout_us);
  }
  bool WaitFor(const std::function<bool(const LinkStats&)>& pred) {
    return proxy_->WaitForStats(pred, kWaitMs);
  }
  static int R(Direction d) { return static_cast<int>(d); }

  TestServers servers_{1};
  ServerAddress server_;
  std::unique_ptr<FaultProxy> proxy_;
  std::unique_ptr<Transport> direct_;
  std::unique_ptr<Transport> via_;
};

TEST_F(FaultProxyITest, PassForwardsPingSetGet) {
  EXPECT_NE(proxy_->address().port, server_.port);
  Reply r = Via({"PING"});
  EXPECT_EQ(r.type, Reply::Type::kStatus) << r.ToString();
  EXPECT_EQ(r.str, "PONG");
  EXPECT_TRUE(Via({"SET", "k", "v1", "NX", "PX", "60000"}).is_ok_status());
  r = Via({"GET", "k"});
  EXPECT_EQ(r.type, Reply::Type::kString) << r.ToString();
  EXPECT_EQ(r.str, "v1");
  EXPECT_EQ(Direct({"GET", "k"}).str, "v1");
  // The proxy counts a chunk after writing it, so the client may read the third reply before
  // the count moves: await the counts rather than sampling them once.
  EXPECT_TRUE(WaitFor([](const LinkStats& s) {
    return s.forwarded_chunks[R(Direction::kRequests)] >= 3 &&
           s.forwarded_chunks[R(Direction::kReplies)] >= 3;
  }));
  LinkStats st = proxy_->Stats();
  EXPECT_EQ(st.accepted_connections, 1);
  EXPECT_EQ(st.open_connections, 1);
  EXPECT_EQ(st.dropped_bytes[0] + st.dropped_bytes[1], 0);
}

TEST_F(FaultProxyITest, ClientCloseTearsDownBothSides) {
  ASSERT_EQ(Via({"PING"}).str, "PONG");
  via_.reset();  // closes the client socket: FIN -> server, server closes -> FIN back
  EXPECT_TRUE(WaitFor([](const LinkStats& s) { return s.open_connections == 0; }));
}

TEST_F(FaultProxyITest, DropRepliesIsTheGhostLock) {
  ASSERT_EQ(Via({"PING"}).str, "PONG");
  ASSERT_TRUE(proxy_->SetMode(LinkMode::kDropReplies).ok());
  Reply r = Via({"SET", "ghost", "me", "NX", "PX", "60000"}, kShortTimeoutUs);
  EXPECT_EQ(r.type, Reply::Type::kTimeout) << r.ToString();
  // The server answered (so it ran the command) and the proxy dropped the answer.
  ASSERT_TRUE(WaitFor([](const LinkStats& s) { return s.dropped_chunks[1] >= 1; }));
  r = Direct({"GET", "ghost"});
  EXPECT_EQ(r.type, Reply::Type::kString) << "the request must have been applied: " << r.ToString();
  EXPECT_EQ(r.str, "me");
  ASSERT_TRUE(proxy_->SetMode(LinkMode::kPass).ok());
  r = Via({"PING"});  // the transport reconnects after the timeout
  EXPECT_EQ(r.str, "PONG") << r.ToString();
}

TEST_F(FaultProxyITest, DropRequestsNeverApplies) {
  ASSERT_TRUE(proxy_->SetMode(LinkMode::kDropRequests).ok());
  Reply r = Via({"SET", "dropped", "me", "NX", "PX", "60000"}, kShortTimeoutUs);
  EXPECT_EQ(r.type, Reply::Type::kTimeout) << r.ToString();
  ASSERT_TRUE(WaitFor([](const LinkStats& s) { return s.dropped_chunks[0] >= 1; }));
  EXPECT_EQ(proxy_->Stats().forwarded_bytes[R(Direction::kRequests)], 0);
  EXPECT_EQ(Direct({"GET", "dropped"}).type, Reply::Type::kNil);
  ASSERT_TRUE(proxy_->SetMode(LinkMode::kPass).ok());
  EXPECT_EQ(Via({"PING"}).str, "PONG");
  EXPECT_EQ(Direct({"GET", "dropped"}).type, Reply::Type::kNil);  // discarded, not held
}

TEST_F(FaultProxyITest, BlackholeHangsWithoutResetAndHeals) {
  ASSERT_EQ(Via({"PING"}).str, "PONG");
  ASSERT_TRUE(proxy_->SetMode(LinkMode::kBlackhole).ok());
  Reply r = Via({"SET", "bh", "me", "NX", "PX", "60000"}, kShortTimeoutUs);
  EXPECT_EQ(r.type, Reply::Type::kTimeout) << r.ToString();
  ASSERT_TRUE(WaitFor([](const LinkStats& s) { return s.dropped_chunks[0] >= 1; }));
  EXPECT_EQ(Direct({"GET", "bh"}).type, Reply::Type::kNil);

  // A connection made during the partition is accepted and then hangs: no data, no RST, no FIN.
  RawConn raw(proxy_->address().port);
  ASSERT_TRUE(raw.connected());
  const int64_t dropped_before = proxy_->Stats().dropped_chunks[0];
  ASSERT_TRUE(raw.Send(Resp({"PING"})));
  ASSERT_TRUE(WaitFor([&](const LinkStats& s) { return s.dropped_chunks[0] > dropped_before; }));
  EXPECT_TRUE(raw.StaysSilentAndOpen(200));
  EXPECT_EQ(proxy_->Stats().reset_connections, 0);

  ASSERT_TRUE(proxy_->SetMode(LinkMode::kPass).ok());
  // The same raw connection works after the heal (its first PING was lost, not delayed).
  ASSERT_TRUE(raw.Send(Resp({"PING"})));
  EXPECT_EQ(raw.Read(7, kWaitMs), "+PONG\r\n");
  r = Via({"PING"});
  EXPECT_EQ(r.str, "PONG") << r.ToString();
  EXPECT_EQ(Direct({"GET", "bh"}).type, Reply::Type::kNil);
}

TEST_F(FaultProxyITest, ConnectionsOpenedDuringBlackholeNeverReachTheServer) {
  ASSERT_TRUE(proxy_->SetMode(LinkMode::kBlackhole).ok());
  for (int i = 0; i < 3; ++i) {  // each timeout closes the connection; the next call reconnects
    EXPECT_EQ(Via({"PING"}, kShortTimeoutUs).type, Reply::Type::kTimeout);
  }
  // The kernel completes a connect before the proxy accepts it: await the count.
  EXPECT_TRUE(WaitFor([](const LinkStats& s) { return s.accepted_connections == 3; }));
  // Nothing was ever sent upstream, so each closed client connection is freed at once.
  EXPECT_TRUE(WaitFor([](const LinkStats& s) { return s.open_connections == 0; }));
  EXPECT_EQ(proxy_->Stats().forwarded_bytes[R(Direction::kRequests)], 0);
}

TEST_F(FaultProxyITest, ReconnectsDuringDropRepliesDoNotLeakConnections) {
  ASSERT_TRUE(proxy_->SetMode(LinkMode::kDropReplies).ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Via({"PING"}, kShortTimeoutUs).type, Reply::Type::kTimeout);
  }
  // Client FIN passes, the server closes too; its FIN (in the dropped direction) goes to a side
  // that already closed, so the proxy frees the connection instead of holding it.
  EXPECT_TRUE(WaitFor([](const LinkStats& s) { return s.open_connections == 0; }));
  EXPECT_EQ(proxy_->Stats().forwarded_chunks[R(Direction::kRequests)], 3);
}

TEST_F(FaultProxyITest, StallHoldsBytesAndDeliversThemLate) {
  RawConn raw(proxy_->address().port);
  ASSERT_TRUE(raw.connected());
  ASSERT_TRUE(raw.Send(Resp({"PING"})));
  ASSERT_EQ(raw.Read(7, kWaitMs), "+PONG\r\n");
  ASSERT_TRUE(proxy_->SetMode(LinkMode::kStall).ok());
  const int64_t forwarded_before = proxy_->Stats().forwarded_bytes[0];
  ASSERT_TRUE(raw.Send(Resp({"SET", "late", "me", "NX", "PX", "60000"})));
  EXPECT_TRUE(raw.StaysSilentAndOpen(150));
  EXPECT_EQ(proxy_->Stats().forwarded_bytes[0], forwarded_before);  // held, not sent
  EXPECT_EQ(Direct({"GET", "late"}).type, Reply::Type::kNil);
  ASSERT_TRUE(proxy_->SetMode(LinkMode::kPass).ok());
  EXPECT_EQ(raw.Read(5, kWaitMs), "+OK\r\n");  // the held request ran after the heal
  EXPECT_EQ(Direct({"GET", "late"}).str, "me");
  EXPECT_EQ(proxy_->Stats().dropped_bytes[0], 0);
}

TEST_F(FaultProxyITest, ReplyLatencyIsALowerBoundOnRoundTrip) {
  ASSERT_EQ(Via({"PING"}).str, "PONG");  // connect first: measure one round trip
  ASSERT_TRUE(proxy_->SetLatency(Direction::kReplies, 30000, 0).ok());
  const int64_t start_us = MonoUs();
  Reply r = Via({"PING"});
  const int64_t elapsed_us = MonoUs() - start_us;
  EXPECT_EQ(r.str, "PONG") << r.ToString();
  EXPECT_GE(elapsed_us, 30000);  // a lower bound set by the mechanism, not a timing guess
  ASSERT_TRUE(proxy_->SetLatency(Direction::kReplies, 0, 0).ok());
  EXPECT_EQ(Via({"PING"}).str, "PONG");
}

TEST_F(FaultProxyITest, JitterPreservesOrderWithinAConnection) {
  ASSERT_TRUE(proxy_->SetLatency(Direction::kRequests, 3000, 3000).ok());
  ASSERT_TRUE(proxy_->SetLatency(Direction::kReplies, 3000, 3000).ok());
  RawConn raw(proxy_->address().port);
  ASSERT_TRUE(raw.connected());
  std::string expected;
  constexpr int kCommands = 100;
  for (int i = 0; i < kCommands; ++i) {  // one send per command: many chunks each way
    if (i == kCommands / 2) {
      // A descheduled proxy can read every send so far as ONE chunk: await the first forwarded
      // chunk so that the second half is read as at least one more (forwarded_chunks >= 2).
      ASSERT_TRUE(WaitFor([](const LinkStats& s) { return s.forwarded_chunks[0] >= 1; }));
    }
    const std::string v = "v" + std::to_string(i);
    ASSERT_TRUE(raw.Send(Resp({"ECHO", v})));
    expected += "$" + std::to_string(v.size()) + "\r\n" + v + "\r\n";
  }
  EXPECT_EQ(raw.Read(expected.size(), 10000), expected);
  EXPECT_GE(proxy_->Stats().forwarded_chunks[0], 2);  // more than one chunk was delayed
}

TEST_F(FaultProxyITest, RefuseFailsNewConnectionsFastKeepsExistingOnes) {
  ASSERT_EQ(Via({"PING"}).str, "PONG");
  ASSERT_TRUE(proxy_->SetMode(LinkMode::kRefuse).ok());
  auto fresh = NewRedisTransport({proxy_->address()});
  Reply r = fresh->Call(0, {"PING"}, kLongTimeoutUs);
  EXPECT_EQ(r.type, Reply::Type::kIoError) << r.ToString();
  EXPECT_NE(r.str.find("refused"), std::string::npos) << r.str;
  EXPECT_EQ(Via({"PING"}).str, "PONG");  // the existing connection still passes
  ASSERT_TRUE(proxy_->SetMode(LinkMode::kPass).ok());
  r = fresh->Call(0, {"PING"}, kLongTimeoutUs);
  EXPECT_EQ(r.str, "PONG") << r.ToString();
}

TEST_F(FaultProxyITest, ResetConnectionsResetsThenReconnects) {
  ASSERT_EQ(Via({"PING"}).str, "PONG");
  ASSERT_TRUE(proxy_->ResetConnections().ok());
  EXPECT_EQ(proxy_->Stats().reset_connections, 1);
  Reply r = Via({"PING"});
  EXPECT_EQ(r.type, Reply::Type::kIoError) << r.ToString();
  r = Via({"PING"});
  EXPECT_EQ(r.str, "PONG") << r.ToString();
  EXPECT_EQ(proxy_->Stats().accepted_connections, 2);
}

TEST_F(FaultProxyITest, SharedLoopServesIndependentLinks) {
  std::shared_ptr<ProxyLoop> loop;
  ASSERT_TRUE(ProxyLoop::Start(&loop).ok());
  constexpr int kLinks = 6;
  std::vector<std::unique_ptr<FaultProxy>> links(kLinks);
  std::vector<ServerAddress> addrs;
  for (int i = 0; i < kLinks; ++i) {
    FaultProxyOptions o;
    o.seed = static_cast<uint64_t>(i);
    ASSERT_TRUE(FaultProxy::Start(server_, o, loop, &links[static_cast<size_t>(i)]).ok());
    addrs.push_back(links[static_cast<size_t>(i)]->address());
  }
  loop.reset();  // the links keep it alive
  ASSERT_TRUE(links[2]->SetMode(LinkMode::kBlackhole).ok());
  auto t = NewRedisTransport(addrs);
  std::vector<int> nodes;
  for (int i = 0; i < kLinks; ++i) nodes.push_back(i);
  // Long timeout: the healthy links must answer within it even on a loaded machine (a short
  // one would fail them too); the blackholed link times out either way.
  std::vector<Reply> rs = t->CallMany(nodes, {"PING"}, kLongTimeoutUs);
  for (int i = 0; i < kLinks; ++i) {
    if (i == 2) {
      EXPECT_EQ(rs[2].type, Reply::Type::kTimeout) << rs[2].ToString();
    } else {
      EXPECT_EQ(rs[static_cast<size_t>(i)].str, "PONG")
          << i << ": " << rs[static_cast<size_t>(i)].ToString();
    }
  }
  links[4].reset();  // stopping one link leaves the others running
  rs = t->CallMany({0, 4}, {"PING"}, kLongTimeoutUs);
  EXPECT_EQ(rs[0].str, "PONG") << rs[0].ToString();
  EXPECT_TRUE(rs[1].unknown()) << rs[1].ToString();
}

TEST_F(FaultProxyITest, UpstreamDownResetsTheClient) {
  servers_.set.server(0)->Kill();
  Reply r = Via({"PING"});
  EXPECT_EQ(r.type, Reply::Type::kIoError) << r.ToString();
  EXPECT_TRUE(WaitFor([](const LinkStats& s) { return s.upstream_failures == 1; }));
}

TEST_F(FaultProxyITest, SetUpstreamResetsConnectionsAndRedirectsToTheNewServer) {
  TestServers other(1);
  ASSERT_TRUE(other.status.ok()) << other.status.ToString();
  const ServerAddress b = other.set.addresses()[0];
  auto direct_b = NewRedisTransport({b});
  ASSERT_TRUE(direct_b->Call(0, {"SET", "k", "on-b"}, kLongTimeoutUs).is_ok_status());
  ASSERT_TRUE(Via({"SET", "k", "on-a"}).is_ok_status());
  ASSERT_EQ(Via({"GET", "k"}).str, "on-a");
  // An idle connection that never reached upstream: it must be reset too, not sent to B.
  RawConn idle(proxy_->address().port);
  ASSERT_TRUE(idle.connected());
  ASSERT_TRUE(WaitFor([](const LinkStats& s) { return s.accepted_connections == 2; }));

  // Not loopback: rejected, nothing changes.
  Status s = proxy_->SetUpstream({"10.1.2.3", 6379});
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << s.ToString();
  EXPECT_EQ(proxy_->upstream().port, server_.port);
  EXPECT_EQ(proxy_->Stats().reset_connections, 0);

  ASSERT_TRUE(proxy_->SetUpstream(b).ok());
  EXPECT_EQ(proxy_->upstream().port, b.port);
  EXPECT_EQ(proxy_->Stats().reset_connections, 2);
  EXPECT_EQ(idle.Read(1, kWaitMs), "");  // RST (or EOF), not a hang: Read is bounded anyway
  // The old connection was reset: the next call fails (unknown outcome) or, if the transport
  // noticed the reset first, reconnects; either way a later call reaches B.
  Reply r = Via({"GET", "k"});
  if (r.unknown()) r = Via({"GET", "k"});
  EXPECT_EQ(r.type, Reply::Type::kString) << r.ToString();
  EXPECT_EQ(r.str, "on-b");
  EXPECT_TRUE(Via({"SET", "k2", "via-proxy"}).is_ok_status());
  EXPECT_EQ(direct_b->Call(0, {"GET", "k2"}, kLongTimeoutUs).str, "via-proxy");
  EXPECT_EQ(Direct({"GET", "k2"}).type, Reply::Type::kNil);  // A never saw it
  EXPECT_EQ(Direct({"GET", "k"}).str, "on-a");
}

TEST_F(FaultProxyITest, UpstreamIsSafeToReadDuringSetUpstream) {
  TestServers other(1);
  ASSERT_TRUE(other.status.ok()) << other.status.ToString();
  const ServerAddress b = other.set.addresses()[0];
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    while (!done.load()) {
      const int port = proxy_->upstream().port;
      if (port != server_.port && port != b.port) bad.fetch_add(1);
    }
  });
  for (int i = 0; i < 20; ++i) {
    Status s = proxy_->SetUpstream(i % 2 == 0 ? b : server_);
    EXPECT_TRUE(s.ok()) << s.ToString();  // not ASSERT: the reader thread must be joined
    if (!s.ok()) break;
  }
  done.store(true);
  reader.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(proxy_->upstream().port, server_.port);
  EXPECT_EQ(Via({"PING"}).str, "PONG");
}

}  // namespace
}  // namespace lockstorm
