// Checker: decides from a recorded history whether a lock kept mutual exclusion, kept its
// contract, and stayed live.
//
// Every check is a pure function of an immutable history (see history.h). Events of several
// (impl, scenario) pairs may be mixed; each pair is judged on its own, and within it each key
// on its own. Op ids are unique within the run, so a release/extend/use/sample finds the
// operation it names by lease_op alone.
//
// The history is first packed into a CompactHistory (64 bytes per event, strings interned,
// tokens hashed) so that a 10-million-event history checks in well under 1 GiB; every check
// below runs on it in O(n log n).
//
// Leases. Each acquire with outcome ok gives its client a lease on its key:
//   start = the acquire's complete_us.
//   Deadline (the lock's promise): complete_us + valid_ms*1000. Each extend naming the lease
//     with outcome ok moves it to max(deadline, extend.invoke_us + extend.valid_ms*1000): the
//     validity is measured from the extend's *invoke*, the earliest moment it may have been
//     granted. A lock that reports no validity (valid_ms <= 0) is taken at its word for ttl_ms
//     from the event's invoke_us; with neither, there is no deadline.
//   end = min(deadline, the complete_us of the first failed extend naming the lease (the
//     client learned it lost the lock), the end of the history, the invoke_us of the first
//     release naming it (the client gave it up when it started releasing), the invoke_us of
//     the first kCrash of the same client at or after start).
// Acquires with outcome unknown or fail never create a lease (an unknown one may hold the key
// in Redis, but not in the client's mind); the availability check counts unknown ones as
// possibly holding the key until complete_us + ttl.
//
// SAFETY checks (CheckResult::violations; any one makes the verdict kInvalid):
//   overlap — lock level: two leases of different clients on one key intersect.
//     start_us = the later start, overlap_us = min(ends) - start_us. Client/op a starts first.
//   late-use — usage level: a kUse (ok or unknown) completed more than kLateUseToleranceUs
//     after its lease's deadline as the client computed it (acquire/extend complete_us +
//     valid_ms) or after a failed extend: the client acted on the resource after its own
//     validity ended (a paused or careless holder). overlap_us = how late.
//   stale-fence — fencing: the witness accepted (kWrite ok) a fence lower than one it had
//     accepted in a write that completed before this one was invoked.
//   validity-exceeds-ttl — contract: the validity an ok acquire/extend reported outlives the
//     key on a quorum of the nodes sampled right after it (kSample after-acquire /
//     after-extend): a node supports the claim if it holds the lease's token and its expiry
//     (sample complete_us + (PTTL+1) ms; no TTL = never) is at or after the claimed end,
//     complete_us + valid_ms - kClaimToleranceUs (the slack covers the moment between the
//     lock's last clock reading and the recorded completion, and a plug-in's pipe);
//     the claim is broken if fewer than N/2+1 of the N nodes could support it (N = nodes the
//     impl's samples cover). Also: valid_ms greater than the requested ttl_ms. Skipped for an
//     impl whose samples never showed a lease's token (it does not store the token as the
//     value), and in a pair where a server clock was faulted (PTTL is then not real time).
//   extend-after-expiry — contract: an extend ended ok although it was invoked more than
//     kExpiryToleranceUs after every copy of the key must have expired (acquire complete_us +
//     ttl_ms, moved by each earlier ok/unknown extend's complete_us + ttl_ms).
//   foreign-release — contract: a release ended ok although invoked after that expiry: it
//     deleted a key it no longer owned (the evidence names the lease that was live then).
//   failed-acquire-holds — contract: an acquire ended fail (definitely not acquired), yet the
//     samples right after it (after-fail) found its token on a quorum of nodes.
//   (Both expiry checks are skipped in a pair where a server clock was faulted, and for a
//   lease whose after-acquire sample showed its key with no TTL: that is a no-ttl violation.)
// LIVENESS checks (CheckResult::liveness; any one makes the liveness verdict kInvalid):
//   liveness — a probe of the liveness phase (one per client, after every fault healed, wait
//     = the scenario's liveness bound) ended fail or unknown.
//   recovery — after a kCrash of the safety phase on key k at t, no other client's ok acquire
//     of k completed by t + bound (the kCrash event's ttl_ms); with no later acquire at all it
//     counts only if the safety phase went on past t + bound.
//   no-ttl — a sample found a lock key with no TTL: right after an ok acquire/extend, with the
//     lease's own token, or at quiesce (after the run). It would never expire.
//   unavailable — availability: an acquire that ended fail after waiting >= 100 ms found the
//     key free (no lease or unknown acquire could hold it, no fault in effect or within a TTL
//     after one) for at least 75% of its wait.
//   release-lost — a release ended fail although invoked before its lease's deadline, with no
//     fault during the lease and no failed extend: the lock could not release a lock it held
//     (it stays until its TTL).
//   left-behind — at quiesce a key still held a token whose release had ended ok, or of an
//     acquire that had ended fail.
//
// Lost updates. The guarded resource is a counter per (impl, scenario, key); a kUse with
// outcome ok read `value` and wrote value+1: lost_updates = #ok uses - #distinct values read.
//
// Verdict: kInvalid if any safety violation; else kInconclusive if there was no ok acquire;
// else kValid. Lost updates alone do not decide it. The liveness verdict: kInvalid on any
// liveness violation; kInconclusive if there was no probe and none; else kValid.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "harness/history.h"

