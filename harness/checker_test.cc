#include "harness/checker.h"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <random>
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
    return Add(e);
  }
  int64_t Release(int64_t lease, int client, const std::string& key, int64_t invoke_us,
                  int64_t complete_us, Outcome outcome = Outcome::kOk) {
    Event e = Base(OpType::kRelease, client, key, invoke_us, complete_us, outcome);
    e.lease_op = lease;
    return Add(e);
  }
  int64_t Extend(int64_t lease, int client, const std::string& key, int64_t invoke_us,
                 int64_t complete_us, int64_t valid_ms, Outcome outcome = Outcome::kOk) {
    Event e = Base(OpType::kExtend, client, key, invoke_us, complete_us, outcome);
    e.lease_op = lease;
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
  h.Release(b, 1, "k", 20000, 20100);
  CheckResult r = h.Check();
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations[0].overlap_us, 1000);  // [10000, 11000)

  HistoryBuilder h2;
  a = h2.Acquire(0, "k", 0, 1000, 10);
  h2.Extend(a, 0, "k", 4000, 5000, 0, Outcome::kFail);  // learned at 5000 it is gone
  b = h2.Acquire(1, "k", 5000, 6000, 10);
  h2.Release(b, 1, "k", 20000, 20100);
  r = h2.Check();
  EXPECT_EQ(r.verdict, Verdict::kValid);
  EXPECT_EQ(r.extends_fail, 1);
}

TEST(CheckerTest, PausedHolderLateUseCreatesOverlap) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 10);  // deadline 11000
  int64_t b = h.Acquire(1, "k", 11000, 12000, 10);
  h.Use(b, 1, "k", 12100, 12200, 0);
  h.Use(a, 0, "k", 1100, 20000, 0);  // read at 1100, paused, wrote at 20000
  h.Release(a, 0, "k", 21000, 21100);
  h.Release(b, 1, "k", 30000, 30100);
  CheckResult r = h.Check();
  EXPECT_EQ(r.verdict, Verdict::kInvalid);
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations[0].op_a, a);
  EXPECT_EQ(r.violations[0].op_b, b);
  EXPECT_EQ(r.violations[0].start_us, 12000);
  EXPECT_EQ(r.violations[0].overlap_us, 8000);  // [12000, 20000)
  EXPECT_NE(r.violations[0].detail.find("late use"), std::string::npos);
  EXPECT_EQ(r.lost_updates, 1);  // both read 0 and wrote 1
}

TEST(CheckerTest, AbandonedLateUseDoesNotExtend) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 10);
  int64_t b = h.Acquire(1, "k", 11000, 12000, 10);
  h.Use(b, 1, "k", 12100, 12200, 0);
  h.Use(a, 0, "k", 1100, 20000, 0, Outcome::kFail);  // checked its lease, wrote nothing
  h.Release(b, 1, "k", 30000, 30100);
  CheckResult r = h.Check();
  EXPECT_EQ(r.verdict, Verdict::kValid);
  EXPECT_EQ(r.uses_abandoned, 1);
  EXPECT_EQ(r.uses, 1);
  EXPECT_EQ(r.lost_updates, 0);
}

TEST(CheckerTest, LateUseNeverPassesRelease) {
  HistoryBuilder h;
  int64_t a = h.Acquire(0, "k", 0, 1000, 10);
  h.Release(a, 0, "k", 15000, 15100);
  h.Use(a, 0, "k", 1100, 19000, 0);  // recorded after the release invoke: clipped to 15000
  int64_t b = h.Acquire(1, "k", 11000, 12000, 10);
  h.Release(b, 1, "k", 30000, 30100);
  CheckResult r = h.Check();
  ASSERT_EQ(r.violations.size(), 1u);
  EXPECT_EQ(r.violations[0].overlap_us, 3000);  // [12000, 15000)
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

}  // namespace
}  // namespace lockstorm
