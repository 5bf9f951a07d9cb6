#include "harness/history.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

namespace lockstorm {
namespace {

using Json = nlohmann::ordered_json;

// The fields of an Event line, in the order EventToJson writes them.
enum class Field : int {
  kOp,
  kLeaseOp,
  kImpl,
  kScenario,
  kClient,
  kKey,
  kType,
  kInvokeUs,
  kCompleteUs,
  kOutcome,
  kToken,
  kFence,
  kTtlMs,
  kValidMs,
  kAttempts,
  kSplitVotes,
  kValue,
  kNote,
  kPhase,
  kNode,
  kCount,
  kUnknown = kCount
};
constexpr const char* kFieldNames[] = {
    "op",        "lease_op",    "impl",    "scenario", "client", "key",    "type",
    "invoke_us", "complete_us", "outcome", "token",    "fence",  "ttl_ms", "valid_ms",
    "attempts",  "split_votes", "value",   "note",     "phase",  "node"};
constexpr uint32_t kRequired =
    (1u << static_cast<int>(Field::kOp)) | (1u << static_cast<int>(Field::kType)) |
    (1u << static_cast<int>(Field::kInvokeUs)) | (1u << static_cast<int>(Field::kCompleteUs)) |
    (1u << static_cast<int>(Field::kOutcome));

bool IsStringField(Field f) {
  return f == Field::kImpl || f == Field::kScenario || f == Field::kKey || f == Field::kType ||
         f == Field::kOutcome || f == Field::kToken || f == Field::kNote || f == Field::kPhase;
}

// Reads one event line with nlohmann's SAX parser: no DOM is built, each value goes straight
// to its Event field. Unknown fields (of any shape) are skipped.
class EventSax : public nlohmann::json_sax<Json> {
 public:
  explicit EventSax(Event* e) : e_(e) {}

  // Call after a successful parse.
  Status Finish() {
    if (!error_.empty()) return Status::InvalidArgument(error_);
    for (int f = 0; f < static_cast<int>(Field::kCount); ++f) {
      if ((kRequired & (1u << f)) != 0 && (seen_ & (1u << f)) == 0) {
        return Status::InvalidArgument(std::string("missing \"") + kFieldNames[f] + "\"");
      }
    }
    return Status::Ok();
  }
  const std::string& error() const { return error_; }