namespace lockstorm {

enum class Verdict { kValid, kInconclusive, kInvalid };
const char* VerdictName(Verdict v);  // "valid", "inconclusive", "invalid"
// The verdict of two checks together: invalid beats inconclusive beats valid.
Verdict Combine(Verdict a, Verdict b);

inline constexpr int64_t kLateUseToleranceUs = 2000;
inline constexpr int64_t kExpiryToleranceUs = 2000;
inline constexpr int64_t kClaimToleranceUs = 10'000;

// True for the liveness kinds (liveness, recovery, no-ttl, unavailable, release-lost,
// left-behind); false for the safety kinds.
bool IsLivenessKind(const std::string& kind);
// Every violation kind, safety kinds first, in the order above; terminated by nullptr.
const char* const* ViolationKinds();

struct Violation {
  std::string kind;  // one of ViolationKinds()
  std::string impl, scenario, key;
  int client_a = -1, client_b = -1;  // overlap: a = the lease that started first; others:
                                     // a = the client at fault, b = another involved (or -1)
  int64_t op_a = 0, op_b = 0;        // the operations involved (overlap: the two acquires)
  int64_t start_us = 0;              // when it happened, on the history clock
  int64_t overlap_us = 0;            // how long / how late (kind-specific, see above)
  std::string detail;                // one line for a human: the evidence
};
nlohmann::json ViolationToJson(const Violation& v);

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
  // The first kMaxStoredViolations safety violations found, by kind (in ViolationKinds()
  // order), then key, then time. violation_count counts all of them.
  std::vector<Violation> violations;
  int64_t violation_count = 0;
  int64_t acquires_ok = 0, acquires_fail = 0, acquires_unknown = 0;
  int64_t releases_ok = 0, releases_fail = 0, releases_unknown = 0;
  int64_t extends_ok = 0, extends_fail = 0, extends_unknown = 0;
  int64_t lost_updates = 0;
  int64_t uses = 0;               // kUse with outcome ok (or unknown)
  int64_t uses_abandoned = 0;     // kUse with outcome fail
  int64_t samples = 0;            // kSample events
  bool contract_checked = false;  // the validity contract applied (see above)
  int64_t keys_at_quiesce = 0;    // lock keys (× nodes) still present after the run
  // Time to detection: from the pair's first event to its earliest violation (any kind);
  // -1 if none.
  int64_t first_violation_ms = -1;
  int64_t start_us = 0;                               // the pair's first event (history clock)
  std::map<std::string, int64_t> violations_by_kind;  // safety and liveness kinds, all counted
  LivenessResult liveness;
};
// Counts and verdict (violations themselves are left to ViolationToJson).
nlohmann::json CheckResultToJson(const CheckResult& r);

