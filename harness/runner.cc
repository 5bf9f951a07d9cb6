#include "harness/runner.h"

#include <sched.h>

#include <algorithm>
#include <exception>
#include <latch>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "harness/fiber.h"

namespace lockstorm {

uint64_t DeriveSeed(uint64_t seed, uint64_t a, uint64_t b) {
  auto mix = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  return mix(mix(mix(seed) ^ a) ^ (b * 0x632be59bd9b4e019ULL));
}

namespace {

constexpr size_t kMaxInfraErrorsKept = 50;

// The guarded resource: one integer per key, updated by a read at the start of the critical
// section and a write of value+1 at its end — deliberately not atomic, so two holders at once
// lose an update.
class GuardedResource {
 public:
  explicit GuardedResource(size_t keys) : values_(keys, 0) {}
  int64_t Read(size_t key_index) {
    std::lock_guard<std::mutex> lock(mu_);
    return values_[key_index];
  }
  void Write(size_t key_index, int64_t v) {
    std::lock_guard<std::mutex> lock(mu_);
    values_[key_index] = v;
  }

 private:
  std::mutex mu_;
  std::vector<int64_t> values_;  // by key index (Shared::keys)
};

// Client fault requests waiting for their target (ClientControl::Request). Bounded queue.
class FaultBoard {
 public:
  static constexpr size_t kMaxPending = 1024;

  void Post(const ClientFaultRequest& r) {
    std::lock_guard<std::mutex> lock(mu_);
    if (pending_.size() >= kMaxPending) pending_.erase(pending_.begin());
    Pending p;
    p.req = r;
    p.remaining = std::set<int>(r.clients.begin(), r.clients.end());
    pending_.push_back(std::move(p));
  }

  // Claims a request of `kind` for `client` (a request naming it, or an open one nobody has
  // claimed yet). Lapsed requests are dropped.
  std::optional<ClientFaultRequest> Claim(ClientFault kind, int client) {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t now = HistoryNowUs();
    for (size_t i = 0; i < pending_.size(); ++i) {
      Pending& p = pending_[i];
      if (p.req.expires_us > 0 && now > p.req.expires_us) {
        pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
        --i;
        continue;
      }
      if (p.req.kind != kind) continue;
      if (p.req.clients.empty()) {
        ClientFaultRequest r = p.req;
        pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
        return r;
      }
      if (p.remaining.erase(client)) {
        ClientFaultRequest r = p.req;
        if (p.remaining.empty()) pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
        return r;
      }
    }
    return std::nullopt;
  }

  bool Any() {
    std::lock_guard<std::mutex> lock(mu_);
    return !pending_.empty();
  }

  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.clear();
  }

 private:
  struct Pending {
    ClientFaultRequest req;
    std::set<int> remaining;
  };
  std::mutex mu_;
  std::vector<Pending> pending_;
};

struct Shared {
  const ImplUnderTest* impl;
  const Scenario* scenario;
  const RunContext* ctx;
  std::vector<std::string> keys;
  GuardedResource* resource;
  int64_t end_us;  // HistoryNowUs() deadline of the safety phase
  FaultBoard* board;
  int64_t liveness_bound_ms;
  int64_t start_us = 0;  // HistoryNowUs() at the safety phase's start
  // Per key: the validity deadline (history clock) of the lease last granted on it, 0 once
  // released. An ok acquire completing before the previous lease's deadline is an overlap
  // seen live (a hint for the progress line; the checker decides from the history).
  std::vector<std::atomic<int64_t>>* holders = nullptr;
};

// The harness's own view of a lock key: GET and PTTL on every node the impl uses, directly
// (never through the client's fault links), recorded as kSample events. Used right after an
// ok acquire or extend (contract: the reported validity does not outlive the key on a
// quorum), after a failed acquire (contract: a definite failure leaves no lock), and on every
// key after the run (leftover keys, keys with no TTL). A node that does not answer within
// kSampleTimeoutUs is left out (no event).
constexpr int64_t kSampleTimeoutUs = 50'000;

std::unique_ptr<Transport> NewSampler(const RunContext& ctx) {
  return ctx.new_transport ? ctx.new_transport(ctx.servers) : NewRedisTransport(ctx.servers);
}

void SampleKey(Transport* t, const RunContext& ctx, const std::string& impl,
               const std::string& scenario, int client, const std::string& key, int64_t lease_op,
               const char* why) {
  if (t == nullptr) return;
  std::vector<int> nodes;
  for (int n = 0; n < t->node_count(); ++n) nodes.push_back(n);
  const int64_t invoke_us = HistoryNowUs();
  std::vector<Reply> values = t->CallMany(nodes, {"GET", key}, kSampleTimeoutUs);
  std::vector<Reply> ttls = t->CallMany(nodes, {"PTTL", key}, kSampleTimeoutUs);
  const int64_t complete_us = HistoryNowUs();
  for (size_t i = 0; i < nodes.size() && i < values.size() && i < ttls.size(); ++i) {
    const Reply& v = values[i];
    const Reply& p = ttls[i];
    if (p.type != Reply::Type::kInteger) continue;
    if (v.type != Reply::Type::kString && v.type != Reply::Type::kNil) continue;
    Event e;
    e.impl = impl;
    e.scenario = scenario;
    e.client = client;
    e.key = key;
    e.type = OpType::kSample;
    e.invoke_us = invoke_us;
    e.complete_us = complete_us;
    e.lease_op = lease_op;
    e.node = nodes[i];
    e.token = v.type == Reply::Type::kString ? v.str : "";
    e.value = p.integer;
    e.note = why;
    ctx.history->Append(e);
  }
}

// Longest single sleep of a client while faults may arrive: a crash lands within this.
constexpr int64_t kFaultPollUs = 10000;

class Client : public LockObserver {
 public:
  Client(int index, const Shared& sh) : index_(index), sh_(sh), clock_(RealClock()) {
    rng_.seed(DeriveSeed(sh.ctx->seed, 1, static_cast<uint64_t>(index)));
  }

