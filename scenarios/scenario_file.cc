// Scenario files (docs/scenario-format.md): JSON → Scenario with one-line errors, and back.
#include "scenarios/scenario_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace lockstorm {

// ---------------------------------------------------------------------------------------------
// Faults.

namespace {

// Which optional NemesisEvent fields a fault takes ("at_ms" and "duration_ms": all of them).
struct FaultSpec {
  const char* name;
  bool nodes;
  bool clients;
  bool groups;   // "groups"
  bool latency;  // "latency_ms", "jitter_ms"
  bool delta;    // "delta_ms"
  bool rate;     // "rate"
  bool restart;  // "persistence", "delay_ms"
};

// clang-format off
constexpr FaultSpec kFaultSpecs[] = {
    // name                 nodes  clients groups latency delta  rate   restart
    {"pause-holder",        false, true,   false, false,  false, false, false},
    {"crash-client",        false, true,   false, false,  false, false, false},
    {"crash-mid-acquire",   false, true,   false, false,  false, false, false},
    {"kill-node",           true,  false,  false, false,  false, false, false},
    {"restart-node",        true,  false,  false, false,  false, false, true},
    {"pause-node",          true,  false,  false, false,  false, false, false},
    {"partition",           true,  true,   true,  false,  false, false, false},
    {"one-way-replies",     true,  true,   false, false,  false, false, false},
    {"drop-requests",       true,  true,   false, false,  false, false, false},
    {"latency",             true,  true,   false, true,   false, false, false},
    {"reset-connections",   true,  true,   false, false,  false, false, false},
    {"refuse-connections",  true,  true,   false, false,  false, false, false},
    {"clock-jump",          true,  false,  false, false,  true,  false, false},
    {"clock-rate",          true,  false,  false, false,  false, true,  false},
    {"client-clock-jump",   false, true,   false, false,  true,  false, false},
    {"client-clock-rate",   false, true,   false, false,  false, true,  false},
    {"client-wall-clock-jump", false, true, false, false, true,  false, false},
    {"failover",            true,  false,  false, false,  false, false, false},
    {"cut-replication",     true,  false,  false, false,  false, false, false},
};
// clang-format on

const FaultSpec* FindFault(const std::string& name) {
  for (const FaultSpec& f : kFaultSpecs)
    if (name == f.name) return &f;
  return nullptr;
}

}  // namespace

const char* const* KnownFaults() {
  static const char* const* names = [] {
    constexpr size_t n = std::size(kFaultSpecs);
    auto* v = new const char*[n + 1];
    for (size_t i = 0; i < n; ++i) v[i] = kFaultSpecs[i].name;
    v[n] = nullptr;
    return v;
  }();
  return names;
}

bool IsKnownFault(const std::string& fault) { return FindFault(fault) != nullptr; }