// The checkers' input: one 64-byte record per event. Strings are interned (impl, scenario,
// key), tokens hashed (64-bit), notes kept only for faults, crashes and liveness probes (the
// evidence quotes them). Not thread-safe while being filled; immutable afterwards.
class CompactHistory {
 public:
  struct Rec {
    int64_t op_id;
    int64_t lease_op;
    int64_t invoke_us;
    int64_t value;        // kUse: value read; kAcquire/kWrite: fence; kSample: PTTL ms
    uint64_t token;       // hash of the token; 0 = none
    int32_t duration_us;  // complete_us - invoke_us, clamped to int32
    int32_t ttl_ms;       // clamped to int32
    int32_t valid_ms;
    int32_t slot;  // the (impl, scenario, key) it belongs to
    int16_t client;
    int16_t node;
    uint8_t type;     // OpType
    uint8_t outcome;  // Outcome
    uint8_t flags;    // kFlag*
    uint8_t sample;   // kSample: 0 after-acquire, 1 after-extend, 2 after-fail, 3 quiesce
    int64_t complete_us() const { return invoke_us + duration_us; }
  };
  static constexpr uint8_t kFlagLiveness = 1;     // phase == kPhaseLiveness
  static constexpr uint8_t kFlagFence = 2;        // value holds a fence
  static constexpr uint8_t kFlagServerClock = 4;  // a fault on a server clock
  static_assert(sizeof(Rec) == 64);

  void Reserve(size_t n) { recs_.reserve(n); }
  void Add(const Event& e);
  size_t size() const { return recs_.size(); }
  const std::vector<Rec>& recs() const { return recs_; }
  size_t slot_count() const { return slot_pair_.size(); }
  int32_t slot_pair(int32_t slot) const { return slot_pair_[static_cast<size_t>(slot)]; }
  const std::string& slot_key(int32_t slot) const { return slot_key_[static_cast<size_t>(slot)]; }
  size_t pair_count() const { return pairs_.size(); }
  const std::pair<std::string, std::string>& pair(int32_t p) const {
    return pairs_[static_cast<size_t>(p)];
  }
  // The note of a fault, crash or probe event (by op id); "" if none kept.
  const std::string& note(int64_t op_id) const;

 private:
  std::vector<Rec> recs_;
  std::vector<std::pair<std::string, std::string>> pairs_;
  std::unordered_map<std::string, int32_t> pair_of_;  // impl + '\0' + scenario
  std::vector<int32_t> slot_pair_;
  std::vector<std::string> slot_key_;
  std::unordered_map<std::string, int32_t> slot_of_;  // pair id + '\0' + key
  std::unordered_map<int64_t, std::string> notes_;
  int32_t last_pair_ = -1;
  int32_t last_slot_ = -1;
  std::string last_impl_, last_scenario_;
};

// Every check above on every (impl, scenario) pair (pairs with an empty impl — run-wide
// faults — are left out); the map is keyed by that pair.
std::map<std::pair<std::string, std::string>, CheckResult> CheckCompact(const CompactHistory& h);

// Packs `events` and runs CheckCompact: the full check of a history.
std::map<std::pair<std::string, std::string>, CheckResult> CheckHistory(
    const std::vector<Event>& events);
// CheckHistory without the liveness part (result.liveness left empty).
std::map<std::pair<std::string, std::string>, CheckResult> CheckMutualExclusion(
    const std::vector<Event>& events);
// Sets (*results)[pair].liveness for every pair of `events` from CheckHistory.
void CheckLiveness(const std::vector<Event>& events,
                   std::map<std::pair<std::string, std::string>, CheckResult>* results);

}  // namespace lockstorm