  bool null() override { return Scalar(); }
  bool boolean(bool) override { return Scalar(); }
  bool number_integer(number_integer_t v) override { return Integer(v); }
  bool number_unsigned(number_unsigned_t v) override {
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Fail("to be an integer in range");
    }
    return Integer(static_cast<int64_t>(v));
  }
  bool number_float(number_float_t, const string_t&) override { return Scalar(); }
  bool string(string_t& v) override {
    if (depth_ == 0) {
      error_ = "expected a JSON object";
      return false;
    }
    if (depth_ != 1 || field_ == Field::kUnknown) return true;
    if (!IsStringField(field_)) return Fail("to be an integer");
    Mark();
    switch (field_) {
      case Field::kImpl:
        e_->impl = std::move(v);
        break;
      case Field::kScenario:
        e_->scenario = std::move(v);
        break;
      case Field::kKey:
        e_->key = std::move(v);
        break;
      case Field::kToken:
        e_->token = std::move(v);
        break;
      case Field::kNote:
        e_->note = std::move(v);
        break;
      case Field::kPhase:
        e_->phase = std::move(v);
        break;
      case Field::kType: {
        std::optional<OpType> t = ParseOpType(v);
        if (!t) {
          error_ =
              "expected \"type\" to be one of acquire, release, extend, use, write, fault, "
              "crash, sample; got \"" +
              v + "\"";
          return false;
        }
        e_->type = *t;
        break;
      }
      case Field::kOutcome: {
        std::optional<Outcome> o = ParseOutcome(v);
        if (!o) {
          error_ = "expected \"outcome\" to be one of ok, fail, unknown; got \"" + v + "\"";
          return false;
        }
        e_->outcome = *o;
        break;
      }
      default:
        break;
    }
    return true;
  }
  bool binary(binary_t&) override { return Scalar(); }
  bool start_object(std::size_t) override { return Open(); }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override {
    if (depth_ == 0) {
      error_ = "expected a JSON object";
      return false;
    }
    return Open();
  }
  bool end_array() override { return Close(); }
  bool key(string_t& k) override {
    if (depth_ != 1) return true;
    field_ = Field::kUnknown;
    for (int f = 0; f < static_cast<int>(Field::kCount); ++f) {
      if (k == kFieldNames[f]) {
        field_ = static_cast<Field>(f);
        break;
      }
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    if (error_.empty()) error_ = std::string("expected a JSON object: ") + ex.what();
    return false;
  }

 private:
  bool Fail(const char* what) {
    error_ = std::string("expected \"") + kFieldNames[static_cast<int>(field_)] + "\" " + what;
    return false;
  }
  // A value that fits no known field's type.
  bool Scalar() {
    if (depth_ == 0) {
      error_ = "expected a JSON object";
      return false;
    }
    if (depth_ != 1 || field_ == Field::kUnknown) return true;
    return Fail(IsStringField(field_) ? "to be a string" : "to be an integer");
  }
  bool Open() {
    if (depth_ == 1 && field_ != Field::kUnknown) {
      return Scalar();  // a known field holding an object/array
    }
    ++depth_;
    return true;
  }
  bool Close() {
    --depth_;
    return true;
  }
  void Mark() { seen_ |= 1u << static_cast<int>(field_); }
  bool Integer(int64_t v) {
    if (depth_ == 0) {
      error_ = "expected a JSON object";
      return false;
    }
    if (depth_ != 1 || field_ == Field::kUnknown) return true;
    if (IsStringField(field_)) return Fail("to be a string");
    auto to_int = [&](int* out) {
      if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
        return Fail("to be an integer in range");
      }
      *out = static_cast<int>(v);
      return true;
    };
    Mark();
    switch (field_) {
      case Field::kOp:
        e_->op_id = v;
        break;
      case Field::kLeaseOp:
        e_->lease_op = v;
        break;
      case Field::kClient:
        return to_int(&e_->client);
      case Field::kInvokeUs:
        e_->invoke_us = v;
        break;
      case Field::kCompleteUs:
        e_->complete_us = v;
        break;
      case Field::kFence:
        e_->fence = v;
        break;
      case Field::kTtlMs:
        e_->ttl_ms = v;
        break;
      case Field::kValidMs:
        e_->valid_ms = v;
        break;
      case Field::kAttempts:
        return to_int(&e_->attempts);
      case Field::kSplitVotes:
        return to_int(&e_->split_votes);
      case Field::kNode:
        return to_int(&e_->node);
      case Field::kValue:
        e_->value = v;
        break;
      default:
        break;
    }
    return true;
  }

  Event* e_;
  int depth_ = 0;
  Field field_ = Field::kUnknown;
  uint32_t seen_ = 0;
  std::string error_;
};

// Length of the valid UTF-8 sequence starting at s[i], or 0 if it is not valid.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3, cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;  // overlong, out of range, or a surrogate
  }
  return n;
}

// True for the bytes a JSON string holds as they are: printable ASCII but '"' and '\\'.
inline bool IsPlainJsonByte(unsigned char c) {
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

// Appends `s` as a JSON string. Invalid UTF-8 (an error text from the wire) becomes U+FFFD.
// Runs of bytes that need no escaping (all of a key, a token, a name) are appended at once.
void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  *out += '"';
  for (size_t i = 0; i < s.size();) {
    size_t run = i;
    while (run < s.size() && IsPlainJsonByte(static_cast<unsigned char>(s[run]))) ++run;
    if (run > i) {
      out->append(s.data() + i, run - i);
      i = run;
      if (i == s.size()) break;
    }
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        *out += "\\ufffd";
        ++i;
      } else {
        out->append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      default:  // another control character (the plain run stopped at it)
        *out += "\\u00";
        *out += kHex[c >> 4];
        *out += kHex[c & 0xF];
    }
    ++i;
  }
  *out += '"';
}

// `key` is the literal text before the value, e.g. ",\"client\":".
template <size_t N>
void AppendIntField(std::string* out, const char (&key)[N], int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->append(key, N - 1);
  out->append(buf, end);
}

template <size_t N>
void AppendStringField(std::string* out, const char (&key)[N], std::string_view v) {
  out->append(key, N - 1);
  AppendJsonString(out, v);
}