bool FaultUsesField(const std::string& fault, const std::string& field) {
  const FaultSpec* f = FindFault(fault);
  if (!f) return false;
  if (field == "at_ms" || field == "duration_ms") return true;
  if (field == "nodes") return f->nodes;
  if (field == "clients") return f->clients;
  if (field == "groups") return f->groups;
  if (field == "latency_ms" || field == "jitter_ms") return f->latency;
  if (field == "delta_ms") return f->delta;
  if (field == "rate") return f->rate;
  if (field == "persistence" || field == "delay_ms") return f->restart;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Rules shared by the parser and ValidateScenario, so both give the same message.

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

#define LOCKSTORM_RETURN_IF_ERROR(expr)   \
  do {                                    \
    if (Status _st = (expr); !_st.ok()) { \
      return _st;                         \
    }                                     \
  } while (0)

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

struct IntRange {
  int64_t lo;
  int64_t hi;  // kInt64Max = unbounded
};

constexpr IntRange kClientsRange{1, 10000};
constexpr IntRange kKeysRange{1, 1000000};
constexpr IntRange kWorkloadDurationRange{1, 86400000};
constexpr IntRange kTtlRange{10, 3600000};
constexpr IntRange kWaitRange{0, 3600000};
constexpr IntRange kNodesRange{0, 15};
constexpr IntRange kReplicasRange{0, 15};
constexpr IntRange kLivenessBoundRange{0, 86400000};
constexpr IntRange kTimeRange{0, kInt64Max};  // at_ms, duration_ms, delay_ms
constexpr IntRange kLatencyRange{0, 60000};   // latency_ms, jitter_ms
constexpr IntRange kDeltaRange{-86400000, 86400000};
// Node indexes when the topology leaves the node count to the locks (at most --nodes 15).
constexpr int kMaxNodesUnset = 15;

constexpr double kMaxWeight = 1e6;
constexpr double kMaxTtlFrac = 1000;
constexpr double kMaxRatePerS = 1e7;  // workload.rate_per_s (open loop)
constexpr double kMaxRate = 1000;

const char* const kExpectations[] = {kExpectSafe, kExpectUnsafe, kExpectLiveness};

// A JSON value as it appears in a message: compact, and cut short if long.
std::string Describe(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// Integral values print without ".0", as a human would write the bound.
std::string NumberText(double d) {
  if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 1e15) {
    return std::to_string(static_cast<int64_t>(d));
  }
  return Describe(json(d));
}

std::string Child(const std::string& path, const std::string& key) {
  bool plain = !key.empty() && !std::isdigit(static_cast<unsigned char>(key[0]));
  for (char c : key) {
    plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-');
  }
  return plain ? path + "." + key : path + "[" + Describe(json(key)) + "]";
}

std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

std::string IntExpectation(IntRange r) {
  if (r.hi == kInt64Max) {
    return r.lo == 0 ? "a non-negative integer" : "an integer >= " + std::to_string(r.lo);
  }
  return "an integer in " + std::to_string(r.lo) + ".." + std::to_string(r.hi);
}

std::string JoinNames(const char* const* names, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += (i ? ", " : "") + std::string(names[i]);
  return out;
}

std::string FaultList() {
  std::string out;
  for (const char* const* f = KnownFaults(); *f; ++f)
    out += (out.empty() ? "" : ", ") + std::string(*f);
  return out;
}

std::string PersistenceList() { return "none, rdb, aof-everysec, aof-always"; }

std::string FaultsUsing(const std::string& field) {
  std::string out;
  for (const FaultSpec& f : kFaultSpecs)
    if (FaultUsesField(f.name, field)) out += (out.empty() ? "" : ", ") + std::string(f.name);
  return out;
}

// Formats one-line errors "<source>: <path>: <what>".
class Errors {
 public:
  explicit Errors(std::string source) : source_(std::move(source)) {}

  Status At(const std::string& path, const std::string& what) const {
    return Status::InvalidArgument(source_ + ": " + path + ": " + what);
  }
  Status Expected(const std::string& path, const std::string& what, const std::string& got) const {
    return At(path, "expected " + what + ", got " + got);
  }

  Status CheckInt(const std::string& path, int64_t v, IntRange r) const {
    if (v < r.lo || v > r.hi) return Expected(path, IntExpectation(r), std::to_string(v));
    return Status::Ok();
  }

  // lo_open: the lower bound is excluded.
  Status CheckNumber(const std::string& path, double v, double lo, bool lo_open, double hi,
                     const std::string& lo_name = "") const {
    const bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && v <= hi;
    if (ok) return Status::Ok();
    const std::string lo_text =
        lo_name.empty() ? NumberText(lo) : lo_name + " (" + NumberText(lo) + ")";
    return Expected(
        path,
        "a number in " + std::string(lo_open ? "(" : "[") + lo_text + ", " + NumberText(hi) + "]",
        NumberText(v));
  }

  // An index into 0..count-1; `what` names the thing ("node index").
  Status CheckIndex(const std::string& path, int64_t v, int count, const std::string& what,
                    const std::string& count_note) const {
    if (v < 0 || v >= count) {
      return Expected(path, "a " + what + " in 0.." + std::to_string(count - 1) + count_note,
                      std::to_string(v));
    }
    return Status::Ok();
  }

 private:
  std::string source_;
};

// How many nodes the indexes of a nemesis event may address, and the note in the message.
int NodeCount(const Scenario& s) { return s.nodes > 0 ? s.nodes : kMaxNodesUnset; }
std::string NodeCountNote(const Scenario& s) {
  return s.nodes > 0
             ? " (topology.nodes = " + std::to_string(s.nodes) + ")"
             : " (topology.nodes unset: at most " + std::to_string(kMaxNodesUnset) + " nodes)";
}
std::string ClientCountNote(const Scenario& s) {
  return " (workload.clients = " + std::to_string(s.workload.clients) + ")";
}

// ---------------------------------------------------------------------------------------------
// Parsing: types and per-field ranges here; cross-field rules in ValidateScenario.

class Parser {
 public:
  explicit Parser(const std::string& source) : err_(source) {}

  Status ReadScenario(const json& doc, Scenario* s) {
    const std::string root = "$";
    LOCKSTORM_RETURN_IF_ERROR(CheckObject(doc, root,
                                          {"name", "description", "topology", "workload", "nemesis",
                                           "expectations", "liveness_bound_ms"}));
    if (!doc.contains("name")) return err_.At("$.name", "required: expected a non-empty string");
    LOCKSTORM_RETURN_IF_ERROR(ReadString(doc, root, "name", /*nonempty=*/true, &s->name));
    LOCKSTORM_RETURN_IF_ERROR(ReadString(doc, root, "description", false, &s->description));
    if (doc.contains("topology")) LOCKSTORM_RETURN_IF_ERROR(ReadTopology(doc["topology"], s));
    if (doc.contains("workload"))
      LOCKSTORM_RETURN_IF_ERROR(ReadWorkload(doc["workload"], &s->workload));
    if (doc.contains("nemesis")) {
      const json& arr = doc["nemesis"];
      const std::string path = "$.nemesis";
      if (!arr.is_array()) return err_.Expected(path, "an array of nemesis events", Describe(arr));
      for (size_t i = 0; i < arr.size(); ++i) {
        NemesisEvent e;
        LOCKSTORM_RETURN_IF_ERROR(ReadEvent(arr[i], Index(path, i), *s, &e));
        s->nemesis.push_back(std::move(e));
      }
    }
    if (doc.contains("expectations")) {
      const json& obj = doc["expectations"];
      const std::string path = "$.expectations";
      if (!obj.is_object()) {
        return err_.Expected(path, "an object mapping lock names to expectations", Describe(obj));
      }
      for (const auto& [impl, v] : obj.items()) {
        const std::string p = Child(path, impl);
        if (impl.empty()) return err_.At(p, "expected a non-empty lock name");
        if (!v.is_string()) return ExpectedExpectation(p, Describe(v));
        s->expectations[impl] = v.get<std::string>();
      }
    }
    int64_t bound = s->liveness_bound_ms;
    LOCKSTORM_RETURN_IF_ERROR(ReadInt(doc, root, "liveness_bound_ms", kLivenessBoundRange, &bound));
    s->liveness_bound_ms = bound;
    return Status::Ok();
  }

  Status ExpectedExpectation(const std::string& path, const std::string& got) const {
    return err_.Expected(path, "one of " + JoinNames(kExpectations, std::size(kExpectations)), got);
  }

 private:
  // `v` must be an object whose keys are all in `allowed`.
  Status CheckObject(const json& v, const std::string& path,
                     std::initializer_list<const char*> allowed) const {
    if (!v.is_object()) return err_.Expected(path, "an object", Describe(v));
    for (const auto& [key, unused] : v.items()) {
      bool known = false;
      for (const char* a : allowed) known = known || key == a;
      if (!known) {
        return err_.At(Child(path, key), "unknown key (expected one of " +
                                             JoinNames(allowed.begin(), allowed.size()) + ")");
      }
    }
    return Status::Ok();
  }

  Status ReadTopology(const json& t, Scenario* s) {
    const std::string path = "$.topology";
    LOCKSTORM_RETURN_IF_ERROR(CheckObject(t, path, {"nodes", "replicas", "persistence"}));
    LOCKSTORM_RETURN_IF_ERROR(ReadInt(t, path, "nodes", kNodesRange, &s->nodes));
    LOCKSTORM_RETURN_IF_ERROR(ReadInt(t, path, "replicas", kReplicasRange, &s->replicas));
    if (t.contains("persistence")) {
      const json& v = t["persistence"];
      if (!v.is_string() || !ParsePersistence(v.get<std::string>(), &s->persistence)) {
        return err_.Expected(Child(path, "persistence"), "one of " + PersistenceList(),
                             Describe(v));
      }
    }
    return Status::Ok();
  }

  Status ReadWorkload(const json& w, Workload* out) {
    const std::string path = "$.workload";
    LOCKSTORM_RETURN_IF_ERROR(
        CheckObject(w, path,
                    {"clients", "keys", "duration_ms", "ttl_ms", "wait_ms", "holds", "extend",
                     "late_extend_frac", "check_lease", "rate_per_s"}));
    LOCKSTORM_RETURN_IF_ERROR(ReadInt(w, path, "clients", kClientsRange, &out->clients));
    LOCKSTORM_RETURN_IF_ERROR(ReadInt(w, path, "keys", kKeysRange, &out->keys));
    LOCKSTORM_RETURN_IF_ERROR(
        ReadInt(w, path, "duration_ms", kWorkloadDurationRange, &out->duration_ms));
    LOCKSTORM_RETURN_IF_ERROR(ReadInt(w, path, "ttl_ms", kTtlRange, &out->ttl_ms));
    LOCKSTORM_RETURN_IF_ERROR(ReadInt(w, path, "wait_ms", kWaitRange, &out->wait_ms));
    if (w.contains("holds")) {
      const json& arr = w["holds"];
      const std::string hp = Child(path, "holds");
      if (!arr.is_array() || arr.empty()) {
        return err_.Expected(hp, "a non-empty array of hold bands", Describe(arr));
      }
      out->holds.clear();
      for (size_t i = 0; i < arr.size(); ++i) {
        const std::string bp = Index(hp, i);
        LOCKSTORM_RETURN_IF_ERROR(
            CheckObject(arr[i], bp, {"weight", "lo_ttl_frac", "hi_ttl_frac"}));
        HoldBand b{};
        for (const char* k : {"weight", "lo_ttl_frac", "hi_ttl_frac"}) {
          if (!arr[i].contains(k)) return err_.At(Child(bp, k), "required: expected a number");
        }
        LOCKSTORM_RETURN_IF_ERROR(ReadNumber(arr[i], bp, "weight", 0, true, kMaxWeight, &b.weight));
        LOCKSTORM_RETURN_IF_ERROR(
            ReadNumber(arr[i], bp, "lo_ttl_frac", 0, false, kMaxTtlFrac, &b.lo_ttl_frac));
        LOCKSTORM_RETURN_IF_ERROR(
            ReadNumber(arr[i], bp, "hi_ttl_frac", 0, false, kMaxTtlFrac, &b.hi_ttl_frac));
        out->holds.push_back(b);
      }
    }
    LOCKSTORM_RETURN_IF_ERROR(ReadBool(w, path, "extend", &out->extend));
    LOCKSTORM_RETURN_IF_ERROR(
        ReadNumber(w, path, "late_extend_frac", 0, false, 1.0, &out->late_extend_frac));
    LOCKSTORM_RETURN_IF_ERROR(ReadBool(w, path, "check_lease", &out->check_lease));
    LOCKSTORM_RETURN_IF_ERROR(
        ReadNumber(w, path, "rate_per_s", 0, false, kMaxRatePerS, &out->rate_per_s));
    return Status::Ok();
  }

  // `s` holds the topology and workload already read (the index bounds).
  Status ReadEvent(const json& v, const std::string& path, const Scenario& s, NemesisEvent* e) {
    LOCKSTORM_RETURN_IF_ERROR(
        CheckObject(v, path,
                    {"fault", "at_ms", "duration_ms", "nodes", "clients", "groups", "latency_ms",
                     "jitter_ms", "delta_ms", "rate", "persistence", "delay_ms"}));
    const std::string fp = Child(path, "fault");
    if (!v.contains("fault")) return err_.At(fp, "required: expected one of " + FaultList());
    const json& f = v["fault"];
    if (!f.is_string() || !IsKnownFault(f.get<std::string>())) {
      return err_.Expected(fp, "one of " + FaultList(), Describe(f));
    }
    e->fault = f.get<std::string>();
    for (const auto& [key, unused] : v.items()) {
      if (key != "fault" && !FaultUsesField(e->fault, key)) {
        return err_.At(Child(path, key),
                       "not used by fault '" + e->fault + "' (used by: " + FaultsUsing(key) + ")");
      }
    }
    LOCKSTORM_RETURN_IF_ERROR(ReadInt(v, path, "at_ms", kTimeRange, &e->at_ms));
    LOCKSTORM_RETURN_IF_ERROR(ReadInt(v, path, "duration_ms", kTimeRange, &e->duration_ms));
    LOCKSTORM_RETURN_IF_ERROR(
        ReadIndexes(v, path, "nodes", NodeCount(s), "node index", NodeCountNote(s), &e->nodes));
    LOCKSTORM_RETURN_IF_ERROR(ReadIndexes(v, path, "clients", s.workload.clients, "client index",
                                          ClientCountNote(s), &e->clients));
    if (v.contains("groups")) {
      const json& arr = v["groups"];
      const std::string gp = Child(path, "groups");
      if (!arr.is_array()) return err_.Expected(gp, "an array of node index arrays", Describe(arr));
      for (size_t i = 0; i < arr.size(); ++i) {
        std::vector<int> group;
        LOCKSTORM_RETURN_IF_ERROR(ReadIndexArray(arr[i], Index(gp, i), NodeCount(s), "node index",
                                                 NodeCountNote(s), &group));
        e->groups.push_back(std::move(group));
      }
    }
    LOCKSTORM_RETURN_IF_ERROR(ReadInt(v, path, "latency_ms", kLatencyRange, &e->latency_ms));
    LOCKSTORM_RETURN_IF_ERROR(ReadInt(v, path, "jitter_ms", kLatencyRange, &e->jitter_ms));
    LOCKSTORM_RETURN_IF_ERROR(ReadInt(v, path, "delta_ms", kDeltaRange, &e->delta_ms));
    LOCKSTORM_RETURN_IF_ERROR(ReadNumber(v, path, "rate", 0, true, kMaxRate, &e->rate));
    if (v.contains("persistence")) {
      const json& p = v["persistence"];
      Persistence unused;
      if (!p.is_string() || !ParsePersistence(p.get<std::string>(), &unused)) {
        return err_.Expected(Child(path, "persistence"), "one of " + PersistenceList(),
                             Describe(p));
      }
      e->persistence = p.get<std::string>();
    }
    LOCKSTORM_RETURN_IF_ERROR(ReadInt(v, path, "delay_ms", kTimeRange, &e->delay_ms));
    return Status::Ok();
  }

  // Reads obj[key] if present: an integer within `r` (and so within T).
  template <typename T>
  Status ReadInt(const json& obj, const std::string& path, const char* key, IntRange r, T* out) {
    if (!obj.contains(key)) return Status::Ok();
    const json& v = obj[key];
    const std::string p = Child(path, key);
    if (!v.is_number_integer() ||
        (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(kInt64Max))) {
      return err_.Expected(p, IntExpectation(r), Describe(v));
    }
    const int64_t x = v.get<int64_t>();
    LOCKSTORM_RETURN_IF_ERROR(err_.CheckInt(p, x, r));
    *out = static_cast<T>(x);
    return Status::Ok();
  }

  Status ReadNumber(const json& obj, const std::string& path, const char* key, double lo,
                    bool lo_open, double hi, double* out) {
    if (!obj.contains(key)) return Status::Ok();
    const json& v = obj[key];
    const std::string p = Child(path, key);
    if (!v.is_number()) {
      return err_.Expected(p,
                           "a number in " + std::string(lo_open ? "(" : "[") + NumberText(lo) +
                               ", " + NumberText(hi) + "]",
                           Describe(v));
    }
    LOCKSTORM_RETURN_IF_ERROR(err_.CheckNumber(p, v.get<double>(), lo, lo_open, hi));
    *out = v.get<double>();
    return Status::Ok();
  }

  Status ReadBool(const json& obj, const std::string& path, const char* key, bool* out) {
    if (!obj.contains(key)) return Status::Ok();
    const json& v = obj[key];
    if (!v.is_boolean()) return err_.Expected(Child(path, key), "true or false", Describe(v));
    *out = v.get<bool>();
    return Status::Ok();
  }

  Status ReadString(const json& obj, const std::string& path, const char* key, bool nonempty,
                    std::string* out) {
    if (!obj.contains(key)) return Status::Ok();
    const json& v = obj[key];
    if (!v.is_string() || (nonempty && v.get<std::string>().empty())) {
      return err_.Expected(Child(path, key), nonempty ? "a non-empty string" : "a string",
                           Describe(v));
    }
    *out = v.get<std::string>();
    return Status::Ok();
  }

  Status ReadIndexes(const json& obj, const std::string& path, const char* key, int count,
                     const std::string& what, const std::string& note, std::vector<int>* out) {
    if (!obj.contains(key)) return Status::Ok();
    return ReadIndexArray(obj[key], Child(path, key), count, what, note, out);
  }

  Status ReadIndexArray(const json& arr, const std::string& path, int count,
                        const std::string& what, const std::string& note, std::vector<int>* out) {
    if (!arr.is_array()) return err_.Expected(path, "an array of " + what + "es", Describe(arr));
    for (size_t i = 0; i < arr.size(); ++i) {
      const json& x = arr[i];
      const std::string p = Index(path, i);
      if (!x.is_number_integer()) {
        return err_.Expected(p, "a " + what + " in 0.." + std::to_string(count - 1) + note,
                             Describe(x));
      }
      // Unsigned values above INT64_MAX read as negative here and fail the check.
      LOCKSTORM_RETURN_IF_ERROR(err_.CheckIndex(p, x.get<int64_t>(), count, what, note));
      out->push_back(static_cast<int>(x.get<int64_t>()));
    }
    return Status::Ok();
  }

  Errors err_;
};

// nlohmann keeps the last of duplicate keys silently; this parse callback records the path of
// the first duplicate instead.
class DuplicateKeyFinder {
 public:
  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        frames_.push_back({event == json::parse_event_t::array_start, "", 0, {}});
        break;
      case json::parse_event_t::key: {
        Frame& top = frames_.back();
        top.key = parsed.get<std::string>();
        if (!top.seen.insert(top.key).second && first_.empty()) first_ = Child(Path(), top.key);
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        frames_.pop_back();
        if (!frames_.empty() && frames_.back().is_array) ++frames_.back().count;
        break;
      case json::parse_event_t::value:
        if (!frames_.empty() && frames_.back().is_array) ++frames_.back().count;
        break;
    }
    return true;
  }
  // The path of the first duplicate key, or "" if none.
  const std::string& first() const { return first_; }

 private:
  struct Frame {
    bool is_array;
    std::string key;  // objects: the current key
    size_t count;     // arrays: elements completed so far (= the current index)
    std::set<std::string> seen;
  };
  // The path of the innermost open container.
  std::string Path() const {
    std::string p = "$";
    for (size_t i = 0; i + 1 < frames_.size(); ++i)
      p = frames_[i].is_array ? Index(p, frames_[i].count) : Child(p, frames_[i].key);
    return p;
  }
  std::vector<Frame> frames_;
  std::string first_;
};

