#include "harness/checker.h"

#include <algorithm>
#include <bit>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <string_view>

namespace lockstorm {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
constexpr int64_t kMinTime = std::numeric_limits<int64_t>::min();
// Availability: only failed acquires that waited at least this long are judged, and only
// when the key was free for at least kUnavailableFreeFrac of the wait.
constexpr int64_t kUnavailableMinWaitUs = 100'000;
constexpr double kUnavailableFreeFrac = 0.75;

using Rec = CompactHistory::Rec;
using PairKey = std::pair<std::string, std::string>;

// a + b, saturating at the int64 limits.
int64_t AddSat(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? kNever : kMinTime;
  return r;
}

int64_t MsToUs(int64_t ms) { return ms * 1000; }  // ms fits int32: no overflow

int32_t ClampInt32(int64_t v) {
  return static_cast<int32_t>(std::clamp<int64_t>(v, std::numeric_limits<int32_t>::min(),
                                                  std::numeric_limits<int32_t>::max()));
}

// The validity deadline an ok acquire/extend reports: from `base_us` for valid_ms, or from
// the event's invoke for ttl_ms when the lock reports no validity; kNever if neither.
int64_t ValidityDeadline(const Rec& e, int64_t base_us) {
  if (e.valid_ms > 0) return AddSat(base_us, MsToUs(e.valid_ms));
  if (e.ttl_ms > 0) return AddSat(e.invoke_us, MsToUs(e.ttl_ms));
  return kNever;
}

constexpr const char* kKinds[] = {
    // safety
    "overlap", "late-use", "stale-fence", "validity-exceeds-ttl", "extend-after-expiry",
    "foreign-release", "failed-acquire-holds",
    // liveness
    "liveness", "recovery", "no-ttl", "unavailable", "release-lost", "left-behind", nullptr};
constexpr int kFirstLivenessKind = 7;

int KindIndex(std::string_view kind) {
  for (int i = 0; kKinds[i] != nullptr; ++i)
    if (kind == kKinds[i]) return i;
  return -1;
}

enum class EndReason : uint8_t { kDeadline, kExtendFailed, kHistoryEnd, kRelease, kCrash };

const char* EndReasonName(EndReason r) {
  switch (r) {
    case EndReason::kDeadline:
      return "validity deadline";
    case EndReason::kExtendFailed:
      return "failed extend";
    case EndReason::kHistoryEnd:
      return "end of history";
    case EndReason::kRelease:
      return "release";
    case EndReason::kCrash:
      return "crash";
  }
  return "?";
}

// One ok (or unknown) acquire and what the events naming it did to it.
struct Lease {
  int32_t acq = 0;                 // record index of the acquire
  int32_t release = -1;            // record index of the first release (by invoke)
  int64_t deadline_us = 0;         // the lock's promise (extends from their invoke)
  int64_t client_deadline_us = 0;  // as the client computed it (extends from complete)
  int64_t extend_failed_us = kNever;
  int64_t expiry_ub_us = 0;  // every copy of the key has expired by then
  int64_t end_us = 0;
  EndReason reason = EndReason::kDeadline;
  bool ok = false;      // ok acquire (else unknown: no lease in the client's mind)
  bool no_ttl = false;  // a sample right after it showed its key with no TTL: never expires
};

// op id -> value. Op ids are normally dense from 1 (HistoryWriter), so a flat vector serves;
// ids far outside it go to a hash map.
class OpIndex {
 public:
  explicit OpIndex(size_t n) : dense_limit_(static_cast<int64_t>(2 * n + 1024)) {}
  void Put(int64_t op, int32_t v) {
    if (op >= 0 && op < dense_limit_) {
      if (static_cast<size_t>(op) >= dense_.size())
        dense_.resize(std::max<size_t>(static_cast<size_t>(op) + 1, 2 * dense_.size()), kNone);
      dense_[static_cast<size_t>(op)] = v;
    } else {
      sparse_[op] = v;
    }
  }
  int32_t Get(int64_t op) const {
    if (op >= 0 && op < dense_limit_)
      return static_cast<size_t>(op) < dense_.size() ? dense_[static_cast<size_t>(op)] : kNone;
    auto it = sparse_.find(op);
    return it == sparse_.end() ? kNone : it->second;
  }
  static constexpr int32_t kNone = std::numeric_limits<int32_t>::min();

 private:
  int64_t dense_limit_;
  std::vector<int32_t> dense_;
  std::unordered_map<int64_t, int32_t> sparse_;
};

// Stable counting sort of item indices by slot: slot s's items are order[begin[s],
// begin[s+1]).
template <typename SlotOf>
std::vector<int32_t> GroupBySlot(size_t n_items, size_t n_slots, SlotOf slot_of,
                                 std::vector<size_t>* begin) {
  begin->assign(n_slots + 1, 0);
  for (size_t i = 0; i < n_items; ++i) ++(*begin)[static_cast<size_t>(slot_of(i)) + 1];
  for (size_t s = 0; s < n_slots; ++s) (*begin)[s + 1] += (*begin)[s];
  std::vector<size_t> next(begin->begin(), begin->end() - 1);
  std::vector<int32_t> order(n_items);
  for (size_t i = 0; i < n_items; ++i)
    order[next[static_cast<size_t>(slot_of(i))]++] = static_cast<int32_t>(i);
  return order;
}

// Sorts `items` by key(item) (ties: by position), through a packed (key, item) array so the
// comparisons never chase pointers; skips the sort when already in order (events are recorded
// at completion, so most orders the checks want are nearly the history's own).
template <typename T, typename KeyOf>
void SortByKey(std::vector<T>* items, KeyOf key_of) {
  std::vector<std::pair<int64_t, uint32_t>> keyed(items->size());
  for (size_t i = 0; i < items->size(); ++i)
    keyed[i] = {key_of((*items)[i]), static_cast<uint32_t>(i)};
  if (std::is_sorted(keyed.begin(), keyed.end())) return;
  std::sort(keyed.begin(), keyed.end());
  std::vector<T> sorted(items->size());
  for (size_t i = 0; i < keyed.size(); ++i) sorted[i] = (*items)[keyed[i].second];
  items->swap(sorted);
}

struct PairState {
  CheckResult r;
  int64_t history_start_us = kNever;  // every event
  int64_t first_violation_us = kNever;
  int64_t history_end_us = kMinTime;  // every event
  int64_t safety_end_us = kMinTime;   // safety-phase events, samples excluded
  int64_t ttl_max_us = 0;
  bool server_clock_fault = false;
  bool token_seen_in_sample = false;
  int nodes = 0;  // 1 + the highest node sampled
  // The nodes the lock writes to: where a sample ever showed one of its tokens (a plug-in
  // handed every node may use only node 0). The quorum is a majority of them.
  uint64_t lock_nodes = 0;
  std::vector<std::pair<int64_t, int64_t>> faults;  // [invoke, complete] of kFault events
  std::vector<std::pair<int, int64_t>> crashes;     // (client, invoke_us), sorted
  // Violations found, per kind, before they are sorted into the result.
  std::vector<std::vector<Violation>> found = std::vector<std::vector<Violation>>(13);
  std::vector<int64_t> found_count = std::vector<int64_t>(13, 0);
};

class Engine {
 public:
  explicit Engine(const CompactHistory& h) : h_(h), recs_(h.recs()), ops_(h.size()) {
    pairs_.resize(h.pair_count());
  }

