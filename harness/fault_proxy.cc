// FaultProxy: one epoll thread (ProxyLoop) serves any number of links. Everything below the
// "loop thread only" line runs on that thread; other threads talk to it through the command
// queue (RunInLoop) and read/write the atomics in FaultProxy::Shared.
//
// A proxied connection (Conn) has two sides (0 = client, 1 = server) and two directions
// (0 = requests: read from side 0, delivered to side 1; 1 = replies: read from side 1, delivered
// to side 0), so direction d reads from side d and writes to side 1 - d. Each direction has a
// DelayLine; a min-heap of (due time, conn, direction) plus a timerfd wakes the loop when the
// front of a line falls due. Data read while no latency is configured and nothing is queued is
// written straight through (the fast path that the overhead benchmark measures).
#include "harness/fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <queue>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "harness/redis_server.h"

namespace lockstorm {

const char* LinkModeName(LinkMode m) {
  switch (m) {
    case LinkMode::kPass:
      return "pass";
    case LinkMode::kBlackhole:
      return "blackhole";
    case LinkMode::kDropReplies:
      return "drop-replies";
    case LinkMode::kDropRequests:
      return "drop-requests";
    case LinkMode::kStall:
      return "stall";
    case LinkMode::kRefuse:
      return "refuse";
  }
  return "?";
}

bool ParseLinkMode(const std::string& s, LinkMode* out) {
  for (LinkMode m : {LinkMode::kPass, LinkMode::kBlackhole, LinkMode::kDropReplies,
                     LinkMode::kDropRequests, LinkMode::kStall, LinkMode::kRefuse}) {
    if (s == LinkModeName(m)) {
      *out = m;
      return true;
    }
  }
  return false;
}

const char* DirectionName(Direction d) {
  return d == Direction::kRequests ? "requests" : "replies";
}

// ---------------------------------------------------------------------------------------------
// DelayLine

int64_t DelayLine::Push(DelayedChunk c, int64_t now_us, int64_t latency_us, int64_t jitter_us,
                        std::mt19937_64* rng) {
  int64_t delay_us = latency_us;
  if (jitter_us > 0 && rng != nullptr) {
    delay_us += std::uniform_int_distribution<int64_t>(-jitter_us, jitter_us)(*rng);
  }
  int64_t due_us = now_us + std::max<int64_t>(0, delay_us);
  if (!items_.empty() || last_due_us_ > due_us) due_us = std::max(due_us, last_due_us_);
  last_due_us_ = due_us;
  c.due_us = due_us;
  bytes_ += static_cast<int64_t>(c.bytes.size() - c.offset);
  items_.push_back(std::move(c));
  return due_us;
}

void DelayLine::ConsumeFront(size_t n) {
  DelayedChunk& f = items_.front();
  n = std::min(n, f.bytes.size() - f.offset);
  f.offset += n;
  bytes_ -= static_cast<int64_t>(n);
}

void DelayLine::Pop() {
  const DelayedChunk& f = items_.front();
  bytes_ -= static_cast<int64_t>(f.bytes.size() - f.offset);
  items_.pop_front();
}

std::pair<int64_t, int64_t> DelayLine::Clear() {
  int64_t chunks = 0;
  for (const auto& c : items_) chunks += c.kind == DelayedChunk::Kind::kData ? 1 : 0;
  std::pair<int64_t, int64_t> r{bytes_, chunks};
  items_.clear();
  bytes_ = 0;
  return r;
}

// ---------------------------------------------------------------------------------------------
// Shared state (any thread)

struct FaultProxy::Shared {
  std::atomic<int> mode{static_cast<int>(LinkMode::kPass)};
  std::atomic<int64_t> latency_us[2] = {0, 0};
  std::atomic<int64_t> jitter_us[2] = {0, 0};

  std::atomic<int64_t> forwarded_bytes[2] = {0, 0};
  std::atomic<int64_t> forwarded_chunks[2] = {0, 0};
  std::atomic<int64_t> dropped_bytes[2] = {0, 0};
  std::atomic<int64_t> dropped_chunks[2] = {0, 0};
  std::atomic<int64_t> accepted_connections{0};
  std::atomic<int64_t> refused_connections{0};
  std::atomic<int64_t> reset_connections{0};
  std::atomic<int64_t> upstream_failures{0};
  std::atomic<int64_t> open_connections{0};

  // WaitForStats: waiters is read after every counter change (both seq_cst), so a waiter that
  // registered before a change is always woken, and one that registered after sees the change.
  mutable std::mutex mu;
  mutable std::condition_variable cv;
  mutable std::atomic<int> waiters{0};