ordered_json EventJson(const NemesisEvent& e) {
  ordered_json j = {{"fault", e.fault}, {"at_ms", e.at_ms}, {"duration_ms", e.duration_ms}};
  if (FaultUsesField(e.fault, "nodes") && !e.nodes.empty()) j["nodes"] = e.nodes;
  if (FaultUsesField(e.fault, "clients") && !e.clients.empty()) j["clients"] = e.clients;
  if (FaultUsesField(e.fault, "groups") && !e.groups.empty()) j["groups"] = e.groups;
  if (FaultUsesField(e.fault, "latency_ms")) {
    j["latency_ms"] = e.latency_ms;
    j["jitter_ms"] = e.jitter_ms;
  }
  if (FaultUsesField(e.fault, "delta_ms")) j["delta_ms"] = e.delta_ms;
  if (FaultUsesField(e.fault, "rate")) j["rate"] = e.rate;
  if (FaultUsesField(e.fault, "persistence") && !e.persistence.empty()) {
    j["persistence"] = e.persistence;
  }
  if (FaultUsesField(e.fault, "delay_ms")) j["delay_ms"] = e.delay_ms;
  return j;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Status ValidateScenario(const Scenario& s, const std::string& source_name) {
  const Errors err(source_name);
  if (s.name.empty()) return err.Expected("$.name", "a non-empty string", "\"\"");
  LOCKSTORM_RETURN_IF_ERROR(err.CheckInt("$.topology.nodes", s.nodes, kNodesRange));
  LOCKSTORM_RETURN_IF_ERROR(err.CheckInt("$.topology.replicas", s.replicas, kReplicasRange));

  const Workload& w = s.workload;
  LOCKSTORM_RETURN_IF_ERROR(err.CheckInt("$.workload.clients", w.clients, kClientsRange));
  LOCKSTORM_RETURN_IF_ERROR(err.CheckInt("$.workload.keys", w.keys, kKeysRange));
  LOCKSTORM_RETURN_IF_ERROR(
      err.CheckInt("$.workload.duration_ms", w.duration_ms, kWorkloadDurationRange));
  LOCKSTORM_RETURN_IF_ERROR(err.CheckInt("$.workload.ttl_ms", w.ttl_ms, kTtlRange));
  LOCKSTORM_RETURN_IF_ERROR(err.CheckInt("$.workload.wait_ms", w.wait_ms, kWaitRange));
  if (w.holds.empty())
    return err.Expected("$.workload.holds", "a non-empty array of hold bands", "[]");
  for (size_t i = 0; i < w.holds.size(); ++i) {
    const HoldBand& b = w.holds[i];
    const std::string bp = Index("$.workload.holds", i);
    LOCKSTORM_RETURN_IF_ERROR(err.CheckNumber(bp + ".weight", b.weight, 0, true, kMaxWeight));
    LOCKSTORM_RETURN_IF_ERROR(
        err.CheckNumber(bp + ".lo_ttl_frac", b.lo_ttl_frac, 0, false, kMaxTtlFrac));
    LOCKSTORM_RETURN_IF_ERROR(err.CheckNumber(bp + ".hi_ttl_frac", b.hi_ttl_frac, b.lo_ttl_frac,
                                              false, kMaxTtlFrac, "lo_ttl_frac"));
  }

  for (size_t i = 0; i < s.nemesis.size(); ++i) {
    const NemesisEvent& e = s.nemesis[i];
    const std::string path = Index("$.nemesis", i);
    if (!IsKnownFault(e.fault)) {
      return err.Expected(path + ".fault", "one of " + FaultList(), Describe(json(e.fault)));
    }
    // A field the fault does not take must keep its default.
    const NemesisEvent d;
    const std::pair<const char*, bool> set_fields[] = {
        {"nodes", e.nodes != d.nodes},
        {"clients", e.clients != d.clients},
        {"groups", e.groups != d.groups},
        {"latency_ms", e.latency_ms != d.latency_ms},
        {"jitter_ms", e.jitter_ms != d.jitter_ms},
        {"delta_ms", e.delta_ms != d.delta_ms},
        {"rate", e.rate != d.rate},
        {"persistence", e.persistence != d.persistence},
        {"delay_ms", e.delay_ms != d.delay_ms},
    };
    for (const auto& [field, set] : set_fields) {
      if (set && !FaultUsesField(e.fault, field)) {
        return err.At(Child(path, field),
                      "not used by fault '" + e.fault + "' (used by: " + FaultsUsing(field) + ")");
      }
    }
    LOCKSTORM_RETURN_IF_ERROR(err.CheckInt(path + ".at_ms", e.at_ms, kTimeRange));
    LOCKSTORM_RETURN_IF_ERROR(err.CheckInt(path + ".duration_ms", e.duration_ms, kTimeRange));
    for (size_t k = 0; k < e.nodes.size(); ++k) {
      LOCKSTORM_RETURN_IF_ERROR(err.CheckIndex(Index(path + ".nodes", k), e.nodes[k], NodeCount(s),
                                               "node index", NodeCountNote(s)));
    }
    for (size_t k = 0; k < e.clients.size(); ++k) {
      LOCKSTORM_RETURN_IF_ERROR(err.CheckIndex(Index(path + ".clients", k), e.clients[k], w.clients,
                                               "client index", ClientCountNote(s)));
    }
    for (size_t g = 0; g < e.groups.size(); ++g) {
      for (size_t k = 0; k < e.groups[g].size(); ++k) {
        LOCKSTORM_RETURN_IF_ERROR(err.CheckIndex(Index(Index(path + ".groups", g), k),
                                                 e.groups[g][k], NodeCount(s), "node index",
                                                 NodeCountNote(s)));
      }
    }
    LOCKSTORM_RETURN_IF_ERROR(err.CheckInt(path + ".latency_ms", e.latency_ms, kLatencyRange));
    LOCKSTORM_RETURN_IF_ERROR(err.CheckInt(path + ".jitter_ms", e.jitter_ms, kLatencyRange));
    LOCKSTORM_RETURN_IF_ERROR(err.CheckInt(path + ".delta_ms", e.delta_ms, kDeltaRange));
    LOCKSTORM_RETURN_IF_ERROR(err.CheckNumber(path + ".rate", e.rate, 0, true, kMaxRate));
    Persistence unused;
    if (!e.persistence.empty() && !ParsePersistence(e.persistence, &unused)) {
      return err.Expected(path + ".persistence", "one of " + PersistenceList(),
                          Describe(json(e.persistence)));
    }
    LOCKSTORM_RETURN_IF_ERROR(err.CheckInt(path + ".delay_ms", e.delay_ms, kTimeRange));
    // The fault must be over (healed, restarted) before the workload ends.
    const std::string end_note =
        " <= workload.duration_ms (" + std::to_string(w.duration_ms) + "), got ";
    if (e.at_ms > w.duration_ms) {
      return err.At(path + ".at_ms", "expected at_ms" + end_note + std::to_string(e.at_ms));
    }
    if (e.duration_ms > w.duration_ms - e.at_ms) {
      return err.At(path + ".duration_ms", "expected at_ms + duration_ms" + end_note +
                                               std::to_string(e.at_ms) + " + " +
                                               std::to_string(e.duration_ms));
    }
    if (e.delay_ms > w.duration_ms - e.at_ms) {
      return err.At(path + ".delay_ms", "expected at_ms + delay_ms" + end_note +
                                            std::to_string(e.at_ms) + " + " +
                                            std::to_string(e.delay_ms));
    }
  }

  for (const auto& [impl, expected] : s.expectations) {
    const std::string p = Child("$.expectations", impl);
    if (impl.empty()) return err.At(p, "expected a non-empty lock name");
    bool known = false;
    for (const char* x : kExpectations) known = known || expected == x;
    if (!known) {
      return err.Expected(p, "one of " + JoinNames(kExpectations, std::size(kExpectations)),
                          Describe(json(expected)));
    }
  }
  LOCKSTORM_RETURN_IF_ERROR(
      err.CheckInt("$.liveness_bound_ms", s.liveness_bound_ms, kLivenessBoundRange));
  return Status::Ok();
}

Status ParseScenarioJson(const std::string& text, const std::string& source_name, Scenario* out) {
  DuplicateKeyFinder dups;
  json doc;
  try {
    doc = json::parse(text, std::ref(dups));
  } catch (const json::parse_error& e) {
    std::string msg = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] " tag; keep the message on one line.
    if (!msg.empty() && msg[0] == '[') {
      if (size_t end = msg.find("] "); end != std::string::npos) msg.erase(0, end + 2);
    }
    for (char& c : msg)
      if (c == '\n' || c == '\r') c = ' ';
    return Status::InvalidArgument(source_name + ": not valid JSON: " + msg);
  }
  if (!dups.first().empty()) return Errors(source_name).At(dups.first(), "duplicate key");
  Scenario s;
  LOCKSTORM_RETURN_IF_ERROR(Parser(source_name).ReadScenario(doc, &s));
  LOCKSTORM_RETURN_IF_ERROR(ValidateScenario(s, source_name));
  *out = std::move(s);
  return Status::Ok();
}

