// History: the record of every operation of a run, the checkers' only input.
//
// One Event per completed operation, carrying both its invoke and completion times on the
// one shared monotonic clock (HistoryNowUs()). Events of all impls and scenarios of a run go
// to one history.jsonl in the run directory, one JSON object per line, streamed while the run
// goes (flushed at least every kFlushIntervalMs), so a crash of lockstorm loses at most the
// last few events. `lockstorm check` reads it back.
//
// A history is immutable once recorded; checkers are pure functions of it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "harness/lock.h"
#include "harness/status.h"

namespace lockstorm {

enum class OpType {
  kAcquire,  // lock acquire (outcome ok/fail/unknown)
  kRelease,  // lock release
  kExtend,   // lock extend
  kUse,      // the guarded resource's read-modify-write inside the critical section
  kWrite,    // a write to the fenced witness resource (accepted = ok, rejected = fail)
  kFault,    // a nemesis fault period [invoke, complete]
  kCrash,    // a client crashed (stopped dead) at invoke
  kSample,   // the harness read a lock key on one node, directly (not through fault links):
             // node = the node, token = the key's value ("" if missing), value = its PTTL in
             // ms (-1: no TTL, -2: missing), lease_op = the operation the sample follows,
             // note = why (kSampleAfterAcquire, ...). Contract and leftover-key checks read it.
};
inline constexpr const char* kSampleAfterAcquire = "after-acquire";  // an ok acquire
inline constexpr const char* kSampleAfterExtend = "after-extend";    // an ok extend
inline constexpr const char* kSampleAfterFail = "after-fail";        // an acquire that failed
inline constexpr const char* kSampleQuiesce = "quiesce";    // every lock key, after the run
const char* OpTypeName(OpType t);                           // "acquire", "release", ...
std::optional<OpType> ParseOpType(const std::string& s);    // inverse; nullopt if unknown
std::optional<Outcome> ParseOutcome(const std::string& s);  // inverse of OutcomeName

struct Event {
  int64_t op_id = 0;      // unique within the run; a release/extend/use names its acquire
  int64_t lease_op = -1;  // for release/extend/use/write: op_id of the acquire that granted it
  std::string impl;       // implementation name
  std::string scenario;   // scenario name
  int client = -1;        // client index (-1 for faults)
  std::string key;
  OpType type = OpType::kAcquire;
  int64_t invoke_us = 0;
  int64_t complete_us = 0;
  Outcome outcome = Outcome::kOk;
  std::string token;  // lease token
  std::optional<int64_t> fence;
  int64_t ttl_ms = 0;    // requested ttl (acquire/extend)
  int64_t valid_ms = 0;  // reported remaining validity (acquire/extend ok)
  int attempts = 0;      // acquire tries
  int split_votes = 0;   // acquire tries that won some but not a quorum of nodes (Redlock)
  int64_t value = 0;     // kUse: value read (and value+1 written when outcome ok)
  std::string note;      // error text, fault description
  // "" = the safety phase (the workload, with faults); kPhaseLiveness = the liveness phase
  // (faults healed; each client's probe acquire must succeed within the liveness bound).
  std::string phase;
  int node = -1;  // kSample: the node sampled
};

inline constexpr const char* kPhaseLiveness = "liveness";

// One line of history.jsonl, no newline. Always present: op, impl, scenario, client, key,
// type, invoke_us, complete_us, outcome. Omitted when they hold their default (and restored
// to it by EventFromJson, so the round trip is exact): lease_op (-1), token (""), fence
// (none), ttl_ms, valid_ms, attempts, split_votes, value (0), note, phase (""), node (-1).
std::string EventToJson(const Event& e);
// The inverse. Unknown fields are ignored. On error *out is unspecified and the message
// says what was expected, e.g. `expected "complete_us" to be an integer`.
Status EventFromJson(const std::string& line, Event* out);

// Streams events to a file and keeps them in memory for the checkers.
// Thread-safe: every method may be called from any thread. Append is cheap: it only stores
// the event (moved, for an rvalue) under a short lock. A background thread, started by Open,
// formats the events appended since its last pass as JSON lines, writes them to the file in
// append order and fflush()es, at least every kFlushIntervalMs; Flush() and the destructor
// do the same on the calling thread for everything appended before them. Memory: the events
// themselves (kept for Snapshot) plus at most one chunk's worth of formatted text.
class HistoryWriter {
 public:
  static constexpr int kFlushIntervalMs = 50;

  HistoryWriter() = default;
  ~HistoryWriter();  // flushes and closes

  // Opens `path` for writing (truncates). Without Open, events are kept in memory only.
  // Events appended before Open are written too. Fails if already open.
  Status Open(const std::string& path);
  // Records `e`, assigning e.op_id if it is 0. Returns the op_id. The const& overload copies
  // `e` (outside the lock); pass an rvalue to avoid the copy.
  int64_t Append(const Event& e);
  int64_t Append(Event&& e);
  // Reserves an op id (for an acquire whose id its release must name before completion).
  int64_t NextOpId();
  // A copy of every event appended so far, in append order.
  std::vector<Event> Snapshot() const;
  // Writes every event appended so far to the file and fflush()es. No-op without Open.
  void Flush();
  // The first write error seen (the file is then left as it is), or Ok.
  Status WriteStatus() const;

 private:
  // Events per chunk. A chunk's capacity is reserved up front and never exceeded, so an
  // appended event never moves: the writer formats it without holding mu_.
  static constexpr size_t kChunkEvents = 1024;

  void FlushLoop();
  // Formats and writes events [written_, size_) to the file; takes file_mu_ then mu_.
  void WritePending();

  std::mutex file_mu_;    // serializes writers of file_, so the file keeps append order
  FILE* file_ = nullptr;  // set under file_mu_ and mu_
  size_t written_ = 0;    // events written to the file (or skipped after an error); file_mu_
  std::vector<const Event*> chunk_data_;  // WritePending's scratch; file_mu_
  std::string text_;                      // WritePending's formatted lines; file_mu_

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::vector<Event>> chunks_;  // every event, in append order; mu_
  size_t size_ = 0;                         // events in chunks_; mu_
  bool stop_ = false;
  int64_t next_op_id_ = 1;
  Status write_status_;
  std::thread flusher_;
};

// Reads a history.jsonl (appending to *out). Errors name the file and line number:
// `history.jsonl:17: expected "complete_us" to be an integer`. Empty lines are skipped. A
// last line without its newline that does not parse is the partial write of a run that died
// and is ignored; any other bad line is an error.
Status ReadHistory(const std::string& path, std::vector<Event>* out);

}  // namespace lockstorm