  void Changed() {
    if (waiters.load() > 0) {
      { std::lock_guard<std::mutex> l(mu); }
      cv.notify_all();
    }
  }
  void Add(std::atomic<int64_t>& counter, int64_t v) {
    counter.fetch_add(v);
    Changed();
  }
  void Forwarded(int d, int64_t bytes) {
    forwarded_bytes[d].fetch_add(bytes);
    forwarded_chunks[d].fetch_add(1);
    Changed();
  }
  void Dropped(int d, int64_t bytes, int64_t chunks) {
    if (bytes == 0 && chunks == 0) return;
    dropped_bytes[d].fetch_add(bytes);
    dropped_chunks[d].fetch_add(chunks);
    Changed();
  }
  LinkMode Mode() const { return static_cast<LinkMode>(mode.load(std::memory_order_relaxed)); }
};

// ---------------------------------------------------------------------------------------------
// ProxyLoop::Impl

namespace {

int64_t MonoUs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

// Closes with an RST (SO_LINGER 0).
void AbortFd(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

bool Drops(LinkMode m, int d) {
  switch (m) {
    case LinkMode::kBlackhole:
      return true;
    case LinkMode::kDropReplies:
      return d == static_cast<int>(Direction::kReplies);
    case LinkMode::kDropRequests:
      return d == static_cast<int>(Direction::kRequests);
    default:
      return false;
  }
}

constexpr int kClient = 0;
constexpr int kServer = 1;
constexpr size_t kReadChunkBytes = 64 * 1024;
constexpr int kMaxReadsPerEvent = 16;
constexpr int kMaxItemsPerPump = 256;
constexpr int kMaxAcceptsPerEvent = 64;
constexpr int kMaxTimersPerRound = 4096;
constexpr int kMaxCommandsPerRound = 256;
constexpr size_t kMaxQueuedCommands = 4096;
constexpr int kEpollWaitCapMs = 100;

}  // namespace

class ProxyLoop::Impl {
 public:
  struct Link;
  struct Conn;
  struct Handler {
    enum class Kind { kWake, kTimer, kListener, kSide } kind;
    uint64_t link_id = 0;  // kListener: looked up, as the link may be gone by the time it fires
    Conn* conn = nullptr;  // kSide: dead conns stay allocated until the end of the round
    int side = 0;
  };
  struct Link {
    ~Link() {
      if (listen_fd >= 0) close(listen_fd);
    }
    uint64_t id = 0;
    int listen_fd = -1;
    bool listening = false;  // false while kRefuse (listener shut down)
    sockaddr_in upstream{};
    FaultProxyOptions opts;
    std::shared_ptr<FaultProxy::Shared> sh;
    std::mt19937_64 rng;
    Handler h{Handler::Kind::kListener};
    std::unordered_set<uint64_t> conns;
  };
  struct Conn {
    uint64_t id = 0;
    Link* link = nullptr;
    int fd[2] = {-1, -1};
    Handler h[2] = {{Handler::Kind::kSide}, {Handler::Kind::kSide}};
    uint32_t interest[2] = {0, 0};
    bool in_epoll[2] = {false, false};
    enum class Up { kNone, kConnecting, kConnected } up = Up::kNone;
    bool read_done[2] = {false, false};   // EOF or error read from side s
    bool gone[2] = {false, false};        // side s closed (error seen or RST delivered)
    bool ended[2] = {false, false};       // direction d's FIN/RST processed
    bool want_write[2] = {false, false};  // side s returned EAGAIN
    DelayLine line[2];
    int64_t armed_due_us[2] = {-1, -1};
    bool dead = false;
  };
  struct Completion {
    std::mutex mu;
    std::condition_variable cv;
    bool finished = false;
    Status status;
  };
  struct Command {
    std::function<Status()> fn;
    std::shared_ptr<Completion> done;
  };

  ~Impl() { StopAndJoin(); }

  Status Init() {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (epoll_fd_ < 0 || wake_fd_ < 0 || timer_fd_ < 0) {
      return Status::IoError(std::string("fault proxy: cannot create epoll/eventfd/timerfd: ") +
                             strerror(errno));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &wake_h_;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
    ev.data.ptr = &timer_h_;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, &ev);
    thread_ = std::thread([this] { Run(); });
    return Status::Ok();
  }

  void StopAndJoin() {
    stop_.store(true);
    if (wake_fd_ >= 0) Wake();
    if (thread_.joinable()) thread_.join();
    for (int* fd : {&epoll_fd_, &wake_fd_, &timer_fd_}) {
      if (*fd >= 0) close(*fd);
      *fd = -1;
    }
  }

