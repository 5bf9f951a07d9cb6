#include "harness/checker.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace lockstorm {
namespace {

// Builds small histories by hand. Times in µs on the history clock.
class HistoryBuilder {
 public:
  std::string impl = "impl";
  std::string scenario = "scen";

  int64_t Acquire(int client, const std::string& key, int64_t invoke_us, int64_t complete_us,
                  int64_t valid_ms, Outcome outcome = Outcome::kOk) {
    Event e = Base(OpType::kAcquire, client, key, invoke_us, complete_us, outcome);
    e.valid_ms = outcome == Outcome::kOk ? valid_ms : 0;
    e.ttl_ms = valid_ms;
    e.attempts = 1;
    e.token = "tok" + std::to_string(next_op_);  // every acquire carries a unique token
    const int64_t op = Add(e);
    tokens_[op] = events.back().token;
    return op;
  }
  // The token of acquire `op` ("" if unknown).
  std::string Token(int64_t op) const {
    auto it = tokens_.find(op);
    return it == tokens_.end() ? "" : it->second;
  }
  // The last event added, to adjust fields the helpers do not take.
  Event& Last() { return events.back(); }
  // A kSample of `key` on `node` following operation `after` (note: kSampleAfterAcquire ...;
  // kSampleQuiesce with after = -1).
  int64_t Sample(const std::string& key, int64_t after, int node, const std::string& token,
                 int64_t pttl_ms, const char* note, int64_t invoke_us, int64_t complete_us) {
    Event e = Base(OpType::kSample, -1, key, invoke_us, complete_us, Outcome::kOk);
    e.lease_op = after;
    e.node = node;
    e.token = token;
    e.value = pttl_ms;
    e.note = note;
    return Add(e);
  }
  // A write to the fenced witness; accepted = outcome ok, rejected = fail.
  int64_t Write(int64_t lease, int client, const std::string& key, int64_t invoke_us,
                int64_t complete_us, int64_t fence, bool accepted = true) {
    Event e = Base(OpType::kWrite, client, key, invoke_us, complete_us,
                   accepted ? Outcome::kOk : Outcome::kFail);
    e.lease_op = lease;
    e.token = Token(lease);
    e.fence = fence;
    return Add(e);
  }
  // A nemesis fault period of this pair, e.g. note "clock-rate: n0 x0.5" or "partition: ...".
  int64_t Fault(const std::string& note, int64_t invoke_us, int64_t complete_us) {
    Event e = Base(OpType::kFault, -1, "", invoke_us, complete_us, Outcome::kOk);
    e.note = note;
    return Add(e);
  }
  int64_t Release(int64_t lease, int client, const std::string& key, int64_t invoke_us,
                  int64_t complete_us, Outcome outcome = Outcome::kOk) {
    Event e = Base(OpType::kRelease, client, key, invoke_us, complete_us, outcome);
    e.lease_op = lease;
    e.token = Token(lease);
    return Add(e);
  }
  int64_t Extend(int64_t lease, int client, const std::string& key, int64_t invoke_us,
                 int64_t complete_us, int64_t valid_ms, Outcome outcome = Outcome::kOk) {
    Event e = Base(OpType::kExtend, client, key, invoke_us, complete_us, outcome);
    e.lease_op = lease;
    e.token = Token(lease);
    e.ttl_ms = valid_ms;
    e.valid_ms = outcome == Outcome::kOk ? valid_ms : 0;
    return Add(e);
  }
  int64_t Use(int64_t lease, int client, const std::string& key, int64_t invoke_us,
              int64_t complete_us, int64_t value, Outcome outcome = Outcome::kOk) {
    Event e = Base(OpType::kUse, client, key, invoke_us, complete_us, outcome);
    e.lease_op = lease;
    e.value = value;
    return Add(e);
  }
  int64_t Crash(int client, int64_t at_us) {
    return Add(Base(OpType::kCrash, client, "", at_us, at_us, Outcome::kOk));
  }
  int64_t Add(Event e) {
    if (e.op_id == 0) e.op_id = next_op_++;
    next_op_ = std::max(next_op_, e.op_id + 1);
    events.push_back(e);
    return e.op_id;
  }

  // The full check (CheckHistory: safety and liveness) of this builder's pair.
  CheckResult CheckAll() const {
    auto results = CheckHistory(events);
    auto it = results.find({impl, scenario});
    EXPECT_NE(it, results.end());
    return it == results.end() ? CheckResult{} : it->second;
  }

  CheckResult Check() const {
    auto results = CheckMutualExclusion(events);
    auto it = results.find({impl, scenario});
    EXPECT_NE(it, results.end());
    return it == results.end() ? CheckResult{} : it->second;
  }

  std::vector<Event> events;

 private:
  Event Base(OpType type, int client, const std::string& key, int64_t invoke_us,
             int64_t complete_us, Outcome outcome) const {
    Event e;
    e.impl = impl;
    e.scenario = scenario;
    e.client = client;
    e.key = key;
    e.type = type;
    e.invoke_us = invoke_us;
    e.complete_us = complete_us;
    e.outcome = outcome;
    return e;
  }
  int64_t next_op_ = 1;
  std::map<int64_t, std::string> tokens_;
};

TEST(VerdictTest, CombineOrdersInvalidInconclusiveValid) {
  const Verdict all[] = {Verdict::kValid, Verdict::kInconclusive, Verdict::kInvalid};
  for (Verdict a : all) {
    for (Verdict b : all) {
      Verdict want = std::max(a, b);  // declared in increasing severity
      EXPECT_EQ(Combine(a, b), want) << VerdictName(a) << " + " << VerdictName(b);
    }
  }
  EXPECT_STREQ(VerdictName(Verdict::kInconclusive), "inconclusive");
}

TEST(CheckerTest, SerialHistoryIsValid) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 100, 1000);
  h.Use(a, 0, "k", 110, 120, 0);
  h.Release(a, 0, "k", 200, 250);
  h.Acquire(1, "k", 50, 150, 1000, Outcome::kFail);
  int64_t b = h.Acquire(1, "k", 210, 260, 1000);
  h.Use(b, 1, "k", 270, 280, 1);
  h.Release(b, 1, "k", 300, 350, Outcome::kFail);
  CheckResult r = h.Check();
  EXPECT_EQ(r.verdict, Verdict::kValid);
  EXPECT_TRUE(r.violations.empty());
  EXPECT_EQ(r.violation_count, 0);
  EXPECT_EQ(r.acquires_ok, 2);
  EXPECT_EQ(r.acquires_fail, 1);
  EXPECT_EQ(r.releases_ok, 1);
  EXPECT_EQ(r.releases_fail, 1);
  EXPECT_EQ(r.uses, 2);
  EXPECT_EQ(r.lost_updates, 0);
}

TEST(CheckerTest, OverlapIsReportedWithIdsAndLength) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 100, 1000);
  int64_t b = h.Acquire(1, "k", 50, 300, 1000);
  h.Release(a, 0, "k", 500, 510);
  h.Release(b, 1, "k", 800, 810);
  CheckResult r = h.Check();
  EXPECT_EQ(r.verdict, Verdict::kInvalid);
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violation_count, 1);
  const Violation& v = r.violations[0];
  EXPECT_EQ(v.kind, "overlap");
  EXPECT_EQ(v.impl, "impl");
  EXPECT_EQ(v.scenario, "scen");
  EXPECT_EQ(v.key, "k");
  EXPECT_EQ(v.client_a, 0);
  EXPECT_EQ(v.client_b, 1);
  EXPECT_EQ(v.op_a, a);
  EXPECT_EQ(v.op_b, b);
  EXPECT_EQ(v.start_us, 300);
  EXPECT_EQ(v.overlap_us, 200);  // [300, 500)
  EXPECT_NE(v.detail.find("release"), std::string::npos) << v.detail;

  nlohmann::json j = ViolationToJson(v);
  EXPECT_EQ(j["kind"], "overlap");
  EXPECT_EQ(j["op_a"].get<int64_t>(), a);
  EXPECT_EQ(j["op_b"].get<int64_t>(), b);
  EXPECT_EQ(j["client_b"].get<int>(), 1);
  EXPECT_EQ(j["overlap_us"].get<int64_t>(), 200);
  EXPECT_EQ(j["start_us"].get<int64_t>(), 300);
  EXPECT_EQ(j["key"], "k");
  EXPECT_EQ(CheckResultToJson(r)["verdict"], "invalid");
}

TEST(CheckerTest, ReleaseInvokeEndsInterval) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 100, 1000);
  h.Release(a, 0, "k", 300, 900);  // slow release: belief ended when it was invoked
  int64_t b = h.Acquire(1, "k", 250, 300, 1000);
  h.Release(b, 1, "k", 400, 410);
  EXPECT_EQ(h.Check().verdict, Verdict::kValid);

  HistoryBuilder h2;  // one microsecond earlier: an overlap of 1 µs
  a = h2.Acquire(0, "k", 0, 100, 1000);
  h2.Release(a, 0, "k", 300, 900);
  b = h2.Acquire(1, "k", 250, 299, 1000);
  h2.Release(b, 1, "k", 400, 410);
  CheckResult r = h2.Check();
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations[0].overlap_us, 1);
}

TEST(CheckerTest, ExpiredHolderDoesNotOverlapNextHolder) {
  HistoryBuilder h;
  h.Acquire(0, "k", 0, 1000, 10);  // deadline 11000, never released
  int64_t b = h.Acquire(1, "k", 5000, 11000, 10);
  h.Release(b, 1, "k", 15000, 15100);
  EXPECT_EQ(h.Check().verdict, Verdict::kValid);

  HistoryBuilder h2;
  int64_t a = h2.Acquire(0, "k", 0, 1000, 10);
  b = h2.Acquire(1, "k", 5000, 10999, 10);
  h2.Release(b, 1, "k", 15000, 15100);
  CheckResult r = h2.Check();
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations[0].op_a, a);
  EXPECT_EQ(r.violations[0].overlap_us, 1);
  EXPECT_NE(r.violations[0].detail.find("validity deadline"), std::string::npos);
}

TEST(CheckerTest, OkExtendProlongsFromItsInvoke) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 10);  // deadline 11000
  h.Extend(a, 0, "k", 5000, 6000, 10);         // deadline 5000 + 10000 = 15000
  int64_t b = h.Acquire(1, "k", 11000, 12000, 10);
  h.Release(b, 1, "k", 20000, 20100);
  CheckResult r = h.Check();
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations[0].op_a, a);
  EXPECT_EQ(r.violations[0].op_b, b);
  EXPECT_EQ(r.violations[0].start_us, 12000);
  EXPECT_EQ(r.violations[0].overlap_us, 3000);
  EXPECT_EQ(r.extends_ok, 1);
}

TEST(CheckerTest, ExtendNeverShortensAndFailedExtendEndsBelief) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 10);  // deadline 11000
  h.Extend(a, 0, "k", 2000, 2100, 1);          // would be 3000: ignored
  int64_t b = h.Acquire(1, "k", 5000, 10000, 10);
  h.Release(b, 1, "k", 15000, 15100);
  CheckResult r = h.Check();
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations[0].overlap_us, 1000);  // [10000, 11000)

  HistoryBuilder h2;
  a = h2.Acquire(0, "k", 0, 1000, 10);
  h2.Extend(a, 0, "k", 4000, 5000, 0, Outcome::kFail);  // learned at 5000 it is gone
  b = h2.Acquire(1, "k", 5000, 6000, 10);
  h2.Release(b, 1, "k", 15000, 15100);
  r = h2.Check();
  EXPECT_EQ(r.verdict, Verdict::kValid);
  EXPECT_EQ(r.extends_fail, 1);
}