  std::map<PairKey, CheckResult> Run() {
    Pass1();
    Pass2();
    Ends();
    Overlaps();
    LateUses();
    LostUpdates();
    StaleFences();
    ExpiryContracts();
    Samples();
    LeftBehind();
    Availability();
    Probes();
    Recovery();
    return Results();
  }

 private:
  PairState& PairOf(const Rec& e) { return pairs_[static_cast<size_t>(h_.slot_pair(e.slot))]; }
  const std::string& Key(const Rec& e) const { return h_.slot_key(e.slot); }
  std::string Op(int64_t op) const { return "op " + std::to_string(op); }
  std::string Who(const Rec& e) const {
    return "client " + std::to_string(e.client) + " (" + Op(e.op_id) + ")";
  }

  // Counts a violation; builds it (calling `detail`) only while fewer than the cap are kept.
  void Add(const Rec& at, int kind, int client_a, int64_t op_a, int client_b, int64_t op_b,
           int64_t start_us, int64_t length_us, const std::function<std::string()>& detail) {
    PairState& ps = PairOf(at);
    const size_t k = static_cast<size_t>(kind);
    ++ps.found_count[k];
    ps.first_violation_us = std::min(ps.first_violation_us, start_us);
    if (ps.found[k].size() >= CheckResult::kMaxStoredViolations) return;
    Violation v;
    v.kind = kKinds[kind];
    v.impl = h_.pair(h_.slot_pair(at.slot)).first;
    v.scenario = h_.pair(h_.slot_pair(at.slot)).second;
    v.key = Key(at);
    v.client_a = client_a;
    v.client_b = client_b;
    v.op_a = op_a;
    v.op_b = op_b;
    v.start_us = start_us;
    v.overlap_us = length_us;
    v.detail = detail();
    ps.found[k].push_back(std::move(v));
  }

  // Counts, leases, the op index, per-pair facts.
  void Pass1() {
    size_t n_leases = 0;
    for (const Rec& e : recs_)
      n_leases += e.type == static_cast<uint8_t>(OpType::kAcquire) &&
                  e.outcome != static_cast<uint8_t>(Outcome::kFail);
    leases_.reserve(n_leases);
    for (size_t i = 0; i < recs_.size(); ++i) {
      const Rec& e = recs_[i];
      PairState& ps = PairOf(e);
      CheckResult& r = ps.r;
      const OpType type = static_cast<OpType>(e.type);
      const Outcome outcome = static_cast<Outcome>(e.outcome);
      ps.history_end_us = std::max(ps.history_end_us, e.complete_us());
      ps.history_start_us = std::min(ps.history_start_us, e.invoke_us);
      if (type != OpType::kSample && !(e.flags & CompactHistory::kFlagLiveness))
        ps.safety_end_us = std::max(ps.safety_end_us, e.complete_us());
      switch (type) {
        case OpType::kAcquire:
          ps.ttl_max_us = std::max(ps.ttl_max_us, MsToUs(e.ttl_ms));
          (outcome == Outcome::kOk     ? r.acquires_ok
           : outcome == Outcome::kFail ? r.acquires_fail
                                       : r.acquires_unknown)++;
          if (outcome == Outcome::kFail) {
            ops_.Put(e.op_id, Encode(i));
          } else {
            Lease l;
            l.acq = static_cast<int32_t>(i);
            l.ok = outcome == Outcome::kOk;
            l.deadline_us = ValidityDeadline(e, e.complete_us());
            l.client_deadline_us = l.deadline_us;
            l.expiry_ub_us = AddSat(e.complete_us(), MsToUs(e.ttl_ms));
            ops_.Put(e.op_id, static_cast<int32_t>(leases_.size()));
            leases_.push_back(l);
          }
          break;
        case OpType::kRelease:
          (outcome == Outcome::kOk     ? r.releases_ok
           : outcome == Outcome::kFail ? r.releases_fail
                                       : r.releases_unknown)++;
          break;
        case OpType::kExtend:
          (outcome == Outcome::kOk     ? r.extends_ok
           : outcome == Outcome::kFail ? r.extends_fail
                                       : r.extends_unknown)++;
          ops_.Put(e.op_id, Encode(i));
          extends_.push_back(static_cast<int32_t>(i));
          break;
        case OpType::kUse:
          if (outcome == Outcome::kFail) {
            ++r.uses_abandoned;
          } else {
            ++r.uses;
            if (outcome == Outcome::kOk) ok_uses_.emplace_back(e.slot, e.value);
          }
          break;
        case OpType::kWrite:
          if (outcome == Outcome::kOk && (e.flags & CompactHistory::kFlagFence))
            writes_.push_back(static_cast<int32_t>(i));
          break;
        case OpType::kFault:
          ps.faults.emplace_back(e.invoke_us, e.complete_us());
          if (e.flags & CompactHistory::kFlagServerClock) ps.server_clock_fault = true;
          break;
        case OpType::kCrash:
          if (!(e.flags & CompactHistory::kFlagLiveness)) {
            ps.crashes.emplace_back(e.client, e.invoke_us);
            crash_recs_.push_back(static_cast<int32_t>(i));
          }
          break;
        case OpType::kSample:
          ++r.samples;
          ps.nodes = std::max(ps.nodes, e.node + 1);
          samples_.push_back(static_cast<int32_t>(i));
          break;
      }
    }
    for (PairState& ps : pairs_) {
      std::sort(ps.crashes.begin(), ps.crashes.end());
      std::sort(ps.faults.begin(), ps.faults.end());
    }
  }

  // Releases, extends and uses naming a lease (in any order relative to it).
  void Pass2() {
    for (const Rec& e : recs_) {
      const OpType type = static_cast<OpType>(e.type);
      if (e.lease_op < 0 || (type != OpType::kRelease && type != OpType::kExtend)) continue;
      Lease* l = LeaseOf(e);
      if (l == nullptr) continue;
      const Outcome outcome = static_cast<Outcome>(e.outcome);
      if (type == OpType::kRelease) {
        if (l->release < 0 || e.invoke_us < recs_[static_cast<size_t>(l->release)].invoke_us)
          l->release = static_cast<int32_t>(&e - recs_.data());
      } else if (outcome == Outcome::kOk) {
        l->deadline_us = std::max(l->deadline_us, ValidityDeadline(e, e.invoke_us));
        l->client_deadline_us =
            std::max(l->client_deadline_us, ValidityDeadline(e, e.complete_us()));
      } else if (outcome == Outcome::kFail) {
        l->extend_failed_us = std::min(l->extend_failed_us, e.complete_us());
      }
      if (type == OpType::kExtend && outcome != Outcome::kFail)
        l->expiry_ub_us = std::max(l->expiry_ub_us, AddSat(e.complete_us(), MsToUs(e.ttl_ms)));
    }
  }

