#include "harness/checker.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <string_view>
#include <unordered_map>

namespace lockstorm {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

// a + b, saturating at the int64 limits.
int64_t AddSat(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? kNever : std::numeric_limits<int64_t>::min();
  return r;
}

int64_t MsToUsSat(int64_t ms) {
  int64_t r;
  if (__builtin_mul_overflow(ms, int64_t{1000}, &r)) return ms > 0 ? kNever : 0;
  return r;
}

// The validity deadline an ok acquire/extend reports: from `base_us` for valid_ms, or from
// the event's invoke for ttl_ms when the lock reports no validity; kNever if neither.
int64_t ValidityDeadline(const Event& e, int64_t base_us) {
  if (e.valid_ms > 0) return AddSat(base_us, MsToUsSat(e.valid_ms));
  if (e.ttl_ms > 0) return AddSat(e.invoke_us, MsToUsSat(e.ttl_ms));
  return kNever;
}

enum class EndReason : uint8_t {
  kDeadline,
  kExtendFailed,
  kHistoryEnd,
  kLateUse,
  kRelease,
  kCrash
};

const char* EndReasonName(EndReason r) {
  switch (r) {
    case EndReason::kDeadline:
      return "validity deadline";
    case EndReason::kExtendFailed:
      return "failed extend";
    case EndReason::kHistoryEnd:
      return "end of history";
    case EndReason::kLateUse:
      return "late use";
    case EndReason::kRelease:
      return "release";
    case EndReason::kCrash:
      return "crash";
  }
  return "?";
}

// One ok acquire and what the events naming it did to it.
struct LeaseRec {
  int64_t op = 0;
  int64_t start_us = 0;
  int64_t deadline_us = kNever;
  int64_t extend_failed_us = kNever;
  int64_t release_invoke_us = kNever;
  int64_t last_use_us = std::numeric_limits<int64_t>::min();
  int64_t end_us = 0;  // computed once all events are seen
  int32_t group = 0;
  int32_t slot = 0;  // (group, key)
  int32_t client = 0;
  EndReason reason = EndReason::kDeadline;
};

struct Group {
  std::string impl, scenario;
  std::unordered_map<std::string, int32_t> slot_of_key;
  std::vector<std::pair<int, int64_t>> crashes;  // (client, invoke_us)
  int64_t history_end_us = std::numeric_limits<int64_t>::min();
  CheckResult result;
};

// op id -> lease index. Op ids are normally dense from 1 (HistoryWriter), so a flat vector
// serves; ids far outside it go to a hash map.
class OpIndex {
 public:
  explicit OpIndex(size_t n_events) : dense_limit_(static_cast<int64_t>(4 * n_events + 1024)) {
    dense_.reserve(n_events + 2);
  }
  void Put(int64_t op, int32_t lease) {
    if (op >= 0 && op < dense_limit_) {
      if (static_cast<size_t>(op) >= dense_.size()) {
        dense_.resize(std::max<size_t>(static_cast<size_t>(op) + 1, 2 * dense_.size()), -1);
      }
      dense_[static_cast<size_t>(op)] = lease;
    } else {
      sparse_[op] = lease;
    }
  }
  int32_t Get(int64_t op) const {  // -1 if absent
    if (op >= 0 && op < dense_limit_) {
      return static_cast<size_t>(op) < dense_.size() ? dense_[static_cast<size_t>(op)] : -1;
    }
    auto it = sparse_.find(op);
    return it == sparse_.end() ? -1 : it->second;
  }