  // Runs fn on the loop thread and waits at most timeout_ms for it.
  Status RunInLoop(std::function<Status()> fn, int64_t timeout_ms) {
    if (std::this_thread::get_id() == thread_.get_id()) return fn();
    auto done = std::make_shared<Completion>();
    {
      std::lock_guard<std::mutex> l(cmd_mu_);
      if (stop_.load() || exited_) return Status::Internal("fault proxy: loop stopped");
      if (commands_.size() >= kMaxQueuedCommands) {
        return Status::Internal("fault proxy: control queue full");
      }
      commands_.push_back({std::move(fn), done});
    }
    Wake();
    std::unique_lock<std::mutex> l(done->mu);
    if (!done->cv.wait_for(l, std::chrono::milliseconds(timeout_ms),
                           [&] { return done->finished; })) {
      return Status::Timeout("fault proxy: event loop did not answer within " +
                             std::to_string(timeout_ms) + " ms");
    }
    return done->status;
  }

  uint64_t NextLinkId() { return next_link_id_.fetch_add(1) + 1; }

  // ---- loop thread only ----------------------------------------------------------------------

  Status AddLink(std::unique_ptr<Link> link) {
    Link* l = link.get();
    l->h.link_id = l->id;
    links_[l->id] = std::move(link);
    l->listening = true;
    return Register(l->listen_fd, EPOLLIN, &l->h, false);
  }

  Status RemoveLink(uint64_t id) {
    auto it = links_.find(id);
    if (it == links_.end()) return Status::Ok();
    Link* l = it->second.get();
    ResetAll(l, false);
    if (l->listening) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, l->listen_fd, nullptr);
    links_.erase(it);  // ~Link closes the listener
    return Status::Ok();
  }

  Status ApplyMode(uint64_t id) {
    auto it = links_.find(id);
    if (it == links_.end()) return Status::Internal("fault proxy: link stopped");
    Link* l = it->second.get();
    LinkMode m = l->sh->Mode();
    if (m == LinkMode::kRefuse && l->listening) {
      epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, l->listen_fd, nullptr);
      shutdown(l->listen_fd, SHUT_RDWR);  // the socket stays bound: SYNs now get RST
      l->listening = false;
    } else if (m != LinkMode::kRefuse && !l->listening) {
      if (listen(l->listen_fd, 128) != 0) {
        return Status::IoError(std::string("fault proxy: cannot listen again: ") + strerror(errno));
      }
      l->listening = true;
      Status s = Register(l->listen_fd, EPOLLIN, &l->h, false);
      if (!s.ok()) return s;
    }
    // Release what the new mode lets through (held FINs, stalled bytes).
    std::vector<uint64_t> ids(l->conns.begin(), l->conns.end());
    for (uint64_t cid : ids) {
      auto it = conns_.find(cid);
      if (it == conns_.end()) continue;
      Conn* c = it->second.get();  // stays valid (graveyard) if Pump destroys it
      for (int d = 0; d < 2 && !c->dead; ++d) Pump(c, d);
    }
    return Status::Ok();
  }

  Status SetLinkUpstream(uint64_t id, const sockaddr_in& upstream) {
    auto it = links_.find(id);
    if (it == links_.end()) return Status::Internal("fault proxy: link stopped");
    it->second->upstream = upstream;  // read by StartUpstream, on this thread only
    ResetAll(it->second.get(), true);
    return Status::Ok();
  }

  Status ResetLink(uint64_t id) {
    auto it = links_.find(id);
    if (it == links_.end()) return Status::Internal("fault proxy: link stopped");
    ResetAll(it->second.get(), true);
    return Status::Ok();
  }

 private:
  void Wake() {
    uint64_t one = 1;
    ssize_t n = write(wake_fd_, &one, sizeof one);
    (void)n;
  }

  Status Register(int fd, uint32_t events, Handler* h, bool mod) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = h;
    if (epoll_ctl(epoll_fd_, mod ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0) {
      return Status::IoError(std::string("fault proxy: epoll_ctl: ") + strerror(errno));
    }
    return Status::Ok();
  }

