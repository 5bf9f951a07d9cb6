// Redlock (https://redis.io/docs/manual/patterns/distributed-locks/) over N independent nodes.
//
// Acquire, one attempt:
//   1. t0 = clock; a fresh random token; SET key token NX PX ttl on all N nodes at once
//      (Transport::CallMany) with a per-node timeout small relative to the TTL.
//   2. elapsed = clock - t0; validity = ttl - elapsed - drift, drift = ttl * 1% + 2 ms.
//   3. Acquired iff at least quorum = N/2+1 nodes answered OK and validity >= 1 ms (which
//      implies elapsed < ttl). The lease's valid_ms is that validity.
//   4. Otherwise: compare-and-delete (Lua) the token on ALL nodes — also those that timed out
//      or answered an error, since they may hold the key — and classify the attempt (below).
// Retries: after a definite failure, sleep a random delay (kMinRetryDelayUs..RetryDelayCapUs)
// on env.clock, never beyond the wait budget, and try again with a new token; wait_ms = 0
// means exactly one attempt. An ambiguous attempt ends the acquire with kUnknown (as the
// single-node locks' RetryAcquire does): the caller knows the lock may be held in Redis.
//
// Outcome of a failed attempt. After the cleanup, node i may still hold our token iff
//   - its SET answered OK and the cleanup did not answer with an integer (timeout, I/O error,
//     error reply: the key may still be there), or
//   - its SET's outcome is unknown (timeout / I/O error) and the cleanup did not answer 1.
//     A cleanup answering 0 does not clear such a node: the transport dropped the connection
//     that carried the SET, and a SET still in flight (delayed in the network, or buffered at
//     a paused server) may be applied after the cleanup ran.
//   A SET that answered nil (someone else holds the key) or an error did not run, and cannot.
// If the nodes that may still hold our token could form a quorum, the attempt is AMBIGUOUS
// (kUnknown): e.g. a quorum of OKs whose validity ran out and whose cleanup timed out, or
// unknown SET replies that, had they been OKs, would have made a quorum. Otherwise it is a
// definite FAIL (kFail): a majority is definitely not ours, so no quorum of our keys can exist,
// even if a minority of them lingers until its TTL.
//
// Extend: compare-and-pexpire (Lua) on all nodes at once. Counted (kOk) only if a quorum
// answered 1, the fan-out completed before the lease's current validity ended, and the new
// validity = ttl - elapsed - drift is >= 1 ms. Otherwise the lease is surrendered: the same
// cleanup as a failed acquire, and kFail unless the nodes possibly still holding the token
// (reply 1 or unknown, and no integer answer from the cleanup) could form a quorum (kUnknown).
// The lock remembers, per lease it granted, when its validity ends on env.clock; an extend of
// a lease whose validity already ended sends nothing and fails.
//
// Release: compare-and-delete on all nodes at once: kOk if a quorum deleted (1), kFail if a
// quorum answered 0 (not ours there any more), kUnknown otherwise (no quorum of definite
// answers either way).
//
// Only env.transport and env.clock are used; randomness comes from an Rng (harness/rng.h)
// seeded with env.seed, so a deterministic simulator replays the same choices.
//
// RedlockOptions (impls/builtin.h) can plant one bug each for the mutant corpus
// (impls/mutants.cc); NewRedlockLock uses the defaults, which are the algorithm above.
#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "impls/builtin.h"
#include "impls/common.h"