 private:
  int64_t dense_limit_;
  std::vector<int32_t> dense_;
  std::unordered_map<int64_t, int32_t> sparse_;
};

// Stable counting sort of item indices by slot: returns the items grouped by slot, and
// `begin` such that slot s's items are order[begin[s], begin[s+1]).
template <typename SlotOf>
std::vector<int32_t> GroupBySlot(size_t n_items, size_t n_slots, SlotOf slot_of,
                                 std::vector<size_t>* begin) {
  begin->assign(n_slots + 1, 0);
  for (size_t i = 0; i < n_items; ++i) ++(*begin)[static_cast<size_t>(slot_of(i)) + 1];
  for (size_t s = 0; s < n_slots; ++s) (*begin)[s + 1] += (*begin)[s];
  std::vector<size_t> next(begin->begin(), begin->end() - 1);
  std::vector<int32_t> order(n_items);
  for (size_t i = 0; i < n_items; ++i) {
    order[next[static_cast<size_t>(slot_of(i))]++] = static_cast<int32_t>(i);
  }
  return order;
}

std::string Interval(const LeaseRec& l) {
  return "client " + std::to_string(l.client) + " (op " + std::to_string(l.op) + ") believed [" +
         std::to_string(l.start_us) + ", " + std::to_string(l.end_us) + ") us, ended by " +
         EndReasonName(l.reason);
}

}  // namespace

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