// Appends EventToJson(e) to *out.
void AppendEventJson(std::string* out, const Event& e) {
  AppendIntField(out, "{\"op\":", e.op_id);
  if (e.lease_op != -1) AppendIntField(out, ",\"lease_op\":", e.lease_op);
  AppendStringField(out, ",\"impl\":", e.impl);
  AppendStringField(out, ",\"scenario\":", e.scenario);
  AppendIntField(out, ",\"client\":", e.client);
  AppendStringField(out, ",\"key\":", e.key);
  AppendStringField(out, ",\"type\":", OpTypeName(e.type));
  AppendIntField(out, ",\"invoke_us\":", e.invoke_us);
  AppendIntField(out, ",\"complete_us\":", e.complete_us);
  AppendStringField(out, ",\"outcome\":", OutcomeName(e.outcome));
  if (!e.token.empty()) AppendStringField(out, ",\"token\":", e.token);
  if (e.fence) AppendIntField(out, ",\"fence\":", *e.fence);
  if (e.ttl_ms != 0) AppendIntField(out, ",\"ttl_ms\":", e.ttl_ms);
  if (e.valid_ms != 0) AppendIntField(out, ",\"valid_ms\":", e.valid_ms);
  if (e.attempts != 0) AppendIntField(out, ",\"attempts\":", e.attempts);
  if (e.split_votes != 0) AppendIntField(out, ",\"split_votes\":", e.split_votes);
  if (e.value != 0) AppendIntField(out, ",\"value\":", e.value);
  if (!e.note.empty()) AppendStringField(out, ",\"note\":", e.note);
  if (!e.phase.empty()) AppendStringField(out, ",\"phase\":", e.phase);
  if (e.node != -1) AppendIntField(out, ",\"node\":", e.node);
  *out += '}';
}

}  // namespace

const char* OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kFail:
      return "fail";
    case Outcome::kUnknown:
      return "unknown";
  }
  return "unknown";
}

std::optional<Outcome> ParseOutcome(const std::string& s) {
  if (s == "ok") return Outcome::kOk;
  if (s == "fail") return Outcome::kFail;
  if (s == "unknown") return Outcome::kUnknown;
  return std::nullopt;
}

const char* OpTypeName(OpType t) {
  switch (t) {
    case OpType::kAcquire:
      return "acquire";
    case OpType::kRelease:
      return "release";
    case OpType::kExtend:
      return "extend";
    case OpType::kUse:
      return "use";
    case OpType::kWrite:
      return "write";
    case OpType::kFault:
      return "fault";
    case OpType::kCrash:
      return "crash";
    case OpType::kSample:
      return "sample";
  }
  return "?";
}

std::optional<OpType> ParseOpType(const std::string& s) {
  static constexpr OpType kAll[] = {OpType::kAcquire, OpType::kRelease, OpType::kExtend,
                                    OpType::kUse,     OpType::kWrite,   OpType::kFault,
                                    OpType::kCrash,   OpType::kSample};
  for (OpType t : kAll) {
    if (s == OpTypeName(t)) return t;
  }
  return std::nullopt;
}

std::string EventToJson(const Event& e) {
  // Written by hand rather than through nlohmann::json: every event of a run goes through
  // it (on the history's flusher thread), and this is several times faster. EventFromJson
  // reads it back.
  std::string out;
  out.reserve(160 + e.impl.size() + e.scenario.size() + e.key.size() + e.token.size() +
              e.note.size() + e.phase.size());
  AppendEventJson(&out, e);
  return out;
}

Status EventFromJson(const std::string& line, Event* out) {
  Event e;
  EventSax sax(&e);
  bool ok = Json::sax_parse(line, &sax, nlohmann::json::input_format_t::json, /*strict=*/true);
  if (!ok) {
    return Status::InvalidArgument(sax.error().empty() ? "expected a JSON object" : sax.error());
  }
  Status s = sax.Finish();
  if (!s.ok()) return s;
  *out = std::move(e);
  return Status::Ok();
}

HistoryWriter::~HistoryWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  WritePending();
  std::lock_guard<std::mutex> file_lock(file_mu_);
  if (file_ != nullptr) {
    std::fclose(file_);
    file_ = nullptr;
  }
}

