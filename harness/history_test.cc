#include "harness/history.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace lockstorm {
namespace {

// A unique temp file path, removed by the destructor.
class TempFile {
 public:
  TempFile() {
    static int counter = 0;
    path_ = (std::filesystem::temp_directory_path() /
             ("lockstorm-history-test-" + std::to_string(getpid()) + "-" +
              std::to_string(counter++) + ".jsonl"))
                .string();
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

bool SameEvent(const Event& a, const Event& b) {
  return a.op_id == b.op_id && a.lease_op == b.lease_op && a.impl == b.impl &&
         a.scenario == b.scenario && a.client == b.client && a.key == b.key && a.type == b.type &&
         a.invoke_us == b.invoke_us && a.complete_us == b.complete_us && a.outcome == b.outcome &&
         a.token == b.token && a.fence == b.fence && a.ttl_ms == b.ttl_ms &&
         a.valid_ms == b.valid_ms && a.attempts == b.attempts && a.split_votes == b.split_votes &&
         a.value == b.value && a.note == b.note && a.phase == b.phase;
}

Event FullEvent() {
  Event e;
  e.op_id = 42;
  e.lease_op = 7;
  e.impl = "token-lua";
  e.scenario = "pause";
  e.client = 3;
  e.key = "k1";
  e.type = OpType::kExtend;
  e.invoke_us = 1000;
  e.complete_us = 2500;
  e.outcome = Outcome::kUnknown;
  e.token = "abcdef";
  e.fence = 9;
  e.ttl_ms = 300;
  e.valid_ms = 290;
  e.attempts = 2;
  e.split_votes = 1;
  e.value = -5;
  e.note = "timeout \"quoted\"\n";
  e.phase = kPhaseLiveness;
  return e;
}

TEST(HistoryJsonTest, NamesRoundTrip) {
  for (OpType t : {OpType::kAcquire, OpType::kRelease, OpType::kExtend, OpType::kUse,
                   OpType::kWrite, OpType::kFault, OpType::kCrash}) {
    ASSERT_EQ(ParseOpType(OpTypeName(t)), t);
  }
  for (Outcome o : {Outcome::kOk, Outcome::kFail, Outcome::kUnknown}) {
    ASSERT_EQ(ParseOutcome(OutcomeName(o)), o);
  }
  EXPECT_STREQ(OutcomeName(Outcome::kFail), "fail");
  EXPECT_STREQ(OpTypeName(OpType::kAcquire), "acquire");
  EXPECT_FALSE(ParseOpType("grab").has_value());
  EXPECT_FALSE(ParseOutcome("maybe").has_value());
}

TEST(HistoryJsonTest, FullEventRoundTrips) {
  Event e = FullEvent();
  std::string line = EventToJson(e);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  Event back;
  ASSERT_TRUE(EventFromJson(line, &back).ok()) << line;
  EXPECT_TRUE(SameEvent(e, back)) << line;
  EXPECT_NE(line.find("\"fence\":9"), std::string::npos) << line;
  EXPECT_NE(line.find("\"type\":\"extend\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"outcome\":\"unknown\""), std::string::npos) << line;
}

TEST(HistoryJsonTest, DefaultsAreOmittedAndRestored) {
  Event e;
  e.op_id = 1;
  e.impl = "i";
  e.scenario = "s";
  e.client = 0;
  e.key = "k";
  e.invoke_us = 5;
  e.complete_us = 6;
  std::string line = EventToJson(e);
  EXPECT_EQ(line.find("fence"), std::string::npos) << line;
  EXPECT_EQ(line.find("lease_op"), std::string::npos) << line;
  EXPECT_EQ(line.find("note"), std::string::npos) << line;
  Event back = FullEvent();  // every field non-default before parsing
  ASSERT_TRUE(EventFromJson(line, &back).ok());
  EXPECT_TRUE(SameEvent(e, back)) << line;
  EXPECT_FALSE(back.fence.has_value());
}

TEST(HistoryJsonTest, FenceZeroIsKept) {
  Event e = FullEvent();
  e.fence = 0;
  Event back;
  ASSERT_TRUE(EventFromJson(EventToJson(e), &back).ok());
  ASSERT_TRUE(back.fence.has_value());
  EXPECT_EQ(*back.fence, 0);
}

TEST(HistoryJsonTest, ErrorsSayWhatWasExpected) {
  Event e;
  Status s = EventFromJson(
      R"({"op":1,"type":"acquire","invoke_us":1,"complete_us":"x","outcome":"ok"})", &e);
  EXPECT_EQ(s.message(), "expected \"complete_us\" to be an integer");
  s = EventFromJson(R"({"op":1,"type":"grab","invoke_us":1,"complete_us":2,"outcome":"ok"})", &e);
  EXPECT_NE(s.message().find("expected \"type\""), std::string::npos) << s.message();
  s = EventFromJson(R"({"type":"acquire","invoke_us":1,"complete_us":2,"outcome":"ok"})", &e);
  EXPECT_EQ(s.message(), "missing \"op\"");
  s = EventFromJson(R"({"op":1,"type":"acquire","invoke_us":1,"complete_us":2,"outcome":"ok",)"
                    R"("client":99999999999})",
                    &e);
  EXPECT_FALSE(s.ok());
  s = EventFromJson("[1,2]", &e);
  EXPECT_EQ(s.message(), "expected a JSON object");
  s = EventFromJson("{not json", &e);
  EXPECT_FALSE(s.ok());
}

TEST(HistoryJsonTest, UnknownFieldsAreSkipped) {
  Event e;
  Status s =
      EventFromJson(R"({"op":3,"extra":{"op":99,"type":[1,{"a":"b"}]},"type":"use","invoke_us":1,)"
                    R"("complete_us":2,"outcome":"fail","later":null,"value":7})",
                    &e);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(e.op_id, 3);
  EXPECT_EQ(e.type, OpType::kUse);
  EXPECT_EQ(e.outcome, Outcome::kFail);
  EXPECT_EQ(e.value, 7);
}

TEST(HistoryJsonTest, WrongShapesAreRejected) {
  Event e;
  const std::string tail = R"("invoke_us":1,"complete_us":2,"outcome":"ok"})";
  EXPECT_EQ(EventFromJson(R"({"op":1,"type":"use","key":5,)" + tail, &e).message(),
            "expected \"key\" to be a string");
  EXPECT_EQ(EventFromJson(R"({"op":1,"type":"use","fence":"9",)" + tail, &e).message(),
            "expected \"fence\" to be an integer");
  EXPECT_EQ(EventFromJson(R"({"op":1,"type":"use","value":{},)" + tail, &e).message(),
            "expected \"value\" to be an integer");
  EXPECT_EQ(
      EventFromJson(R"({"op":1,"type":"use","value":18446744073709551615,)" + tail, &e).message(),
      "expected \"value\" to be an integer in range");
  EXPECT_EQ(EventFromJson("17", &e).message(), "expected a JSON object");
  EXPECT_EQ(EventFromJson("\"op\"", &e).message(), "expected a JSON object");
}

TEST(HistoryJsonTest, InvalidUtf8IsReplacedAndStillParses) {
  Event e = FullEvent();
  e.note = std::string("bad \xff\xfe byte, good \xc3\xa9, ctl \x01");
  std::string line = EventToJson(e);
  Event back;
  Status s = EventFromJson(line, &back);
  ASSERT_TRUE(s.ok()) << s.ToString() << " " << line;
  EXPECT_EQ(back.note, "bad \xef\xbf\xbd\xef\xbf\xbd byte, good \xc3\xa9, ctl \x01");
}

TEST(HistoryReadTest, ErrorNamesFileAndLine) {
  TempFile f;
  Event e = FullEvent();
  std::string good = EventToJson(e) + "\n";
  std::string bad = R"({"op":2,"type":"acquire","invoke_us":1,"complete_us":1.5,"outcome":"ok"})"
                    "\n";
  WriteFile(f.path(), good + "\n" + good + bad + good);
  std::vector<Event> events;
  Status s = ReadHistory(f.path(), &events);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), f.path() + ":4: expected \"complete_us\" to be an integer");
}

TEST(HistoryReadTest, MissingFileIsAnIoError) {
  std::vector<Event> events;
  Status s = ReadHistory("/nonexistent/dir/history.jsonl", &events);
  EXPECT_EQ(s.code(), Status::Code::kIoError);
  EXPECT_NE(s.message().find("/nonexistent/dir/history.jsonl"), std::string::npos);
}

TEST(HistoryReadTest, TornLastLineIsIgnoredButTornMiddleLineIsNot) {
  TempFile f;
  std::string good = EventToJson(FullEvent()) + "\n";
  std::string torn = good.substr(0, good.size() / 2);
  WriteFile(f.path(), good + good + torn);
  std::vector<Event> events;
  ASSERT_TRUE(ReadHistory(f.path(), &events).ok());
  EXPECT_EQ(events.size(), 2u);

  WriteFile(f.path(), good + torn + "\n" + good);
  events.clear();
  Status s = ReadHistory(f.path(), &events);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind(f.path() + ":2: ", 0), 0u) << s.message();
}