  // The lease named by `e` (same client and pair), or null.
  Lease* LeaseOf(const Rec& e) {
    const int32_t v = ops_.Get(e.lease_op);
    if (v < 0) return nullptr;
    Lease* l = &leases_[static_cast<size_t>(v)];
    const Rec& a = recs_[static_cast<size_t>(l->acq)];
    if (a.client != e.client || h_.slot_pair(a.slot) != h_.slot_pair(e.slot)) return nullptr;
    return l;
  }
  // The record of the acquire/extend/failed acquire with op id `op`, or null.
  const Rec* OpRec(int64_t op) const {
    const int32_t v = ops_.Get(op);
    if (v == OpIndex::kNone) return nullptr;
    if (v >= 0) return &recs_[static_cast<size_t>(leases_[static_cast<size_t>(v)].acq)];
    return &recs_[static_cast<size_t>(Decode(v))];
  }
  static int32_t Encode(size_t rec) { return -static_cast<int32_t>(rec) - 2; }
  static size_t Decode(int32_t v) { return static_cast<size_t>(-(v + 2)); }

  const Rec& AcqOf(const Lease& l) const { return recs_[static_cast<size_t>(l.acq)]; }

  void Ends() {
    for (Lease& l : leases_) {
      if (!l.ok) continue;
      const Rec& a = AcqOf(l);
      const PairState& ps = pairs_[static_cast<size_t>(h_.slot_pair(a.slot))];
      int64_t end = l.deadline_us;
      EndReason reason = EndReason::kDeadline;
      if (l.extend_failed_us < end) end = l.extend_failed_us, reason = EndReason::kExtendFailed;
      if (ps.history_end_us < end) end = ps.history_end_us, reason = EndReason::kHistoryEnd;
      if (l.release >= 0 && recs_[static_cast<size_t>(l.release)].invoke_us < end)
        end = recs_[static_cast<size_t>(l.release)].invoke_us, reason = EndReason::kRelease;
      auto crash = std::lower_bound(ps.crashes.begin(), ps.crashes.end(),
                                    std::make_pair(static_cast<int>(a.client), a.complete_us()));
      if (crash != ps.crashes.end() && crash->first == a.client && crash->second < end)
        end = crash->second, reason = EndReason::kCrash;
      l.end_us = end;
      l.reason = reason;
    }
  }

  std::string Interval(const Lease& l) const {
    const Rec& a = AcqOf(l);
    return Who(a) + " held [" + std::to_string(a.complete_us()) + ", " + std::to_string(l.end_us) +
           ") us, ended by " + EndReasonName(l.reason);
  }

  // Leases grouped by slot, each group sorted by start (then op id).
  void SortLeasesBySlot() {
    lease_order_ = GroupBySlot(
        leases_.size(), h_.slot_count(), [&](size_t i) { return AcqOf(leases_[i]).slot; },
        &lease_begin_);
    auto by_start = [&](int32_t x, int32_t y) {
      const Rec& a = AcqOf(leases_[static_cast<size_t>(x)]);
      const Rec& b = AcqOf(leases_[static_cast<size_t>(y)]);
      return a.complete_us() != b.complete_us() ? a.complete_us() < b.complete_us()
                                                : a.op_id < b.op_id;
    };
    for (size_t s = 0; s < h_.slot_count(); ++s) {
      auto first = lease_order_.begin() + static_cast<ptrdiff_t>(lease_begin_[s]);
      auto last = lease_order_.begin() + static_cast<ptrdiff_t>(lease_begin_[s + 1]);
      if (!std::is_sorted(first, last, by_start)) std::sort(first, last, by_start);
    }
  }

  void Overlaps() {
    SortLeasesBySlot();
    std::vector<int32_t> active;
    for (size_t s = 0; s < h_.slot_count(); ++s) {
      active.clear();
      for (size_t i = lease_begin_[s]; i < lease_begin_[s + 1]; ++i) {
        const Lease& b = leases_[static_cast<size_t>(lease_order_[i])];
        const Rec& bacq = AcqOf(b);
        if (!b.ok || b.end_us <= bacq.complete_us()) continue;
        for (size_t k = 0; k < active.size();) {
          if (leases_[static_cast<size_t>(active[k])].end_us <= bacq.complete_us()) {
            active[k] = active.back();
            active.pop_back();
          } else {
            ++k;
          }
        }
        for (int32_t ai : active) {
          const Lease& a = leases_[static_cast<size_t>(ai)];
          const Rec& aacq = AcqOf(a);
          if (aacq.client == bacq.client) continue;
          Add(bacq, 0, aacq.client, aacq.op_id, bacq.client, bacq.op_id, bacq.complete_us(),
              std::min(a.end_us, b.end_us) - bacq.complete_us(),
              [&] { return Interval(a) + "; " + Interval(b); });
        }
        active.push_back(lease_order_[i]);
      }
    }
  }

  void LateUses() {
    for (const Rec& e : recs_) {
      if (e.type != static_cast<uint8_t>(OpType::kUse) ||
          e.outcome == static_cast<uint8_t>(Outcome::kFail))
        continue;
      const Lease* l = LeaseOf(e);
      if (l == nullptr || !l->ok) continue;
      const int64_t valid_until = std::min(l->client_deadline_us, l->extend_failed_us);
      const int64_t late_us = e.complete_us() - valid_until;
      if (late_us <= kLateUseToleranceUs) continue;
      const Rec& a = AcqOf(*l);
      Add(e, 1, e.client, a.op_id, -1, e.op_id, valid_until, late_us, [&] {
        return Who(a) + " acted on the resource (use " + Op(e.op_id) + " completed at " +
               std::to_string(e.complete_us()) + " us) " + std::to_string(late_us / 1000) +
               " ms after its validity ended at " + std::to_string(valid_until) + " us" +
               (l->extend_failed_us <= l->client_deadline_us ? " (an extend had failed)" : "");
      });
    }
  }

