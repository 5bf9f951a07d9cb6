#include "harness/runner.h"

#include <algorithm>
#include <latch>
#include <map>
#include <mutex>
#include <random>
#include <thread>

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
  explicit GuardedResource(const std::vector<std::string>& keys) {
    for (const auto& k : keys) values_[k] = 0;
  }
  int64_t Read(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    return values_[key];
  }
  void Write(const std::string& key, int64_t v) {
    std::lock_guard<std::mutex> lock(mu_);
    values_[key] = v;
  }

 private:
  std::mutex mu_;
  std::map<std::string, int64_t> values_;
};

struct Shared {
  const ImplUnderTest* impl;
  const Scenario* scenario;
  const RunContext* ctx;
  std::vector<std::string> keys;
  GuardedResource* resource;
  int64_t end_us;  // HistoryNowUs() deadline
};

class Client : public LockObserver {
 public:
  Client(int index, const Shared& sh) : index_(index), sh_(sh) {
    rng_.seed(DeriveSeed(sh.ctx->seed, 1, static_cast<uint64_t>(index)));
  }

  // Builds the lock, opens its connections and starts its plug-in, outside the measured run.
  void Prepare(RunStats* stats) {
    transport_ = sh_.ctx->new_transport ? sh_.ctx->new_transport(sh_.ctx->servers)
                                        : NewRedisTransport(sh_.ctx->servers);
    LockEnv env;
    env.transport = transport_.get();
    env.clock = RealClock();
    env.seed = DeriveSeed(sh_.ctx->seed, 2, static_cast<uint64_t>(index_));
    env.client_id = "c" + std::to_string(index_);
    env.observer = this;
    lock_ = sh_.impl->make(index_, env, sh_.ctx->servers);
    stats_ = stats;
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
    // Bounded: ends at the duration, or on stop; each iteration's waits are bounded by
    // ttl, wait and hold budgets.
    while (HistoryNowUs() < sh_.end_us && !sh_.ctx->stop->load()) {
      Iteration(w);
      CollectInfraErrors();
    }
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
      deadline_us_.store(RealClock()->NowUs() + r.valid_ms * 1000);
    }
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

  void Iteration(const Workload& w) {
    const std::string& key = sh_.keys[rng_() % sh_.keys.size()];
    const int64_t hold_us = SampleHoldUs(w);

    Event acq = BaseEvent(OpType::kAcquire, key);
    acq.op_id = sh_.ctx->history->NextOpId();
    acq.ttl_ms = w.ttl_ms;
    acq.invoke_us = HistoryNowUs();
    AcquireResult ar = lock_->Acquire(key, w.ttl_ms, w.wait_ms);
    const int64_t acquired_local_us = RealClock()->NowUs();
    acq.complete_us = HistoryNowUs();
    acq.outcome = ar.outcome;
    acq.attempts = ar.attempts;
    acq.token = ar.lease.token;
    acq.fence = ar.lease.fence;
    acq.valid_ms = ar.lease.valid_ms;
    acq.note = ar.error;
    ++stats_->acquires;
    stats_->attempts += ar.attempts;
    if (ar.outcome != Outcome::kOk) {
      sh_.ctx->history->Append(acq);
      if (ar.outcome == Outcome::kFail) ++stats_->contended;
      if (ar.outcome == Outcome::kUnknown) {
        ++stats_->unknown;
        RealClock()->SleepUs(1000);  // do not spin on a dead node
      }
      return;
    }
    lease_op_.store(acq.op_id);
    deadline_us_.store(acquired_local_us + ar.lease.valid_ms * 1000);
    sh_.ctx->history->Append(acq);
    ++stats_->acquired;
    ++stats_->acquired_per_client[static_cast<size_t>(index_)];
    stats_->acquire_us.Record(acq.complete_us - acq.invoke_us);

    CriticalSection(w, ar.lease, acq.op_id, hold_us, acquired_local_us);

    Event rel = BaseEvent(OpType::kRelease, key);
    rel.lease_op = acq.op_id;
    rel.token = ar.lease.token;
    rel.invoke_us = HistoryNowUs();
    ReleaseResult rr = lock_->Release(ar.lease);
    rel.complete_us = HistoryNowUs();
    rel.outcome = rr.outcome;
    rel.note = rr.error;
    sh_.ctx->history->Append(rel);
    lease_op_.store(-1);
    stats_->release_us.Record(rel.complete_us - rel.invoke_us);
    if (rr.outcome == Outcome::kOk) ++stats_->releases_ok;
    if (rr.outcome == Outcome::kFail) ++stats_->releases_fail;
    if (rr.outcome == Outcome::kUnknown) ++stats_->releases_unknown;
  }