Status HistoryWriter::Open(const std::string& path) {
  std::lock_guard<std::mutex> file_lock(file_mu_);
  std::lock_guard<std::mutex> lock(mu_);
  if (file_ != nullptr) return Status::InvalidArgument(path + ": history already open");
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    return Status::IoError(path + ": cannot open for writing: " + std::strerror(errno));
  }
  file_ = f;  // events appended before (written_ is 0) go out with the first write
  flusher_ = std::thread([this] { FlushLoop(); });
  return Status::Ok();
}

int64_t HistoryWriter::NextOpId() {
  std::lock_guard<std::mutex> lock(mu_);
  return next_op_id_++;
}

int64_t HistoryWriter::Append(const Event& e) { return Append(Event(e)); }  // copy unlocked

int64_t HistoryWriter::Append(Event&& e) {
  std::lock_guard<std::mutex> lock(mu_);
  if (e.op_id == 0) {
    e.op_id = next_op_id_++;
  } else if (e.op_id >= next_op_id_) {
    // Keep NextOpId from handing out an id already used by an explicitly numbered event.
    next_op_id_ = e.op_id + 1;
  }
  const int64_t id = e.op_id;
  if (chunks_.empty() || chunks_.back().size() == kChunkEvents) {
    chunks_.emplace_back();
    chunks_.back().reserve(kChunkEvents);  // never grows past this: its events never move
  }
  chunks_.back().push_back(std::move(e));
  ++size_;
  return id;
}

std::vector<Event> HistoryWriter::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Event> out;
  out.reserve(size_);
  for (const std::vector<Event>& chunk : chunks_) out.insert(out.end(), chunk.begin(), chunk.end());
  return out;
}

void HistoryWriter::Flush() { WritePending(); }

Status HistoryWriter::WriteStatus() const {
  std::lock_guard<std::mutex> lock(mu_);
  return write_status_;
}

void HistoryWriter::WritePending() {
  std::lock_guard<std::mutex> file_lock(file_mu_);
  if (file_ == nullptr) return;  // file_ only changes under file_mu_, which we hold
  size_t end;
  {
    std::lock_guard<std::mutex> lock(mu_);
    end = size_;
    if (!write_status_.ok()) written_ = end;  // the file is left as it is
    // Events never move once appended (see chunks_), so they can be read without mu_
    // through the chunks' data pointers, taken here; appends meanwhile touch later slots.
    chunk_data_.clear();
    for (size_t c = written_ / kChunkEvents; c * kChunkEvents < end; ++c) {
      chunk_data_.push_back(chunks_[c].data());
    }
  }
  if (written_ >= end) return;
  const size_t first_chunk = written_ / kChunkEvents;
  bool ok = true;
  // Bounded: every round writes at least one event. Formatting and writing at most
  // kChunkEvents events per round keeps text_ bounded.
  while (ok && written_ < end) {
    const size_t batch_end = std::min(end, (written_ / kChunkEvents + 1) * kChunkEvents);
    const Event* chunk = chunk_data_[written_ / kChunkEvents - first_chunk];
    text_.clear();
    for (size_t i = written_; i < batch_end; ++i) {
      AppendEventJson(&text_, chunk[i % kChunkEvents]);
      text_ += '\n';
    }
    ok = std::fwrite(text_.data(), 1, text_.size(), file_) == text_.size();
    written_ = batch_end;
  }
  ok = (std::fflush(file_) == 0) && ok;
  if (!ok) {
    std::string err = std::strerror(errno);
    std::lock_guard<std::mutex> lock(mu_);
    write_status_ = Status::IoError("history: write failed: " + err);
    written_ = end;
  }
}

void HistoryWriter::FlushLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::milliseconds(kFlushIntervalMs), [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    WritePending();
    lock.lock();
  }
}

Status ReadHistory(const std::string& path, std::vector<Event>* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(path + ": cannot open: " + std::strerror(errno));
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    bool complete_line = !in.eof();  // getline stopped at a '\n', not at the end of file
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    Event e;
    Status s = EventFromJson(line, &e);
    if (!s.ok()) {
      if (!complete_line) break;  // the torn last write of a run that died
      return Status::InvalidArgument(path + ":" + std::to_string(line_no) + ": " + s.message());
    }
    out->push_back(std::move(e));
  }
  if (in.bad()) return Status::IoError(path + ": read error");
  return Status::Ok();
}

}  // namespace lockstorm