  void LostUpdates() {
    std::vector<size_t> begin;
    std::vector<int32_t> order = GroupBySlot(
        ok_uses_.size(), h_.slot_count(), [&](size_t i) { return ok_uses_[i].first; }, &begin);
    std::vector<int64_t> values;
    for (size_t s = 0; s < h_.slot_count(); ++s) {
      if (begin[s] == begin[s + 1]) continue;
      values.clear();
      for (size_t i = begin[s]; i < begin[s + 1]; ++i)
        values.push_back(ok_uses_[static_cast<size_t>(order[i])].second);
      if (!std::is_sorted(values.begin(), values.end())) std::sort(values.begin(), values.end());
      const int64_t distinct = std::unique(values.begin(), values.end()) - values.begin();
      pairs_[static_cast<size_t>(h_.slot_pair(static_cast<int32_t>(s)))].r.lost_updates +=
          static_cast<int64_t>(values.size()) - distinct;
    }
  }

  // Per key, accepted writes by invoke; a write is stale if a write that completed before
  // it was invoked had been accepted with a higher fence.
  void StaleFences() {
    std::vector<size_t> begin;
    std::vector<int32_t> order = GroupBySlot(
        writes_.size(), h_.slot_count(),
        [&](size_t i) { return recs_[static_cast<size_t>(writes_[i])].slot; }, &begin);
    std::vector<const Rec*> by_invoke, by_complete;
    for (size_t s = 0; s < h_.slot_count(); ++s) {
      if (begin[s] == begin[s + 1]) continue;
      by_invoke.clear();
      for (size_t i = begin[s]; i < begin[s + 1]; ++i)
        by_invoke.push_back(&recs_[static_cast<size_t>(writes_[static_cast<size_t>(order[i])])]);
      by_complete = by_invoke;
      SortByKey(&by_invoke, [](const Rec* a) { return a->invoke_us; });
      SortByKey(&by_complete, [](const Rec* a) { return a->complete_us(); });
      size_t done = 0;
      const Rec* highest = nullptr;
      for (const Rec* w : by_invoke) {
        for (; done < by_complete.size() && by_complete[done]->complete_us() < w->invoke_us; ++done)
          if (highest == nullptr || by_complete[done]->value > highest->value)
            highest = by_complete[done];
        if (highest == nullptr || w->value >= highest->value) continue;
        Add(*w, 2, w->client, w->op_id, highest->client, highest->op_id, w->invoke_us,
            highest->value - w->value, [&] {
              return "the witness accepted fence " + std::to_string(w->value) + " from " + Who(*w) +
                     " after accepting fence " + std::to_string(highest->value) + " from " +
                     Who(*highest);
            });
      }
    }
  }

  // extend-after-expiry, foreign-release, release-lost.
  void ExpiryContracts() {
    // A lease whose key was seen with no TTL never expired: the expiry checks do not apply
    // (the no-ttl check reports it).
    for (int32_t i : samples_) {
      const Rec& s = recs_[static_cast<size_t>(i)];
      if (s.value != -1 || s.sample != 0 || s.lease_op < 0) continue;
      const int32_t v = ops_.Get(s.lease_op);
      if (v >= 0 && AcqOf(leases_[static_cast<size_t>(v)]).token == s.token)
        leases_[static_cast<size_t>(v)].no_ttl = true;
    }
    // Extends in (lease, invoke) order, so that each sees the expiry bound before it.
    std::vector<std::pair<int32_t, int32_t>> ext;  // (lease, rec)
    for (int32_t i : extends_) {
      const Rec& e = recs_[static_cast<size_t>(i)];
      if (e.lease_op < 0) continue;
      const int32_t v = ops_.Get(e.lease_op);
      if (v >= 0 && LeaseOf(e) != nullptr) ext.emplace_back(v, i);
    }
    std::sort(ext.begin(), ext.end(), [&](const auto& x, const auto& y) {
      return x.first != y.first ? x.first < y.first
                                : recs_[static_cast<size_t>(x.second)].invoke_us <
                                      recs_[static_cast<size_t>(y.second)].invoke_us;
    });
    int32_t cur = -1;
    int64_t bound_us = 0;
    for (const auto& [li, ri] : ext) {
      const Lease& l = leases_[static_cast<size_t>(li)];
      const Rec& a = AcqOf(l);
      const Rec& e = recs_[static_cast<size_t>(ri)];
      if (li != cur) cur = li, bound_us = AddSat(a.complete_us(), MsToUs(a.ttl_ms));
      const PairState& ps = pairs_[static_cast<size_t>(h_.slot_pair(a.slot))];
      if (e.outcome == static_cast<uint8_t>(Outcome::kOk) && !ps.server_clock_fault && !l.no_ttl &&
          e.invoke_us > AddSat(bound_us, kExpiryToleranceUs)) {
        const int64_t late_us = e.invoke_us - bound_us;
        Add(e, 4, e.client, a.op_id, -1, e.op_id, e.invoke_us, late_us, [&] {
          return "extend " + Op(e.op_id) + " of " + Who(a) + " ended ok although invoked " +
                 std::to_string(late_us / 1000) + " ms after the key must have expired (at " +
                 std::to_string(bound_us) + " us)";
        });
      }
      if (e.outcome != static_cast<uint8_t>(Outcome::kFail))
        bound_us = std::max(bound_us, AddSat(e.complete_us(), MsToUs(e.ttl_ms)));
    }
    // Every release naming an ok lease (a client may release more than once).
    for (const Rec& rel : recs_) {
      if (rel.type != static_cast<uint8_t>(OpType::kRelease) || rel.lease_op < 0) continue;
      const Lease* lp = LeaseOf(rel);
      if (lp == nullptr || !lp->ok) continue;
      const Lease& l = *lp;
      const Rec& a = AcqOf(l);
      const PairState& ps = pairs_[static_cast<size_t>(h_.slot_pair(a.slot))];
      const Outcome outcome = static_cast<Outcome>(rel.outcome);
      if (outcome == Outcome::kOk && !ps.server_clock_fault && !l.no_ttl &&
          rel.invoke_us > AddSat(l.expiry_ub_us, kExpiryToleranceUs)) {
        const Lease* other = LiveLeaseAt(a.slot, a.client, rel.invoke_us, rel.complete_us());
        const int64_t late_us = rel.invoke_us - l.expiry_ub_us;
        Add(rel, 5, rel.client, a.op_id, other ? AcqOf(*other).client : -1,
            other ? AcqOf(*other).op_id : 0, rel.invoke_us, late_us, [&] {
              return "release " + Op(rel.op_id) + " of " + Who(a) + " ended ok " +
                     std::to_string(late_us / 1000) + " ms after its key had expired: " +
                     (other ? "it deleted the lock of " + Who(AcqOf(*other)) + ", held since " +
                                  std::to_string(AcqOf(*other).complete_us()) + " us"
                            : std::string("it deleted a key it no longer owned"));
            });
      }
      if (outcome == Outcome::kFail && &rel == &recs_[static_cast<size_t>(l.release)] &&
          l.extend_failed_us == kNever && rel.complete_us() < l.deadline_us - kExpiryToleranceUs &&
          !ps.server_clock_fault && !FaultDuring(ps, a.invoke_us, rel.complete_us())) {
        // Judged by completion: a release that was slow to reach Redis may find the key gone.
        Add(rel, 11, rel.client, a.op_id, -1, rel.op_id, rel.invoke_us,
            l.deadline_us - rel.complete_us(), [&] {
              return "release " + Op(rel.op_id) + " of " + Who(a) + " ended fail " +
                     std::to_string((l.deadline_us - rel.complete_us()) / 1000) +
                     " ms before its lease's deadline, with no fault in effect: the lock stays "
                     "until its TTL";
            });
      }
    }
  }