  // Reads the resource, holds, maybe extends, then writes value+1 (unless an honest client's
  // validity ran out) and writes the witness when the lease is fenced.
  void CriticalSection(const Workload& w, Lease lease, int64_t op_id, int64_t hold_us,
                       int64_t start_local_us) {
    Clock* clock = RealClock();
    Event use = BaseEvent(OpType::kUse, lease.key);
    use.lease_op = op_id;
    use.token = lease.token;
    use.fence = lease.fence;
    use.invoke_us = HistoryNowUs();
    use.value = sh_.resource->Read(lease.key);
    const int64_t hold_end_us = start_local_us + hold_us;
    // The client works until its hold ends, whatever happens to the lease (the job takes as
    // long as it takes); it extends when the hold would outlive the lease. Bounded: each pass
    // sleeps until the hold ends or the next extend is due.
    for (int pass = 0; pass < 10000; ++pass) {
      const int64_t now = clock->NowUs();
      if (now >= hold_end_us) break;
      int64_t wake = hold_end_us;
      const int64_t deadline = deadline_us_.load();
      if (w.extend && hold_end_us > deadline && now < deadline) {
        const int64_t extend_at = deadline - w.ttl_ms * 1000 / 3;
        if (now >= extend_at) {
          Extend(w, &lease, op_id);
          continue;
        }
        wake = std::min(wake, extend_at);
      }
      clock->SleepUs(std::max<int64_t>(wake - now, 1));
    }
    const bool valid = clock->NowUs() < deadline_us_.load();
    if (valid || !w.check_lease) {
      sh_.resource->Write(lease.key, use.value + 1);
      use.outcome = Outcome::kOk;
    } else {
      use.outcome = Outcome::kFail;
      use.note = "abandoned: validity ran out";
      ++stats_->abandoned;
    }
    use.complete_us = HistoryNowUs();
    sh_.ctx->history->Append(use);
    if (lease.fence && use.outcome == Outcome::kOk && sh_.ctx->witness) {
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
    sh_.ctx->history->Append(ext);
    stats_->extend_us.Record(ext.complete_us - ext.invoke_us);
    if (er.outcome == Outcome::kOk) {
      ++stats_->extends_ok;
      lease->valid_ms = er.valid_ms;
      deadline_us_.store(RealClock()->NowUs() + er.valid_ms * 1000);
    } else {
      // A failed or unknown extend: the lease keeps its old deadline; stop extending.
      if (er.outcome == Outcome::kFail) ++stats_->extends_fail;
      if (er.outcome == Outcome::kUnknown) ++stats_->extends_unknown;
      deadline_us_.store(std::min(deadline_us_.load(), RealClock()->NowUs()));
    }
  }

  void CollectInfraErrors() {
    if (!lock_) return;
    for (auto& e : lock_->DrainInfraErrors()) {
      ++stats_->infra_error_count;
      if (stats_->infra_errors.size() < kMaxInfraErrorsKept) stats_->infra_errors.push_back(e);
    }
  }

  int index_;
  const Shared& sh_;
  std::mt19937_64 rng_;
  std::unique_ptr<Transport> transport_;
  std::unique_ptr<Lock> lock_;
  RunStats* stats_ = nullptr;
  std::atomic<int64_t> lease_op_{-1};
  std::atomic<int64_t> deadline_us_{0};  // local (RealClock) validity deadline
};

}  // namespace

RunStats RunWorkload(const ImplUnderTest& impl, const Scenario& scenario, const RunContext& ctx) {
  const Workload& w = scenario.workload;
  Shared sh{&impl, &scenario, &ctx, {}, nullptr, 0};
  for (int k = 0; k < w.keys; ++k) {
    sh.keys.push_back(ctx.key_prefix + impl.name + ":" + scenario.name + ":k" + std::to_string(k));
  }
  GuardedResource resource(sh.keys);
  sh.resource = &resource;

  std::vector<RunStats> per_client(static_cast<size_t>(w.clients));
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < w.clients; ++i) {
    per_client[static_cast<size_t>(i)].acquired_per_client.assign(static_cast<size_t>(w.clients),
                                                                  0);
    clients.push_back(std::make_unique<Client>(i, sh));
  }
  // Every client prepares (connects, starts its plug-in), then all start together.
  std::latch prepared(w.clients);
  std::latch go(1);
  std::vector<std::thread> threads;
  for (int i = 0; i < w.clients; ++i) {
    threads.emplace_back([&, i] {
      Client& c = *clients[static_cast<size_t>(i)];
      c.Prepare(&per_client[static_cast<size_t>(i)]);
      prepared.count_down();
      go.wait();
      c.Run();
    });
  }
  prepared.wait();
  const int64_t start_us = HistoryNowUs();
  sh.end_us = start_us + w.duration_ms * 1000;
  go.count_down();
  for (auto& t : threads) t.join();

  RunStats total;
  total.impl = impl.name;
  total.scenario = scenario.name;
  total.acquired_per_client.assign(static_cast<size_t>(w.clients), 0);
  for (const RunStats& s : per_client) {
    total.attempts += s.attempts;
    total.acquires += s.acquires;
    total.acquired += s.acquired;
    total.contended += s.contended;
    total.unknown += s.unknown;
    total.releases_ok += s.releases_ok;
    total.releases_fail += s.releases_fail;
    total.releases_unknown += s.releases_unknown;
    total.extends_ok += s.extends_ok;
    total.extends_fail += s.extends_fail;
    total.extends_unknown += s.extends_unknown;
    total.abandoned += s.abandoned;
    total.witness_rejected += s.witness_rejected;
    total.infra_error_count += s.infra_error_count;
    for (const auto& e : s.infra_errors)
      if (total.infra_errors.size() < kMaxInfraErrorsKept) total.infra_errors.push_back(e);
    for (size_t i = 0; i < s.acquired_per_client.size(); ++i)
      total.acquired_per_client[i] += s.acquired_per_client[i];
    total.acquire_us.Merge(s.acquire_us);
    total.release_us.Merge(s.release_us);
    total.extend_us.Merge(s.extend_us);
  }
  total.elapsed_us = HistoryNowUs() - start_us;
  return total;
}

}  // namespace lockstorm