Status LoadScenarioFile(const std::string& path, Scenario* out) {
  auto cannot_read = [&path](int errnum) {
    return Status::IoError("--scenario: cannot read " + path + ": " + std::strerror(errnum));
  };
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cannot_read(errno);
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int errnum = errno;
      close(fd);
      return cannot_read(errnum);
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return ParseScenarioJson(text, path, out);
}

std::string ScenarioToJson(const Scenario& s) {
  ordered_json holds = ordered_json::array();
  for (const HoldBand& b : s.workload.holds) {
    holds.push_back(
        {{"weight", b.weight}, {"lo_ttl_frac", b.lo_ttl_frac}, {"hi_ttl_frac", b.hi_ttl_frac}});
  }
  ordered_json nemesis = ordered_json::array();
  for (const NemesisEvent& e : s.nemesis) nemesis.push_back(EventJson(e));
  ordered_json expectations = ordered_json::object();
  for (const auto& [impl, x] : s.expectations) expectations[impl] = x;
  const Workload& w = s.workload;
  ordered_json doc = {
      {"name", s.name},
      {"description", s.description},
      {"topology",
       {{"nodes", s.nodes},
        {"replicas", s.replicas},
        {"persistence", PersistenceName(s.persistence)}}},
      {"workload",
       {{"clients", w.clients},
        {"keys", w.keys},
        {"duration_ms", w.duration_ms},
        {"ttl_ms", w.ttl_ms},
        {"wait_ms", w.wait_ms},
        {"holds", holds},
        {"extend", w.extend},
        {"late_extend_frac", w.late_extend_frac},
        {"check_lease", w.check_lease},
        {"rate_per_s", w.rate_per_s}}},
      {"nemesis", nemesis},
      {"expectations", expectations},
      {"liveness_bound_ms", s.liveness_bound_ms},
  };
  return doc.dump(2, ' ', false, ordered_json::error_handler_t::replace);
}