  SkewedClock* clock() { return &clock_; }

  // Builds the lock, opens its connections and starts its plug-in, outside the measured run.
  void Prepare(RunStats* stats) {
    stats_ = stats;
    const std::vector<ServerAddress> servers =
        sh_.ctx->client_servers ? sh_.ctx->client_servers(index_) : sh_.ctx->servers;
    transport_ =
        sh_.ctx->new_transport ? sh_.ctx->new_transport(servers) : NewRedisTransport(servers);
    LockEnv env;
    env.transport = transport_.get();
    env.clock = &clock_;
    env.seed =
        DeriveSeed(sh_.ctx->seed, 2,
                   static_cast<uint64_t>(index_) | static_cast<uint64_t>(incarnation_) << 32);
    env.client_id = "c" + std::to_string(index_);
    env.observer = this;
    lock_ = sh_.impl->make(index_, env, servers);
    ++incarnation_;
    if (sh_.ctx->contract_samples && !sampler_) sampler_ = NewSampler(*sh_.ctx);
    std::vector<int> all_nodes;
    for (int n = 0; n < transport_->node_count(); ++n) all_nodes.push_back(n);
    transport_->CallMany(all_nodes, {"PING"}, 2000000);  // connect now, not in the first op
    if (Status s = lock_->Prepare(); !s.ok()) {
      ++stats_->infra_error_count;
      if (stats_->infra_errors.size() < kMaxInfraErrorsKept)
        stats_->infra_errors.push_back(s.message());
    }
    CollectInfraErrors();
  }

  void Run() {
    const Workload& w = sh_.scenario->workload;
    if (w.rate_per_s > 0) {
      // Open loop: this client's share of the rate, staggered among the clients.
      const double per_client = w.rate_per_s / static_cast<double>(w.clients);
      interval_us_ = std::max<int64_t>(1, static_cast<int64_t>(1e6 / per_client));
      next_start_us_ = sh_.start_us + interval_us_ * index_ / w.clients;
    }
    // Bounded: ends at the duration, or on stop; each iteration's waits are bounded by
    // ttl, wait, hold and fault budgets.
    while (HistoryNowUs() < sh_.end_us && !sh_.ctx->stop->load()) {
      if (!lock_) {
        StayDead();
        continue;
      }
      Iteration(w);
      CollectInfraErrors();
    }
    CollectInfraErrors();
  }

  // The liveness phase: one acquire with the liveness bound as its wait budget (wait_ms = 0
  // when an earlier probe on the same key already failed: one try), then a release.
  // Returns whether it acquired.
  bool Probe(const std::string& key, bool key_failed_before) {
    if (!lock_) Prepare(stats_);  // a crashed client restarts
    const int64_t wait_ms = key_failed_before ? 0 : sh_.liveness_bound_ms;
    Event acq;
    int64_t local_us = 0;
    AcquireResult ar = TimedAcquire(key, wait_ms, &acq, &local_us);
    acq.phase = kPhaseLiveness;
    acq.note = "liveness probe, wait " + std::to_string(wait_ms) + " ms" +
               (ar.error.empty() ? "" : ": " + ar.error);
    sh_.ctx->history->Append(acq);
    ++stats_->probes;
    if (ar.outcome != Outcome::kOk) {
      CollectInfraErrors();
      return false;
    }
    ++stats_->probes_ok;
    Release(ar.lease, acq.op_id, kPhaseLiveness);
    CollectInfraErrors();
    return true;
  }

