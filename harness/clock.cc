#include "harness/clock.h"

#include <chrono>

#include "harness/fiber.h"

namespace lockstorm {
namespace {

// The steady clock in µs: the fibers' deadline base (harness/fiber.h), so one reading serves
// both.
int64_t SteadyNowUs() { return fiber::MonoNowUs(); }

class SteadyClock : public Clock {
 public:
  int64_t NowUs() override { return SteadyNowUs(); }
  void SleepUs(int64_t duration_us) override {
    if (duration_us > 0) fiber::SleepUntil(SteadyNowUs() + duration_us);  // a fiber parks
  }
  int64_t WallUs() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace

Clock* RealClock() {
  static SteadyClock* clock = new SteadyClock();
  return clock;
}

int64_t HistoryNowUs() {
  static const int64_t epoch_us = SteadyNowUs();  // RealClock()'s reading, without the call
  return SteadyNowUs() - epoch_us;
}

SkewedClock::SkewedClock(Clock* base) : base_(base) {
  const int64_t now = base_->NowUs();
  std::lock_guard<std::mutex> lock(mu_);
  Store({now, now, 1.0});
}

SkewedClock::Params SkewedClock::Load() const {
  // A writer holds the sequence odd for a few stores only; 1000 tries is ample.
  constexpr int kMaxOptimisticReads = 1000;
  for (int i = 0; i < kMaxOptimisticReads; ++i) {
    const uint64_t before = seq_.load(std::memory_order_acquire);
    if ((before & 1) != 0) continue;  // a writer is mid-update
    const Params p = LoadFields();
    std::atomic_thread_fence(std::memory_order_acquire);  // the loads above happen before...
    if (seq_.load(std::memory_order_relaxed) == before) return p;  // ...this re-check
  }
  std::lock_guard<std::mutex> lock(mu_);  // writers excluded: the fields are consistent
  return LoadFields();
}

SkewedClock::Params SkewedClock::LoadFields() const {
  return {anchor_base_us_.load(std::memory_order_relaxed),
          anchor_skewed_us_.load(std::memory_order_relaxed), rate_.load(std::memory_order_relaxed)};
}

void SkewedClock::Store(const Params& p) {
  const uint64_t seq = seq_.load(std::memory_order_relaxed);
  seq_.store(seq + 1, std::memory_order_relaxed);       // odd: readers retry
  std::atomic_thread_fence(std::memory_order_release);  // ...before they see any field below
  anchor_base_us_.store(p.anchor_base_us, std::memory_order_relaxed);
  anchor_skewed_us_.store(p.anchor_skewed_us, std::memory_order_relaxed);
  rate_.store(p.rate, std::memory_order_relaxed);
  seq_.store(seq + 2, std::memory_order_release);  // even: the new triple is complete
}

int64_t SkewedClock::NowUs() {
  const Params p = Load();
  return p.anchor_skewed_us +
         static_cast<int64_t>(static_cast<double>(base_->NowUs() - p.anchor_base_us) * p.rate);
}

void SkewedClock::SleepUs(int64_t duration_us) {
  if (duration_us <= 0) return;
  const Params p = Load();
  base_->SleepUs(static_cast<int64_t>(static_cast<double>(duration_us) / p.rate));
}

void SkewedClock::Reanchor(int64_t delta_us, std::optional<double> rate) {
  std::lock_guard<std::mutex> lock(mu_);
  // Only writers (serialized by mu_) change the fields, so plain relaxed loads are current.
  const Params old = LoadFields();
  const int64_t base_now = base_->NowUs();
  const int64_t skewed_now =
      old.anchor_skewed_us +
      static_cast<int64_t>(static_cast<double>(base_now - old.anchor_base_us) * old.rate);
  Store({base_now, skewed_now + delta_us, rate.value_or(old.rate)});
}

int64_t SkewedClock::WallUs() { return base_->WallUs() + wall_offset_us_.load(); }

void SkewedClock::WallJump(int64_t delta_us) { wall_offset_us_.fetch_add(delta_us); }

void SkewedClock::Jump(int64_t delta_us) { Reanchor(delta_us, std::nullopt); }

void SkewedClock::SetRate(double rate) { Reanchor(0, rate); }

}  // namespace lockstorm