namespace lockstorm {
namespace {

// Per-node timeout of every fan-out: the TTL / kNodeTimeoutTtlDivisor, clamped to
// [kMinNodeTimeoutUs, kMaxNodeTimeoutUs] — the spec's "5-50 ms for a 10 s TTL": a dead or slow
// node must cost only a small part of the validity.
constexpr int64_t kNodeTimeoutTtlDivisor = 10;
constexpr int64_t kMinNodeTimeoutUs = 5'000;
constexpr int64_t kMaxNodeTimeoutUs = 50'000;
// Release carries no TTL to scale with: it gets the largest per-node timeout.
constexpr int64_t kReleaseNodeTimeoutUs = kMaxNodeTimeoutUs;

// Clock drift allowance: kDriftUsPerTtlMs per ms of TTL (1%) plus kDriftFixedUs (2 ms).
constexpr int64_t kDriftUsPerTtlMs = 10;
constexpr int64_t kDriftFixedUs = 2'000;

// Retry delay after a failed attempt: uniform in [kMinRetryDelayUs, RetryDelayCapUs(ttl)],
// where the cap is ttl / kRetryDelayTtlDivisor clamped to [kRetryDelayFloorUs,
// kRetryDelayCeilingUs]. Random so that contending clients desynchronize (spec: "retry after
// a random delay"); at least 1 ms so that a retry loop never spins.
constexpr int64_t kMinRetryDelayUs = 1'000;
constexpr int64_t kRetryDelayTtlDivisor = 10;
constexpr int64_t kRetryDelayFloorUs = 5'000;
constexpr int64_t kRetryDelayCeilingUs = 200'000;

int64_t NodeTimeoutUs(int64_t ttl_ms) {
  return std::clamp(ttl_ms * 1000 / kNodeTimeoutTtlDivisor, kMinNodeTimeoutUs, kMaxNodeTimeoutUs);
}

int64_t DriftUs(int64_t ttl_ms) { return ttl_ms * kDriftUsPerTtlMs + kDriftFixedUs; }

int64_t RetryDelayCapUs(int64_t ttl_ms) {
  return std::clamp(ttl_ms * 1000 / kRetryDelayTtlDivisor, kRetryDelayFloorUs,
                    kRetryDelayCeilingUs);
}

bool IsInteger(const Reply& r) { return r.type == Reply::Type::kInteger; }

std::string Summary(const std::vector<Reply>& replies) {
  std::string s;
  for (size_t i = 0; i < replies.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(i) + ":" + replies[i].ToString();
  }
  return "[" + s + "]";
}

class RedlockLock : public Lock {
 public:
  RedlockLock(const LockEnv& env, const RedlockOptions& options)
      : transport_(env.transport), clock_(env.clock), rng_(env.seed), options_(options) {
    for (int i = 0; i < transport_->node_count(); ++i) nodes_.push_back(i);
    const int n = static_cast<int>(nodes_.size());
    quorum_ = options_.majority_quorum ? n / 2 + 1 : std::max(1, n / 2);
  }

  AcquireResult Acquire(const std::string& key, int64_t ttl_ms, int64_t wait_ms) override {
    AcquireResult result;
    if (ttl_ms <= 0) {
      result.error = "ttl_ms must be > 0";
      return result;
    }
    const int64_t deadline_us = clock_->NowUs() + std::max<int64_t>(wait_ms, 0) * 1000;
    const std::string kept_token = options_.retry_keeps_partials ? RandomToken(rng_) : "";
    for (;;) {
      ++result.attempts;
      result.lease = Lease{};
      const std::string token = options_.retry_keeps_partials ? kept_token : RandomToken(rng_);
      int votes = 0;
      result.outcome = TryOnce(key, ttl_ms, token, &result.lease, &result.error, &votes);
      if (result.outcome != Outcome::kOk && votes > 0 && votes < quorum_) ++result.split_votes;
      if (result.outcome != Outcome::kFail) return result;
      const int64_t left_us = deadline_us - clock_->NowUs();
      if (left_us <= 0) {
        // The partials of every attempt are cleaned up at the end, as node-redlock does.
        if (options_.retry_keeps_partials) Unlock(key, token, NodeTimeoutUs(ttl_ms));
        return result;
      }
      std::uniform_int_distribution<int64_t> delay(kMinRetryDelayUs, RetryDelayCapUs(ttl_ms));
      clock_->SleepUs(std::min(delay(rng_), left_us));
    }
  }