  void Shutdown() {
    lock_.reset();
    CollectInfraErrors();
  }

  void OnBackgroundExtend(const Lease& lease, const ExtendResult& r, int64_t elapsed_us) override {
    const int64_t now = HistoryNowUs();
    Event e = BaseEvent(OpType::kExtend, lease.key);
    e.lease_op = lease_op_.load();
    e.invoke_us = now - elapsed_us;
    e.complete_us = now;
    e.outcome = r.outcome;
    e.token = lease.token;
    e.ttl_ms = sh_.scenario->workload.ttl_ms;
    e.valid_ms = r.valid_ms;
    e.note = r.error.empty() ? "background" : "background: " + r.error;
    sh_.ctx->history->Append(e);
    if (r.outcome == Outcome::kOk) {
      deadline_us_.store(clock_.NowUs() + r.valid_ms * 1000);
    }
  }

  bool CrashPoint(const char* where) override {
    saw_crash_point_ = true;
    std::optional<ClientFaultRequest> r = sh_.board->Claim(ClientFault::kCrashMidAcquire, index_);
    if (!r) return false;
    mid_acquire_crash_ = *r;
    crash_point_ = where;
    return true;
  }

 private:
  Event BaseEvent(OpType type, const std::string& key) const {
    Event e;
    e.impl = sh_.impl->name;
    e.scenario = sh_.scenario->name;
    e.client = index_;
    e.key = key;
    e.type = type;
    return e;
  }

  int64_t SampleHoldUs(const Workload& w) {
    double total = 0;
    for (const auto& b : w.holds) total += b.weight;
    std::uniform_real_distribution<double> u(0, total);
    double pick = u(rng_);
    for (const auto& b : w.holds) {
      if (pick <= b.weight) {
        std::uniform_real_distribution<double> f(b.lo_ttl_frac, b.hi_ttl_frac);
        return static_cast<int64_t>(f(rng_) * static_cast<double>(w.ttl_ms) * 1000.0);
      }
      pick -= b.weight;
    }
    return 0;
  }

  // The client process dies: the lock stops (renewal too), nothing is released. It stays
  // dead for the request's duration (0 = until the safety phase ends), then restarts with a
  // fresh lock (Run() calls StayDead while lock_ is null).
  void Die(const ClientFaultRequest& r, const std::string& key, const std::string& why) {
    Event c = BaseEvent(OpType::kCrash, key);
    c.invoke_us = c.complete_us = HistoryNowUs();
    c.ttl_ms = sh_.liveness_bound_ms;  // the recovery bound (checker.h)
    c.note = std::string(ClientFaultName(r.kind)) + ": " + why +
             (r.label.empty() ? "" : " [" + r.label + "]");
    sh_.ctx->history->Append(c);
    lock_->Crash();
    CollectInfraErrors();
    lock_.reset();
    transport_.reset();
    lease_op_.store(-1);
    ++stats_->crashes;
    revive_at_us_ = r.duration_us > 0 ? HistoryNowUs() + r.duration_us : sh_.end_us;
  }

  void StayDead() {
    const int64_t now = HistoryNowUs();
    if (now >= revive_at_us_) {
      Prepare(stats_);
      return;
    }
    RealClock()->SleepUs(std::min(revive_at_us_ - now, kFaultPollUs));
  }

  // Open loop: waits for this client's next slot (bounded by the safety phase's end) and
  // returns the slot's start; false if the phase ended first. Closed loop: now.
  bool WaitForSlot(int64_t* intended_us) {
    if (interval_us_ == 0) {
      *intended_us = HistoryNowUs();
      return true;
    }
    // Bounded: each sleep is at most kFaultPollUs and the loop ends at end_us.
    for (int64_t now = HistoryNowUs(); now < next_start_us_; now = HistoryNowUs()) {
      if (now >= sh_.end_us || sh_.ctx->stop->load()) return false;
      RealClock()->SleepUs(std::min({next_start_us_ - now, sh_.end_us - now, kFaultPollUs}));
    }
    *intended_us = next_start_us_;
    next_start_us_ += interval_us_;  // behind schedule: the next cycle starts at once
    return HistoryNowUs() < sh_.end_us;
  }