  void Run() {
    std::vector<epoll_event> events(256);
    while (!stop_.load()) {
      ProcessTimers();
      int timeout_ms = kEpollWaitCapMs;
      if (!timers_.empty()) {
        int64_t top_us = timers_.top().due_us;
        if (top_us <= MonoUs()) {
          timeout_ms = 0;
        } else if (top_us != timer_set_us_) {
          itimerspec its{};
          its.it_value.tv_sec = top_us / 1000000;
          its.it_value.tv_nsec = (top_us % 1000000) * 1000;
          timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &its, nullptr);
          timer_set_us_ = top_us;
        }
      }
      int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout_ms);
      for (int i = 0; i < n; ++i) {
        auto* h = static_cast<Handler*>(events[i].data.ptr);
        switch (h->kind) {
          case Handler::Kind::kWake: {
            uint64_t v;
            ssize_t r = read(wake_fd_, &v, sizeof v);
            (void)r;
            RunCommands();
            break;
          }
          case Handler::Kind::kTimer: {
            uint64_t v;
            ssize_t r = read(timer_fd_, &v, sizeof v);
            (void)r;
            timer_set_us_ = -1;
            break;
          }
          case Handler::Kind::kListener: {
            auto it = links_.find(h->link_id);
            if (it != links_.end() && it->second->listening) OnAccept(it->second.get());
            break;
          }
          case Handler::Kind::kSide:
            if (!h->conn->dead) OnSideEvent(h->conn, h->side, events[i].events);
            break;
        }
      }
      graveyard_.clear();  // conns destroyed during this round: no handler points at them now
    }
    // Shutting down: fail pending commands, reset everything still open.
    std::deque<Command> pending;
    {
      std::lock_guard<std::mutex> l(cmd_mu_);
      exited_ = true;
      pending.swap(commands_);
    }
    for (auto& c : pending) Finish(c, Status::Internal("fault proxy: loop stopped"));
    std::vector<uint64_t> ids;
    for (auto& [id, l] : links_) ids.push_back(id);
    for (uint64_t id : ids) RemoveLink(id);
    graveyard_.clear();
  }

  static void Finish(Command& c, Status s) {
    std::lock_guard<std::mutex> l(c.done->mu);
    c.done->status = std::move(s);
    c.done->finished = true;
    c.done->cv.notify_all();
  }

  void RunCommands() {
    for (int i = 0; i < kMaxCommandsPerRound; ++i) {
      Command c;
      {
        std::lock_guard<std::mutex> l(cmd_mu_);
        if (commands_.empty()) return;
        c = std::move(commands_.front());
        commands_.pop_front();
      }
      Finish(c, c.fn());
    }
    Wake();  // more left: come back after serving sockets
  }

  struct Timer {
    int64_t due_us;
    uint64_t conn_id;
    int d;
    bool operator>(const Timer& o) const { return due_us > o.due_us; }
  };

  void ProcessTimers() {
    int64_t now_us = MonoUs();
    for (int i = 0; i < kMaxTimersPerRound && !timers_.empty(); ++i) {
      Timer t = timers_.top();
      if (t.due_us > now_us) break;
      timers_.pop();
      auto it = conns_.find(t.conn_id);
      if (it == conns_.end() || it->second->dead) continue;
      Conn* c = it->second.get();
      if (c->armed_due_us[t.d] != t.due_us) continue;  // stale
      c->armed_due_us[t.d] = -1;
      Pump(c, t.d);
    }
  }

  void OnAccept(Link* l) {
    for (int i = 0; i < kMaxAcceptsPerEvent; ++i) {
      int fd = accept4(l->listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a transient error: the next event retries
      if (static_cast<int>(l->conns.size()) >= l->opts.max_connections) {
        AbortFd(fd);
        l->sh->Add(l->sh->refused_connections, 1);
        continue;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto conn = std::make_unique<Conn>();
      Conn* c = conn.get();
      c->id = ++next_conn_id_;
      c->link = l;
      c->fd[kClient] = fd;
      for (int s = 0; s < 2; ++s) {
        c->h[s].conn = c;
        c->h[s].side = s;
      }
      conns_[c->id] = std::move(conn);
      l->conns.insert(c->id);
      l->sh->open_connections.fetch_add(1);
      l->sh->Add(l->sh->accepted_connections, 1);
      UpdateInterest(c, kClient);
    }
  }

  void StartUpstream(Conn* c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      UpstreamFailed(c);
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd[kServer] = fd;
    if (connect(fd, reinterpret_cast<const sockaddr*>(&c->link->upstream),
                sizeof c->link->upstream) == 0) {
      c->up = Conn::Up::kConnected;
    } else if (errno == EINPROGRESS) {
      c->up = Conn::Up::kConnecting;
      UpdateInterest(c, kServer);
    } else {
      UpstreamFailed(c);
    }
  }

  void UpstreamFailed(Conn* c) {
    c->link->sh->Add(c->link->sh->upstream_failures, 1);
    Destroy(c, true);
  }

  void OnSideEvent(Conn* c, int s, uint32_t ev) {
    if (s == kServer && c->up == Conn::Up::kConnecting) {
      if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd[kServer], SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          UpstreamFailed(c);
          return;
        }
        c->up = Conn::Up::kConnected;
        Pump(c, static_cast<int>(Direction::kRequests));
      }
      if (!c->dead) UpdateBoth(c);
      return;
    }
    if ((ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->read_done[s]) ReadSide(c, s);
    if (c->dead) return;
    if ((ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) && c->want_write[s]) {
      c->want_write[s] = false;
      Pump(c, 1 - s);
    }
    if (!c->dead) UpdateBoth(c);
  }

  void ReadSide(Conn* c, int s) {
    const int d = s;
    const int64_t max_bytes = c->link->opts.max_buffered_bytes;
    for (int i = 0; i < kMaxReadsPerEvent; ++i) {
      if (c->dead || c->read_done[s] || c->fd[s] < 0) return;
      if (c->line[d].bytes() >= max_bytes) break;  // backpressure
      ssize_t n = recv(c->fd[s], buf_, sizeof buf_, 0);
      if (n > 0) {
        OnData(c, d, static_cast<size_t>(n));
        // A short read drained the socket (almost surely): skip the recv that would say EAGAIN.
        // Level-triggered epoll reports anything that arrived meanwhile.
        if (static_cast<size_t>(n) < sizeof buf_) return;
      } else if (n == 0) {
        c->read_done[s] = true;
        Enqueue(c, d, DelayedChunk{DelayedChunk::Kind::kFin, {}, 0, 0});
        return;
      } else if (errno == EINTR) {
        continue;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return;
      } else {
        SideError(c, s);
        return;
      }
    }
  }

  // n bytes of buf_ were read in direction d.
  void OnData(Conn* c, int d, size_t n) {
    FaultProxy::Shared* sh = c->link->sh.get();
    LinkMode m = sh->Mode();
    if (Drops(m, d)) {
      sh->Dropped(d, static_cast<int64_t>(n), 1);
      return;
    }
    const int dst = 1 - d;
    const int64_t latency_us = sh->latency_us[d].load(std::memory_order_relaxed);
    const int64_t jitter_us = sh->jitter_us[d].load(std::memory_order_relaxed);
    size_t sent = 0;
    // Fast path: nothing queued, no delay, destination writable.
    if (latency_us == 0 && jitter_us == 0 && m != LinkMode::kStall && c->line[d].empty() &&
        !c->gone[dst] && c->fd[dst] >= 0 && !c->want_write[dst] &&
        (dst == kClient || c->up == Conn::Up::kConnected)) {
      for (int i = 0; i < 8 && sent < n; ++i) {
        ssize_t w = send(c->fd[dst], buf_ + sent, n - sent, MSG_NOSIGNAL);
        if (w > 0) {
          sent += static_cast<size_t>(w);
        } else if (w < 0 && errno == EINTR) {
          continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          c->want_write[dst] = true;
          break;
        } else {
          sh->Dropped(d, static_cast<int64_t>(n), 1);
          SideError(c, dst);
          return;
        }
      }
      if (sent == n) {
        sh->Forwarded(d, static_cast<int64_t>(n));
        return;
      }
    }
    DelayedChunk chunk{DelayedChunk::Kind::kData, std::string(buf_, n), sent, 0};
    Enqueue(c, d, std::move(chunk));
  }

  void Enqueue(Conn* c, int d, DelayedChunk chunk) {
    FaultProxy::Shared* sh = c->link->sh.get();
    c->line[d].Push(std::move(chunk), MonoUs(), sh->latency_us[d].load(std::memory_order_relaxed),
                    sh->jitter_us[d].load(std::memory_order_relaxed), &c->link->rng);
    Pump(c, d);
  }

  // Side s failed (RST received, write error): close it and send the teardown the other way.
  void SideError(Conn* c, int s) {
    if (c->fd[s] >= 0) {
      if (c->in_epoll[s]) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd[s], nullptr);
      close(c->fd[s]);
    }
    c->fd[s] = -1;
    c->in_epoll[s] = false;
    c->gone[s] = true;
    c->read_done[s] = true;
    c->want_write[s] = false;
    if (c->gone[kClient] && c->gone[kServer]) {
      Destroy(c, false);
      return;
    }
    Enqueue(c, s, DelayedChunk{DelayedChunk::Kind::kRst, {}, 0, 0});
  }

  // Delivers what is due in direction d. Ends with the line's timer armed and interests updated.
  void Pump(Conn* c, int d) {
    FaultProxy::Shared* sh = c->link->sh.get();
    const LinkMode m = sh->Mode();
    const int dst = 1 - d;
    const int64_t now_us = MonoUs();
    bool blocked = false;  // waiting for an fd event or a mode change, not for time
    for (int i = 0; i < kMaxItemsPerPump; ++i) {
      DelayLine& line = c->line[d];
      if (!line.FrontDue(now_us)) break;
      DelayedChunk& ch = line.front();
      const bool drops = Drops(m, d);
      const bool holds = m == LinkMode::kStall;
      if (ch.kind == DelayedChunk::Kind::kData) {
        if (drops) {
          sh->Dropped(d, static_cast<int64_t>(ch.bytes.size()), 1);
          line.Pop();
          continue;
        }
        if (holds) {
          blocked = true;
          break;
        }
        if (c->gone[dst]) {  // the peer is gone: the network would answer with an RST
          Destroy(c, true);
          return;
        }
        if (dst == kServer && c->up == Conn::Up::kNone) {
          StartUpstream(c);
          if (c->dead) return;
        }
        if (dst == kServer && c->up == Conn::Up::kConnecting) {
          blocked = true;
          break;
        }
        ssize_t w = send(c->fd[dst], ch.bytes.data() + ch.offset, ch.bytes.size() - ch.offset,
                         MSG_NOSIGNAL);
        if (w > 0) {
          line.ConsumeFront(static_cast<size_t>(w));
          if (ch.offset == ch.bytes.size()) {
            sh->Forwarded(d, static_cast<int64_t>(ch.bytes.size()));
            line.Pop();
            continue;
          }
          c->want_write[dst] = true;
          blocked = true;
          break;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          c->want_write[dst] = true;
          blocked = true;
          break;
        }
        SideError(c, dst);
        return;
      }
      // A FIN or RST. If the server never saw this connection, there is nobody to tell.
      if (dst == kServer && c->up == Conn::Up::kNone) {
        Destroy(c, false);
        return;
      }
      // Held while the direction drops or stalls (TCP would retransmit it) — except, when
      // dropping, toward a side that has itself closed already: delivering then is unobservable
      // and frees the connection (clients reconnecting during a long kDropReplies leak nothing).
      if (holds || (drops && !c->ended[dst])) {
        blocked = true;
        break;
      }
      const bool rst = ch.kind == DelayedChunk::Kind::kRst;
      if (c->gone[dst]) {
        c->ended[d] = true;
        line.Pop();
        if (rst || c->ended[dst]) {  // else dst's own RST is still queued toward d
          Destroy(c, false);
          return;
        }
        continue;
      }
      if (dst == kServer && c->up == Conn::Up::kConnecting) {
        blocked = true;
        break;
      }
      line.Pop();
      c->ended[d] = true;
      if (rst) {
        if (c->in_epoll[dst]) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd[dst], nullptr);
        c->in_epoll[dst] = false;
        AbortFd(c->fd[dst]);
        c->fd[dst] = -1;
        c->gone[dst] = true;
        Destroy(c, false);
        return;
      }
      shutdown(c->fd[dst], SHUT_WR);
      if (c->ended[dst]) {
        Destroy(c, false);
        return;
      }
    }
    DelayLine& line = c->line[d];
    if (!blocked && !line.empty() && c->armed_due_us[d] != line.front_due_us()) {
      c->armed_due_us[d] = line.front_due_us();
      timers_.push({line.front_due_us(), c->id, d});
    }
    UpdateBoth(c);
  }

  void UpdateBoth(Conn* c) {
    UpdateInterest(c, kClient);
    UpdateInterest(c, kServer);
  }

  void UpdateInterest(Conn* c, int s) {
    if (c->dead || c->fd[s] < 0) return;
    uint32_t want = 0;
    if (s == kServer && c->up == Conn::Up::kConnecting) {
      want = EPOLLOUT;
    } else {
      if (!c->read_done[s] && c->line[s].bytes() < c->link->opts.max_buffered_bytes) {
        want |= EPOLLIN;
      }
      if (c->want_write[s]) want |= EPOLLOUT;
    }
    if (c->in_epoll[s] && want == c->interest[s]) return;
    if (want == 0) {
      if (c->in_epoll[s]) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd[s], nullptr);
      c->in_epoll[s] = false;
      c->interest[s] = 0;
      return;
    }
    if (Register(c->fd[s], want, &c->h[s], c->in_epoll[s]).ok()) {
      c->in_epoll[s] = true;
      c->interest[s] = want;
    }
  }

  // Closes both sides (with RST if abortive), discards what is queued, frees the conn after
  // this loop round.
  void Destroy(Conn* c, bool abortive) {
    if (c->dead) return;
    for (int s = 0; s < 2; ++s) {
      if (c->fd[s] < 0) continue;
      if (c->in_epoll[s]) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd[s], nullptr);
      if (abortive) {
        AbortFd(c->fd[s]);
      } else {
        close(c->fd[s]);
      }
      c->fd[s] = -1;
      c->in_epoll[s] = false;
    }
    FaultProxy::Shared* sh = c->link->sh.get();
    for (int d = 0; d < 2; ++d) {
      auto [bytes, chunks] = c->line[d].Clear();
      sh->Dropped(d, bytes, chunks);
    }
    c->dead = true;
    c->link->conns.erase(c->id);
    sh->open_connections.fetch_sub(1);
    sh->Changed();
    auto it = conns_.find(c->id);
    if (it != conns_.end()) {
      graveyard_.push_back(std::move(it->second));
      conns_.erase(it);
    }
  }

  void ResetAll(Link* l, bool count) {
    std::vector<uint64_t> ids(l->conns.begin(), l->conns.end());
    for (uint64_t id : ids) {
      auto it = conns_.find(id);
      if (it == conns_.end()) continue;
      Destroy(it->second.get(), true);
      if (count) l->sh->Add(l->sh->reset_connections, 1);
    }
  }

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int timer_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> next_link_id_{0};

  std::mutex cmd_mu_;
  std::deque<Command> commands_;  // guarded by cmd_mu_, at most kMaxQueuedCommands
  bool exited_ = false;           // guarded by cmd_mu_

  Handler wake_h_{Handler::Kind::kWake};
  Handler timer_h_{Handler::Kind::kTimer};
  std::unordered_map<uint64_t, std::unique_ptr<Link>> links_;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::vector<std::unique_ptr<Conn>> graveyard_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  int64_t timer_set_us_ = -1;
  uint64_t next_conn_id_ = 0;
  char buf_[kReadChunkBytes];
};

