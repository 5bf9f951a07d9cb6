// Checker: decides from a recorded history whether a lock kept mutual exclusion.
//
// CheckMutualExclusion is a pure function of an immutable history (see history.h). Events of
// several (impl, scenario) pairs may be mixed; each pair is judged on its own, and within it
// each key on its own. Op ids are unique within the run, so a release/extend/use finds its
// lease by lease_op alone (one naming a lease of another (impl, scenario) is ignored).
//
// Belief intervals. Each acquire with outcome ok gives its client a belief interval
// [start, end) for that key: the time during which the client believed it held the lock.
//   start = the acquire's complete_us.
//   Deadline: the acquire's complete_us + valid_ms*1000. Each extend naming the lease with
//     outcome ok moves it to max(deadline, extend.invoke_us + extend.valid_ms*1000): the
//     validity is measured from the extend's *invoke*, the earliest moment it may have been
//     granted (the shorter, conservative choice for the client). A lock that does not report
//     validity (valid_ms <= 0 on the event) is taken at its word for ttl_ms, from the event's
//     invoke_us; with neither, there is no deadline.
//   soft_end = min(deadline, the complete_us of the first extend naming the lease that failed
//     (outcome fail: the client learned it lost the lock), the end of the history (the
//     largest invoke_us/complete_us of any event of the same impl and scenario)).
//   hard_end = min(the invoke_us of the first release naming the lease (any outcome: the
//     client gave it up when it started releasing), the invoke_us of the first kCrash event
//     of the same impl, scenario and client at or after start (a dead client believes
//     nothing)).
//   Late use: a holder that acts on the guarded resource after its soft end (a paused holder
//     that did not check its lease) still believed it held the lock. So
//       end = min(max(soft_end, latest complete_us of its kUse events with outcome ok or
//                     unknown), hard_end).
//     A kUse with outcome fail (read, saw the lease was gone, wrote nothing) does not extend.
//   An interval with end <= start is empty and takes part in nothing.
// Acquires with outcome unknown or fail never create a belief interval (an unknown one may
// hold the lock in Redis, but not in the client's mind); they are counted.
//
// Overlaps. Two non-empty belief intervals of *different* clients on the same (impl,
// scenario, key) that intersect are a violation of kind "overlap": start_us = the later
// start, overlap_us = min(ends) - start_us (> 0). Client a / op a is the interval that starts
// first (ties: smaller op id). Found by a sweep over the intervals sorted by start keeping
// the set of still-open intervals: O(n log n + overlaps).
//
// Lost updates. The guarded resource is a counter per (impl, scenario, key); a kUse with
// outcome ok read `value` and wrote value+1. An ok use whose written value value+1 had
// already been written by another ok use overwrote a concurrent increment: each such use
// counts 1. Equivalently lost_updates = #ok uses - #distinct values read by ok uses. A
// perfectly serialized run (0, 1, 2, ...) gives 0; two clients both reading 5 give 1. (A
// stale write that rolls the counter back below later writes is counted once, so this is a
// lower bound on the increments lost.) kUse with outcome fail (abandoned) wrote nothing and
// only counts in uses_abandoned.
//
// Verdict: kInvalid if any overlap; else kInconclusive if there was no ok acquire (nothing
// was tested); else kValid. Lost updates alone do not decide the verdict here (they follow
// from overlaps, and a lock without a belief overlap cannot cause them).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "harness/history.h"

namespace lockstorm {

enum class Verdict { kValid, kInconclusive, kInvalid };
const char* VerdictName(Verdict v);  // "valid", "inconclusive", "invalid"
// The verdict of two checks together: invalid beats inconclusive beats valid.
Verdict Combine(Verdict a, Verdict b);

struct Violation {
  std::string kind;  // "overlap"
  std::string impl, scenario, key;
  int client_a = -1, client_b = -1;  // a: the interval that started first
  int64_t op_a = 0, op_b = 0;        // acquire op ids of the two leases
  int64_t start_us = 0;              // overlap start on the history clock
  int64_t overlap_us = 0;            // overlap length
  std::string detail;                // one line for a human: both intervals and why each ended
};
nlohmann::json ViolationToJson(const Violation& v);

// Liveness (CheckLiveness), judged after the safety phase. Two rules:
//   Probe: each kAcquire of the liveness phase (Event::phase == kPhaseLiveness) — one per
//     client, made after every fault was healed, with a wait budget of the scenario's liveness
//     bound — must end ok. A probe that ends fail or unknown is a violation of kind
//     "liveness" (the lock could not be taken although nothing was wrong any more: a key with
//     no TTL, a lock that never expires, a client that cannot reconnect).
//   Recovery: after each kCrash event of the safety phase on key k at time t (the crashed
//     client held, or was acquiring, k), another client's ok acquire of k must complete by
//     t + bound, where bound is the kCrash event's ttl_ms field (the runner writes the
//     scenario's liveness bound there). Late is a violation of kind "recovery". When no other
//     client acquired k afterwards, it is a violation only if the safety phase went on past
//     t + bound (otherwise the probes judge it). recovery_ms records every measured delay.
// The liveness verdict: kInvalid on any violation; kInconclusive if there was no probe; else
// kValid.
struct LivenessResult {
  Verdict verdict = Verdict::kInconclusive;
  std::vector<Violation> violations;  // first CheckResult::kMaxStoredViolations
  int64_t violation_count = 0;
  int64_t probes = 0, probes_ok = 0;
  int64_t probe_wait_ms_max = 0;     // longest ok probe (invoke → complete)
  int64_t crashes = 0;               // kCrash events in the safety phase
  std::vector<int64_t> recovery_ms;  // per crash that was followed by another acquire
  int64_t recovery_ms_max = 0;
};

struct CheckResult {
  static constexpr size_t kMaxStoredViolations = 1000;

  Verdict verdict = Verdict::kInconclusive;
  // The first kMaxStoredViolations overlaps found: keys in lexicographic order, within a
  // key by start_us. violation_count counts all of them.
  std::vector<Violation> violations;
  int64_t violation_count = 0;
  int64_t acquires_ok = 0, acquires_fail = 0, acquires_unknown = 0;
  int64_t releases_ok = 0, releases_fail = 0, releases_unknown = 0;
  int64_t extends_ok = 0, extends_fail = 0, extends_unknown = 0;
  int64_t lost_updates = 0;
  int64_t uses = 0;            // kUse with outcome ok (or unknown)
  int64_t uses_abandoned = 0;  // kUse with outcome fail
  LivenessResult liveness;     // filled by CheckLiveness
};
// Counts and verdict (violations themselves are left to ViolationToJson).
nlohmann::json CheckResultToJson(const CheckResult& r);

// Checks every (impl, scenario) pair present in `events`; the map is keyed by that pair.
std::map<std::pair<std::string, std::string>, CheckResult> CheckMutualExclusion(
    const std::vector<Event>& events);

// Adds the liveness judgement of every (impl, scenario) pair in `events` to (*results)[pair]
// .liveness (creating entries as needed). Pure: depends on `events` only.
void CheckLiveness(const std::vector<Event>& events,
                   std::map<std::pair<std::string, std::string>, CheckResult>* results);

// CheckMutualExclusion, then CheckLiveness: the full check of a history.
std::map<std::pair<std::string, std::string>, CheckResult> CheckHistory(
    const std::vector<Event>& events);

}  // namespace lockstorm