  void Iteration(const Workload& w) {
    int64_t intended_us = 0;
    if (!WaitForSlot(&intended_us)) return;
    const size_t key_index = rng_() % sh_.keys.size();
    const std::string& key = sh_.keys[key_index];
    const int64_t hold_us = SampleHoldUs(w);

    mid_acquire_crash_.reset();
    saw_crash_point_ = false;
    Event acq;
    int64_t acquired_local_us = 0;
    AcquireResult ar = TimedAcquire(key, w.wait_ms, &acq, &acquired_local_us);
    ++stats_->acquires;
    stats_->attempts += ar.attempts;
    if (sh_.ctx->progress) sh_.ctx->progress->cycles.fetch_add(1, std::memory_order_relaxed);
    // A crash inside the acquire: at the lock's crash point, or (a lock whose acquire is one
    // command, which offers none) right after it, before the client saw the reply.
    if (!mid_acquire_crash_ && !saw_crash_point_ && ar.outcome == Outcome::kOk) {
      mid_acquire_crash_ = sh_.board->Claim(ClientFault::kCrashMidAcquire, index_);
      if (mid_acquire_crash_) {
        crash_point_ = "after the acquire command, before its reply was seen";
        acq.outcome = Outcome::kUnknown;
        acq.note = "client crashed before it saw the reply (the acquire had succeeded)";
      }
    }
    if (mid_acquire_crash_) {
      sh_.ctx->history->Append(acq);
      ++stats_->unknown;
      Die(*mid_acquire_crash_, key,
          "crashed mid-acquire of op " + std::to_string(acq.op_id) + " (" + crash_point_ + ")");
      mid_acquire_crash_.reset();
      return;
    }
    if (ar.outcome != Outcome::kOk) {
      sh_.ctx->history->Append(acq);
      // A definite failure must leave no lock behind: is its token held anywhere?
      if (ar.outcome == Outcome::kFail && !ar.lease.token.empty())
        SampleKey(sampler_.get(), *sh_.ctx, sh_.impl->name, sh_.scenario->name, index_, key,
                  acq.op_id, kSampleAfterFail);
      if (ar.outcome == Outcome::kFail) {
        ++stats_->contended;
        stats_->acquire_contended_us.Record(acq.complete_us - acq.invoke_us);
      }
      if (ar.outcome == Outcome::kUnknown) {
        ++stats_->unknown;
        clock_.SleepUs(1000);  // do not spin on a dead node
      }
      return;
    }
    // The event moves into the history (no copy of its strings): keep what is used below.
    const int64_t acq_op = acq.op_id;
    const int64_t acq_complete_us = acq.complete_us;
    const int64_t acq_invoke_us = acq.invoke_us;
    lease_op_.store(acq_op);
    deadline_us_.store(acquired_local_us + ar.lease.valid_ms * 1000);
    sh_.ctx->history->Append(std::move(acq));
    ++stats_->acquired;
    if (acq_complete_us <= sh_.end_us) ++stats_->acquired_in_window;
    ++stats_->acquired_per_client[static_cast<size_t>(index_)];
    stats_->acquire_us.Record(acq_complete_us - acq_invoke_us);
    stats_->time_to_acquire_us.Record(acq_complete_us - intended_us);
    std::atomic<int64_t>& holder = (*sh_.holders)[key_index];
    const int64_t my_deadline_us = acq_complete_us + ar.lease.valid_ms * 1000;
    if (holder.exchange(my_deadline_us) > acq_complete_us) {
      ++stats_->overlaps_seen;
      if (sh_.ctx->progress) sh_.ctx->progress->overlaps_seen.fetch_add(1);
    }
    if (sh_.ctx->progress) sh_.ctx->progress->acquired.fetch_add(1, std::memory_order_relaxed);
    // The validity the lock reported must not outlive its key on a quorum of nodes.
    SampleKey(sampler_.get(), *sh_.ctx, sh_.impl->name, sh_.scenario->name, index_, key, acq_op,
              kSampleAfterAcquire);

    if (!CriticalSection(w, key_index, ar.lease, acq_op, hold_us, acquired_local_us))
      return;  // died
    int64_t expected = my_deadline_us;
    holder.compare_exchange_strong(expected, 0);  // released, unless another lease took over

    const Timing rel = Release(ar.lease, acq_op, "");
    lease_op_.store(-1);
    stats_->release_us.Record(rel.complete_us - rel.invoke_us);
    if (rel.outcome == Outcome::kOk) stats_->cycle_us.Record(rel.complete_us - intended_us);
    if (rel.outcome == Outcome::kOk) ++stats_->releases_ok;
    if (rel.outcome == Outcome::kFail) ++stats_->releases_fail;
    if (rel.outcome == Outcome::kUnknown) ++stats_->releases_unknown;
  }