  // Another client's ok lease on `slot` live at some point of [from_us, to_us], or null.
  const Lease* LiveLeaseAt(int32_t slot, int client, int64_t from_us, int64_t to_us) const {
    const size_t s = static_cast<size_t>(slot);
    for (size_t i = lease_begin_[s]; i < lease_begin_[s + 1]; ++i) {
      const Lease& l = leases_[static_cast<size_t>(lease_order_[i])];
      const Rec& a = AcqOf(l);
      if (a.complete_us() > to_us) break;
      if (l.ok && a.client != client && l.end_us > from_us) return &l;
    }
    return nullptr;
  }

  static bool FaultDuring(const PairState& ps, int64_t from_us, int64_t to_us) {
    for (const auto& [b, e] : ps.faults) {
      if (b > to_us) break;
      if (e >= from_us) return true;
    }
    return false;
  }

  // validity-exceeds-ttl, failed-acquire-holds, no-ttl, left-behind.
  void Samples() {
    // The validity contract applies to an impl whose samples show its tokens.
    for (int32_t i : samples_) {
      const Rec& s = recs_[static_cast<size_t>(i)];
      if (s.sample > 1 || s.token == 0) continue;
      const Rec* op = OpRec(s.lease_op);
      if (op != nullptr && op->token == s.token) {
        PairState& ps = PairOf(s);
        ps.token_seen_in_sample = true;
        if (s.node >= 0 && s.node < 64) ps.lock_nodes |= uint64_t{1} << s.node;
      }
    }
    SortByKey(&samples_, [&](int32_t x) { return recs_[static_cast<size_t>(x)].lease_op; });
    std::vector<int32_t> no_ttl_slots;  // slots already reported (one no-ttl per key)
    auto report_no_ttl = [&](const Rec& s, const Rec* op) {
      if (std::find(no_ttl_slots.begin(), no_ttl_slots.end(), s.slot) != no_ttl_slots.end()) return;
      no_ttl_slots.push_back(s.slot);
      Add(s, 9, op ? op->client : -1, op ? op->op_id : 0, -1, s.op_id, s.invoke_us, 0, [&] {
        return "node " + std::to_string(s.node) + " held " + Key(s) + " with no TTL (" +
               (s.sample == 3 ? std::string("after the run")
                              : "right after " + Who(*op) + " ended ok") +
               "): it never expires";
      });
    };
    for (size_t b = 0; b < samples_.size();) {
      size_t e = b;
      const Rec& first = recs_[static_cast<size_t>(samples_[b])];
      while (e < samples_.size() &&
             recs_[static_cast<size_t>(samples_[e])].lease_op == first.lease_op)
        ++e;
      SampleGroup(b, e, report_no_ttl);
      b = e;
    }
  }

  template <typename NoTtl>
  void SampleGroup(size_t b, size_t e, const NoTtl& report_no_ttl) {
    const Rec& first = recs_[static_cast<size_t>(samples_[b])];
    PairState& ps = PairOf(first);
    if (first.lease_op < 0) {  // quiesce samples: no operation
      for (size_t i = b; i < e; ++i) {
        const Rec& s = recs_[static_cast<size_t>(samples_[i])];
        if (s.value == -2) continue;
        ++ps.r.keys_at_quiesce;
        if (s.value == -1) report_no_ttl(s, nullptr);
        if (s.token != 0) quiesce_present_.push_back(&s);
      }
      return;
    }
    const Rec* op = OpRec(first.lease_op);
    if (op == nullptr) return;
    const int n_nodes = ps.lock_nodes ? std::popcount(ps.lock_nodes) : ps.nodes;
    const int quorum = n_nodes / 2 + 1;
    int support = 0, answered = 0, holding = 0;
    int64_t earliest_expiry_us = kNever;
    for (size_t i = b; i < e; ++i) {
      const Rec& s = recs_[static_cast<size_t>(samples_[i])];
      if (ps.lock_nodes && (s.node < 0 || s.node >= 64 || !(ps.lock_nodes >> s.node & 1))) continue;
      ++answered;
      const bool ours = s.value != -2 && s.token == op->token && op->token != 0;
      holding += ours;
      if (ours && s.value == -1 && s.sample <= 1) report_no_ttl(s, op);
      // The latest the key can have lived: a sample that found it gone (or someone else's)
      // ran at redis by its completion (a slow sample proves nothing earlier); one that found
      // it ours ran by then too, with PTTL left.
      const int64_t expiry_us = !ours           ? s.complete_us()
                                : s.value == -1 ? kNever
                                                : AddSat(s.complete_us(), MsToUs(s.value + 1));
      const int64_t claim_us = AddSat(op->complete_us(), MsToUs(op->valid_ms)) - kClaimToleranceUs;
      support += expiry_us >= claim_us;  // a sample that may have run after the claim's end
                                         // cannot contradict it, whatever it found
      earliest_expiry_us = std::min(earliest_expiry_us, expiry_us);
    }
    if (first.sample == 2) {  // after a failed acquire
      if (holding >= quorum && static_cast<Outcome>(op->outcome) == Outcome::kFail) {
        Add(*op, 6, op->client, op->op_id, -1, first.op_id, first.invoke_us, holding, [&] {
          return "acquire " + Op(op->op_id) + " of client " + std::to_string(op->client) +
                 " ended fail, yet right after it " + std::to_string(holding) + " of " +
                 std::to_string(n_nodes) + " nodes held its token";
        });
      }
      return;
    }
    if (first.sample > 1 || static_cast<Outcome>(op->outcome) != Outcome::kOk) return;
    if (!ps.token_seen_in_sample || ps.server_clock_fault || op->valid_ms <= 0) return;
    ps.r.contract_checked = true;
    const int64_t claim_us = AddSat(op->complete_us(), MsToUs(op->valid_ms)) - kClaimToleranceUs;
    const bool over_ttl = op->ttl_ms > 0 && op->valid_ms > op->ttl_ms;
    if (support + (n_nodes - answered) >= quorum && !over_ttl) return;
    Add(*op, 3, op->client, op->op_id, -1, first.op_id, op->complete_us(),
        claim_us - earliest_expiry_us, [&] {
          return std::string(OpTypeName(static_cast<OpType>(op->type))) + " " + Op(op->op_id) +
                 " of client " + std::to_string(op->client) + " reported " +
                 std::to_string(op->valid_ms) + " ms of validity at its completion (ttl " +
                 std::to_string(op->ttl_ms) + " ms)" +
                 (over_ttl ? ", more than the TTL it asked for" : "") + "; sampled right after, " +
                 std::to_string(support) + " of " + std::to_string(n_nodes) +
                 " nodes held its key that long (quorum " + std::to_string(quorum) +
                 "), the earliest expiring " +
                 std::to_string((claim_us - earliest_expiry_us) / 1000) +
                 " ms before the claimed end";
        });
  }