std::map<std::pair<std::string, std::string>, CheckResult> CheckMutualExclusion(
    const std::vector<Event>& events) {
  std::vector<Group> groups;
  std::unordered_map<std::string, int32_t> group_of;  // impl + '\0' + scenario
  std::vector<int32_t> slot_group;                    // slot (an (impl, scenario, key)) -> group
  std::vector<LeaseRec> leases;
  std::vector<std::pair<int32_t, int64_t>> ok_uses;  // (slot, value read)
  OpIndex op_index(events.size());

  auto find_group = [&](const Event& e, int32_t cached) -> int32_t {
    if (cached >= 0 && groups[static_cast<size_t>(cached)].impl == e.impl &&
        groups[static_cast<size_t>(cached)].scenario == e.scenario) {
      return cached;
    }
    std::string name = e.impl;
    name += '\0';
    name += e.scenario;
    auto [it, inserted] =
        group_of.try_emplace(std::move(name), static_cast<int32_t>(groups.size()));
    if (inserted) {
      groups.emplace_back();
      groups.back().impl = e.impl;
      groups.back().scenario = e.scenario;
    }
    return it->second;
  };
  auto find_slot = [&](int32_t g, const Event& e) -> int32_t {
    auto& map = groups[static_cast<size_t>(g)].slot_of_key;
    auto [it, inserted] = map.try_emplace(e.key, static_cast<int32_t>(slot_group.size()));
    if (inserted) slot_group.push_back(g);
    return it->second;
  };

  {  // Size the big arrays once: growing them by doubling costs more than this pass.
    size_t n_leases = 0, n_uses = 0;
    for (const Event& e : events) {
      n_leases += e.type == OpType::kAcquire && e.outcome == Outcome::kOk;
      n_uses += e.type == OpType::kUse && e.outcome == Outcome::kOk;
    }
    leases.reserve(n_leases);
    ok_uses.reserve(n_uses);
  }

  // Pass 1: groups, counts, leases, uses, crashes.
  int32_t g = -1;
  for (const Event& e : events) {
    g = find_group(e, g);
    Group& grp = groups[static_cast<size_t>(g)];
    CheckResult& r = grp.result;
    grp.history_end_us = std::max({grp.history_end_us, e.invoke_us, e.complete_us});
    switch (e.type) {
      case OpType::kAcquire:
        if (e.outcome == Outcome::kOk) {
          ++r.acquires_ok;
          LeaseRec l;
          l.op = e.op_id;
          l.start_us = e.complete_us;
          l.deadline_us = ValidityDeadline(e, e.complete_us);
          l.group = g;
          l.slot = find_slot(g, e);
          l.client = e.client;
          op_index.Put(e.op_id, static_cast<int32_t>(leases.size()));
          leases.push_back(l);
        } else if (e.outcome == Outcome::kFail) {
          ++r.acquires_fail;
        } else {
          ++r.acquires_unknown;
        }
        break;
      case OpType::kRelease:
        (e.outcome == Outcome::kOk     ? r.releases_ok
         : e.outcome == Outcome::kFail ? r.releases_fail
                                       : r.releases_unknown)++;
        break;
      case OpType::kExtend:
        (e.outcome == Outcome::kOk     ? r.extends_ok
         : e.outcome == Outcome::kFail ? r.extends_fail
                                       : r.extends_unknown)++;
        break;
      case OpType::kUse:
        if (e.outcome == Outcome::kFail) {
          ++r.uses_abandoned;
        } else {
          ++r.uses;
          if (e.outcome == Outcome::kOk) ok_uses.emplace_back(find_slot(g, e), e.value);
        }
        break;
      case OpType::kCrash:
        grp.crashes.emplace_back(e.client, e.invoke_us);
        break;
      case OpType::kWrite:
      case OpType::kFault:
        break;
    }
  }

  // Pass 2: releases, extends and uses naming a lease (in any order relative to it).
  for (const Event& e : events) {
    if (e.lease_op < 0 ||
        (e.type != OpType::kRelease && e.type != OpType::kExtend && e.type != OpType::kUse)) {
      continue;
    }
    int32_t li = op_index.Get(e.lease_op);
    if (li < 0) continue;  // names a failed/unknown acquire, or nothing
    LeaseRec& l = leases[static_cast<size_t>(li)];
    const Group& grp = groups[static_cast<size_t>(l.group)];
    if (e.client != l.client || e.impl != grp.impl || e.scenario != grp.scenario) continue;
    switch (e.type) {
      case OpType::kRelease:
        l.release_invoke_us = std::min(l.release_invoke_us, e.invoke_us);
        break;
      case OpType::kExtend:
        if (e.outcome == Outcome::kOk) {
          l.deadline_us = std::max(l.deadline_us, ValidityDeadline(e, e.invoke_us));
        } else if (e.outcome == Outcome::kFail) {
          l.extend_failed_us = std::min(l.extend_failed_us, e.complete_us);
        }
        break;
      case OpType::kUse:
        if (e.outcome != Outcome::kFail) l.last_use_us = std::max(l.last_use_us, e.complete_us);
        break;
      default:
        break;
    }
  }

  // Interval ends.
  for (Group& grp : groups) std::sort(grp.crashes.begin(), grp.crashes.end());
  for (LeaseRec& l : leases) {
    const Group& grp = groups[static_cast<size_t>(l.group)];
    int64_t end = l.deadline_us;
    EndReason reason = EndReason::kDeadline;
    if (l.extend_failed_us < end) end = l.extend_failed_us, reason = EndReason::kExtendFailed;
    if (grp.history_end_us < end) end = grp.history_end_us, reason = EndReason::kHistoryEnd;
    if (l.last_use_us > end) end = l.last_use_us, reason = EndReason::kLateUse;
    if (l.release_invoke_us < end) end = l.release_invoke_us, reason = EndReason::kRelease;
    auto crash = std::lower_bound(grp.crashes.begin(), grp.crashes.end(),
                                  std::make_pair(l.client, l.start_us));
    if (crash != grp.crashes.end() && crash->first == l.client && crash->second < end) {
      end = crash->second, reason = EndReason::kCrash;
    }
    l.end_us = end;
    l.reason = reason;
  }

  // Sweep each slot's intervals in start order, keeping the open ones.
  std::vector<size_t> lease_begin;
  std::vector<int32_t> lease_order = GroupBySlot(
      leases.size(), slot_group.size(), [&](size_t i) { return leases[i].slot; }, &lease_begin);
  auto by_start = [&](int32_t a, int32_t b) {
    const LeaseRec& la = leases[static_cast<size_t>(a)];
    const LeaseRec& lb = leases[static_cast<size_t>(b)];
    return la.start_us != lb.start_us ? la.start_us < lb.start_us : la.op < lb.op;
  };
  std::vector<int32_t> active;
  for (Group& grp : groups) {
    std::vector<std::pair<std::string_view, int32_t>> keys;
    for (const auto& [key, slot] : grp.slot_of_key) keys.emplace_back(key, slot);
    std::sort(keys.begin(), keys.end());
    CheckResult& r = grp.result;
    for (const auto& [key, slot] : keys) {
      auto first = lease_order.begin() + static_cast<ptrdiff_t>(lease_begin[slot]);
      auto last = lease_order.begin() + static_cast<ptrdiff_t>(lease_begin[slot + 1]);
      if (!std::is_sorted(first, last, by_start)) std::sort(first, last, by_start);
      active.clear();
      for (auto it = first; it != last; ++it) {
        const LeaseRec& b = leases[static_cast<size_t>(*it)];
        if (b.end_us <= b.start_us) continue;
        for (size_t k = 0; k < active.size();) {
          if (leases[static_cast<size_t>(active[k])].end_us <= b.start_us) {
            active[k] = active.back();
            active.pop_back();
          } else {
            ++k;
          }
        }
        for (int32_t ai : active) {
          const LeaseRec& a = leases[static_cast<size_t>(ai)];
          if (a.client == b.client) continue;
          ++r.violation_count;
          if (r.violations.size() >= CheckResult::kMaxStoredViolations) continue;
          Violation v;
          v.kind = "overlap";
          v.impl = grp.impl;
          v.scenario = grp.scenario;
          v.key = std::string(key);
          v.client_a = a.client;
          v.client_b = b.client;
          v.op_a = a.op;
          v.op_b = b.op;
          v.start_us = b.start_us;
          v.overlap_us = std::min(a.end_us, b.end_us) - b.start_us;
          v.detail = Interval(a) + "; " + Interval(b);
          r.violations.push_back(std::move(v));
        }
        active.push_back(*it);
      }
    }
  }

  // Lost updates: per slot, ok uses minus distinct values read.
  std::vector<size_t> use_begin;
  std::vector<int32_t> use_order = GroupBySlot(
      ok_uses.size(), slot_group.size(), [&](size_t i) { return ok_uses[i].first; }, &use_begin);
  std::vector<int64_t> values;
  for (size_t s = 0; s < slot_group.size(); ++s) {
    if (use_begin[s] == use_begin[s + 1]) continue;
    values.clear();
    for (size_t i = use_begin[s]; i < use_begin[s + 1]; ++i) {
      values.push_back(ok_uses[static_cast<size_t>(use_order[i])].second);
    }
    if (!std::is_sorted(values.begin(), values.end())) std::sort(values.begin(), values.end());
    int64_t distinct = std::unique(values.begin(), values.end()) - values.begin();
    groups[static_cast<size_t>(slot_group[s])].result.lost_updates +=
        static_cast<int64_t>(values.size()) - distinct;
  }

  std::map<std::pair<std::string, std::string>, CheckResult> out;
  for (Group& grp : groups) {
    CheckResult& r = grp.result;
    r.verdict = r.violation_count > 0 ? Verdict::kInvalid
                : r.acquires_ok == 0  ? Verdict::kInconclusive
                                      : Verdict::kValid;
    out.emplace(std::make_pair(grp.impl, grp.scenario), std::move(r));
  }
  return out;
}