  // Acquires `key` for the workload's TTL with `wait_ms` and fills *acq (a fresh op id, both
  // times, outcome, lease fields; note = the lock's error) without recording it: the caller
  // may amend it first. *local_us = this client's clock at completion.
  AcquireResult TimedAcquire(const std::string& key, int64_t wait_ms, Event* acq,
                             int64_t* local_us) {
    const int64_t ttl_ms = sh_.scenario->workload.ttl_ms;
    *acq = BaseEvent(OpType::kAcquire, key);
    acq->op_id = sh_.ctx->history->NextOpId();
    acq->ttl_ms = ttl_ms;
    acq->invoke_us = HistoryNowUs();
    AcquireResult ar = lock_->Acquire(key, ttl_ms, wait_ms);
    *local_us = clock_.NowUs();
    acq->complete_us = HistoryNowUs();
    acq->outcome = ar.outcome;
    acq->attempts = ar.attempts;
    acq->split_votes = ar.split_votes;
    acq->token = ar.lease.token;
    acq->fence = ar.lease.fence;
    acq->valid_ms = ar.lease.valid_ms;
    acq->note = ar.error;
    return ar;
  }

  // When a recorded operation ran, and how it ended.
  struct Timing {
    int64_t invoke_us = 0;
    int64_t complete_us = 0;
    Outcome outcome = Outcome::kFail;
  };

  // Releases `lease` (granted by acquire `op_id`) and records it. The lease is spent: its key
  // and token move into the event (no copies on the hot path).
  Timing Release(Lease& lease, int64_t op_id, const std::string& phase) {
    Event rel = BaseEvent(OpType::kRelease, std::string());
    rel.phase = phase;
    rel.lease_op = op_id;
    rel.invoke_us = HistoryNowUs();
    ReleaseResult rr = lock_->Release(lease);
    rel.complete_us = HistoryNowUs();
    rel.key = std::move(lease.key);
    rel.token = std::move(lease.token);
    rel.outcome = rr.outcome;
    rel.note = std::move(rr.error);
    const Timing t{rel.invoke_us, rel.complete_us, rel.outcome};
    sh_.ctx->history->Append(std::move(rel));
    return t;
  }

  // Reads the resource, holds, maybe extends, then writes value+1 (unless an honest client's
  // validity ran out) and writes the witness when the lease is fenced. Returns false if the
  // client died (crash-client) inside it: no write, no release. An extend updates
  // lease.valid_ms in place (the caller's lease, released next).
  bool CriticalSection(const Workload& w, size_t key_index, Lease& lease, int64_t op_id,
                       int64_t hold_us, int64_t start_local_us) {
    Event use = BaseEvent(OpType::kUse, lease.key);
    use.lease_op = op_id;
    use.token = lease.token;
    use.fence = lease.fence;
    use.invoke_us = HistoryNowUs();
    use.value = sh_.resource->Read(key_index);
    const int64_t hold_end_us = start_local_us + hold_us;
    const bool faults = sh_.ctx->faults != nullptr;
    // A late extend (Workload::late_extend_frac): the first extend of this hold comes
    // late_delay_us after the validity ended, as a renewal delayed by a pause would.
    bool late_pending = false;
    int64_t late_delay_us = 0;
    if (w.extend && w.late_extend_frac > 0) {
      std::uniform_real_distribution<double> u(0, 1);
      late_pending = u(rng_) < w.late_extend_frac;
      std::uniform_int_distribution<int64_t> d(w.ttl_ms * 1000 / 10, w.ttl_ms * 1000 / 3);
      late_delay_us = d(rng_);
    }
    // The client works until its hold ends, whatever happens to the lease (the job takes as
    // long as it takes); it extends when the hold would outlive the lease. Bounded: each pass
    // sleeps until the hold ends, the next extend is due, or (with faults) kFaultPollUs.
    for (int pass = 0; pass < 1000000; ++pass) {
      if (faults) {
        if (auto r = sh_.board->Claim(ClientFault::kCrash, index_)) {
          Die(*r, lease.key, "died holding " + lease.key + " (op " + std::to_string(op_id) + ")");
          return false;
        }
      }
      const int64_t now = clock_.NowUs();
      if (now >= hold_end_us) break;
      int64_t wake = hold_end_us;
      const int64_t deadline = deadline_us_.load();
      if (w.extend && hold_end_us > deadline && (late_pending || now < deadline)) {
        const int64_t extend_at =
            late_pending ? deadline + late_delay_us : deadline - w.ttl_ms * 1000 / 3;
        if (now >= extend_at) {
          late_pending = false;
          Extend(w, &lease, op_id);
          continue;
        }
        wake = std::min(wake, extend_at);
      }
      int64_t sleep_us = std::max<int64_t>(wake - now, 1);
      if (faults) sleep_us = std::min(sleep_us, kFaultPollUs);
      clock_.SleepUs(sleep_us);
    }
    const bool valid = clock_.NowUs() < deadline_us_.load();
    // The GC pause lands here: after the client checked its lease, before it writes.
    if (faults) {
      if (auto r = sh_.board->Claim(ClientFault::kPause, index_)) Pause(*r, lease.key, op_id);
    }
    if (valid || !w.check_lease) {
      sh_.resource->Write(key_index, use.value + 1);
      use.outcome = Outcome::kOk;
    } else {
      use.outcome = Outcome::kFail;
      use.note = "abandoned: validity ran out";
      ++stats_->abandoned;
    }
    use.complete_us = HistoryNowUs();
    const bool wrote = use.outcome == Outcome::kOk;
    sh_.ctx->history->Append(std::move(use));
    if (lease.fence && wrote && sh_.ctx->witness) {
      Event wr = BaseEvent(OpType::kWrite, lease.key);
      wr.lease_op = op_id;
      wr.fence = lease.fence;
      wr.invoke_us = HistoryNowUs();
      WitnessWrite ww = sh_.ctx->witness->Write(lease.key, index_, *lease.fence);
      wr.complete_us = HistoryNowUs();
      wr.outcome = ww.accepted ? Outcome::kOk : Outcome::kFail;
      wr.value = ww.highest_before;
      if (!ww.accepted) ++stats_->witness_rejected;
      sh_.ctx->history->Append(wr);
    }
    return true;
  }