  // Keys present at quiesce whose token's release ended ok, or whose acquire ended fail: one
  // pass over the history for all of them (each key reported once, for its first such event).
  // A multi-node lock only lies when a quorum of its nodes still holds the token: a release
  // (or a failed acquire's cleanup) that reached a majority may leave a minority key to expire.
  void LeftBehind() {
    if (quiesce_present_.empty()) return;
    std::unordered_map<uint64_t, std::vector<const Rec*>> by_token;
    for (const Rec* s : quiesce_present_) by_token[s->token].push_back(s);
    std::vector<int32_t> done;  // key slots reported
    for (const Rec& e : recs_) {
      const OpType type = static_cast<OpType>(e.type);
      const Outcome outcome = static_cast<Outcome>(e.outcome);
      const bool lied = (type == OpType::kRelease && outcome == Outcome::kOk) ||
                        (type == OpType::kAcquire && outcome == Outcome::kFail);
      if (!lied || e.token == 0) continue;
      auto it = by_token.find(e.token);
      if (it == by_token.end()) continue;
      std::map<int32_t, std::vector<const Rec*>> by_slot;  // the token's keys, by key
      for (const Rec* s : it->second) {
        if (h_.slot_pair(e.slot) != h_.slot_pair(s->slot) ||
            std::find(done.begin(), done.end(), s->slot) != done.end())
          continue;
        by_slot[s->slot].push_back(s);
      }
      for (auto& [slot, held] : by_slot) {
        const PairState& ps = PairOf(*held.front());
        // The lock's own nodes, as its samples showed them; if none did (no acquire was ever
        // seen holding), any node holding the token counts (quorum 1).
        if (ps.lock_nodes) {
          std::erase_if(held, [&](const Rec* h) {
            return h->node < 0 || h->node >= 64 || !(ps.lock_nodes >> h->node & 1);
          });
        }
        const int n_nodes = ps.lock_nodes ? std::popcount(ps.lock_nodes) : 1;
        const int quorum = n_nodes / 2 + 1;
        if (held.empty()) continue;
        if (static_cast<int>(held.size()) < quorum) continue;
        done.push_back(slot);
        const Rec& s = *held.front();
        Add(s, 12, e.client, e.op_id, -1, s.op_id, s.invoke_us, 0, [&] {
          std::string nodes;
          for (const Rec* h : held) nodes += (nodes.empty() ? "" : ", ") + std::to_string(h->node);
          return "after the run " +
                 (n_nodes > 1 ? std::to_string(held.size()) + " of " + std::to_string(n_nodes) +
                                    " nodes (" + nodes + "; quorum " + std::to_string(quorum) + ")"
                              : "node " + nodes) +
                 " still held " + Key(s) + " with the token of " + OpTypeName(type) + " " +
                 Op(e.op_id) + " of client " + std::to_string(e.client) + ", which ended " +
                 OutcomeName(outcome);
        });
      }
    }
  }

  // A failed acquire that found its key free for most of its wait.
  void Availability() {
    // Per slot: when the key may have been held — ok/unknown acquires from their invoke to
    // their release (ok) or expiry — merged with the pair's fault periods (plus a TTL).
    std::vector<std::vector<std::pair<int64_t, int64_t>>> held(h_.slot_count());
    bool any_fail = false;
    for (const Rec& e : recs_)
      any_fail |= e.type == static_cast<uint8_t>(OpType::kAcquire) &&
                  e.outcome == static_cast<uint8_t>(Outcome::kFail) &&
                  e.duration_us >= kUnavailableMinWaitUs;
    if (!any_fail) return;
    for (const Lease& l : leases_) {
      const Rec& a = AcqOf(l);
      int64_t end = l.expiry_ub_us;
      if (l.release >= 0 &&
          recs_[static_cast<size_t>(l.release)].outcome == static_cast<uint8_t>(Outcome::kOk))
        end = std::min(end, recs_[static_cast<size_t>(l.release)].complete_us());
      held[static_cast<size_t>(a.slot)].emplace_back(a.invoke_us, end);
    }
    for (size_t s = 0; s < h_.slot_count(); ++s) {
      auto& v = held[s];
      const PairState& ps = pairs_[static_cast<size_t>(h_.slot_pair(static_cast<int32_t>(s)))];
      for (const auto& [b, e] : ps.faults) v.emplace_back(b, AddSat(e, ps.ttl_max_us));
      std::sort(v.begin(), v.end());
      std::vector<std::pair<int64_t, int64_t>> merged;
      for (const auto& iv : v) {
        if (!merged.empty() && iv.first <= merged.back().second)
          merged.back().second = std::max(merged.back().second, iv.second);
        else
          merged.push_back(iv);
      }
      v.swap(merged);
    }
    for (const Rec& e : recs_) {
      if (e.type != static_cast<uint8_t>(OpType::kAcquire) ||
          e.outcome != static_cast<uint8_t>(Outcome::kFail) ||
          e.duration_us < kUnavailableMinWaitUs || (e.flags & CompactHistory::kFlagLiveness))
        continue;
      const auto& v = held[static_cast<size_t>(e.slot)];
      int64_t covered = 0;
      auto it = std::upper_bound(v.begin(), v.end(), std::make_pair(e.invoke_us, kNever));
      if (it != v.begin()) --it;
      for (; it != v.end() && it->first < e.complete_us(); ++it)
        covered += std::max<int64_t>(
            0, std::min(it->second, e.complete_us()) - std::max(it->first, e.invoke_us));
      const int64_t free_us = e.duration_us - covered;
      if (static_cast<double>(free_us) < kUnavailableFreeFrac * e.duration_us) continue;
      Add(e, 10, e.client, e.op_id, -1, 0, e.invoke_us, free_us, [&] {
        return "acquire " + Op(e.op_id) + " of client " + std::to_string(e.client) +
               " ended fail after " + std::to_string(e.duration_us / 1000) + " ms, although " +
               Key(e) + " was free for " + std::to_string(free_us / 1000) +
               " ms of it (no lease or unknown acquire could hold it, no fault in effect)";
      });
    }
  }

