// ServerClock: clock faults on an embedded redis-server (offset, rate, jumps), changed at run
// time.
//
// A ServerClock owns a small shared-memory file (/dev/shm/lockstorm-clock-<pid>-<n>). A
// redis-server started with Env() in its environment loads liblockstorm_clock_shim.so
// (LD_PRELOAD), maps that file, and from then on sees, on every gettimeofday(), time() and
// clock_gettime(CLOCK_REALTIME*) call,
//   skewed = anchor + anchor_offset + (real - anchor) * rate
// exactly like harness/clock.h's SkewedClock for clients. Every change re-anchors at "now", so a
// rate change is continuous and only Jump/SetOffset step the clock. Redis computes key expiry,
// PTTL and TIME from gettimeofday(), so a skewed node really expires keys early or late.
// CLOCK_MONOTONIC (redis's timers, serverCron, hz) is left alone unless SetSkewMonotonic(true).
// See docs/clock-faults.md.
//
// Thread-safety: all methods may be called from any thread; changes are serialised by a mutex in
// lockstorm and published to the server lock-free (seqlock in the shared memory).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "harness/clock_shim/clock_shim_shm.h"
#include "harness/status.h"

namespace lockstorm {

// The skew parameters (what the shared memory holds), as a value. Pure functions below are the
// arithmetic the shim applies; they are shared with it through lockstorm_clock_skew_ns().
struct ServerClockParams {
  int64_t anchor_realtime_ns = 0;          // real CLOCK_REALTIME at the last change
  int64_t anchor_monotonic_ns = 0;         // real CLOCK_MONOTONIC at (about) the same moment
  int64_t anchor_offset_ns = 0;            // CLOCK_REALTIME's skewed - real at the anchor
  int64_t anchor_monotonic_offset_ns = 0;  // CLOCK_MONOTONIC's skewed - real at the anchor
  double rate = 1.0;                       // skewed ns per real ns since the anchor; > 0
  bool skew_monotonic = false;             // also skew CLOCK_MONOTONIC{,_COARSE}
};

// The skewed CLOCK_REALTIME for the real reading `real_ns` (ns since the epoch).
int64_t SkewedRealtimeNs(const ServerClockParams& p, int64_t real_ns);
// The skewed CLOCK_MONOTONIC for the real reading `real_ns` (meaningful if p.skew_monotonic).
int64_t SkewedMonotonicNs(const ServerClockParams& p, int64_t real_ns);
// `p` re-anchored at the real readings (now_realtime_ns, now_monotonic_ns): the result gives
// the same skewed time as `p` at that moment and runs at the same rate, so changing its rate or
// offset afterwards takes effect from "now" on.
ServerClockParams Reanchored(const ServerClockParams& p, int64_t now_realtime_ns,
                             int64_t now_monotonic_ns);

class ServerClock {
 public:
  // Creates the shared-memory file (identity parameters: rate 1, offset 0) in /dev/shm, or in
  // $TMPDIR (else /tmp) if /dev/shm is not usable. Fails if the shim library
  // (ShimPath()) does not exist or the file cannot be created.
  static Status Create(std::unique_ptr<ServerClock>* out);
  ~ServerClock();  // unmaps and unlinks the file (a server still running keeps its mapping)

  ServerClock(const ServerClock&) = delete;
  ServerClock& operator=(const ServerClock&) = delete;

  // The environment to add to the redis-server's: LD_PRELOAD (the shim, followed by lockstorm's
  // own $LD_PRELOAD if any) and LOCKSTORM_CLOCK_SHM (the file).
  std::map<std::string, std::string> Env() const;
  // The shared-memory file.
  const std::string& path() const { return path_; }
  // The shim library the build produced (liblockstorm_clock_shim.so).
  static std::string ShimPath();

  // Sets the server's wall clock to real time + `offset_us` from now on (a step by the
  // difference from the current offset, which a skewed CLOCK_MONOTONIC takes too); the rate is
  // kept, so with rate != 1 the offset drifts again from here.
  void SetOffset(int64_t offset_us);
  // From now on the server's clock advances `rate` seconds per real second, continuously from
  // its current reading. InvalidArgument unless 0 < rate <= 1000 (and finite).
  Status SetRate(double rate);
  // Steps the server's clock by `delta_us` (negative = backwards) from now on.
  void Jump(int64_t delta_us);
  // Also apply the skew to CLOCK_MONOTONIC and CLOCK_MONOTONIC_COARSE (off by default). Switching
  // it on does not step CLOCK_MONOTONIC: it continues from its real reading at the current rate,
  // and later Jump/SetOffset steps and rate changes apply to it as to the wall clock. With it
  // on, redis's timers run at the skewed rate too, and a backward Jump makes CLOCK_MONOTONIC go
  // backwards, which programs assume never happens.
  void SetSkewMonotonic(bool on);
  // Back to real time: offset 0, rate 1, monotonic not skewed.
  void Reset();

  ServerClockParams params() const;
  // The server's current CLOCK_REALTIME as the shim computes it, in µs since the epoch.
  int64_t NowUs() const;
  // Number of processes whose shim mapped this file (incremented once per exec'd process that
  // loaded the shim; forked children inherit the mapping without counting). Lets the caller check
  // that LD_PRELOAD took effect: ld.so only warns when it cannot load a preload library.
  uint32_t attach_count() const;

 private:
  ServerClock(std::string path, lockstorm_clock_shm* shm);
  // Publishes `p` through the seqlock. Caller holds mu_.
  void Store(const ServerClockParams& p);
  // Re-anchors params_ at the current real time. Caller holds mu_.
  ServerClockParams ReanchoredNow() const;

  std::string path_;
  lockstorm_clock_shm* shm_;
  mutable std::mutex mu_;
  ServerClockParams params_;  // what shm_ holds; guarded by mu_
};

}  // namespace lockstorm