  // The whole client stalls (its thread here, its lock's background work via Freeze) for the
  // request's duration, on real time: a GC pause does not know about clock faults.
  void Pause(const ClientFaultRequest& r, const std::string& key, int64_t op_id) {
    Event f = BaseEvent(OpType::kFault, key);
    f.lease_op = op_id;
    f.invoke_us = HistoryNowUs();
    lock_->Freeze(true);
    RealClock()->SleepUs(r.duration_us);
    lock_->Freeze(false);
    f.complete_us = HistoryNowUs();
    f.note = "pause-holder: c" + std::to_string(index_) + " stalled " +
             std::to_string((f.complete_us - f.invoke_us) / 1000) +
             " ms inside its critical section (op " + std::to_string(op_id) +
             "), after checking its lease and before writing" +
             (r.label.empty() ? "" : " [" + r.label + "]");
    sh_.ctx->history->Append(f);
    ++stats_->pauses;
  }

  void Extend(const Workload& w, Lease* lease, int64_t op_id) {
    Event ext = BaseEvent(OpType::kExtend, lease->key);
    ext.lease_op = op_id;
    ext.token = lease->token;
    ext.ttl_ms = w.ttl_ms;
    ext.invoke_us = HistoryNowUs();
    ExtendResult er = lock_->Extend(*lease, w.ttl_ms);
    ext.complete_us = HistoryNowUs();
    ext.outcome = er.outcome;
    ext.valid_ms = er.valid_ms;
    ext.note = er.error;
    ext.op_id = sh_.ctx->history->Append(ext);
    stats_->extend_us.Record(ext.complete_us - ext.invoke_us);
    if (er.outcome == Outcome::kOk) {
      ++stats_->extends_ok;
      lease->valid_ms = er.valid_ms;
      deadline_us_.store(clock_.NowUs() + er.valid_ms * 1000);
      SampleKey(sampler_.get(), *sh_.ctx, sh_.impl->name, sh_.scenario->name, index_, lease->key,
                ext.op_id, kSampleAfterExtend);
    } else {
      // A failed or unknown extend: the lease keeps its old deadline; stop extending.
      if (er.outcome == Outcome::kFail) ++stats_->extends_fail;
      if (er.outcome == Outcome::kUnknown) ++stats_->extends_unknown;
      deadline_us_.store(std::min(deadline_us_.load(), clock_.NowUs()));
    }
  }

  void CollectInfraErrors() {
    if (!lock_ || sh_.impl->builtin) return;  // built-in locks have none (Lock::DrainInfraErrors)
    for (auto& e : lock_->DrainInfraErrors()) {
      ++stats_->infra_error_count;
      if (stats_->infra_errors.size() < kMaxInfraErrorsKept) stats_->infra_errors.push_back(e);
    }
  }

  int index_;
  const Shared& sh_;
  SkewedClock clock_;  // this client's clock: the lock and the validity checks read it
  Rng rng_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<Transport> sampler_;  // direct to the nodes; null without contract samples
  std::unique_ptr<Lock> lock_;
  int incarnation_ = 0;        // restarts after crashes (each gets fresh lock seeds)
  int64_t interval_us_ = 0;    // open loop: time between this client's cycle starts; 0 = closed
  int64_t next_start_us_ = 0;  // open loop: the next cycle's intended start (history clock)
  int64_t revive_at_us_ = 0;
  std::optional<ClientFaultRequest> mid_acquire_crash_;
  std::string crash_point_;
  bool saw_crash_point_ = false;  // the lock offered a crash point during this acquire
  RunStats* stats_ = nullptr;
  std::atomic<int64_t> lease_op_{-1};
  std::atomic<int64_t> deadline_us_{0};  // validity deadline on clock_
};

class Control : public ClientControl {
 public:
  Control(std::vector<std::unique_ptr<Client>>* clients, FaultBoard* board)
      : clients_(clients), board_(board) {}
  int client_count() const override { return static_cast<int>(clients_->size()); }
  void Request(const ClientFaultRequest& r) override { board_->Post(r); }
  SkewedClock* ClientClock(int i) override { return (*clients_)[static_cast<size_t>(i)]->clock(); }