  void Probes() {
    for (const Rec& e : recs_) {
      if (!(e.flags & CompactHistory::kFlagLiveness) ||
          e.type != static_cast<uint8_t>(OpType::kAcquire))
        continue;
      LivenessResult& l = PairOf(e).r.liveness;
      ++l.probes;
      if (e.outcome == static_cast<uint8_t>(Outcome::kOk)) {
        ++l.probes_ok;
        l.probe_wait_ms_max = std::max<int64_t>(l.probe_wait_ms_max, e.duration_us / 1000);
        continue;
      }
      Add(e, 7, e.client, e.op_id, -1, 0, e.invoke_us, e.duration_us, [&] {
        const std::string& note = h_.note(e.op_id);
        return "after every fault was healed, client c" + std::to_string(e.client) +
               " could not acquire " + Key(e) + ": its probe ended " +
               OutcomeName(static_cast<Outcome>(e.outcome)) + " after " +
               std::to_string(e.duration_us / 1000) + " ms" +
               (note.empty() ? "" : " (" + note + ")");
      });
    }
  }

  void Recovery() {
    if (crash_recs_.empty()) return;
    // Per slot, ok acquires by completion.
    std::vector<size_t> begin;
    std::vector<int32_t> ok_acq;
    for (size_t i = 0; i < leases_.size(); ++i)
      if (leases_[i].ok) ok_acq.push_back(leases_[i].acq);
    std::vector<int32_t> order = GroupBySlot(
        ok_acq.size(), h_.slot_count(),
        [&](size_t i) { return recs_[static_cast<size_t>(ok_acq[i])].slot; }, &begin);
    for (size_t s = 0; s < h_.slot_count(); ++s) {
      std::vector<int32_t> part(order.begin() + static_cast<ptrdiff_t>(begin[s]),
                                order.begin() + static_cast<ptrdiff_t>(begin[s + 1]));
      SortByKey(&part, [&](int32_t x) {
        return recs_[static_cast<size_t>(ok_acq[static_cast<size_t>(x)])].complete_us();
      });
      std::copy(part.begin(), part.end(), order.begin() + static_cast<ptrdiff_t>(begin[s]));
    }
    for (int32_t ci : crash_recs_) {
      const Rec& c = recs_[static_cast<size_t>(ci)];
      PairState& ps = PairOf(c);
      LivenessResult& l = ps.r.liveness;
      ++l.crashes;
      const int64_t bound_us = MsToUs(c.ttl_ms);
      const int64_t t = c.invoke_us;
      std::optional<int64_t> next_us;
      const size_t s = static_cast<size_t>(c.slot);
      for (size_t i = begin[s]; i < begin[s + 1]; ++i) {
        const Rec& a = recs_[static_cast<size_t>(ok_acq[static_cast<size_t>(order[i])])];
        if (a.complete_us() > t && a.client != c.client) {
          next_us = a.complete_us();
          break;
        }
      }
      int64_t delay_us = -1;
      if (next_us) {
        delay_us = *next_us - t;
        l.recovery_ms.push_back(delay_us / 1000);
        l.recovery_ms_max = std::max(l.recovery_ms_max, delay_us / 1000);
      }
      const bool late =
          bound_us > 0 && (next_us ? delay_us > bound_us : ps.safety_end_us - t > bound_us);
      if (!late) continue;
      Add(c, 8, c.client, c.op_id, -1, 0, t, next_us ? delay_us : ps.safety_end_us - t, [&] {
        return "after client c" + std::to_string(c.client) + " crashed (" + h_.note(c.op_id) +
               "), " +
               (next_us ? "the next other client acquired " + Key(c) + " only " +
                              std::to_string(delay_us / 1000) + " ms later"
                        : "no other client acquired " + Key(c) + " in the remaining " +
                              std::to_string((ps.safety_end_us - t) / 1000) + " ms") +
               " (bound " + std::to_string(c.ttl_ms) + " ms)";
      });
    }
  }

  std::map<PairKey, CheckResult> Results() {
    std::map<PairKey, CheckResult> out;
    for (size_t p = 0; p < pairs_.size(); ++p) {
      const PairKey& key = h_.pair(static_cast<int32_t>(p));
      if (key.first.empty()) continue;
      PairState& ps = pairs_[p];
      CheckResult& r = ps.r;
      for (int k = 0; kKinds[k] != nullptr; ++k) {
        const size_t kk = static_cast<size_t>(k);
        if (ps.found_count[kk] == 0) continue;
        r.violations_by_kind[kKinds[k]] = ps.found_count[kk];
        auto& found = ps.found[kk];
        std::stable_sort(found.begin(), found.end(), [](const Violation& a, const Violation& b) {
          return a.key != b.key ? a.key < b.key : a.start_us < b.start_us;
        });
        const bool liveness = k >= kFirstLivenessKind;
        int64_t& count = liveness ? r.liveness.violation_count : r.violation_count;
        std::vector<Violation>& kept = liveness ? r.liveness.violations : r.violations;
        count += ps.found_count[kk];
        for (Violation& v : found) {
          if (kept.size() >= CheckResult::kMaxStoredViolations) break;
          kept.push_back(std::move(v));
        }
      }
      r.start_us = ps.history_start_us;
      if (ps.first_violation_us != kNever)
        r.first_violation_ms =
            std::max<int64_t>(0, (ps.first_violation_us - ps.history_start_us) / 1000);
      r.verdict = r.violation_count > 0 ? Verdict::kInvalid
                  : r.acquires_ok == 0  ? Verdict::kInconclusive
                                        : Verdict::kValid;
      LivenessResult& l = r.liveness;
      l.verdict = l.violation_count > 0 ? Verdict::kInvalid
                  : l.probes > 0        ? Verdict::kValid
                                        : Verdict::kInconclusive;
      out.emplace(key, std::move(r));
    }
    return out;
  }

  const CompactHistory& h_;
  const std::vector<Rec>& recs_;
  std::vector<PairState> pairs_;
  std::vector<Lease> leases_;
  OpIndex ops_;  // acquire op → lease index (>= 0); failed acquire / extend → Encode(rec)
  std::vector<int32_t> extends_, writes_, samples_, crash_recs_;
  std::vector<const Rec*> quiesce_present_;  // quiesce samples that found a key (with a token)
  std::vector<std::pair<int32_t, int64_t>> ok_uses_;  // (slot, value read)
  std::vector<int32_t> lease_order_;
  std::vector<size_t> lease_begin_;
};

}  // namespace

bool IsLivenessKind(const std::string& kind) { return KindIndex(kind) >= kFirstLivenessKind; }

const char* const* ViolationKinds() { return kKinds; }

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kValid:
      return "valid";
    case Verdict::kInconclusive:
      return "inconclusive";
    case Verdict::kInvalid:
      return "invalid";
  }
  return "?";
}

Verdict Combine(Verdict a, Verdict b) {
  if (a == Verdict::kInvalid || b == Verdict::kInvalid) return Verdict::kInvalid;
  if (a == Verdict::kInconclusive || b == Verdict::kInconclusive) return Verdict::kInconclusive;
  return Verdict::kValid;
}

