// Fault proxy: a user-space TCP proxy on loopback that sits on one link between clients and one
// Redis node and injects network faults while a run goes (tc netem is not available).
//
// One FaultProxy = one link (e.g. client group g x node n). It listens on 127.0.0.1:<free port>
// and forwards every accepted connection to its upstream ServerAddress; clients are handed
// address() instead of the server's. The link's mode and per-direction latency can be changed
// at any time from any thread:
//
//   kPass         bytes flow both ways (after the configured latency).
//   kBlackhole    a partition: payload bytes in both directions are DISCARDED (a real partition
//                 drops packets). Connections are kept open, nothing is reset: clients hang until
//                 their own timeouts. New connections are accepted by the kernel and then hang too.
//   kDropReplies  requests are forwarded and applied; replies are discarded (the "ghost lock": the
//                 client times out, yet the key was set).
//   kDropRequests requests are discarded (never applied); replies would pass.
//   kStall        like kBlackhole, but bytes are HELD (bounded) instead of discarded and are
//                 delivered, in order, when the mode changes: a partition that heals before TCP
//                 gives up, so requests arrive late (a stale SET applied after its client gave up).
//   kRefuse       new connections are refused (ECONNREFUSED at connect, the listening socket is
//                 shut down); existing connections keep passing bytes. SetMode(kRefuse) followed by
//                 ResetConnections() models a node whose process is gone.
//
// Connection teardown (a FIN or an RST seen on one side) travels like the data of its direction:
// after that direction's latency, and it is HELD (not discarded) while that direction drops or
// stalls bytes, then delivered when the direction passes again (TCP retransmits a FIN). Two
// exceptions keep partitions from piling up connections, both unobservable by the peers: a
// teardown toward a side that has itself already closed is delivered at once in the drop modes,
// and a client connection that never reached the server is freed at once. Upstream connections
// are opened lazily, when the first request byte is to be delivered, so a connection made and
// closed during a partition never reaches the server. If the upstream connect fails the client
// connection is reset.
//
// Latency: each chunk (one recv() worth of bytes) read in direction d is delivered at
// read time + latency_us + uniform[-jitter_us, +jitter_us] (the sum clamped at >= 0), but never
// before the previous chunk of the same connection and direction: order within a connection is
// preserved, like TCP, so a chunk may wait longer than latency + jitter behind a slow one.
//
// Bounds: at most max_buffered_bytes (+ one read) are queued per connection and direction; past
// that the proxy stops reading from the sender (backpressure). At most max_connections connections
// per link; further ones are reset at once (counted as refused). Every control call waits at most
// control_timeout_ms for the event loop.
//
// Threads: links are served by a ProxyLoop, one epoll thread that can serve many links (a grid of
// 16 client groups x 5 nodes needs 1 thread, not 80). FaultProxy::Start without a loop creates a
// private one. Each FaultProxy holds a reference to its loop; the loop thread stops and is joined
// when the last link and the last other holder release it.
//
// Only loopback: upstream must be an address in 127.0.0.0/8 (or "localhost").
//
// Thread-safety: every public FaultProxy method may be called from any thread concurrently.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "harness/status.h"
#include "harness/transport.h"

namespace lockstorm {

enum class LinkMode { kPass, kBlackhole, kDropReplies, kDropRequests, kStall, kRefuse };
// "pass", "blackhole", "drop-replies", "drop-requests", "stall", "refuse".
const char* LinkModeName(LinkMode m);
bool ParseLinkMode(const std::string& s, LinkMode* out);

// kRequests: client -> server. kReplies: server -> client. Used as an index (0, 1).
enum class Direction { kRequests = 0, kReplies = 1 };
const char* DirectionName(Direction d);  // "requests", "replies"

struct FaultProxyOptions {
  int max_connections = 1024;            // per link; more are reset at once
  int64_t max_buffered_bytes = 4 << 20;  // per connection and direction (backpressure)
  int64_t control_timeout_ms = 5000;     // bound on every wait for the loop thread
  uint64_t seed = 1;                     // jitter random numbers (per link)
};

// Counters of one link since Start. Arrays are indexed by Direction. A chunk is one recv() worth
// of bytes; "dropped" counts discarded payload (including bytes queued when their connection was
// reset or the link stopped).
struct LinkStats {
  int64_t forwarded_bytes[2] = {0, 0};
  int64_t forwarded_chunks[2] = {0, 0};
  int64_t dropped_bytes[2] = {0, 0};
  int64_t dropped_chunks[2] = {0, 0};
  int64_t accepted_connections = 0;  // accepted by the proxy (refused ones not included)
  int64_t refused_connections = 0;   // reset at once because max_connections was reached
                                     // (kRefuse refusals happen in the kernel: not counted)
  int64_t reset_connections = 0;     // reset by ResetConnections() or SetUpstream()
  int64_t upstream_failures = 0;     // upstream connects that failed (client reset)
  int64_t open_connections = 0;      // currently open client connections
};

// The event-loop thread serving any number of links. Create one and pass it to several
// FaultProxy::Start calls to share the thread. Not copyable.
class ProxyLoop {
 public:
  // Starts the thread. Fails (kIoError) if epoll/eventfd/timerfd cannot be created.
  static Status Start(std::shared_ptr<ProxyLoop>* out);
  // Stops the thread (bounded: the loop never blocks for more than 100 ms) and joins it; closes
  // whatever is still open. Links normally keep the loop alive, so this runs after the last one.
  ~ProxyLoop();
  ProxyLoop(const ProxyLoop&) = delete;
  ProxyLoop& operator=(const ProxyLoop&) = delete;

  class Impl;  // defined in fault_proxy.cc