// Lock level and usage level are told apart: the lock kept its promise (a's lease ended at
// its deadline, before b's began), but a paused a acted on the resource 9 ms after it.
TEST(CheckerTest, PausedHolderLateUseIsAUsageViolationNotAnOverlap) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 10);  // deadline 11000
  int64_t b = h.Acquire(1, "k", 11000, 12000, 10);
  h.Use(b, 1, "k", 12100, 12200, 0);
  int64_t u = h.Use(a, 0, "k", 1100, 20000, 0);  // read at 1100, paused, wrote at 20000
  h.Release(a, 0, "k", 21000, 21100, Outcome::kFail);
  h.Release(b, 1, "k", 15000, 15100);
  CheckResult r = h.Check();
  EXPECT_EQ(r.verdict, Verdict::kInvalid);
  ASSERT_EQ(r.violations.size(), 1u);
  const Violation& v = r.violations[0];
  EXPECT_EQ(v.kind, "late-use");
  EXPECT_EQ(v.client_a, 0);
  EXPECT_EQ(v.op_a, a);
  EXPECT_EQ(v.op_b, u);
  EXPECT_EQ(v.start_us, 11000);   // the validity ended here
  EXPECT_EQ(v.overlap_us, 9000);  // and the write landed 9 ms later
  EXPECT_NE(v.detail.find("9 ms after its validity ended"), std::string::npos) << v.detail;
  EXPECT_EQ(r.violations_by_kind.at("late-use"), 1);
  EXPECT_EQ(r.violations_by_kind.count("overlap"), 0u);
  EXPECT_EQ(r.lost_updates, 1);  // both read 0 and wrote 1
}

TEST(CheckerTest, AbandonedLateUseIsNoViolation) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 10);
  int64_t b = h.Acquire(1, "k", 11000, 12000, 10);
  h.Use(b, 1, "k", 12100, 12200, 0);
  h.Use(a, 0, "k", 1100, 20000, 0, Outcome::kFail);  // checked its lease, wrote nothing
  h.Release(b, 1, "k", 15000, 15100);
  CheckResult r = h.Check();
  EXPECT_EQ(r.verdict, Verdict::kValid);
  EXPECT_EQ(r.uses_abandoned, 1);
  EXPECT_EQ(r.uses, 1);
  EXPECT_EQ(r.lost_updates, 0);
}

TEST(CheckerTest, UseWithinTheToleranceIsNotLate) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 10);  // client's deadline 11000
  h.Use(a, 0, "k", 1100, 11000 + kLateUseToleranceUs, 0);
  h.Release(a, 0, "k", 11000 + kLateUseToleranceUs, 11100 + kLateUseToleranceUs);
  EXPECT_EQ(h.Check().verdict, Verdict::kValid);
  HistoryBuilder h2;
  a = h2.Acquire(0, "k", 0, 1000, 10);
  h2.Use(a, 0, "k", 1100, 11001 + kLateUseToleranceUs, 0);
  EXPECT_EQ(h2.Check().violations_by_kind.at("late-use"), 1);
}

TEST(CheckerTest, UnknownAcquireCreatesNoInterval) {
  HistoryBuilder h;
  int64_t u = h.Acquire(0, "k", 0, 100, 1000, Outcome::kUnknown);
  h.Release(u, 0, "k", 300, 400, Outcome::kUnknown);  // names no belief: ignored
  int64_t b = h.Acquire(1, "k", 150, 200, 1000);
  h.Release(b, 1, "k", 500, 600);
  CheckResult r = h.Check();
  EXPECT_EQ(r.verdict, Verdict::kValid);
  EXPECT_EQ(r.acquires_unknown, 1);
  EXPECT_EQ(r.acquires_ok, 1);
  EXPECT_EQ(r.releases_unknown, 1);
}

TEST(CheckerTest, NoOkAcquireIsInconclusive) {
  HistoryBuilder h;
  h.Acquire(0, "k", 0, 100, 1000, Outcome::kUnknown);
  h.Acquire(1, "k", 0, 100, 1000, Outcome::kFail);
  EXPECT_EQ(h.Check().verdict, Verdict::kInconclusive);
}

TEST(CheckerTest, CrashEndsBelief) {
  HistoryBuilder h;
  h.Acquire(0, "k", 0, 1000, 1000);  // deadline far away, never released
  h.Crash(0, 2000);
  int64_t b = h.Acquire(1, "k", 1500, 3000, 10);
  h.Release(b, 1, "k", 4000, 4100);
  EXPECT_EQ(h.Check().verdict, Verdict::kValid);

  HistoryBuilder h2;  // the same without the crash overlaps
  h2.Acquire(0, "k", 0, 1000, 1000);
  b = h2.Acquire(1, "k", 1500, 3000, 10);
  h2.Release(b, 1, "k", 4000, 4100);
  CheckResult r = h2.Check();
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations[0].overlap_us, 1000);  // [3000, 4000): b's release
  EXPECT_NE(r.violations[0].detail.find("end of history"), std::string::npos);
}

TEST(CheckerTest, TtlIsUsedWhenNoValidityIsReported) {
  HistoryBuilder h;
  Event e;
  e.impl = h.impl;
  e.scenario = h.scenario;
  e.client = 0;
  e.key = "k";
  e.type = OpType::kAcquire;
  e.invoke_us = 500;
  e.complete_us = 1000;
  e.ttl_ms = 10;  // valid_ms 0: deadline = invoke + ttl = 10500
  h.Add(e);
  int64_t b = h.Acquire(1, "k", 9000, 10000, 10);
  h.Release(b, 1, "k", 20000, 20100);
  CheckResult r = h.Check();
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations[0].overlap_us, 500);
}

TEST(CheckerTest, SameClientNeverConflictsWithItself) {
  HistoryBuilder h;
  h.Acquire(0, "k", 0, 100, 1000);
  h.Acquire(0, "k", 200, 300, 1000);
  EXPECT_EQ(h.Check().verdict, Verdict::kValid);
}

TEST(CheckerTest, DifferentKeysNeverConflict) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k1", 0, 100, 1000);
  int64_t b = h.Acquire(1, "k2", 0, 100, 1000);
  h.Use(a, 0, "k1", 110, 120, 0);
  h.Use(b, 1, "k2", 110, 120, 0);
  h.Release(a, 0, "k1", 500, 510);
  h.Release(b, 1, "k2", 500, 510);
  CheckResult r = h.Check();
  EXPECT_EQ(r.verdict, Verdict::kValid);
  EXPECT_EQ(r.lost_updates, 0);  // value 0 on two different counters
}

TEST(CheckerTest, GroupsByImplAndScenario) {
  HistoryBuilder h;
  h.impl = "a";
  int64_t a = h.Acquire(0, "k", 0, 100, 1000);
  h.impl = "b";
  int64_t b = h.Acquire(1, "k", 0, 150, 1000);  // would overlap a if grouped together
  h.scenario = "other";
  h.Acquire(2, "k", 0, 150, 1000);
  h.impl = "a";
  h.scenario = "scen";
  int64_t c = h.Acquire(3, "k", 0, 200, 1000);  // does overlap a
  h.Release(a, 0, "k", 1000, 1010);
  h.Release(c, 3, "k", 1000, 1010);
  auto results = CheckMutualExclusion(h.events);
  ASSERT_EQ(results.size(), 3u);
  const CheckResult& ra = results.at({"a", "scen"});
  EXPECT_EQ(ra.verdict, Verdict::kInvalid);
  ASSERT_EQ(ra.violations.size(), 1u);
  EXPECT_EQ(ra.violations[0].op_a, a);
  EXPECT_EQ(ra.violations[0].op_b, c);
  EXPECT_EQ(ra.violations[0].impl, "a");
  EXPECT_EQ(results.at({"b", "scen"}).verdict, Verdict::kValid);
  EXPECT_EQ(results.at({"b", "scen"}).acquires_ok, 1);
  EXPECT_EQ(results.at({"b", "other"}).verdict, Verdict::kValid);
  (void)b;
}

TEST(CheckerTest, LostUpdatesCountOverwrites) {
  HistoryBuilder h;
  // Serial 0, 1, 2 on k1; then two clients both read 3 (one lost), and three read 4.
  int64_t a = h.Acquire(0, "k1", 0, 10, 100000);
  h.Use(a, 0, "k1", 20, 30, 0);
  h.Use(a, 0, "k1", 40, 50, 1);
  h.Use(a, 0, "k1", 60, 70, 2);
  h.Use(a, 0, "k1", 80, 90, 3);
  h.Use(a, 1, "k1", 80, 95, 3);  // names a's lease with the wrong client: still a use
  h.Use(a, 0, "k1", 100, 110, 4);
  h.Use(a, 0, "k1", 100, 111, 4);
  h.Use(a, 0, "k1", 100, 112, 4);
  h.Use(a, 0, "k1", 120, 130, 99, Outcome::kFail);  // abandoned: wrote nothing
  CheckResult r = h.Check();
  EXPECT_EQ(r.uses, 8);
  EXPECT_EQ(r.uses_abandoned, 1);
  EXPECT_EQ(r.lost_updates, 3);
}

TEST(CheckerTest, StoredViolationsAreCappedButAllCounted) {
  HistoryBuilder h;
  // 1 long holder and 1100 short holders of other clients inside it; they do not overlap
  // each other.
  h.Acquire(0, "k", 0, 1, 1000000);
  for (int i = 0; i < 1100; ++i) {
    int64_t op = h.Acquire(1 + i % 2, "k", 10 + 10 * i, 10 + 10 * i, 1000000);
    h.Release(op, 1 + i % 2, "k", 15 + 10 * i, 16 + 10 * i);
  }
  CheckResult r = h.Check();
  EXPECT_EQ(r.violation_count, 1100);
  EXPECT_EQ(r.violations.size(), CheckResult::kMaxStoredViolations);
  EXPECT_TRUE(std::is_sorted(
      r.violations.begin(), r.violations.end(),
      [](const Violation& x, const Violation& y) { return x.start_us < y.start_us; }));
}

// ---- Properties ----

struct LeaseSpan {
  int64_t op;
  int client;
  std::string key;
  int64_t start_us, end_us;
};

// A generated history in which no two clients' belief intervals on a key intersect, and the
// intervals it was built from.
struct SerialHistory {
  std::vector<Event> events;
  std::vector<LeaseSpan> spans;
  int clients = 0;
  int64_t next_op = 1;
};

