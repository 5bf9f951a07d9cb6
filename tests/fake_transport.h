// A scripted transport and a manual clock for unit tests of multi-node locks (Redlock and its
// mutants): every fan-out is answered by the next scripted step, and time moves only when a
// step or a test says so. Single-threaded: no lock here may run a thread of its own.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "harness/clock.h"
#include "harness/transport.h"

namespace lockstorm::testing {

// Time that moves only when told to (SleepUs advances it and is recorded). The wall clock is
// the same time plus `wall_offset_us` (a test steps it to model an NTP step).
class ManualClock : public Clock {
 public:
  int64_t NowUs() override { return now_us; }
  void SleepUs(int64_t duration_us) override {
    if (duration_us <= 0) return;
    sleeps_us.push_back(duration_us);
    now_us += duration_us;
  }
  int64_t WallUs() override { return now_us + wall_offset_us; }
  int64_t now_us = 1'000'000'000;
  int64_t wall_offset_us = 0;
  std::vector<int64_t> sleeps_us;
};

struct RecordedCall {
  bool many = false;  // CallMany (true) or Call (false)
  std::vector<int> nodes;
  Command cmd;
  int64_t timeout_us = 0;
};

// Answers each CallMany with the next scripted step (one reply per node, in node order) and
// advances the clock by the step's elapsed time, as a fan-out taking that long would. With no
// step left it falls back to `fallback` if set, else fails the test. Call() is never expected.
// CallManyUntil waits for every reply (the Transport default) unless `honor_decided`: then the
// replies are taken in node order and, once `decided` says so, the rest come back as
// "not awaited" timeouts, as RedisTransport does; `decided_after` records after how many.
class ScriptedTransport : public Transport {
 public:
  struct Step {
    std::vector<Reply> replies;
    int64_t elapsed_us = 0;
  };

  ScriptedTransport(int n, ManualClock* clock) : n_(n), clock_(clock) {}

  int node_count() const override { return n_; }

  Reply Call(int node, const Command& cmd, int64_t timeout_us) override {
    calls.push_back({false, {node}, cmd, timeout_us});
    ADD_FAILURE() << "sequential Call() used for " << cmd.at(0);
    return Reply::IoError("unexpected Call");
  }

  std::vector<Reply> CallMany(const std::vector<int>& nodes, const Command& cmd,
                              int64_t timeout_us) override {
    calls.push_back({true, nodes, cmd, timeout_us});
    if (steps.empty()) {
      if (fallback) return fallback(cmd);
      ADD_FAILURE() << "unscripted CallMany: " << cmd.at(0);
      return std::vector<Reply>(nodes.size(), Reply::IoError("unscripted"));
    }
    Step step = std::move(steps.front());
    steps.pop_front();
    clock_->now_us += step.elapsed_us;
    EXPECT_EQ(step.replies.size(), nodes.size());
    return step.replies;
  }

  std::vector<Reply> CallManyUntil(const std::vector<int>& nodes, const Command& cmd,
                                   int64_t timeout_us, const Decided& decided) override {
    std::vector<Reply> replies = CallMany(nodes, cmd, timeout_us);
    if (!honor_decided) return replies;
    std::vector<const Reply*> so_far(replies.size(), nullptr);
    for (size_t i = 0; i < replies.size(); ++i) {
      so_far[i] = &replies[i];
      if (!decided(so_far)) continue;
      decided_after = static_cast<int>(i) + 1;
      for (size_t j = i + 1; j < replies.size(); ++j) replies[j] = Reply::Timeout("not awaited");
      break;
    }
    return replies;
  }

  void Script(std::vector<Reply> replies, int64_t elapsed_us = 0) {
    steps.push_back({std::move(replies), elapsed_us});
  }

  std::deque<Step> steps;
  std::function<std::vector<Reply>(const Command&)> fallback;
  std::vector<RecordedCall> calls;
  bool honor_decided = false;
  int decided_after = -1;  // replies read when `decided` first held; -1: never

 private:
  int n_;
  ManualClock* clock_;
};

inline Reply Ok() { return {Reply::Type::kStatus, "OK", 0, {}}; }
inline Reply Nil() { return {Reply::Type::kNil, "", 0, {}}; }
inline Reply Int(int64_t v) { return {Reply::Type::kInteger, "", v, {}}; }
inline Reply Err() { return {Reply::Type::kError, "ERR boom", 0, {}}; }
inline Reply Tmo() { return Reply::Timeout("timed out"); }

}  // namespace lockstorm::testing
