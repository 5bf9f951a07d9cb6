// Clock: the only way lock implementations (and the runner's clients) read time.
//
// Implementations never call std::chrono::steady_clock::now() or sleep directly: they go
// through a Clock, so that the same code can run under a skewed client clock (offset, rate,
// jumps) and, later, under the deterministic simulator's virtual time.
//
// Thread-safety: every method of every Clock here may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>

namespace lockstorm {

class Clock {
 public:
  virtual ~Clock() = default;

  // Monotonic time as this clock's owner sees it, in microseconds from an arbitrary epoch.
  // Never decreases for a RealClock; a SkewedClock may jump (that is the point of it).
  virtual int64_t NowUs() = 0;

  // Blocks the calling thread for `duration_us` of *this clock's* time. A non-positive
  // duration returns at once.
  virtual void SleepUs(int64_t duration_us) = 0;

  // Wall-clock time (the system clock: what an NTP step moves), in microseconds since the
  // Unix epoch. Correct locks never measure a lease with it; it is here so that the
  // `wallclock-deadline` mutant can, and so that `client-wall-clock-jump` can step it.
  virtual int64_t WallUs() = 0;
};

// The machine's steady clock. A process-wide singleton; never deleted.
Clock* RealClock();

// Microseconds since the process's first call: the one shared monotonic clock on which the
// history records every invoke and completion time. Thread-safe, never decreases.
int64_t HistoryNowUs();

// A clock that runs at `rate` times a base clock, plus an offset, with jumps applied at
// run time (the client-side clock faults of the nemesis).
//   skewed_now = anchor_skewed + (base_now - anchor_base) * rate
// Reads (NowUs, SleepUs, WallUs) are lock-free: the anchor and rate are published through a
// seqlock, so a reader always sees one consistent (anchor_base, anchor_skewed, rate) triple —
// the one before or the one after a concurrent Jump/SetRate, never a mix. Jump and SetRate
// serialize among themselves on a mutex.
class SkewedClock : public Clock {
 public:
  explicit SkewedClock(Clock* base);  // does not take ownership; base must outlive this

  int64_t NowUs() override;
  void SleepUs(int64_t duration_us) override;
  // The base clock's wall time plus every WallJump so far (rate and Jump do not touch it).
  int64_t WallUs() override;

  // Steps the clock by `delta_us` (negative = backwards) from now on.
  void Jump(int64_t delta_us);
  // Changes the rate from now on (1.0 = real time). rate must be > 0.
  void SetRate(double rate);
  // Steps the wall clock only (an NTP step): NowUs() is unaffected.
  void WallJump(int64_t delta_us);

 private:
  struct Params {
    int64_t anchor_base_us;
    int64_t anchor_skewed_us;
    double rate;
  };
  // A consistent snapshot of the params (seqlock read; after many retries against a busy
  // writer it waits on mu_ instead of spinning).
  Params Load() const;
  Params LoadFields() const;  // the three fields, relaxed: consistent only under mu_ or
                              // inside Load's sequence check
  // Publishes p. Caller holds mu_.
  void Store(const Params& p);
  // Continues from the current reading, stepped by delta_us, at `rate` (or the current
  // rate) from now on.
  void Reanchor(int64_t delta_us, std::optional<double> rate);
  Clock* base_;
  std::atomic<int64_t> wall_offset_us_{0};
  mutable std::mutex mu_;  // serializes writers (Reanchor); readers do not take it
  // Seqlock: odd while a writer is storing the fields below. Every field is an atomic, so a
  // reader racing a writer reads stale or new values (and retries), never torn ones.
  std::atomic<uint64_t> seq_{0};
  std::atomic<int64_t> anchor_base_us_{0};
  std::atomic<int64_t> anchor_skewed_us_{0};
  std::atomic<double> rate_{1.0};
};

}  // namespace lockstorm