SerialHistory GenSerialHistory() {
  SerialHistory s;
  HistoryBuilder h;
  s.clients = *rc::gen::inRange(2, 6);
  int keys = *rc::gen::inRange(1, 4);
  for (int k = 0; k < keys; ++k) {
    std::string key = "key" + std::to_string(k);
    int64_t t = *rc::gen::inRange<int64_t>(0, 10000);
    int64_t counter = 0;
    int leases = *rc::gen::inRange(1, 16);
    for (int i = 0; i < leases; ++i) {
      int client = *rc::gen::inRange(0, s.clients);
      int64_t complete = t + *rc::gen::inRange<int64_t>(0, 5000);
      int64_t invoke = complete - *rc::gen::inRange<int64_t>(1, 3000);
      if (*rc::gen::inRange(0, 3) == 0) {  // a rival's failed try meanwhile
        int rival = (client + 1) % s.clients;
        h.Acquire(rival, key, invoke, complete, 50, Outcome::kFail);
      }
      if (*rc::gen::inRange(0, 4) == 0) {  // an unknown acquire: no belief
        h.Acquire((client + 1) % s.clients, key, invoke, complete, 50, Outcome::kUnknown);
      }
      int mode = *rc::gen::inRange(0, 3);
      int64_t valid_ms = *rc::gen::inRange<int64_t>(1, 20);
      int64_t op = h.Acquire(client, key, invoke, complete, valid_ms);
      int64_t end = 0;
      if (mode == 0) {  // released before the deadline
        end = complete + *rc::gen::inRange<int64_t>(1, valid_ms * 1000 + 1);
        h.Release(op, client, key, end, end + *rc::gen::inRange<int64_t>(0, 500));
      } else if (mode == 1) {  // expires, never released
        end = complete + valid_ms * 1000;
      } else {  // extended once, then released
        int64_t ext_invoke = complete + *rc::gen::inRange<int64_t>(0, valid_ms * 1000);
        int64_t ext_valid = *rc::gen::inRange<int64_t>(1, 20);
        h.Extend(op, client, key, ext_invoke, ext_invoke + 100, ext_valid);
        int64_t deadline = std::max(complete + valid_ms * 1000, ext_invoke + ext_valid * 1000);
        end = deadline - *rc::gen::inRange<int64_t>(0, deadline - complete);
        h.Release(op, client, key, end, end + 10);
      }
      if (*rc::gen::inRange(0, 2) == 0) {  // a use inside the interval
        int64_t use_complete = complete + *rc::gen::inRange<int64_t>(0, end - complete);
        h.Use(op, client, key, complete, use_complete, counter++);
      }
      s.spans.push_back({op, client, key, complete, end});
      t = end;
    }
  }
  s.events = h.events;
  s.next_op = 1;
  for (const Event& e : s.events) s.next_op = std::max(s.next_op, e.op_id + 1);
  // The checker must not depend on event order.
  std::mt19937 rng(*rc::gen::arbitrary<uint32_t>());
  std::shuffle(s.events.begin(), s.events.end(), rng);
  return s;
}

RC_GTEST_PROP(CheckerProp, SerialHistoriesAreValid, ()) {
  SerialHistory s = GenSerialHistory();
  auto results = CheckMutualExclusion(s.events);
  RC_ASSERT(results.size() == 1u);
  const CheckResult& r = results.begin()->second;
  RC_ASSERT(r.verdict == Verdict::kValid);
  RC_ASSERT(r.violation_count == 0);
  RC_ASSERT(r.violations.empty());
  RC_ASSERT(r.acquires_ok == static_cast<int64_t>(s.spans.size()));
  RC_ASSERT(r.lost_updates == 0);
}

RC_GTEST_PROP(CheckerProp, InsertedOverlappingLeaseIsFound, ()) {
  SerialHistory s = GenSerialHistory();
  const LeaseSpan& victim = s.spans[*rc::gen::inRange<size_t>(0, s.spans.size())];
  RC_PRE(victim.end_us > victim.start_us);
  int intruder = (victim.client + *rc::gen::inRange(1, s.clients)) % s.clients;
  int64_t start = victim.start_us + *rc::gen::inRange<int64_t>(0, victim.end_us - victim.start_us);
  int64_t release = start + *rc::gen::inRange<int64_t>(1, 5000);
  Event acq;
  acq.op_id = s.next_op;
  acq.impl = "impl";
  acq.scenario = "scen";
  acq.client = intruder;
  acq.key = victim.key;
  acq.type = OpType::kAcquire;
  acq.invoke_us = start - 1;
  acq.complete_us = start;
  acq.valid_ms = 1000;
  Event rel = acq;
  rel.op_id = s.next_op + 1;
  rel.lease_op = acq.op_id;
  rel.type = OpType::kRelease;
  rel.invoke_us = release;
  rel.complete_us = release + 1;
  size_t at = *rc::gen::inRange<size_t>(0, s.events.size() + 1);
  s.events.insert(s.events.begin() + static_cast<ptrdiff_t>(at), acq);
  s.events.push_back(rel);

  const CheckResult r = CheckMutualExclusion(s.events).at({"impl", "scen"});
  RC_ASSERT(r.verdict == Verdict::kInvalid);
  RC_ASSERT(r.violation_count == static_cast<int64_t>(r.violations.size()));
  bool found_victim = false;
  for (const Violation& v : r.violations) {
    RC_ASSERT(v.op_a == acq.op_id || v.op_b == acq.op_id);  // the base history was valid
    RC_ASSERT(v.key == victim.key);
    RC_ASSERT(v.overlap_us > 0);
    if (v.op_a == victim.op && v.op_b == acq.op_id) {
      found_victim = true;
      RC_ASSERT(v.client_a == victim.client);
      RC_ASSERT(v.client_b == intruder);
      RC_ASSERT(v.start_us == start);
      RC_ASSERT(v.overlap_us == std::min(victim.end_us, release) - start);
    }
  }
  RC_ASSERT(found_victim);
}

// --- Liveness (CheckLiveness).

LivenessResult Liveness(const HistoryBuilder& h) {
  auto results = CheckHistory(h.events);
  return results[{h.impl, h.scenario}].liveness;
}

Event Probe(const HistoryBuilder& h, int client, int64_t invoke_us, int64_t complete_us,
            Outcome outcome) {
  Event e;
  e.impl = h.impl;
  e.scenario = h.scenario;
  e.client = client;
  e.key = "k";
  e.type = OpType::kAcquire;
  e.invoke_us = invoke_us;
  e.complete_us = complete_us;
  e.outcome = outcome;
  e.phase = kPhaseLiveness;
  return e;
}

TEST(LivenessTest, NoProbeIsInconclusiveAllProbesOkIsValid) {
  HistoryBuilder h;
  h.Acquire(0, "k", 0, 10, 100);
  EXPECT_EQ(Liveness(h).verdict, Verdict::kInconclusive);
  h.Add(Probe(h, 0, 1000, 1100, Outcome::kOk));
  h.Add(Probe(h, 1, 1200, 1300, Outcome::kOk));
  LivenessResult l = Liveness(h);
  EXPECT_EQ(l.verdict, Verdict::kValid);
  EXPECT_EQ(l.probes, 2);
  EXPECT_EQ(l.probes_ok, 2);
  EXPECT_EQ(l.violation_count, 0);
}

TEST(LivenessTest, AFailedOrUnknownProbeIsAViolation) {
  HistoryBuilder h;
  h.Acquire(0, "k", 0, 10, 100);
  h.Add(Probe(h, 0, 1000, 2500000, Outcome::kFail));
  h.Add(Probe(h, 1, 2500000, 2500100, Outcome::kUnknown));
  h.Add(Probe(h, 2, 2500100, 2500200, Outcome::kOk));
  LivenessResult l = Liveness(h);
  EXPECT_EQ(l.verdict, Verdict::kInvalid);
  EXPECT_EQ(l.violation_count, 2);
  ASSERT_EQ(l.violations.size(), 2u);
  EXPECT_EQ(l.violations[0].kind, "liveness");
  EXPECT_EQ(l.violations[0].client_a, 0);
  EXPECT_NE(l.violations[0].detail.find("2499 ms"), std::string::npos) << l.violations[0].detail;
  // Probes are acquires like any other for the safety check; they do not change its verdict.
  EXPECT_EQ(h.Check().verdict, Verdict::kValid);
}

TEST(LivenessTest, RecoveryAfterACrashIsMeasuredAndBounded) {
  HistoryBuilder h;
  h.Acquire(0, "k", 0, 10, 500);
  Event crash;
  crash.impl = h.impl;
  crash.scenario = h.scenario;
  crash.client = 0;
  crash.key = "k";
  crash.type = OpType::kCrash;
  crash.invoke_us = crash.complete_us = 100000;
  crash.ttl_ms = 1500;  // the bound
  h.Add(crash);
  h.Acquire(0, "k", 200000, 210000, 500);  // the crashed client itself does not count
  h.Acquire(1, "k", 300000, 600000, 500);  // 500 ms after the crash: within the bound
  LivenessResult l = Liveness(h);
  EXPECT_EQ(l.crashes, 1);
  ASSERT_EQ(l.recovery_ms.size(), 1u);
  EXPECT_EQ(l.recovery_ms[0], 500);
  EXPECT_EQ(l.violation_count, 0);

  // Late: the next other acquire comes 2 s after the crash.
  HistoryBuilder late;
  late.Add(crash);
  late.Acquire(1, "k", 300000, 2100000, 500);
  LivenessResult ll = Liveness(late);
  EXPECT_EQ(ll.violation_count, 1);
  EXPECT_EQ(ll.violations.at(0).kind, "recovery");

  // Never, and the safety phase went on past the bound: a violation. Not past it: not judged.
  HistoryBuilder never;
  never.Add(crash);
  never.Acquire(1, "k", 300000, 310000, 500, Outcome::kFail);
  EXPECT_EQ(Liveness(never).violation_count, 0);  // history ends 210 ms after the crash
  never.Acquire(1, "k", 1700000, 1710000, 500, Outcome::kFail);
  EXPECT_EQ(Liveness(never).violation_count, 1);
}

// ---- One history per violation kind, and a near miss for each ----

// The only violation of `r` (safety or liveness), a copy, if it is of kind `kind`; fails the
// test otherwise.
std::optional<Violation> Only(const CheckResult& r, const std::string& kind) {
  std::vector<Violation> all = r.violations;
  all.insert(all.end(), r.liveness.violations.begin(), r.liveness.violations.end());
  EXPECT_EQ(all.size(), 1u) << "expected exactly one violation of kind " << kind;
  if (all.size() != 1u) {
    for (const Violation& v : all) ADD_FAILURE() << ViolationToJson(v).dump();
    return std::nullopt;
  }
  EXPECT_EQ(all[0].kind, kind) << all[0].detail;
  EXPECT_EQ(r.violations_by_kind.size(), 1u);
  EXPECT_EQ(r.violations_by_kind.count(kind), 1u);
  if (all[0].kind != kind) return std::nullopt;
  return all[0];
}

int64_t AllViolations(const CheckResult& r) {
  return r.violation_count + r.liveness.violation_count;
}