 private:
  std::vector<std::unique_ptr<Client>>* clients_;
  FaultBoard* board_;
};

}  // namespace

int AutoClientThreads(int clients) {
  if (clients <= kMaxThreadPerClient) return 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  const int cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  return std::max(1, cpus);
}

std::string LockKey(const std::string& prefix, const std::string& impl, const std::string& scenario,
                    int k) {
  return prefix + impl + ":" + scenario + ":k" + std::to_string(k);
}

const char* ClientFaultName(ClientFault f) {
  switch (f) {
    case ClientFault::kPause:
      return "pause-holder";
    case ClientFault::kCrash:
      return "crash-client";
    case ClientFault::kCrashMidAcquire:
      return "crash-mid-acquire";
  }
  return "?";
}

namespace {

// PINGs every node directly every kHealthIntervalMs until `end_us` or stop (bounded by both).
std::vector<NodeHealth> WatchNodes(const RunContext& ctx, int64_t end_us) {
  constexpr int64_t kPingTimeoutUs = 200'000;
  std::vector<NodeHealth> health(ctx.servers.size());
  for (size_t i = 0; i < health.size(); ++i) {
    health[i].node = static_cast<int>(i);
    health[i].address = ctx.servers[i].ToString();
  }
  std::unique_ptr<Transport> t = NewSampler(ctx);
  if (!t) return health;
  for (int64_t next_us = HistoryNowUs(); HistoryNowUs() < end_us && !ctx.stop->load();) {
    for (size_t i = 0; i < health.size() && static_cast<int>(i) < t->node_count(); ++i) {
      const int64_t t0 = HistoryNowUs();
      const Reply r = t->Call(static_cast<int>(i), {"PING"}, kPingTimeoutUs);
      const int64_t rtt_us = HistoryNowUs() - t0;
      if (r.type == Reply::Type::kStatus && r.str == "PONG") {
        ++health[i].pings;
        health[i].ping_us.Record(rtt_us);
      } else {
        ++health[i].errors;
      }
    }
    next_us += kHealthIntervalMs * 1000;
    const int64_t now = HistoryNowUs();
    if (next_us > now)
      RealClock()->SleepUs(std::min(next_us - now, std::max<int64_t>(end_us - now, 0)));
    else
      next_us = now;
  }
  return health;
}

}  // namespace