TEST(HistoryWriterTest, InMemoryAssignsIdsAndKeepsOrder) {
  HistoryWriter w;
  int64_t reserved = w.NextOpId();
  Event e;
  e.key = "a";
  int64_t id1 = w.Append(e);
  e.op_id = reserved;
  e.key = "b";
  int64_t id2 = w.Append(e);
  EXPECT_NE(id1, reserved);
  EXPECT_EQ(id2, reserved);
  std::vector<Event> snap = w.Snapshot();
  ASSERT_EQ(snap.size(), 2u);
  EXPECT_EQ(snap[0].op_id, id1);
  EXPECT_EQ(snap[0].key, "a");
  EXPECT_EQ(snap[1].op_id, reserved);
  EXPECT_TRUE(w.WriteStatus().ok());
}

TEST(HistoryWriterTest, OpenFailsForBadPathAndTwice) {
  HistoryWriter w;
  EXPECT_FALSE(w.Open("/nonexistent/dir/history.jsonl").ok());
  TempFile f;
  ASSERT_TRUE(w.Open(f.path()).ok());
  EXPECT_FALSE(w.Open(f.path()).ok());
}

TEST(HistoryWriterTest, ConcurrentAppendsRoundTripThroughFile) {
  constexpr int kThreads = 6;
  constexpr int kPerThread = 500;
  TempFile f;
  std::vector<Event> snapshot;
  {
    HistoryWriter w;
    Event early;
    early.note = "appended before Open";
    w.Append(early);
    ASSERT_TRUE(w.Open(f.path()).ok());
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&w, t] {
        for (int i = 0; i < kPerThread; ++i) {
          Event e;
          e.client = t;
          e.impl = "impl";
          e.scenario = "scen";
          e.key = "k" + std::to_string(i % 3);
          e.type = i % 2 == 0 ? OpType::kAcquire : OpType::kRelease;
          e.value = i;
          if (i % 5 == 0) e.fence = i;
          if (i % 2 == 1) e.lease_op = w.NextOpId();
          w.Append(e);
          if (i == kPerThread / 2) w.Flush();
        }
      });
    }
    for (auto& th : threads) th.join();
    snapshot = w.Snapshot();
    EXPECT_TRUE(w.WriteStatus().ok());
  }  // the destructor writes the rest
  ASSERT_EQ(snapshot.size(), static_cast<size_t>(kThreads * kPerThread + 1));
  std::vector<Event> read;
  Status s = ReadHistory(f.path(), &read);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(read.size(), snapshot.size());
  std::set<int64_t> ids;
  std::map<int, int> next_value;  // per client, values arrive in that thread's order
  for (size_t i = 0; i < read.size(); ++i) {
    ASSERT_TRUE(SameEvent(read[i], snapshot[i])) << "line " << i + 1;
    EXPECT_TRUE(ids.insert(read[i].op_id).second) << "duplicate op id " << read[i].op_id;
    EXPECT_GT(read[i].op_id, 0);
    if (i == 0) {
      EXPECT_EQ(read[i].note, "appended before Open");
      continue;
    }
    EXPECT_EQ(read[i].value, next_value[read[i].client]++);
  }
}