bool Has(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

TEST(CheckerTest, KindsAreListedSafetyFirst) {
  const std::vector<std::string> want = {"overlap",
                                         "late-use",
                                         "stale-fence",
                                         "validity-exceeds-ttl",
                                         "extend-after-expiry",
                                         "foreign-release",
                                         "failed-acquire-holds",
                                         "liveness",
                                         "recovery",
                                         "no-ttl",
                                         "unavailable",
                                         "release-lost",
                                         "left-behind"};
  std::vector<std::string> got;
  for (const char* const* k = ViolationKinds(); *k != nullptr; ++k) got.push_back(*k);
  EXPECT_EQ(got, want);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(IsLivenessKind(want[i]), i >= 7) << want[i];
}

TEST(CheckerTest, CombineInvalidBeatsInconclusiveBeatsValid) {
  EXPECT_EQ(Combine(Verdict::kValid, Verdict::kValid), Verdict::kValid);
  EXPECT_EQ(Combine(Verdict::kValid, Verdict::kInconclusive), Verdict::kInconclusive);
  EXPECT_EQ(Combine(Verdict::kInconclusive, Verdict::kValid), Verdict::kInconclusive);
  EXPECT_EQ(Combine(Verdict::kInconclusive, Verdict::kInvalid), Verdict::kInvalid);
  EXPECT_EQ(Combine(Verdict::kInvalid, Verdict::kValid), Verdict::kInvalid);
  EXPECT_EQ(Combine(Verdict::kInvalid, Verdict::kInconclusive), Verdict::kInvalid);
  EXPECT_EQ(Combine(Verdict::kInvalid, Verdict::kInvalid), Verdict::kInvalid);
}

TEST(CheckerTest, OverlapEvidenceAndNearMiss) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 100);
  h.Release(a, 0, "k", 5000, 5100);
  int64_t b = h.Acquire(1, "k", 3000, 4000, 100);
  h.Release(b, 1, "k", 9000, 9100);
  std::optional<Violation> v = Only(h.CheckAll(), "overlap");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->client_a, 0);
  EXPECT_EQ(v->client_b, 1);
  EXPECT_EQ(v->op_a, a);
  EXPECT_EQ(v->op_b, b);
  EXPECT_EQ(v->key, "k");
  EXPECT_EQ(v->start_us, 4000);
  EXPECT_EQ(v->overlap_us, 1000);
  EXPECT_TRUE(Has(v->detail, "ended by release")) << v->detail;

  HistoryBuilder miss;  // b completes exactly when a starts releasing
  a = miss.Acquire(0, "k", 0, 1000, 100);
  miss.Release(a, 0, "k", 5000, 5100);
  b = miss.Acquire(1, "k", 3000, 5000, 100);
  miss.Release(b, 1, "k", 9000, 9100);
  CheckResult r = miss.CheckAll();
  EXPECT_EQ(r.verdict, Verdict::kValid);
  EXPECT_EQ(AllViolations(r), 0);
}

TEST(CheckerTest, LateUseAfterAFailedExtend) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 100);           // deadline 101000
  h.Extend(a, 0, "k", 4000, 5000, 100, Outcome::kFail);  // validity ended at 5000
  int64_t u = h.Use(a, 0, "k", 4500, 5000 + kLateUseToleranceUs + 1000, 0);
  h.Release(a, 0, "k", 9000, 9100, Outcome::kUnknown);
  std::optional<Violation> v = Only(h.CheckAll(), "late-use");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->client_a, 0);
  EXPECT_EQ(v->op_a, a);
  EXPECT_EQ(v->op_b, u);
  EXPECT_EQ(v->start_us, 5000);
  EXPECT_EQ(v->overlap_us, kLateUseToleranceUs + 1000);
  EXPECT_TRUE(Has(v->detail, "an extend had failed")) << v->detail;

  HistoryBuilder miss;  // within the tolerance after the failed extend
  a = miss.Acquire(0, "k", 0, 1000, 100);
  miss.Extend(a, 0, "k", 4000, 5000, 100, Outcome::kFail);
  miss.Use(a, 0, "k", 4500, 5000 + kLateUseToleranceUs, 0);
  miss.Release(a, 0, "k", 9000, 9100, Outcome::kUnknown);
  EXPECT_EQ(AllViolations(miss.CheckAll()), 0);
}

TEST(CheckerTest, StaleFenceEvidenceAndNearMisses) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 100, 100);
  int64_t w1 = h.Write(a, 0, "k", 200, 300, 5);
  h.Release(a, 0, "k", 400, 500);
  int64_t b = h.Acquire(1, "k", 600, 700, 100);
  int64_t w2 = h.Write(b, 1, "k", 800, 900, 3);  // lower than 5, accepted after it
  h.Release(b, 1, "k", 1000, 1100);
  CheckResult r = h.CheckAll();
  EXPECT_EQ(r.verdict, Verdict::kInvalid);
  std::optional<Violation> v = Only(r, "stale-fence");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->client_a, 1);
  EXPECT_EQ(v->op_a, w2);
  EXPECT_EQ(v->client_b, 0);
  EXPECT_EQ(v->op_b, w1);
  EXPECT_EQ(v->start_us, 800);
  EXPECT_EQ(v->overlap_us, 2);
  EXPECT_TRUE(Has(v->detail, "accepted fence 3")) << v->detail;

  for (int variant = 0; variant < 3; ++variant) {
    HistoryBuilder miss;
    a = miss.Acquire(0, "k", 0, 100, 100);
    miss.Write(a, 0, variant == 1 ? "other" : "k", 200, 300, 5);
    miss.Release(a, 0, "k", 400, 500);
    b = miss.Acquire(1, "k", 600, 700, 100);
    if (variant == 0) miss.Write(b, 1, "k", 250, 900, 3);         // concurrent with the 5
    if (variant == 1) miss.Write(b, 1, "k", 800, 900, 3);         // another key's witness
    if (variant == 2) miss.Write(b, 1, "k", 800, 900, 3, false);  // rejected
    miss.Release(b, 1, "k", 1000, 1100);
    EXPECT_EQ(AllViolations(miss.CheckAll()), 0) << "variant " << variant;
  }
}

TEST(CheckerTest, ValidityExceedsTtlOnOneNode) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 100);  // claims validity to 101000
  int64_t s = h.Sample("k", a, 0, h.Token(a), 50, kSampleAfterAcquire, 1000, 1100);
  h.Release(a, 0, "k", 2000, 2100);
  CheckResult r = h.CheckAll();
  EXPECT_TRUE(r.contract_checked);
  EXPECT_EQ(r.samples, 1);
  std::optional<Violation> v = Only(r, "validity-exceeds-ttl");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->client_a, 0);
  EXPECT_EQ(v->op_a, a);
  EXPECT_EQ(v->op_b, s);
  EXPECT_EQ(v->start_us, 1000);
  // claimed end 101000 - tolerance vs the key's expiry 1100 + 51 ms
  EXPECT_EQ(v->overlap_us, 101000 - kClaimToleranceUs - (1100 + 51000));
  EXPECT_TRUE(Has(v->detail, "reported 100 ms of validity")) << v->detail;
  EXPECT_TRUE(Has(v->detail, "0 of 1 nodes")) << v->detail;

  HistoryBuilder miss;  // PTTL 89: expiry 91100 >= 101000 - 10000
  a = miss.Acquire(0, "k", 0, 1000, 100);
  miss.Sample("k", a, 0, miss.Token(a), 89, kSampleAfterAcquire, 1000, 1100);
  miss.Release(a, 0, "k", 2000, 2100);
  r = miss.CheckAll();
  EXPECT_TRUE(r.contract_checked);
  EXPECT_EQ(AllViolations(r), 0);
}

TEST(CheckerTest, ValidityNeedsAQuorumOfFiveNodes) {
  for (int holding : {3, 2}) {
    HistoryBuilder h;
    // An earlier lease shows the lock writes to all 5 nodes (the quorum is 3 of them).
    int64_t p = h.Acquire(1, "k", -5000, -4000, 1);
    for (int n = 0; n < 5; ++n)
      h.Sample("k", p, n, h.Token(p), 1, kSampleAfterAcquire, -4000, -3900);
    h.Release(p, 1, "k", -3500, -3400);
    int64_t a = h.Acquire(0, "k", 0, 1000, 100);
    int64_t first = 0;
    for (int n = 0; n < 5; ++n) {
      int64_t s = n < holding
                      ? h.Sample("k", a, n, h.Token(a), 100, kSampleAfterAcquire, 1000, 1100)
                      : h.Sample("k", a, n, "", -2, kSampleAfterAcquire, 1000, 1100);
      if (n == 0) first = s;
    }
    h.Release(a, 0, "k", 2000, 2100);
    CheckResult r = h.CheckAll();
    if (holding == 3) {
      EXPECT_EQ(AllViolations(r), 0);
    } else {
      std::optional<Violation> v = Only(r, "validity-exceeds-ttl");
      ASSERT_TRUE(v.has_value());
      EXPECT_EQ(v->op_a, a);
      EXPECT_EQ(v->op_b, first);
      EXPECT_TRUE(Has(v->detail, "2 of 5 nodes")) << v->detail;
      EXPECT_TRUE(Has(v->detail, "quorum 3")) << v->detail;
    }
  }
}

TEST(CheckerTest, ASampleFindingTheKeyGoneCountsFromItsCompletion) {
  // The acquire claims validity to 101000 us. A sample that found the key gone ran at redis
  // somewhere in [invoke, complete]: completed at 1200 it proves the key gone 100 ms early;
  // completed at 95000 (a sampler stalled in a run queue) it proves nothing.
  for (int64_t sample_complete_us : {int64_t{1200}, int64_t{95000}}) {
    HistoryBuilder h;
    int64_t first = h.Acquire(1, "k", 0, 500, 100);  // a lease whose sample shows its token
    h.Sample("k", first, 0, h.Token(first), 99, kSampleAfterAcquire, 500, 600);
    h.Release(first, 1, "k", 700, 800);
    int64_t a = h.Acquire(0, "k", 900, 1000, 100);
    h.Sample("k", a, 0, "", -2, kSampleAfterAcquire, 1100, sample_complete_us);
    h.Release(a, 0, "k", 96000, 96100);
    CheckResult r = h.CheckAll();
    EXPECT_TRUE(r.contract_checked);
    if (sample_complete_us == 1200) {
      std::optional<Violation> v = Only(r, "validity-exceeds-ttl");
      ASSERT_TRUE(v.has_value());
      EXPECT_EQ(v->op_a, a);
      EXPECT_EQ(v->overlap_us, 101000 - kClaimToleranceUs - 1200);
    } else {
      EXPECT_EQ(AllViolations(r), 0);
      for (const Violation& v : r.violations) ADD_FAILURE() << v.kind << ": " << v.detail;
    }
  }
}

TEST(CheckerTest, ValidityAboveTheRequestedTtl) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 100);
  h.Last().ttl_ms = 50;  // reported 100 ms of a 50 ms lock
  h.Sample("k", a, 0, h.Token(a), -1 + 1000, kSampleAfterAcquire, 1000, 1100);
  h.Release(a, 0, "k", 2000, 2100);
  std::optional<Violation> v = Only(h.CheckAll(), "validity-exceeds-ttl");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->op_a, a);
  EXPECT_TRUE(Has(v->detail, "more than the TTL")) << v->detail;
}

TEST(CheckerTest, ValidityOfAnExtendIsCheckedAfterIt) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 100);
  h.Sample("k", a, 0, h.Token(a), 100, kSampleAfterAcquire, 1000, 1100);
  int64_t x = h.Extend(a, 0, "k", 50000, 51000, 100);  // claims to 151000
  int64_t s = h.Sample("k", x, 0, h.Token(a), 20, kSampleAfterExtend, 51000, 51100);
  h.Release(a, 0, "k", 60000, 60100);
  std::optional<Violation> v = Only(h.CheckAll(), "validity-exceeds-ttl");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->op_a, x);
  EXPECT_EQ(v->op_b, s);
  EXPECT_EQ(v->start_us, 51000);
  EXPECT_TRUE(Has(v->detail, "extend op")) << v->detail;
}