  ExtendResult Extend(const Lease& lease, int64_t ttl_ms) override {
    ExtendResult result;
    if (ttl_ms <= 0) {
      result.error = "ttl_ms must be > 0";
      return result;
    }
    auto it = valid_until_us_.find(lease.token);
    const int64_t t0 = clock_->NowUs();
    if (it == valid_until_us_.end() || it->second <= t0) {
      if (it != valid_until_us_.end()) valid_until_us_.erase(it);
      result.error = "lease validity already ended (or lease not granted by this lock)";
      return result;
    }
    const int64_t valid_until_us = it->second;
    std::vector<Reply> replies =
        FanOut({"EVAL", kCompareAndPexpireLua, "1", lease.key, lease.token, std::to_string(ttl_ms)},
               NodeTimeoutUs(ttl_ms));
    const int64_t t1 = clock_->NowUs();
    const int64_t validity_ms = (ttl_ms * 1000 - CountedUs(t1 - t0) - Drift(ttl_ms)) / 1000;
    int ones = 0;
    for (const Reply& r : replies) ones += r.is_integer(1) ? 1 : 0;
    if (ones >= quorum_ && t1 < valid_until_us && validity_ms >= 1) {
      it->second = t0 + ttl_ms * 1000 - Drift(ttl_ms);
      result.outcome = Outcome::kOk;
      result.valid_ms = validity_ms;
      return result;
    }
    // Not counted: surrender the lease everywhere.
    valid_until_us_.erase(it);
    std::vector<Reply> cleanup = Unlock(lease.key, lease.token, NodeTimeoutUs(ttl_ms));
    int maybe_ours = 0;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      const bool touched = replies[i].is_integer(1) || replies[i].unknown();
      if (touched && !IsInteger(cleanup[i])) ++maybe_ours;
    }
    result.outcome = maybe_ours >= quorum_ ? Outcome::kUnknown : Outcome::kFail;
    result.error = "extend not counted: " + std::to_string(ones) + "/" +
                   std::to_string(nodes_.size()) + " extended (quorum " + std::to_string(quorum_) +
                   "), elapsed " + std::to_string(t1 - t0) + " us, validity " +
                   std::to_string(validity_ms) + " ms; replies " + Summary(replies) + ", cleanup " +
                   Summary(cleanup);
    return result;
  }

  ReleaseResult Release(const Lease& lease) override {
    ReleaseResult result;
    valid_until_us_.erase(lease.token);
    std::vector<Reply> replies = Unlock(lease.key, lease.token, kReleaseNodeTimeoutUs);
    int deleted = 0;
    int not_ours = 0;
    for (const Reply& r : replies) {
      if (r.is_integer(1)) ++deleted;
      if (r.is_integer(0)) ++not_ours;
    }
    if (deleted >= quorum_) {
      result.outcome = Outcome::kOk;
    } else if (not_ours >= quorum_) {
      result.outcome = Outcome::kFail;
      result.error = "not held by this lease on a quorum: " + Summary(replies);
    } else {
      result.outcome = Outcome::kUnknown;
      result.error = "no quorum of definite answers: " + Summary(replies);
    }
    return result;
  }

 private:
  // One attempt with `token`. kOk fills *lease; kFail: a majority is definitely not ours;
  // kUnknown: a quorum of our keys may exist. *why explains a non-kOk outcome.
  // *votes = the OKs seen before the outcome was decided.
  Outcome TryOnce(const std::string& key, int64_t ttl_ms, const std::string& token, Lease* lease,
                  std::string* why, int* votes) {
    const int64_t t0 = clock_->NowUs();
    // Stop waiting once the outcome is decided: a quorum of OKs, or so many definite refusals
    // that no quorum is possible. The slowest nodes then do not add to the latency; their SET
    // was sent and may apply (release and cleanup go to every node anyway).
    const int n = static_cast<int>(nodes_.size());
    const int quorum = quorum_;
    const Command set =
        options_.retry_keeps_partials
            ? Command{"EVAL", kSetNxOrOursLua, "1", key, token, std::to_string(ttl_ms)}
            : Command{"SET", key, token, "NX", "PX", std::to_string(ttl_ms)};
    std::vector<Reply> replies = transport_->CallManyUntil(
        nodes_, set, NodeTimeoutUs(ttl_ms), [n, quorum](const std::vector<const Reply*>& so_far) {
          int yes = 0, no = 0;
          for (const Reply* r : so_far) {
            if (r == nullptr) continue;
            if (r->is_ok_status())
              ++yes;
            else if (!r->unknown())
              ++no;
          }
          return yes >= quorum || no > n - quorum;
        });
    replies.resize(nodes_.size(), Reply::IoError("no reply from transport"));
    const int64_t elapsed_us = clock_->NowUs() - t0;
    const int64_t validity_ms = (ttl_ms * 1000 - CountedUs(elapsed_us) - Drift(ttl_ms)) / 1000;
    int oks = 0;
    for (const Reply& r : replies) oks += r.is_ok_status() ? 1 : 0;
    *votes = oks;
    if (oks >= quorum_ && validity_ms >= 1) {
      PruneExpired(t0);
      valid_until_us_[token] = t0 + ttl_ms * 1000 - Drift(ttl_ms);
      lease->key = key;
      lease->token = token;
      lease->valid_ms = validity_ms;
      return Outcome::kOk;
    }
    // Name the attempt's token also on kFail: minority keys it may have left behind (ghosts
    // that the cleanup could not confirm) can then be traced to it.
    lease->key = key;
    lease->token = token;
    const std::string attempt = std::to_string(oks) + "/" + std::to_string(nodes_.size()) +
                                " OK (quorum " + std::to_string(quorum_) + "), elapsed " +
                                std::to_string(elapsed_us) + " us, validity " +
                                std::to_string(validity_ms) + " ms; ";
    if (options_.retry_keeps_partials) {
      // No cleanup: the next attempt, with the same token, counts these keys as acquired.
      int touched = 0;
      for (const Reply& r : replies) touched += r.is_ok_status() || r.unknown() ? 1 : 0;
      if (touched < quorum_) {
        *why = attempt + "keys kept for the next attempt; SET " + Summary(replies);
        return Outcome::kFail;
      }
    }
    // Nodes that may hold the token: all (the spec), or the mutant's OK-only subset.
    std::vector<int> suspects;
    for (int i : nodes_) {
      if (options_.cleanup_unknown_nodes || replies[i].is_ok_status()) suspects.push_back(i);
    }
    std::vector<Reply> cleanup = Unlock(suspects, key, token, NodeTimeoutUs(ttl_ms));
    int maybe_ours = 0;
    for (int i : suspects) {
      if (replies[i].is_ok_status()) {
        if (!IsInteger(cleanup[i])) ++maybe_ours;
      } else if (replies[i].unknown()) {
        if (!cleanup[i].is_integer(1)) ++maybe_ours;
      }
    }
    *why = attempt + std::to_string(maybe_ours) + " node(s) may still hold the token; SET " +
           Summary(replies) + ", cleanup " + Summary(cleanup);
    return maybe_ours >= quorum_ ? Outcome::kUnknown : Outcome::kFail;
  }