TEST(HistoryWriterTest, FlushWritesEverythingSoFar) {
  TempFile f;
  HistoryWriter w;
  ASSERT_TRUE(w.Open(f.path()).ok());
  Event e;
  e.key = "x";
  w.Append(e);
  w.Append(e);
  w.Flush();
  std::vector<Event> read;
  ASSERT_TRUE(ReadHistory(f.path(), &read).ok());
  EXPECT_EQ(read.size(), 2u);
}

TEST(HistoryWriterTest, RvalueAppendsAcrossChunksKeepAppendOrderInMemoryAndFile) {
  TempFile f;
  HistoryWriter w;
  constexpr int kEvents = 2500;  // several of the writer's storage chunks
  for (int i = 0; i < kEvents; ++i) {
    if (i == 700) ASSERT_TRUE(w.Open(f.path()).ok());  // earlier events are written too
    Event e;
    e.value = i;
    e.token = std::string(40, static_cast<char>('a' + i % 26));  // heap-allocated: moved in
    e.note = i % 7 == 0 ? "line\n\"quoted\" \x01" : "";
    if (i % 2 == 0) {
      w.Append(std::move(e));
    } else {
      const Event& ref = e;
      w.Append(ref);
    }
    if (i == 1500) w.Flush();
  }
  w.Flush();
  std::vector<Event> snap = w.Snapshot();
  std::vector<Event> read;
  ASSERT_TRUE(ReadHistory(f.path(), &read).ok());
  ASSERT_EQ(snap.size(), static_cast<size_t>(kEvents));
  ASSERT_EQ(read.size(), snap.size());
  for (int i = 0; i < kEvents; ++i) {
    EXPECT_EQ(snap[static_cast<size_t>(i)].value, i);
    EXPECT_EQ(snap[static_cast<size_t>(i)].op_id, i + 1);
    ASSERT_TRUE(SameEvent(read[static_cast<size_t>(i)], snap[static_cast<size_t>(i)])) << i;
  }
}

}  // namespace
}  // namespace lockstorm