TEST(CheckerTest, ValidityContractSkippedWithoutTokensOrWithAFaultedServerClock) {
  {  // the impl never stores the token as the value
    HistoryBuilder h;
    int64_t a = h.Acquire(0, "k", 0, 1000, 100);
    h.Sample("k", a, 0, "opaque", 50, kSampleAfterAcquire, 1000, 1100);
    h.Release(a, 0, "k", 2000, 2100);
    CheckResult r = h.CheckAll();
    EXPECT_FALSE(r.contract_checked);
    EXPECT_EQ(AllViolations(r), 0);
  }
  {  // a slow server clock: PTTL is not real time
    HistoryBuilder h;
    h.Fault("clock-rate: n0 x0.5", 0, 500);
    int64_t a = h.Acquire(0, "k", 0, 1000, 100);
    h.Sample("k", a, 0, h.Token(a), 50, kSampleAfterAcquire, 1000, 1100);
    h.Release(a, 0, "k", 2000, 2100);
    CheckResult r = h.CheckAll();
    EXPECT_FALSE(r.contract_checked);
    EXPECT_EQ(AllViolations(r), 0);
  }
}

TEST(CheckerTest, ExtendAfterExpiryEvidenceAndNearMisses) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 10);  // every copy expired by 11000
  int64_t x = h.Extend(a, 0, "k", 14000, 14100, 10);
  h.Release(a, 0, "k", 15000, 15100);
  CheckResult r = h.CheckAll();
  EXPECT_EQ(r.verdict, Verdict::kInvalid);
  std::optional<Violation> v = Only(r, "extend-after-expiry");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->client_a, 0);
  EXPECT_EQ(v->op_a, a);
  EXPECT_EQ(v->op_b, x);
  EXPECT_EQ(v->start_us, 14000);
  EXPECT_EQ(v->overlap_us, 3000);
  EXPECT_TRUE(Has(v->detail, "3 ms after the key must have expired")) << v->detail;

  {  // within the tolerance
    HistoryBuilder miss;
    a = miss.Acquire(0, "k", 0, 1000, 10);
    miss.Extend(a, 0, "k", 11000 + kExpiryToleranceUs, 13100, 10);
    miss.Release(a, 0, "k", 15000, 15100);
    EXPECT_EQ(AllViolations(miss.CheckAll()), 0);
  }
  {  // an earlier extend moved the expiry to 9000 + 10000
    HistoryBuilder miss;
    a = miss.Acquire(0, "k", 0, 1000, 10);
    miss.Extend(a, 0, "k", 8000, 9000, 10);
    miss.Extend(a, 0, "k", 20000, 20100, 10);
    miss.Release(a, 0, "k", 25000, 25100);
    EXPECT_EQ(AllViolations(miss.CheckAll()), 0);
  }
  {  // a slow server clock: expiry checks skipped
    HistoryBuilder miss;
    miss.Fault("clock-rate: n1 x0.1", 0, 100);
    a = miss.Acquire(0, "k", 0, 1000, 10);
    miss.Extend(a, 0, "k", 14000, 14100, 10);
    miss.Release(a, 0, "k", 15000, 15100);
    EXPECT_EQ(AllViolations(miss.CheckAll()), 0);
  }
}

TEST(CheckerTest, ForeignReleaseNamesTheLiveLease) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 10);  // expired by 11000
  int64_t b = h.Acquire(1, "k", 12000, 13000, 10);
  int64_t rel = h.Release(a, 0, "k", 14000, 14100);  // deleted b's key
  h.Release(b, 1, "k", 20000, 20100);
  CheckResult r = h.CheckAll();
  EXPECT_EQ(r.verdict, Verdict::kInvalid);
  std::optional<Violation> v = Only(r, "foreign-release");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->client_a, 0);
  EXPECT_EQ(v->op_a, a);
  EXPECT_EQ(v->client_b, 1);
  EXPECT_EQ(v->op_b, b);
  EXPECT_EQ(v->start_us, 14000);
  EXPECT_EQ(v->overlap_us, 3000);
  EXPECT_TRUE(Has(v->detail, "deleted the lock of client 1")) << v->detail;
  EXPECT_TRUE(Has(v->detail, "op " + std::to_string(rel))) << v->detail;
  EXPECT_EQ(r.first_violation_ms, 14);

  HistoryBuilder alone;  // nobody else held it
  a = alone.Acquire(0, "k", 0, 1000, 10);
  alone.Release(a, 0, "k", 14000, 14100);
  v = Only(alone.CheckAll(), "foreign-release");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->client_b, -1);
  EXPECT_TRUE(Has(v->detail, "no longer owned")) << v->detail;

  HistoryBuilder miss;  // released before the key expired
  a = miss.Acquire(0, "k", 0, 1000, 10);
  miss.Release(a, 0, "k", 10000, 14100);
  b = miss.Acquire(1, "k", 12000, 13000, 10);
  miss.Release(b, 1, "k", 20000, 20100);
  CheckResult mr = miss.CheckAll();
  EXPECT_EQ(AllViolations(mr), 0);
  EXPECT_EQ(mr.first_violation_ms, -1);

  HistoryBuilder clock;  // a slow server clock: expiry checks skipped
  clock.Fault("clock-rate: n0 x0.5", 0, 100);
  a = clock.Acquire(0, "k", 0, 1000, 10);
  clock.Release(a, 0, "k", 14000, 14100);
  EXPECT_EQ(AllViolations(clock.CheckAll()), 0);
}

TEST(CheckerTest, FailedAcquireHoldsOnAQuorum) {
  for (int holding : {3, 2}) {
    HistoryBuilder h;
    int64_t a = h.Acquire(1, "k", 0, 1000, 100, Outcome::kFail);
    int64_t first = 0;
    for (int n = 0; n < 5; ++n) {
      int64_t s = n < holding
                      ? h.Sample("k", a, n, h.Token(a), 90, kSampleAfterFail, 1000 + n, 1100)
                      : h.Sample("k", a, n, "", -2, kSampleAfterFail, 1000 + n, 1100);
      if (n == 0) first = s;
    }
    CheckResult r = h.CheckAll();
    EXPECT_EQ(r.verdict, holding == 3 ? Verdict::kInvalid : Verdict::kInconclusive);
    if (holding == 2) {
      EXPECT_EQ(AllViolations(r), 0);
      continue;
    }
    std::optional<Violation> v = Only(r, "failed-acquire-holds");
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->client_a, 1);
    EXPECT_EQ(v->op_a, a);
    EXPECT_EQ(v->op_b, first);
    EXPECT_EQ(v->start_us, 1000);
    EXPECT_TRUE(Has(v->detail, "3 of 5 nodes held its token")) << v->detail;
  }
}

TEST(CheckerTest, NoTtlAfterAcquireAndAtQuiesce) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 100);
  int64_t s = h.Sample("k", a, 0, h.Token(a), -1, kSampleAfterAcquire, 1000, 1100);
  h.Release(a, 0, "k", 2000, 2100);
  CheckResult r = h.CheckAll();
  EXPECT_EQ(r.verdict, Verdict::kValid);  // a liveness kind
  EXPECT_EQ(r.liveness.verdict, Verdict::kInvalid);
  std::optional<Violation> v = Only(r, "no-ttl");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->client_a, 0);
  EXPECT_EQ(v->op_a, a);
  EXPECT_EQ(v->op_b, s);
  EXPECT_EQ(v->start_us, 1000);
  EXPECT_TRUE(Has(v->detail, "with no TTL")) << v->detail;

  HistoryBuilder q;
  a = q.Acquire(0, "k", 0, 1000, 100);
  q.Release(a, 0, "k", 2000, 2100, Outcome::kUnknown);
  s = q.Sample("k", -1, 0, "someone", -1, kSampleQuiesce, 9000, 9100);
  q.Sample("k", -1, 1, "", -2, kSampleQuiesce, 9000, 9100);
  r = q.CheckAll();
  EXPECT_EQ(r.keys_at_quiesce, 1);
  v = Only(r, "no-ttl");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->client_a, -1);
  EXPECT_EQ(v->op_b, s);
  EXPECT_EQ(v->start_us, 9000);
  EXPECT_TRUE(Has(v->detail, "after the run")) << v->detail;

  HistoryBuilder miss;  // no TTL, but not the lease's token; and a key with a TTL at quiesce
  a = miss.Acquire(0, "k", 0, 1000, 100);
  miss.Sample("k", a, 0, "someone-else", -1, kSampleAfterAcquire, 1000, 1100);
  miss.Release(a, 0, "k", 2000, 2100, Outcome::kUnknown);
  miss.Sample("k", -1, 0, "someone-else", 500, kSampleQuiesce, 9000, 9100);
  r = miss.CheckAll();
  EXPECT_EQ(r.keys_at_quiesce, 1);
  EXPECT_EQ(AllViolations(r), 0);
}

TEST(CheckerTest, UnavailableWhenTheKeyWasFree) {
  HistoryBuilder h;
  int64_t ok = h.Acquire(0, "k", 0, 1000, 10);  // held at most to 11000
  h.Release(ok, 0, "k", 5000, 5100);
  int64_t a = h.Acquire(1, "k", 100000, 300000, 100, Outcome::kFail);
  CheckResult r = h.CheckAll();
  EXPECT_EQ(r.verdict, Verdict::kValid);
  std::optional<Violation> v = Only(r, "unavailable");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->client_a, 1);
  EXPECT_EQ(v->op_a, a);
  EXPECT_EQ(v->start_us, 100000);
  EXPECT_EQ(v->overlap_us, 200000);
  EXPECT_TRUE(Has(v->detail, "free for 200 ms")) << v->detail;

  for (int variant = 0; variant < 3; ++variant) {
    HistoryBuilder miss;
    ok = miss.Acquire(0, "k", 0, 1000, 10);
    miss.Release(ok, 0, "k", 5000, 5100);
    if (variant == 0) miss.Acquire(1, "k", 100000, 199000, 100, Outcome::kFail);  // < 100 ms
    if (variant == 1) {  // an unknown acquire may hold it until 1100000 + 1 s
      miss.Acquire(2, "k", 90000, 100000, 1000, Outcome::kUnknown);
      miss.Acquire(1, "k", 100000, 300000, 100, Outcome::kFail);
    }
    if (variant == 2) {  // a fault in effect
      miss.Fault("partition: n0", 50000, 250000);
      miss.Acquire(1, "k", 100000, 300000, 100, Outcome::kFail);
    }
    EXPECT_EQ(AllViolations(miss.CheckAll()), 0) << "variant " << variant;
  }
}

TEST(CheckerTest, ReleaseLostEvidenceAndNearMisses) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 100);  // deadline 101000
  int64_t rel = h.Release(a, 0, "k", 5000, 6000, Outcome::kFail);
  CheckResult r = h.CheckAll();
  std::optional<Violation> v = Only(r, "release-lost");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->client_a, 0);
  EXPECT_EQ(v->op_a, a);
  EXPECT_EQ(v->op_b, rel);
  EXPECT_EQ(v->start_us, 5000);
  EXPECT_EQ(v->overlap_us, 95000);  // judged at its completion
  EXPECT_TRUE(Has(v->detail, "ended fail 95 ms before")) << v->detail;
  EXPECT_EQ(r.liveness.verdict, Verdict::kInvalid);

  for (int variant = 0; variant < 4; ++variant) {
    HistoryBuilder miss;
    a = miss.Acquire(0, "k", 0, 1000, 100);
    if (variant == 0) miss.Fault("partition: n0", 2000, 3000);  // a fault during the lease
    if (variant == 1) miss.Extend(a, 0, "k", 2000, 3000, 100, Outcome::kFail);
    const int64_t at =
        variant == 2 ? 101000 - kExpiryToleranceUs - 1000 : 5000;  // near the deadline
    // variant 3: invoked well before the deadline, but it reached Redis late (an overloaded
    // client): it completed after the deadline, when the key may be gone.
    const int64_t end = variant == 3 ? 102000 : at + 1000;
    miss.Release(a, 0, "k", at, end, Outcome::kFail);
    EXPECT_EQ(AllViolations(miss.CheckAll()), 0) << "variant " << variant;
  }
}

