#include "harness/clock.h"

#include <chrono>
#include <thread>

namespace lockstorm {
namespace {

class SteadyClock : public Clock {
 public:
  int64_t NowUs() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  void SleepUs(int64_t duration_us) override {
    if (duration_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(duration_us));
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
  static const int64_t epoch_us = RealClock()->NowUs();
  return RealClock()->NowUs() - epoch_us;
}

SkewedClock::SkewedClock(Clock* base) : base_(base) {
  int64_t now = base_->NowUs();
  params_ = {now, now, 1.0};
}

SkewedClock::Params SkewedClock::Load() const {
  std::lock_guard<std::mutex> lock(mu_);
  return params_;
}

int64_t SkewedClock::NowUs() {
  Params p = Load();
  return p.anchor_skewed_us +
         static_cast<int64_t>(static_cast<double>(base_->NowUs() - p.anchor_base_us) * p.rate);
}

void SkewedClock::SleepUs(int64_t duration_us) {
  if (duration_us <= 0) return;
  Params p = Load();
  base_->SleepUs(static_cast<int64_t>(static_cast<double>(duration_us) / p.rate));
}

void SkewedClock::Reanchor(int64_t delta_us, std::optional<double> rate) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t base_now = base_->NowUs();
  const int64_t skewed_now =
      params_.anchor_skewed_us +
      static_cast<int64_t>(static_cast<double>(base_now - params_.anchor_base_us) * params_.rate);
  params_ = {base_now, skewed_now + delta_us, rate.value_or(params_.rate)};
}

int64_t SkewedClock::WallUs() { return base_->WallUs() + wall_offset_us_.load(); }

void SkewedClock::WallJump(int64_t delta_us) { wall_offset_us_.fetch_add(delta_us); }

void SkewedClock::Jump(int64_t delta_us) { Reanchor(delta_us, std::nullopt); }

void SkewedClock::SetRate(double rate) { Reanchor(0, rate); }

}  // namespace lockstorm