nlohmann::json ViolationToJson(const Violation& v) {
  nlohmann::json j;
  j["kind"] = v.kind;
  j["impl"] = v.impl;
  j["scenario"] = v.scenario;
  j["key"] = v.key;
  j["client_a"] = v.client_a;
  j["client_b"] = v.client_b;
  j["op_a"] = v.op_a;
  j["op_b"] = v.op_b;
  j["start_us"] = v.start_us;
  j["overlap_us"] = v.overlap_us;
  j["detail"] = v.detail;
  return j;
}

nlohmann::json CheckResultToJson(const CheckResult& r) {
  nlohmann::json j;
  j["verdict"] = VerdictName(r.verdict);
  j["violations"] = r.violation_count;
  j["violations_by_kind"] = r.violations_by_kind;
  j["acquires_ok"] = r.acquires_ok;
  j["acquires_fail"] = r.acquires_fail;
  j["acquires_unknown"] = r.acquires_unknown;
  j["releases_ok"] = r.releases_ok;
  j["releases_fail"] = r.releases_fail;
  j["releases_unknown"] = r.releases_unknown;
  j["extends_ok"] = r.extends_ok;
  j["extends_fail"] = r.extends_fail;
  j["extends_unknown"] = r.extends_unknown;
  j["lost_updates"] = r.lost_updates;
  j["uses"] = r.uses;
  j["uses_abandoned"] = r.uses_abandoned;
  j["samples"] = r.samples;
  j["contract_checked"] = r.contract_checked;
  j["keys_at_quiesce"] = r.keys_at_quiesce;
  j["first_violation_ms"] = r.first_violation_ms;
  const LivenessResult& l = r.liveness;
  j["liveness"] = {{"verdict", VerdictName(l.verdict)},
                   {"violations", l.violation_count},
                   {"probes", l.probes},
                   {"probes_ok", l.probes_ok},
                   {"probe_wait_ms_max", l.probe_wait_ms_max},
                   {"crashes", l.crashes},
                   {"recovery_ms", l.recovery_ms},
                   {"recovery_ms_max", l.recovery_ms_max}};
  return j;
}

void CompactHistory::Add(const Event& e) {
  if (last_pair_ < 0 || e.impl != last_impl_ || e.scenario != last_scenario_) {
    std::string name = e.impl;
    name += '\0';
    name += e.scenario;
    auto [it, inserted] =
        pair_of_.try_emplace(std::move(name), static_cast<int32_t>(pairs_.size()));
    if (inserted) pairs_.emplace_back(e.impl, e.scenario);
    last_pair_ = it->second;
    last_impl_ = e.impl;
    last_scenario_ = e.scenario;
  }
  if (last_slot_ < 0 || slot_pair_[static_cast<size_t>(last_slot_)] != last_pair_ ||
      slot_key_[static_cast<size_t>(last_slot_)] != e.key) {
    std::string slot_name = std::to_string(last_pair_);
    slot_name += '\0';
    slot_name += e.key;
    auto [sit, inserted] =
        slot_of_.try_emplace(std::move(slot_name), static_cast<int32_t>(slot_pair_.size()));
    if (inserted) {
      slot_pair_.push_back(last_pair_);
      slot_key_.push_back(e.key);
    }
    last_slot_ = sit->second;
  }
  Rec r{};
  r.op_id = e.op_id;
  r.lease_op = e.lease_op;
  r.invoke_us = e.invoke_us;
  r.duration_us = ClampInt32(e.complete_us - e.invoke_us);
  r.value = e.value;
  r.token = e.token.empty() ? 0 : std::hash<std::string>{}(e.token) | 1;
  r.ttl_ms = ClampInt32(e.ttl_ms);
  r.valid_ms = ClampInt32(e.valid_ms);
  r.slot = last_slot_;
  r.client = static_cast<int16_t>(std::clamp(e.client, -32768, 32767));
  r.node = static_cast<int16_t>(std::clamp(e.node, -32768, 32767));
  r.type = static_cast<uint8_t>(e.type);
  r.outcome = static_cast<uint8_t>(e.outcome);
  if (e.phase == kPhaseLiveness) r.flags |= kFlagLiveness;
  if ((e.type == OpType::kAcquire || e.type == OpType::kWrite) && e.fence) {
    r.flags |= kFlagFence;
    r.value = *e.fence;
  }
  if (e.type == OpType::kFault &&
      (e.note.rfind("clock-jump:", 0) == 0 || e.note.rfind("clock-rate:", 0) == 0))
    r.flags |= kFlagServerClock;
  if (e.type == OpType::kSample) {
    r.sample = e.note == kSampleAfterAcquire  ? 0
               : e.note == kSampleAfterExtend ? 1
               : e.note == kSampleAfterFail   ? 2
                                              : 3;
  }
  const bool probe = e.type == OpType::kAcquire && e.phase == kPhaseLiveness;
  if ((e.type == OpType::kFault || e.type == OpType::kCrash || probe) && !e.note.empty())
    notes_[e.op_id] = e.note;
  recs_.push_back(r);
}

const std::string& CompactHistory::note(int64_t op_id) const {
  static const std::string* empty = new std::string();
  auto it = notes_.find(op_id);
  return it == notes_.end() ? *empty : it->second;
}

std::map<PairKey, CheckResult> CheckCompact(const CompactHistory& h) { return Engine(h).Run(); }

std::map<PairKey, CheckResult> CheckHistory(const std::vector<Event>& events) {
  CompactHistory h;
  h.Reserve(events.size());
  for (const Event& e : events) h.Add(e);
  return CheckCompact(h);
}

std::map<PairKey, CheckResult> CheckMutualExclusion(const std::vector<Event>& events) {
  auto results = CheckHistory(events);
  for (auto& [p, r] : results) {
    r.liveness = LivenessResult{};
    r.first_violation_ms = -1;  // recomputed from the safety violations kept
    for (const Violation& v : r.violations) {
      const int64_t ms = std::max<int64_t>(0, (v.start_us - r.start_us) / 1000);
      if (r.first_violation_ms < 0 || ms < r.first_violation_ms) r.first_violation_ms = ms;
    }
    for (auto it = r.violations_by_kind.begin(); it != r.violations_by_kind.end();)
      it = IsLivenessKind(it->first) ? r.violations_by_kind.erase(it) : std::next(it);
  }
  return results;
}

void CheckLiveness(const std::vector<Event>& events, std::map<PairKey, CheckResult>* results) {
  for (auto& [p, r] : CheckHistory(events)) {
    CheckResult& out = (*results)[p];
    out.liveness = std::move(r.liveness);
    for (const auto& [kind, n] : r.violations_by_kind)
      if (IsLivenessKind(kind)) out.violations_by_kind[kind] = n;
  }
}

}  // namespace lockstorm