// Redlock on 3 nodes: a release that deleted a quorum reports ok; the key it could not reach on
// a partitioned node stays until its TTL. That is no lie; the token on a quorum is.
TEST(CheckerTest, LeftBehindOnAMultiNodeLockNeedsAQuorumOfNodes) {
  for (const int left : {1, 2}) {
    SCOPED_TRACE(left);
    HistoryBuilder h;
    const int64_t a = h.Acquire(0, "k", 0, 1000, 500);
    for (int n = 0; n < 3; ++n)
      h.Sample("k", a, n, h.Token(a), 499, kSampleAfterAcquire, 1000, 1100);
    const int64_t rel = h.Release(a, 0, "k", 1200, 1300);
    for (int n = 0; n < 3; ++n)
      h.Sample("k", -1, n, n < left ? h.Token(a) : "", n < left ? 300 : -2, kSampleQuiesce,
               1400, 1450);
    const CheckResult r = h.CheckAll();
    if (left == 1) {
      EXPECT_EQ(AllViolations(r), 0);
      EXPECT_EQ(r.keys_at_quiesce, 1);
      continue;
    }
    std::optional<Violation> v = Only(r, "left-behind");
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(v->op_a, rel);
    EXPECT_TRUE(Has(v->detail, "2 of 3 nodes (0, 1; quorum 2)")) << v->detail;
  }
}

TEST(CheckerTest, LeftBehindAfterAnOkReleaseOrAFailedAcquire) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 100);
  int64_t rel = h.Release(a, 0, "k", 2000, 2100);
  int64_t s = h.Sample("k", -1, 0, h.Token(a), 5000, kSampleQuiesce, 9000, 9100);
  CheckResult r = h.CheckAll();
  EXPECT_EQ(r.keys_at_quiesce, 1);
  std::optional<Violation> v = Only(r, "left-behind");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->client_a, 0);
  EXPECT_EQ(v->op_a, rel);
  EXPECT_EQ(v->op_b, s);
  EXPECT_EQ(v->start_us, 9000);
  EXPECT_TRUE(Has(v->detail, "which ended ok")) << v->detail;

  HistoryBuilder f;
  int64_t fa = f.Acquire(1, "k", 0, 1000, 100, Outcome::kFail);
  f.Sample("k", -1, 0, f.Token(fa), 5000, kSampleQuiesce, 9000, 9100);
  v = Only(f.CheckAll(), "left-behind");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->client_a, 1);
  EXPECT_EQ(v->op_a, fa);
  EXPECT_TRUE(Has(v->detail, "which ended fail")) << v->detail;

  HistoryBuilder miss;  // the release's outcome is unknown: the key may legitimately stay
  a = miss.Acquire(0, "k", 0, 1000, 100);
  miss.Release(a, 0, "k", 2000, 2100, Outcome::kUnknown);
  miss.Sample("k", -1, 0, miss.Token(a), 5000, kSampleQuiesce, 9000, 9100);
  r = miss.CheckAll();
  EXPECT_EQ(r.keys_at_quiesce, 1);
  EXPECT_EQ(AllViolations(r), 0);
}

TEST(LivenessTest, ProbeAndRecoveryEvidence) {
  HistoryBuilder h;
  h.Acquire(0, "k", 0, 10, 100);
  Event probe = Probe(h, 2, 1000000, 1500000, Outcome::kFail);
  probe.note = "timed out";
  const int64_t p = h.Add(probe);
  CheckResult r = h.CheckAll();
  std::optional<Violation> v = Only(r, "liveness");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->client_a, 2);
  EXPECT_EQ(v->op_a, p);
  EXPECT_EQ(v->start_us, 1000000);
  EXPECT_EQ(v->overlap_us, 500000);
  EXPECT_TRUE(Has(v->detail, "(timed out)")) << v->detail;
  EXPECT_EQ(r.first_violation_ms, 1000);
  EXPECT_EQ(r.violations_by_kind.at("liveness"), 1);

  HistoryBuilder c;
  Event crash;
  crash.impl = c.impl;
  crash.scenario = c.scenario;
  crash.client = 0;
  crash.key = "k";
  crash.type = OpType::kCrash;
  crash.invoke_us = crash.complete_us = 100000;
  crash.ttl_ms = 1000;
  crash.note = "SIGKILL";
  const int64_t co = c.Add(crash);
  c.Acquire(1, "k", 300000, 1200000, 500);
  r = c.CheckAll();
  v = Only(r, "recovery");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->client_a, 0);
  EXPECT_EQ(v->op_a, co);
  EXPECT_EQ(v->start_us, 100000);
  EXPECT_EQ(v->overlap_us, 1100000);
  EXPECT_TRUE(Has(v->detail, "(SIGKILL)")) << v->detail;
  EXPECT_TRUE(Has(v->detail, "1100 ms later")) << v->detail;
}

TEST(CheckerTest, CountsByKindFirstViolationAndMutualExclusionOnly) {
  HistoryBuilder h;
  h.Acquire(9, "z", 0, 10, 1);  // the pair's first event, at 0
  int64_t a = h.Acquire(0, "k", 1000000, 1001000, 100);
  int64_t b = h.Acquire(1, "k", 1050000, 1051000, 100);  // overlaps a
  int64_t c = h.Acquire(2, "k", 1060000, 1061000, 100);  // overlaps a and b
  h.Release(a, 0, "k", 1080000, 1080100);
  h.Release(b, 1, "k", 1090000, 1090100);
  h.Release(c, 2, "k", 1095000, 1096000, Outcome::kFail);           // release-lost
  h.Sample("k", -1, 0, "x", -1, kSampleQuiesce, 2000000, 2000100);  // no-ttl
  h.Sample("k2", -1, 0, "y", 100, kSampleQuiesce, 2000000, 2000100);
  h.Sample("k3", -1, 0, "", -2, kSampleQuiesce, 2000000, 2000100);
  CheckResult r = h.CheckAll();
  EXPECT_EQ(r.verdict, Verdict::kInvalid);
  EXPECT_EQ(r.violation_count, 3);
  EXPECT_EQ(r.violations_by_kind.at("overlap"), 3);
  EXPECT_EQ(r.violations_by_kind.at("release-lost"), 1);
  EXPECT_EQ(r.violations_by_kind.at("no-ttl"), 1);
  EXPECT_EQ(r.violations_by_kind.size(), 3u);
  EXPECT_EQ(r.liveness.violation_count, 2);
  EXPECT_EQ(r.first_violation_ms, 1051);
  EXPECT_EQ(r.keys_at_quiesce, 2);
  nlohmann::json j = CheckResultToJson(r);
  EXPECT_EQ(j["violations_by_kind"]["overlap"], 3);
  EXPECT_EQ(j["keys_at_quiesce"], 2);
  EXPECT_EQ(j["first_violation_ms"], 1051);

  CheckResult m = h.Check();  // CheckMutualExclusion
  EXPECT_EQ(m.verdict, Verdict::kInvalid);
  EXPECT_EQ(m.violation_count, 3);
  EXPECT_EQ(m.violations_by_kind.size(), 1u);
  EXPECT_EQ(m.violations_by_kind.at("overlap"), 3);
  EXPECT_TRUE(m.liveness.violations.empty());
  EXPECT_EQ(m.liveness.violation_count, 0);
  EXPECT_EQ(m.liveness.verdict, Verdict::kInconclusive);
  EXPECT_EQ(m.liveness.probes, 0);

  // CheckLiveness fills in what CheckMutualExclusion left out.
  auto results = CheckMutualExclusion(h.events);
  CheckLiveness(h.events, &results);
  const CheckResult& both = results.at({h.impl, h.scenario});
  EXPECT_EQ(both.liveness.violation_count, 2);
  EXPECT_EQ(both.violations_by_kind.at("release-lost"), 1);
  EXPECT_EQ(both.violations_by_kind.at("overlap"), 3);
}

// ---- Properties of the contract checks ----

// One lease of a generated correct history and the facts the fault injections need.
struct GenLease {
  int client = 0;
  std::string key;
  int64_t acq = 0;                   // the acquire's op id
  int64_t start_us = 0, end_us = 0;  // acquire complete; min(release invoke, deadline)
  int64_t deadline_us = 0;           // the lock's promise (extends from their invoke)
  int64_t client_deadline_us = 0;    // extends from their complete
  int64_t expiry_ub_us = 0;          // every copy expired by then
  int64_t ttl_ms = 0;
  std::vector<int64_t> ops;      // every event of the lease (acquire, samples, ...)
  std::vector<int64_t> samples;  // its after-acquire samples, node 0 first
  std::vector<int64_t> uses;
};

struct CorrectHistory {
  HistoryBuilder h;
  std::vector<GenLease> leases;
  std::vector<int64_t> writes;  // accepted fenced writes, in time order per key
  int nodes = 1;
  int clients = 2;
  std::map<std::string, int64_t> key_end_us;  // after the key's last release
};

// A correct history: per key, leases strictly serialized (each acquire completes after the
// previous release completes), extends inside the lease, uses inside the lease, ok releases
// before expiry, after-acquire samples showing the token with a PTTL consistent with the TTL,
// fenced writes with increasing fences, rivals' short failed tries whose samples find the
// holder's token, and quiesce samples finding every key gone.
// rc::gen::inRange at a fixed size: the history's times and counts do not collapse to their
// minimum in the first (small-size) runs.
template <typename T>
rc::Gen<T> In(T lo, T hi) {
  return rc::gen::resize(100, rc::gen::inRange<T>(lo, hi));
}