RunStats RunWorkload(const ImplUnderTest& impl, const Scenario& scenario, const RunContext& ctx) {
  const Workload& w = scenario.workload;
  FaultBoard board;
  const int64_t bound_ms = ctx.liveness_bound_ms > 0        ? ctx.liveness_bound_ms
                           : scenario.liveness_bound_ms > 0 ? scenario.liveness_bound_ms
                                                            : w.ttl_ms + 1000;
  Shared sh{&impl, &scenario, &ctx, {}, nullptr, 0, &board, bound_ms};
  for (int k = 0; k < w.keys; ++k)
    sh.keys.push_back(LockKey(ctx.key_prefix, impl.name, scenario.name, k));
  GuardedResource resource(sh.keys.size());
  sh.resource = &resource;
  std::vector<std::atomic<int64_t>> holders(sh.keys.size());
  sh.holders = &holders;

  // Statistics: one RunStats per client thread, or with fibers one per scheduler thread,
  // shared by its clients (fiber i runs on thread i % threads: one hot set of histograms and
  // counters instead of 1000 cold ones). Merged below either way.
  const bool fibers = ctx.client_threads > 0;
  const int stats_slots = fibers ? std::clamp(ctx.client_threads, 1, w.clients) : w.clients;
  std::vector<RunStats> per_slot(static_cast<size_t>(stats_slots));
  for (RunStats& st : per_slot) st.acquired_per_client.assign(static_cast<size_t>(w.clients), 0);
  auto stats_of = [&](int client) { return &per_slot[static_cast<size_t>(client % stats_slots)]; };
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < w.clients; ++i) clients.push_back(std::make_unique<Client>(i, sh));
  Control control(&clients, &board);
  // Every client prepares (connects, starts its plug-in), then all start together.
  std::exception_ptr fiber_error;
  std::latch prepared(fibers ? 0 : w.clients);
  std::latch go(1);
  std::vector<std::thread> threads;
  if (fibers) {
    fiber::RunFibers(w.clients, ctx.client_threads,
                     [&](int i) { clients[static_cast<size_t>(i)]->Prepare(stats_of(i)); });
    threads.emplace_back([&] {
      go.wait();
      try {
        fiber::RunFibers(w.clients, ctx.client_threads,
                         [&](int i) { clients[static_cast<size_t>(i)]->Run(); });
      } catch (...) {
        fiber_error = std::current_exception();  // rethrown on this thread after the join
      }
    });
  } else {
    for (int i = 0; i < w.clients; ++i) {
      threads.emplace_back([&, i] {
        Client& c = *clients[static_cast<size_t>(i)];
        c.Prepare(stats_of(i));
        prepared.count_down();
        go.wait();
        c.Run();
      });
    }
  }
  prepared.wait();
  const int64_t start_us = HistoryNowUs();
  sh.start_us = start_us;
  sh.end_us = start_us + w.duration_ms * 1000;
  go.count_down();
  std::vector<NodeHealth> health;
  std::thread health_thread;
  if (ctx.node_health && !ctx.servers.empty()) {
    health_thread = std::thread([&] { health = WatchNodes(ctx, sh.end_us); });
  }
  // Safety phase: the workload runs with the nemesis' faults until the duration ends.
  if (ctx.faults) {
    ctx.faults->Begin(&control, start_us);
    for (int i = 0; i < 100000000 && HistoryNowUs() < sh.end_us && !ctx.stop->load(); ++i)
      RealClock()->SleepUs(std::min<int64_t>(sh.end_us - HistoryNowUs(), 20000));
    ctx.faults->HealAll();
    board.Clear();
  }
  for (auto& t : threads) t.join();
  const int64_t safety_end_us = HistoryNowUs();
  if (health_thread.joinable()) health_thread.join();
  if (fiber_error) std::rethrow_exception(fiber_error);  // every thread joined
  // Liveness phase: every fault healed; each client in turn must acquire within the bound.
  if (ctx.liveness_phase && !ctx.stop->load()) {
    std::set<std::string> failed_keys;
    for (int i = 0; i < w.clients && !ctx.stop->load(); ++i) {
      const std::string& key = sh.keys[static_cast<size_t>(i) % sh.keys.size()];
      if (!clients[static_cast<size_t>(i)]->Probe(key, failed_keys.count(key) > 0))
        failed_keys.insert(key);
    }
  }
  for (auto& c : clients) c->Shutdown();
  // Quiesced: every client released (or died). Sample every lock key on every node.
  if (ctx.contract_samples && !ctx.stop->load()) {
    std::unique_ptr<Transport> sampler = NewSampler(ctx);
    for (const std::string& key : sh.keys)
      SampleKey(sampler.get(), ctx, impl.name, scenario.name, -1, key, -1, kSampleQuiesce);
  }

  RunStats total;
  total.impl = impl.name;
  total.scenario = scenario.name;
  total.acquired_per_client.assign(static_cast<size_t>(w.clients), 0);
  for (const RunStats& s : per_slot) {
    total.attempts += s.attempts;
    total.acquires += s.acquires;
    total.acquired += s.acquired;
    total.acquired_in_window += s.acquired_in_window;
    total.contended += s.contended;
    total.unknown += s.unknown;
    total.releases_ok += s.releases_ok;
    total.releases_fail += s.releases_fail;
    total.releases_unknown += s.releases_unknown;
    total.extends_ok += s.extends_ok;
    total.extends_fail += s.extends_fail;
    total.extends_unknown += s.extends_unknown;
    total.abandoned += s.abandoned;
    total.pauses += s.pauses;
    total.crashes += s.crashes;
    total.probes += s.probes;
    total.probes_ok += s.probes_ok;
    total.witness_rejected += s.witness_rejected;
    total.infra_error_count += s.infra_error_count;
    for (const auto& e : s.infra_errors)
      if (total.infra_errors.size() < kMaxInfraErrorsKept) total.infra_errors.push_back(e);
    for (size_t i = 0; i < s.acquired_per_client.size(); ++i)
      total.acquired_per_client[i] += s.acquired_per_client[i];
    total.overlaps_seen += s.overlaps_seen;
    total.acquire_us.Merge(s.acquire_us);
    total.acquire_contended_us.Merge(s.acquire_contended_us);
    total.time_to_acquire_us.Merge(s.time_to_acquire_us);
    total.release_us.Merge(s.release_us);
    total.extend_us.Merge(s.extend_us);
    total.cycle_us.Merge(s.cycle_us);
  }
  total.node_health = std::move(health);
  total.start_us = start_us;
  total.elapsed_us = safety_end_us - start_us;
  total.window_us =
      std::min(safety_end_us, sh.end_us) - start_us;  // the safety phase: throughput's denominator
  return total;
}

}  // namespace lockstorm