  std::vector<Reply> Unlock(const std::string& key, const std::string& token, int64_t timeout_us) {
    return Unlock(nodes_, key, token, timeout_us);
  }
  // Compare-and-delete on `targets` only; one reply per node, "not sent" for the others.
  std::vector<Reply> Unlock(const std::vector<int>& targets, const std::string& key,
                            const std::string& token, int64_t timeout_us) {
    return FanOut(targets, {"EVAL", kCompareAndDeleteLua, "1", key, token}, timeout_us);
  }

  // `cmd` on every node at once; exactly one reply per node (a transport answering fewer
  // leaves the missing ones unknown).
  std::vector<Reply> FanOut(const Command& cmd, int64_t timeout_us) {
    return FanOut(nodes_, cmd, timeout_us);
  }
  // `cmd` on each node of `targets` (a subset of nodes_) at once; one reply per node of
  // nodes_, in node order: unknown ("not sent") for nodes outside `targets`.
  std::vector<Reply> FanOut(const std::vector<int>& targets, const Command& cmd,
                            int64_t timeout_us) {
    std::vector<Reply> replies(nodes_.size(), Reply::IoError("not sent"));
    if (targets.empty()) return replies;
    std::vector<Reply> got = transport_->CallMany(targets, cmd, timeout_us);
    got.resize(targets.size(), Reply::IoError("no reply from transport"));
    for (size_t j = 0; j < targets.size(); ++j) replies[targets[j]] = std::move(got[j]);
    return replies;
  }

  // The part of an operation's elapsed time that its validity accounts for: all of it, or
  // none (no-elapsed-check).
  int64_t CountedUs(int64_t elapsed_us) const { return options_.subtract_elapsed ? elapsed_us : 0; }
  // The clock-drift allowance for a `ttl_ms` lease: DriftUs, or 0 (no-drift).
  int64_t Drift(int64_t ttl_ms) const { return options_.drift_allowance ? DriftUs(ttl_ms) : 0; }

  // Forgets leases whose validity has ended (their extends fail either way), so that leases
  // never released do not accumulate.
  void PruneExpired(int64_t now_us) {
    std::erase_if(valid_until_us_, [now_us](const auto& e) { return e.second <= now_us; });
  }

  Transport* transport_;
  Clock* clock_;
  Rng rng_;
  const RedlockOptions options_;
  std::vector<int> nodes_;  // 0..N-1: every fan-out goes to all nodes
  int quorum_ = 1;
  std::map<std::string, int64_t> valid_until_us_;  // token -> end of validity (clock_)
};

}  // namespace

std::unique_ptr<Lock> NewRedlockLock(const LockEnv& env) {
  return NewRedlockLockWith(env, RedlockOptions{});
}
std::unique_ptr<Lock> NewRedlockLockWith(const LockEnv& env, const RedlockOptions& options) {
  return std::make_unique<RedlockLock>(env, options);
}

}  // namespace lockstorm