CorrectHistory GenCorrectHistory(int nodes) {
  CorrectHistory c;
  HistoryBuilder& h = c.h;
  c.nodes = nodes;
  c.clients = *In<int>(2, 6);
  const int keys = *In<int>(1, 4);
  int64_t end_of_all = 0;
  for (int k = 0; k < keys; ++k) {
    const std::string key = "key" + std::to_string(k);
    int64_t t = *In<int64_t>(0, 10000);
    int64_t counter = 0, fence = *In<int64_t>(0, 100);
    const int n_leases = *In<int>(k == 0 ? 2 : 1, 17);  // <= 48 in all
    for (int i = 0; i < n_leases; ++i) {
      GenLease l;
      l.client = i == 0 ? *In<int>(0, c.clients)
                        : (c.leases.back().client + *In<int>(1, c.clients)) % c.clients;
      l.key = key;
      l.ttl_ms = *In<int64_t>(5, 60);
      const int64_t valid_ms = l.ttl_ms - *In<int64_t>(0, 4);
      const int64_t invoke = t + *In<int64_t>(0, 3000);
      const int64_t complete = invoke + *In<int64_t>(1, 3000);
      l.acq = h.Acquire(l.client, key, invoke, complete, valid_ms);
      h.Last().ttl_ms = l.ttl_ms;
      h.Last().fence = ++fence;
      l.ops.push_back(l.acq);
      l.start_us = complete;
      l.deadline_us = l.client_deadline_us = complete + valid_ms * 1000;
      l.expiry_ub_us = complete + l.ttl_ms * 1000;
      for (int n = 0; n < nodes; ++n) {  // PTTL in [valid - 1, ttl - 1]
        const int64_t s0 = complete + *In<int64_t>(0, 300);
        const int64_t pttl = *In<int64_t>(valid_ms - 1, l.ttl_ms);
        const int64_t s =
            h.Sample(key, l.acq, n, h.Token(l.acq), pttl, kSampleAfterAcquire, s0, s0 + 50);
        l.ops.push_back(s);
        l.samples.push_back(s);
      }
      if (*In<int>(0, 3) == 0) {  // one extend inside the lease
        const int64_t ttl2 = *In<int64_t>(5, 60);
        const int64_t valid2 = ttl2 - *In<int64_t>(0, 4);
        const int64_t xi = complete + *In<int64_t>(0, valid_ms * 1000 / 2);
        const int64_t xc = xi + *In<int64_t>(1, 1000);
        const int64_t x = h.Extend(l.acq, l.client, key, xi, xc, valid2);
        h.Last().ttl_ms = ttl2;
        l.ops.push_back(x);
        for (int n = 0; n < nodes; ++n) {
          const int64_t pttl = *In<int64_t>(valid2 - 1, ttl2);
          l.ops.push_back(
              h.Sample(key, x, n, h.Token(l.acq), pttl, kSampleAfterExtend, xc, xc + 50));
        }
        l.deadline_us = std::max(l.deadline_us, xi + valid2 * 1000);
        l.client_deadline_us = std::max(l.client_deadline_us, xc + valid2 * 1000);
        l.expiry_ub_us = std::max(l.expiry_ub_us, xc + ttl2 * 1000);
      }
      // The release: ok, invoked inside the lease (so before every expiry).
      const int64_t ri = complete + 500 + *In<int64_t>(0, l.client_deadline_us - complete - 500);
      l.end_us = std::min(ri, l.deadline_us);  // the lease ends at either
      if (*In<int>(0, 2) == 0) {               // a use inside [complete, ri]
        const int64_t uc = complete + *In<int64_t>(1, ri - complete + 1);
        const int64_t u = h.Use(l.acq, l.client, key, complete, uc, counter++);
        l.ops.push_back(u);
        l.uses.push_back(u);
      }
      if (*In<int>(0, 2) == 0) {  // a fenced write inside it
        const int64_t wi = complete + *In<int64_t>(0, ri - complete);
        const int64_t w = h.Write(l.acq, l.client, key, wi, wi + 1, fence);
        l.ops.push_back(w);
        c.writes.push_back(w);
      }
      if (*In<int>(0, 4) == 0) {  // a rival's short failed try meanwhile
        const int rival = (l.client + 1) % c.clients;
        const int64_t fi = complete + *In<int64_t>(0, ri - complete);
        const int64_t f = h.Acquire(rival, key, fi, fi + 1000, l.ttl_ms, Outcome::kFail);
        for (int n = 0; n < nodes; ++n)
          h.Sample(key, f, n, h.Token(l.acq), 1, kSampleAfterFail, fi + 1000, fi + 1050);
        (void)f;
      }
      const int64_t rc_us = ri + *In<int64_t>(1, 500);
      l.ops.push_back(h.Release(l.acq, l.client, key, ri, rc_us));
      t = rc_us + 1;
      c.leases.push_back(l);
    }
    c.key_end_us[key] = t;
    end_of_all = std::max(end_of_all, t);
  }
  for (int k = 0; k < keys; ++k)
    for (int n = 0; n < nodes; ++n)
      h.Sample("key" + std::to_string(k), -1, n, "", -2, kSampleQuiesce, end_of_all + 100000,
               end_of_all + 100100);
  return c;
}

Event* Find(std::vector<Event>& events, int64_t op) {
  for (Event& e : events)
    if (e.op_id == op) return &e;
  return nullptr;
}

CheckResult CheckOnly(const std::vector<Event>& events) {
  auto results = CheckHistory(events);
  RC_ASSERT(results.size() == 1u);
  return results.begin()->second;
}

RC_GTEST_PROP(CheckerProp, CorrectHistoriesHaveNoViolation, ()) {
  const int nodes = *rc::gen::element(1, 3, 5);
  CorrectHistory c = GenCorrectHistory(nodes);
  std::vector<Event> events = c.h.events;
  std::mt19937 rng(*rc::gen::arbitrary<uint32_t>());
  std::shuffle(events.begin(), events.end(), rng);
  const CheckResult r = CheckOnly(events);
  for (const Violation& v : r.violations) RC_LOG() << ViolationToJson(v).dump() << "\n";
  for (const Violation& v : r.liveness.violations) RC_LOG() << ViolationToJson(v).dump() << "\n";
  RC_ASSERT(r.verdict == Verdict::kValid);
  RC_ASSERT(r.violation_count == 0);
  RC_ASSERT(r.liveness.violation_count == 0);
  RC_ASSERT(r.violations_by_kind.empty());
  RC_ASSERT(r.contract_checked);
  RC_ASSERT(r.acquires_ok == static_cast<int64_t>(c.leases.size()));
  RC_ASSERT(r.releases_ok == static_cast<int64_t>(c.leases.size()));
  RC_ASSERT(r.lost_updates == 0);
  RC_ASSERT(r.keys_at_quiesce == 0);
  RC_ASSERT(r.first_violation_ms == -1);
}

// The violations of kind `kind` in r (safety and liveness).
std::vector<Violation> OfKind(const CheckResult& r, const std::string& kind) {
  std::vector<Violation> out;
  for (const Violation& v : r.violations)
    if (v.kind == kind) out.push_back(v);
  for (const Violation& v : r.liveness.violations)
    if (v.kind == kind) out.push_back(v);
  return out;
}

void LogAll(const CheckResult& r) {
  for (const Violation& v : r.violations) RC_LOG() << ViolationToJson(v).dump() << "\n";
  for (const Violation& v : r.liveness.violations) RC_LOG() << ViolationToJson(v).dump() << "\n";
}

RC_GTEST_PROP(CheckerProp, ShiftedLeaseOverlapsNamingBothOps, ()) {
  CorrectHistory c = GenCorrectHistory(*rc::gen::element(1, 3));
  // i: a lease; j: another lease of the same key and a different client, moved to start
  // inside i.
  std::vector<std::pair<size_t, size_t>> cand;
  for (size_t i = 0; i < c.leases.size(); ++i)
    for (size_t j = 0; j < c.leases.size(); ++j)
      if (i != j && c.leases[i].key == c.leases[j].key &&
          c.leases[i].client != c.leases[j].client &&
          c.leases[i].end_us - c.leases[i].start_us >= 2)
        cand.emplace_back(i, j);
  RC_PRE(!cand.empty());
  const auto [i, j] = *rc::gen::elementOf(cand);
  const GenLease& li = c.leases[i];
  const GenLease& lj = c.leases[j];
  const int64_t start = li.start_us + *rc::gen::inRange<int64_t>(1, li.end_us - li.start_us);
  const int64_t delta = start - lj.start_us;
  std::set<int64_t> moved(lj.ops.begin(), lj.ops.end());
  for (Event& e : c.h.events)
    if (moved.count(e.op_id)) e.invoke_us += delta, e.complete_us += delta;
  const CheckResult r = CheckOnly(c.h.events);
  LogAll(r);
  RC_ASSERT(r.verdict == Verdict::kInvalid);
  bool found = false;
  for (const Violation& v : OfKind(r, "overlap")) {
    RC_ASSERT(v.op_a == lj.acq || v.op_b == lj.acq);
    if (v.op_a != li.acq || v.op_b != lj.acq) continue;
    found = true;
    RC_ASSERT(v.client_a == li.client);
    RC_ASSERT(v.client_b == lj.client);
    RC_ASSERT(v.key == li.key);
    RC_ASSERT(v.start_us == start);
    RC_ASSERT(v.overlap_us == std::min(li.end_us, lj.end_us + delta) - start);
  }
  RC_ASSERT(found);
}

RC_GTEST_PROP(CheckerProp, UsePastItsDeadlineIsLate, ()) {
  CorrectHistory c = GenCorrectHistory(1);
  std::vector<size_t> with_use;
  for (size_t i = 0; i < c.leases.size(); ++i)
    if (!c.leases[i].uses.empty()) with_use.push_back(i);
  RC_PRE(!with_use.empty());
  const GenLease& l = c.leases[*rc::gen::elementOf(with_use)];
  const int64_t late = kLateUseToleranceUs + *rc::gen::inRange<int64_t>(1, 5000);
  Event* u = Find(c.h.events, l.uses[0]);
  u->complete_us = l.client_deadline_us + late;
  const CheckResult r = CheckOnly(c.h.events);
  LogAll(r);
  RC_ASSERT(r.violation_count == 1);
  RC_ASSERT(r.liveness.violation_count == 0);
  const Violation& v = r.violations.at(0);
  RC_ASSERT(v.kind == std::string("late-use"));
  RC_ASSERT(v.client_a == l.client);
  RC_ASSERT(v.op_a == l.acq);
  RC_ASSERT(v.op_b == l.uses[0]);
  RC_ASSERT(v.start_us == l.client_deadline_us);
  RC_ASSERT(v.overlap_us == late);
}

RC_GTEST_PROP(CheckerProp, MissingKeyBreaksTheValidityClaimOnOneNode, ()) {
  CorrectHistory c = GenCorrectHistory(1);
  // A claim that outlasts its sample's completion by more than kClaimToleranceUs (a key found
  // missing by a sample that may have run after the claim's end minus the tolerance breaks
  // nothing), and another lease whose sample still shows a token.
  std::vector<GenLease> cand;
  for (const GenLease& l : c.leases) {
    const Event* a = Find(c.h.events, l.acq);
    if (!l.samples.empty() && Find(c.h.events, l.samples.at(0))->complete_us <
                                  a->complete_us + a->valid_ms * 1000 - kClaimToleranceUs)
      cand.push_back(l);
  }
  RC_PRE(c.leases.size() >= 2u && !cand.empty());
  const GenLease l = *rc::gen::elementOf(cand);
  Event* s = Find(c.h.events, l.samples.at(0));
  s->token = "";
  s->value = -2;
  const CheckResult r = CheckOnly(c.h.events);
  LogAll(r);
  RC_ASSERT(r.violation_count == 1);
  RC_ASSERT(r.liveness.violation_count == 0);
  const Violation& v = r.violations.at(0);
  RC_ASSERT(v.kind == std::string("validity-exceeds-ttl"));
  RC_ASSERT(v.client_a == l.client);
  RC_ASSERT(v.op_a == l.acq);
  RC_ASSERT(v.op_b == s->op_id);
  RC_ASSERT(v.start_us == l.start_us);
  const Event* a = Find(c.h.events, l.acq);
  RC_ASSERT(v.overlap_us ==
            a->complete_us + a->valid_ms * 1000 - kClaimToleranceUs - s->complete_us);
  RC_ASSERT(v.detail.find("0 of 1 nodes") != std::string::npos);
}

RC_GTEST_PROP(CheckerProp, LowerFenceAcceptedLaterIsStale, ()) {
  CorrectHistory c = GenCorrectHistory(1);
  // w: an accepted write with an earlier accepted write p on the same key.
  std::vector<std::pair<int64_t, int64_t>> cand;  // (p, w)
  std::map<std::string, int64_t> last;
  for (int64_t w : c.writes) {
    const Event* e = Find(c.h.events, w);
    auto it = last.find(e->key);
    if (it != last.end()) cand.emplace_back(it->second, w);
    last[e->key] = w;
  }
  RC_PRE(!cand.empty());
  const auto [p, w] = *rc::gen::elementOf(cand);
  const int64_t high = *Find(c.h.events, p)->fence;
  Event* e = Find(c.h.events, w);
  const int64_t low = high - *rc::gen::inRange<int64_t>(1, 50);
  e->fence = low;
  const CheckResult r = CheckOnly(c.h.events);
  LogAll(r);
  RC_ASSERT(r.violation_count == 1);
  const Violation& v = r.violations.at(0);
  RC_ASSERT(v.kind == std::string("stale-fence"));
  RC_ASSERT(v.op_a == w);
  RC_ASSERT(v.client_a == e->client);
  RC_ASSERT(v.op_b == p);
  RC_ASSERT(v.start_us == e->invoke_us);
  RC_ASSERT(v.overlap_us == high - low);
}