namespace {

std::string Seconds(int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

std::string List(const std::vector<int>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

}  // namespace

std::string DescribeEvent(const NemesisEvent& e) {
  std::string out = "at " + Seconds(e.at_ms);
  if (e.duration_ms > 0) out += " for " + Seconds(e.duration_ms);
  out += ": " + e.fault;
  if (!e.nodes.empty()) out += " nodes " + List(e.nodes);
  if (!e.clients.empty()) out += " clients " + List(e.clients);
  if (e.latency_ms) {
    out += " +" + std::to_string(e.latency_ms) + " ms";
    if (e.jitter_ms) out += " (jitter " + std::to_string(e.jitter_ms) + " ms)";
  }
  if (e.delta_ms) out += " by " + std::to_string(e.delta_ms) + " ms";
  if (FaultUsesField(e.fault, "rate")) {
    char buf[32];
    std::snprintf(buf, sizeof buf, " at rate %.3f", e.rate);
    out += buf;
  }
  if (!e.persistence.empty()) out += " (" + e.persistence + ")";
  if (e.delay_ms) out += " restarting after " + Seconds(e.delay_ms);
  return out;
}

std::string DescribeSchedule(const Scenario& s) {
  const Workload& w = s.workload;
  std::string out = std::to_string(w.clients) + " clients, " + std::to_string(w.keys) +
                    (w.keys == 1 ? " key" : " keys") + ", ttl " + std::to_string(w.ttl_ms) +
                    " ms, " + Seconds(w.duration_ms) + " on " + std::to_string(s.nodes) +
                    (s.nodes == 1 ? " node" : " nodes") + "; " + std::to_string(s.nemesis.size()) +
                    (s.nemesis.size() == 1 ? " fault" : " faults") + (s.nemesis.empty() ? "" : ":");
  for (const NemesisEvent& e : s.nemesis) out += "\n  " + DescribeEvent(e);
  return out;
}

}  // namespace lockstorm