ProxyLoop::ProxyLoop() : impl_(std::make_unique<Impl>()) {}
ProxyLoop::~ProxyLoop() { impl_->StopAndJoin(); }

Status ProxyLoop::Start(std::shared_ptr<ProxyLoop>* out) {
  std::shared_ptr<ProxyLoop> loop(new ProxyLoop());
  Status s = loop->impl_->Init();
  if (!s.ok()) return s;
  *out = std::move(loop);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// FaultProxy

namespace {

Status ResolveLoopback(const ServerAddress& a, sockaddr_in* out) {
  if (a.port <= 0 || a.port > 65535) {
    return Status::InvalidArgument("fault proxy: bad upstream port in " + a.ToString());
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(a.port));
  const std::string host = a.host == "localhost" ? "127.0.0.1" : a.host;
  if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1 ||
      (ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
    return Status::InvalidArgument("fault proxy: upstream " + a.ToString() +
                                   " is not a loopback address (127.0.0.0/8)");
  }
  *out = sa;
  return Status::Ok();
}

// A listening socket bound to an explicit free port on 127.0.0.1. The explicit port matters: a
// socket bound to port 0 loses its port when shut down (kRefuse) and could not listen on it again.
Status ListenOnFreePort(int* fd_out, int* port_out) {
  int last_errno = 0;
  for (int attempt = 0; attempt < 50; ++attempt) {
    int port = PickFreePort();
    if (port == 0) {
      last_errno = errno;
      continue;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return Status::IoError(std::string("fault proxy: socket: ") + strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons(static_cast<uint16_t>(port));
    if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 && listen(fd, 128) == 0) {
      *fd_out = fd;
      *port_out = port;
      return Status::Ok();
    }
    last_errno = errno;
    close(fd);
  }
  return Status::IoError(std::string("fault proxy: cannot listen on a free 127.0.0.1 port: ") +
                         strerror(last_errno));
}

}  // namespace

Status FaultProxy::Start(ServerAddress upstream, const FaultProxyOptions& opts,
                         std::shared_ptr<ProxyLoop> loop, std::unique_ptr<FaultProxy>* out) {
  if (opts.max_connections < 1 || opts.max_buffered_bytes < 1 || opts.control_timeout_ms < 1) {
    return Status::InvalidArgument("fault proxy: options must be positive");
  }
  sockaddr_in up{};
  Status s = ResolveLoopback(upstream, &up);
  if (!s.ok()) return s;
  if (!loop) {
    s = ProxyLoop::Start(&loop);
    if (!s.ok()) return s;
  }
  int fd = -1, port = 0;
  s = ListenOnFreePort(&fd, &port);
  if (!s.ok()) return s;

  std::unique_ptr<FaultProxy> p(new FaultProxy());
  p->upstream_ = std::move(upstream);
  p->port_ = port;
  p->control_timeout_ms_ = opts.control_timeout_ms;
  p->shared_ = std::make_shared<Shared>();
  p->loop_ = loop;
  p->link_id_ = loop->impl_->NextLinkId();

  auto link = std::make_shared<std::unique_ptr<ProxyLoop::Impl::Link>>(
      std::make_unique<ProxyLoop::Impl::Link>());
  (*link)->id = p->link_id_;
  (*link)->listen_fd = fd;
  (*link)->upstream = up;
  (*link)->opts = opts;
  (*link)->sh = p->shared_;
  (*link)->rng.seed(opts.seed);
  ProxyLoop::Impl* impl = loop->impl_.get();
  s = impl->RunInLoop([impl, link] { return impl->AddLink(std::move(*link)); },
                      opts.control_timeout_ms);
  // On failure ~FaultProxy removes the link if it got in; a command that never ran frees the
  // Link, whose destructor closes the listener.
  if (!s.ok()) return s;
  *out = std::move(p);
  return Status::Ok();
}

FaultProxy::~FaultProxy() {
  Stop();
  loop_.reset();  // the last holder joins the loop thread (which closes whatever is left)
}

void FaultProxy::Stop() {
  if (stopped_.exchange(true)) return;
  ProxyLoop::Impl* impl = loop_->impl_.get();
  const uint64_t id = link_id_;
  impl->RunInLoop([impl, id] { return impl->RemoveLink(id); }, control_timeout_ms_);
}

Status FaultProxy::SetMode(LinkMode m) {
  if (stopped_) return Status::Internal("fault proxy: stopped");
  shared_->mode.store(static_cast<int>(m));
  ProxyLoop::Impl* impl = loop_->impl_.get();
  const uint64_t id = link_id_;
  return impl->RunInLoop([impl, id] { return impl->ApplyMode(id); }, control_timeout_ms_);
}

LinkMode FaultProxy::mode() const { return shared_->Mode(); }

Status FaultProxy::SetLatency(Direction d, int64_t latency_us, int64_t jitter_us) {
  constexpr int64_t kMaxUs = 60 * 1000000LL;
  if (latency_us < 0 || jitter_us < 0 || latency_us > kMaxUs || jitter_us > kMaxUs) {
    return Status::InvalidArgument("fault proxy: latency and jitter must be in [0, 60 s]");
  }
  const int i = static_cast<int>(d);
  shared_->latency_us[i].store(latency_us);
  shared_->jitter_us[i].store(jitter_us);
  return Status::Ok();
}

Status FaultProxy::ResetConnections() {
  if (stopped_) return Status::Internal("fault proxy: stopped");
  ProxyLoop::Impl* impl = loop_->impl_.get();
  const uint64_t id = link_id_;
  return impl->RunInLoop([impl, id] { return impl->ResetLink(id); }, control_timeout_ms_);
}

ServerAddress FaultProxy::upstream() const {
  std::lock_guard<std::mutex> l(upstream_mu_);
  return upstream_;
}

Status FaultProxy::SetUpstream(ServerAddress upstream) {
  sockaddr_in up{};
  Status s = ResolveLoopback(upstream, &up);
  if (!s.ok()) return s;
  if (stopped_) return Status::Internal("fault proxy: stopped");
  std::lock_guard<std::mutex> serial(set_upstream_mu_);
  {
    std::lock_guard<std::mutex> l(upstream_mu_);
    upstream_ = std::move(upstream);
  }
  ProxyLoop::Impl* impl = loop_->impl_.get();
  const uint64_t id = link_id_;
  return impl->RunInLoop([impl, id, up] { return impl->SetLinkUpstream(id, up); },
                         control_timeout_ms_);
}

LinkStats FaultProxy::Stats() const {
  LinkStats s;
  const Shared& h = *shared_;
  for (int d = 0; d < 2; ++d) {
    s.forwarded_bytes[d] = h.forwarded_bytes[d].load();
    s.forwarded_chunks[d] = h.forwarded_chunks[d].load();
    s.dropped_bytes[d] = h.dropped_bytes[d].load();
    s.dropped_chunks[d] = h.dropped_chunks[d].load();
  }
  s.accepted_connections = h.accepted_connections.load();
  s.refused_connections = h.refused_connections.load();
  s.reset_connections = h.reset_connections.load();
  s.upstream_failures = h.upstream_failures.load();
  s.open_connections = h.open_connections.load();
  return s;
}

bool FaultProxy::WaitForStats(const std::function<bool(const LinkStats&)>& pred,
                              int64_t timeout_ms) const {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  shared_->waiters.fetch_add(1);
  bool ok = false;
  {
    std::unique_lock<std::mutex> l(shared_->mu);
    // Bounded: each round either returns or waits; slices of 50 ms cap any missed wake-up.
    for (int round = 0; round < 1000000; ++round) {
      if (pred(Stats())) {
        ok = true;
        break;
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) break;
      shared_->cv.wait_until(l, std::min(deadline, now + std::chrono::milliseconds(50)));
    }
  }
  shared_->waiters.fetch_sub(1);
  return ok;
}

}  // namespace lockstorm