namespace {

// Counts a liveness violation of `kind` about event `e` (its client and op) and keeps it if
// fewer than kMaxStoredViolations are kept.
void AddLivenessViolation(LivenessResult* l, const char* kind, const Event& e, int64_t start_us,
                          int64_t length_us, std::string detail) {
  ++l->violation_count;
  if (l->violations.size() >= CheckResult::kMaxStoredViolations) return;
  Violation v;
  v.kind = kind;
  v.impl = e.impl;
  v.scenario = e.scenario;
  v.key = e.key;
  v.client_a = e.client;
  v.op_a = e.op_id;
  v.start_us = start_us;
  v.overlap_us = length_us;
  v.detail = std::move(detail);
  l->violations.push_back(std::move(v));
}

}  // namespace

void CheckLiveness(const std::vector<Event>& events,
                   std::map<std::pair<std::string, std::string>, CheckResult>* results) {
  using Pair = std::pair<std::string, std::string>;
  // Per pair: ok acquires per key (complete_us, client), crashes, end of the safety phase.
  struct Acq {
    int64_t complete_us;
    int client;
  };
  struct PairData {
    std::map<std::string, std::vector<Acq>> ok_by_key;
    std::vector<const Event*> crashes;
    int64_t safety_end_us = 0;
  };
  std::map<Pair, PairData> data;
  for (const Event& e : events) {
    if (e.type == OpType::kFault && e.impl.empty()) continue;  // not tied to an impl
    Pair p{e.impl, e.scenario};
    PairData& d = data[p];
    LivenessResult& l = (*results)[p].liveness;
    if (e.phase == kPhaseLiveness) {
      if (e.type != OpType::kAcquire) continue;
      ++l.probes;
      if (e.outcome == Outcome::kOk) {
        ++l.probes_ok;
        l.probe_wait_ms_max = std::max(l.probe_wait_ms_max, (e.complete_us - e.invoke_us) / 1000);
        continue;
      }
      AddLivenessViolation(&l, "liveness", e, e.invoke_us, e.complete_us - e.invoke_us,
                           "after every fault was healed, client c" + std::to_string(e.client) +
                               " could not acquire " + e.key + ": its probe ended " +
                               OutcomeName(e.outcome) + " after " +
                               std::to_string((e.complete_us - e.invoke_us) / 1000) + " ms and " +
                               std::to_string(e.attempts) + " attempt(s)" +
                               (e.note.empty() ? "" : " (" + e.note + ")"));
      continue;
    }
    d.safety_end_us = std::max({d.safety_end_us, e.invoke_us, e.complete_us});
    if (e.type == OpType::kCrash) d.crashes.push_back(&e);
    if (e.type == OpType::kAcquire && e.outcome == Outcome::kOk)
      d.ok_by_key[e.key].push_back({e.complete_us, e.client});
  }
  for (auto& [p, d] : data) {
    LivenessResult& l = (*results)[p].liveness;
    for (auto& [key, v] : d.ok_by_key)
      std::sort(v.begin(), v.end(),
                [](const Acq& a, const Acq& b) { return a.complete_us < b.complete_us; });
    for (const Event* c : d.crashes) {
      ++l.crashes;
      const int64_t bound_us = c->ttl_ms * 1000;
      const int64_t t = c->invoke_us;
      std::optional<int64_t> next_us;
      auto it = d.ok_by_key.find(c->key);
      if (it != d.ok_by_key.end()) {
        auto a = std::upper_bound(it->second.begin(), it->second.end(), t,
                                  [](int64_t x, const Acq& q) { return x < q.complete_us; });
        for (int guard = 0; a != it->second.end() && guard < 1000000; ++a, ++guard) {
          if (a->client != c->client) {
            next_us = a->complete_us;
            break;
          }
        }
      }
      int64_t delay_us = -1;
      if (next_us) {
        delay_us = *next_us - t;
        l.recovery_ms.push_back(delay_us / 1000);
        l.recovery_ms_max = std::max(l.recovery_ms_max, delay_us / 1000);
      }
      const bool late =
          bound_us > 0 && (next_us ? delay_us > bound_us : d.safety_end_us - t > bound_us);
      if (!late) continue;
      AddLivenessViolation(
          &l, "recovery", *c, t, next_us ? delay_us : d.safety_end_us - t,
          "after client c" + std::to_string(c->client) + " crashed (" + c->note + "), " +
              (next_us ? "the next other client acquired " + c->key + " only " +
                             std::to_string(delay_us / 1000) + " ms later"
                       : "no other client acquired " + c->key + " in the remaining " +
                             std::to_string((d.safety_end_us - t) / 1000) + " ms") +
              " (bound " + std::to_string(c->ttl_ms) + " ms)");
    }
  }
  for (auto& [p, r] : *results) {
    LivenessResult& l = r.liveness;
    l.verdict = l.violation_count > 0 ? Verdict::kInvalid
                : l.probes > 0        ? Verdict::kValid
                                      : Verdict::kInconclusive;
  }
}

std::map<std::pair<std::string, std::string>, CheckResult> CheckHistory(
    const std::vector<Event>& events) {
  auto results = CheckMutualExclusion(events);
  CheckLiveness(events, &results);
  return results;
}

}  // namespace lockstorm