RC_GTEST_PROP(CheckerProp, OkExtendAfterExpiryIsFound, ()) {
  CorrectHistory c = GenCorrectHistory(*rc::gen::element(1, 3));
  const GenLease& l = *rc::gen::elementOf(c.leases);
  const int64_t invoke = l.expiry_ub_us + 3000;  // acquire complete + ttl (+ extends) + 3 ms
  const int64_t x = c.h.Extend(l.acq, l.client, l.key, invoke, invoke + 100, 10);
  const CheckResult r = CheckOnly(c.h.events);
  LogAll(r);
  RC_ASSERT(r.violation_count == 1);
  const Violation& v = r.violations.at(0);
  RC_ASSERT(v.kind == std::string("extend-after-expiry"));
  RC_ASSERT(v.client_a == l.client);
  RC_ASSERT(v.op_a == l.acq);
  RC_ASSERT(v.op_b == x);
  RC_ASSERT(v.start_us == invoke);
  RC_ASSERT(v.overlap_us == 3000);
}

RC_GTEST_PROP(CheckerProp, OkReleaseAfterExpiryIsForeign, ()) {
  CorrectHistory c = GenCorrectHistory(*rc::gen::element(1, 3));
  // i: the late releaser. j: a new lease of another client on i's key after everything else
  // on it and after i's key expired; i's release moves inside j.
  const size_t i = *rc::gen::inRange<size_t>(0, c.leases.size());
  const GenLease li = c.leases[i];
  const int cj = (li.client + *In<int>(1, c.clients)) % c.clients;
  const int64_t sj = std::max(c.key_end_us.at(li.key), li.expiry_ub_us) + *In<int64_t>(1, 5000);
  const int64_t aj = c.h.Acquire(cj, li.key, sj - 1000, sj, 50);
  const int64_t ej = sj + *In<int64_t>(5000, 40000);  // j's release
  c.h.Release(aj, cj, li.key, ej, ej + 100);
  const int64_t lo = std::max(sj, li.expiry_ub_us + kExpiryToleranceUs) + 1;
  const int64_t t = lo + *In<int64_t>(0, ej - lo);
  int64_t rel = 0;
  for (Event& e : c.h.events)
    if (e.type == OpType::kRelease && e.lease_op == li.acq) {
      e.invoke_us = t;
      e.complete_us = t + 1;
      rel = e.op_id;
    }
  const CheckResult r = CheckOnly(c.h.events);
  LogAll(r);
  const std::vector<Violation> fr = OfKind(r, "foreign-release");
  RC_ASSERT(fr.size() == 1u);
  const Violation& v = fr[0];
  RC_ASSERT(v.client_a == li.client);
  RC_ASSERT(v.op_a == li.acq);
  RC_ASSERT(v.client_b == cj);
  RC_ASSERT(v.op_b == aj);
  RC_ASSERT(v.key == li.key);
  RC_ASSERT(v.start_us == t);
  RC_ASSERT(v.overlap_us == t - li.expiry_ub_us);
  RC_ASSERT(v.detail.find("op " + std::to_string(rel)) != std::string::npos);
  RC_ASSERT(v.detail.find("deleted the lock of client " + std::to_string(cj)) != std::string::npos);
  // i's lease now lasts to its deadline, which may reach into later leases of its key:
  // overlaps with i are the only other violations allowed.
  for (const Violation& o : r.violations)
    if (o.kind != "foreign-release") {
      RC_ASSERT(o.kind == std::string("overlap"));
      RC_ASSERT(o.op_a == li.acq);
    }
  RC_ASSERT(r.liveness.violation_count == 0);
}

RC_GTEST_PROP(CheckerProp, SampleWithoutTtlIsNoTtl, ()) {
  const int nodes = *rc::gen::element(1, 3, 5);
  CorrectHistory c = GenCorrectHistory(nodes);
  const GenLease& l = *rc::gen::elementOf(c.leases);
  const int64_t sop = *rc::gen::elementOf(l.samples);
  Find(c.h.events, sop)->value = -1;
  const CheckResult r = CheckOnly(c.h.events);
  LogAll(r);
  RC_ASSERT(r.violation_count == 0);
  RC_ASSERT(r.verdict == Verdict::kValid);
  RC_ASSERT(r.liveness.violation_count == 1);
  RC_ASSERT(r.liveness.verdict == Verdict::kInvalid);
  const Violation& v = r.liveness.violations.at(0);
  RC_ASSERT(v.kind == std::string("no-ttl"));
  RC_ASSERT(v.client_a == l.client);
  RC_ASSERT(v.op_a == l.acq);
  RC_ASSERT(v.op_b == sop);
  RC_ASSERT(v.key == l.key);
  RC_ASSERT(v.start_us == Find(c.h.events, sop)->invoke_us);
}

// Random events, each field from a small range so that they name each other.
Event GenEvent(int64_t op) {
  Event e;
  e.op_id = op;
  e.lease_op = *rc::gen::inRange<int64_t>(-1, 30);
  e.impl = *rc::gen::element<std::string>("a", "b");
  e.scenario = *rc::gen::element<std::string>("s", "t");
  e.client = *rc::gen::inRange(-1, 4);
  e.key = *rc::gen::element<std::string>("k1", "k2", "");
  e.type = static_cast<OpType>(*rc::gen::inRange(0, 8));
  e.invoke_us = *rc::gen::inRange<int64_t>(0, 400000);
  e.complete_us = e.invoke_us + *rc::gen::inRange<int64_t>(0, 200000);
  e.outcome = static_cast<Outcome>(*rc::gen::inRange(0, 3));
  e.token = *rc::gen::element<std::string>("", "t1", "t2", "t3");
  if (*rc::gen::inRange(0, 2) == 0) e.fence = *rc::gen::inRange<int64_t>(0, 10);
  e.ttl_ms = *rc::gen::inRange<int64_t>(0, 100);
  e.valid_ms = *rc::gen::inRange<int64_t>(0, 100);
  e.attempts = *rc::gen::inRange(0, 3);
  e.value = *rc::gen::inRange<int64_t>(-2, 200);
  e.note = *rc::gen::element<std::string>("", kSampleAfterAcquire, kSampleAfterExtend,
                                          kSampleAfterFail, kSampleQuiesce, "clock-rate: n0 x0.5",
                                          "partition: n1", "boom");
  e.phase = *rc::gen::element<std::string>("", kPhaseLiveness);
  e.node = *rc::gen::inRange(-1, 5);
  return e;
}

RC_GTEST_PROP(CompactHistoryProp, CheckSurvivesTheJsonRoundTrip, ()) {
  std::vector<Event> events;
  if (*rc::gen::inRange(0, 2) == 0) {  // a correct history, perhaps with a random event
    events = GenCorrectHistory(*rc::gen::element(1, 3)).h.events;
    if (*rc::gen::inRange(0, 2) == 0) events.push_back(GenEvent(100000));
  } else {
    const int n = *rc::gen::inRange(0, 60);
    for (int i = 0; i < n; ++i) events.push_back(GenEvent(i + 1));
  }
  std::vector<Event> back;
  for (const Event& e : events) {
    const std::string line = EventToJson(e);
    Event r;
    const Status st = EventFromJson(line, &r);
    RC_ASSERT(st.ok());
    RC_ASSERT(EventToJson(r) == line);
    back.push_back(r);
  }
  const auto want = CheckHistory(events);
  const auto got = CheckHistory(back);
  RC_ASSERT(want.size() == got.size());
  for (const auto& [pair, w] : want) {
    const auto it = got.find(pair);
    RC_ASSERT(it != got.end());
    const CheckResult& g = it->second;
    RC_ASSERT(CheckResultToJson(g) == CheckResultToJson(w));
    RC_ASSERT(g.verdict == w.verdict);
    RC_ASSERT(g.liveness.verdict == w.liveness.verdict);
    RC_ASSERT(g.violation_count == w.violation_count);
    RC_ASSERT(g.liveness.violation_count == w.liveness.violation_count);
    RC_ASSERT(g.violations_by_kind == w.violations_by_kind);
    RC_ASSERT(g.violations.size() == w.violations.size());
    for (size_t i = 0; i < w.violations.size(); ++i)
      RC_ASSERT(ViolationToJson(g.violations[i]) == ViolationToJson(w.violations[i]));
    for (size_t i = 0; i < w.liveness.violations.size(); ++i)
      RC_ASSERT(ViolationToJson(g.liveness.violations[i]) ==
                ViolationToJson(w.liveness.violations[i]));
  }
}

}  // namespace
}  // namespace lockstorm

namespace lockstorm {
namespace {

// Every release naming a lease is judged, not only the first one.
TEST(CheckerTest, ASecondReleaseAfterExpiryIsForeignToo) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 10);  // ttl 10 ms: expired by 11000
  h.Release(a, 0, "k", 2000, 2100, Outcome::kUnknown);
  int64_t b = h.Acquire(1, "k", 12000, 13000, 10);
  int64_t r2 = h.Release(a, 0, "k", 14000, 14100);  // ok, 3 ms after the expiry
  h.Release(b, 1, "k", 15000, 15100);
  CheckResult r = h.CheckAll();
  ASSERT_EQ(r.violations_by_kind.count("foreign-release"), 1u);
  const Violation& v = r.violations[0];
  EXPECT_EQ(v.kind, "foreign-release");
  EXPECT_EQ(v.op_a, a);
  EXPECT_EQ(v.op_b, b);  // the lease it deleted
  EXPECT_NE(v.detail.find("op " + std::to_string(r2)), std::string::npos) << v.detail;
}

// CheckMutualExclusion's time to detection counts safety violations only.
TEST(CheckerTest, MutualExclusionOnlyTimesSafetyViolations) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 100);
  h.Release(a, 0, "k", 5000, 6000, Outcome::kFail);  // release-lost: liveness
  EXPECT_EQ(h.CheckAll().first_violation_ms, 5);
  CheckResult r = h.Check();
  EXPECT_EQ(r.violation_count, 0);
  EXPECT_EQ(r.first_violation_ms, -1);
}

}  // namespace
}  // namespace lockstorm

namespace lockstorm {
namespace {

// A key seen with no TTL never expired: its late release is no foreign-release; no-ttl says it.
TEST(CheckerTest, ALeaseWithoutTtlIsNotJudgedByItsTtl) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 10);
  h.Sample("k", a, 0, h.Token(a), -1, kSampleAfterAcquire, 1000, 1100);
  h.Release(a, 0, "k", 30000, 30100);  // ok, long after the 10 ms TTL: the key was still there
  CheckResult r = h.CheckAll();
  EXPECT_EQ(r.violations_by_kind.count("foreign-release"), 0u);
  EXPECT_EQ(r.violations_by_kind.at("no-ttl"), 1);
}

}  // namespace
}  // namespace lockstorm