 private:
  ProxyLoop();
  std::unique_ptr<Impl> impl_;
  friend class FaultProxy;
};

class FaultProxy {
 public:
  // Listens on a free 127.0.0.1 port and forwards to `upstream`, in kPass with no latency.
  // `loop` null = a private loop thread. Fails with kInvalidArgument (upstream not loopback, bad
  // options) or kIoError (no port could be bound). *out is set only on success.
  static Status Start(ServerAddress upstream, const FaultProxyOptions& opts,
                      std::shared_ptr<ProxyLoop> loop, std::unique_ptr<FaultProxy>* out);
  static Status Start(ServerAddress upstream, std::unique_ptr<FaultProxy>* out) {
    return Start(std::move(upstream), FaultProxyOptions(), nullptr, out);
  }

  // Stop(), then releases the loop (joining its thread if this was the last holder). Must not
  // run concurrently with other calls on this object (like any destructor).
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  // The address clients connect to. Stable for the proxy's life (also across kRefuse).
  ServerAddress address() const { return {"127.0.0.1", port_}; }
  // The current upstream (the one given to Start, or to the last successful SetUpstream). A copy:
  // safe to call while another thread calls SetUpstream.
  ServerAddress upstream() const;

  // Points the link at another server (failover: clients follow the new master). When it returns
  // ok, every connection accepted afterwards connects upstream to `upstream`, and every connection
  // that existed before has been reset (RST to both sides, queued bytes discarded, counted in
  // reset_connections, as ResetConnections()) — including those that had not yet opened their
  // upstream connection, so no connection made before the call ever reaches the new server and
  // clients reconnect to reach it. Does not change the mode or the latency. kInvalidArgument if
  // `upstream` is not loopback (as Start; nothing changes); kTimeout / kInternal as for SetMode
  // (after a kTimeout the switch is applied late or, if the proxy was stopped, never; upstream()
  // already returns the new address).
  Status SetUpstream(ServerAddress upstream);

  // Changes the mode. When it returns ok, every byte read afterwards obeys the new mode, queued
  // bytes are judged by it when they fall due (in-flight bytes are lost when a partition starts),
  // and held bytes/teardowns are released if the new mode lets them pass. kTimeout if the loop
  // did not confirm within control_timeout_ms (the mode is then applied late or, if the proxy was
  // stopped, never); kInternal after Stop().
  Status SetMode(LinkMode m);
  LinkMode mode() const;

  // Adds latency_us +- jitter_us to every chunk read afterwards in direction `d` (0, 0 = none).
  // kInvalidArgument if either is negative or above 60 s. Takes effect at once (no loop wait).
  Status SetLatency(Direction d, int64_t latency_us, int64_t jitter_us);

  // Resets (RST: SO_LINGER 0, then close) both sides of every current connection of this link
  // and discards what was queued for them. When it returns ok, the RSTs have been sent. Does not
  // change the mode. kTimeout / kInternal as for SetMode.
  Status ResetConnections();

  // A consistent-enough snapshot (each counter is read atomically; the set is not one instant).
  LinkStats Stats() const;

  // Waits until pred(Stats()) is true or `timeout_ms` passes; true if it became true. Woken by
  // every counter change (not polling). For tests and scenarios that must await "the request
  // reached the server" or "the reply was dropped".
  bool WaitForStats(const std::function<bool(const LinkStats&)>& pred, int64_t timeout_ms) const;

  // Closes the listener and resets every connection of this link; bounded by control_timeout_ms.
  // Idempotent and thread-safe. After Stop, control calls return kInternal.
  void Stop();

  struct Shared;  // state shared with the loop thread; defined in fault_proxy.cc

 private:
  FaultProxy() = default;
  std::mutex set_upstream_mu_;  // serializes SetUpstream calls (upstream_ = the loop's last)
  mutable std::mutex upstream_mu_;
  ServerAddress upstream_;  // guarded by upstream_mu_
  int port_ = 0;
  uint64_t link_id_ = 0;
  int64_t control_timeout_ms_ = 5000;
  std::atomic<bool> stopped_{false};
  std::shared_ptr<ProxyLoop> loop_;
  std::shared_ptr<Shared> shared_;
};

// ---------------------------------------------------------------------------------------------
// Internals exposed for unit tests.

// One direction of one proxied connection: a FIFO of chunks, each with the monotonic time (us)
// at which it may be delivered. Not thread-safe (owned by the loop thread).
struct DelayedChunk {
  enum class Kind { kData, kFin, kRst };
  Kind kind = Kind::kData;
  std::string bytes;  // kData only
  size_t offset = 0;  // bytes of `bytes` already written
  int64_t due_us = 0;
};

class DelayLine {
 public:
  // Appends `c` due at now_us + max(0, latency_us + U[-jitter_us, jitter_us]), raised to the due
  // time of the previous chunk so that order is preserved. Returns the due time. `rng` is used
  // only if jitter_us > 0.
  int64_t Push(DelayedChunk c, int64_t now_us, int64_t latency_us, int64_t jitter_us,
               std::mt19937_64* rng);
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  // Payload bytes queued and not yet written.
  int64_t bytes() const { return bytes_; }
  bool FrontDue(int64_t now_us) const { return !items_.empty() && items_.front().due_us <= now_us; }
  int64_t front_due_us() const { return items_.front().due_us; }  // requires !empty()
  DelayedChunk& front() { return items_.front(); }
  // Marks n more bytes of the front chunk as written.
  void ConsumeFront(size_t n);
  void Pop();
  // Drops everything; returns {bytes, data chunks} discarded.
  std::pair<int64_t, int64_t> Clear();

 private:
  std::deque<DelayedChunk> items_;
  int64_t bytes_ = 0;
  int64_t last_due_us_ = 0;
};

}  // namespace lockstorm
