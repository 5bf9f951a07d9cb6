// report.html: one self-contained page, Vega-Lite plots over inlined vendored bundles.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <tuple>

#include "reports/render.h"

namespace lockstorm {

// Generated from reports/vendor/*.min.js by reports/CMakeLists.inc.cmake.
namespace vendor {
extern const unsigned char kVegaJs[];
extern const std::size_t kVegaJsSize;
extern const unsigned char kVegaLiteJs[];
extern const std::size_t kVegaLiteJsSize;
extern const unsigned char kVegaEmbedJs[];
extern const std::size_t kVegaEmbedJsSize;
}  // namespace vendor

namespace {

using nlohmann::json;
using namespace render_internal;

constexpr const char* kHeldColor = "#4c78a8";
constexpr const char* kOverlapColor = "#d62728";
constexpr const char* kFaultColor = "#f58518";
constexpr int64_t kFallbackBucketMs = 100;  // throughput from the history (v1 reports)
constexpr int64_t kMaxBuckets = 2000;       // per row; coarser buckets beyond
constexpr size_t kFaultDetailChars = 300;   // of a fault's evidence, in its tooltip
constexpr int kTimelineBarsBefore = kTimelineMaxBars / 4;  // bars shown before a violation
constexpr size_t kTimelineMarks = 5;  // violations marked by a rule in a timeline

std::string HtmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// JSON that is safe inside <script>: ASCII only, and no '<', '>' or '&' (they can only occur
// inside JSON strings, where their \u escapes mean the same).
std::string ScriptJson(const json& j) {
  std::string dumped = j.dump(-1, ' ', /*ensure_ascii=*/true, json::error_handler_t::replace);
  std::string out;
  out.reserve(dumped.size());
  for (char c : dumped) {
    if (c == '<') {
      out += "\\u003c";
    } else if (c == '>') {
      out += "\\u003e";
    } else if (c == '&') {
      out += "\\u0026";
    } else {
      out += c;
    }
  }
  return out;
}

// A vendored bundle as the body of a <script> element: "</script" (which would end the
// element early) becomes "<\/script", the same text inside a JS string or regex literal.
std::string ScriptBody(const unsigned char* bytes, std::size_t size) {
  std::string_view js(reinterpret_cast<const char*>(bytes), size);
  std::string out;
  out.reserve(size);
  size_t pos = 0;
  while (pos < js.size()) {
    size_t lt = js.find("</", pos);
    if (lt == std::string_view::npos) {
      out.append(js.substr(pos));
      break;
    }
    out.append(js.substr(pos, lt - pos));
    std::string next(js.substr(lt + 2, 6));
    std::transform(next.begin(), next.end(), next.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    out += next == "script" ? "<\\/" : "</";
    pos = lt + 2;
  }
  return out;
}

// Rows are named by impl alone when every row shares one scenario.
std::string SeriesName(const json& row, bool one_scenario) {
  return one_scenario ? Text(row, {"impl"}, "?") : RowLabel(row);
}

bool OneScenario(const std::vector<const json*>& rows) {
  std::set<std::string> scenarios;
  for (const json* r : rows) scenarios.insert(Text(*r, {"scenario"}));
  return scenarios.size() <= 1;
}

// A Vega-Lite field definition for a tooltip.
json Field(const char* field, const char* title = nullptr, const char* format = nullptr) {
  json f = {{"field", field}};
  if (title != nullptr) f["title"] = title;
  if (format != nullptr) f["format"] = format;
  return f;
}

double Nines(double p) { return -std::log10(1.0 - p / 100.0); }

// (a) Percentile curves: latency_curves_us (v2), else the latency_us percentiles (v1).
json LatencySpec(const std::vector<const json*>& rows) {
  bool one_scenario = OneScenario(rows);
  json values = json::array();
  double max_x = 0;
  for (const json* r : rows) {
    std::string series = SeriesName(*r, one_scenario);
    for (const char* op : {"acquire", "release"}) {
      std::vector<std::pair<double, double>> points;  // (p, us)
      const json* curve = At(*r, {"latency_curves_us", op});
      if (curve != nullptr && curve->is_array()) {
        for (const json& pt : *curve) {
          if (pt.is_array() && pt.size() == 2 && pt[0].is_number() && pt[1].is_number()) {
            points.emplace_back(pt[0].get<double>(), pt[1].get<double>());
          }
        }
      } else if (const json* h = At(*r, {"latency_us", op}); h != nullptr) {
        if (Number(*h, {"count"}).value_or(0) > 0) {
          for (auto [p, field] : {std::pair<double, const char*>{0, "min"},
                                  {50, "p50"},
                                  {90, "p90"},
                                  {99, "p99"},
                                  {99.9, "p999"}}) {
            if (auto v = Number(*h, {field})) points.emplace_back(p, *v);
          }
        }
      }
      for (auto [p, us] : points) {
        // p = 100 is infinitely many nines; a log axis has no room for 0 µs.
        if (!(p >= 0 && p < 100) || !(us > 0)) continue;
        double x = Nines(p);
        max_x = std::max(max_x, x);
        values.push_back({{"series", series}, {"op", op}, {"p", p}, {"x", x}, {"us", us}});
      }
    }
  }
  if (values.empty()) return nullptr;
  // Ticks at 0%, 50%, 90%, 99%, ... as far as the data goes.
  json ticks = json::array({0.0, std::log10(2.0)});
  std::string label = "datum.value < 0.15 ? '0%' : datum.value < 0.65 ? '50%'";
  std::string nines = "9";
  for (int n = 1; n <= 7 && n - 1 < max_x; ++n) {
    ticks.push_back(static_cast<double>(n));
    std::string pct = n == 1 ? "90" : "99" + (n > 2 ? "." + std::string(n - 2, '9') : "");
    label += " : datum.value < " + std::to_string(n) + ".5 ? '" + pct + "%'";
  }
  label += " : ''";
  json x = {{"field", "x"},
            {"type", "quantitative"},
            {"title", "percentile"},
            {"scale", {{"domainMin", 0}, {"nice", false}}},
            {"axis", {{"values", ticks}, {"labelExpr", label}, {"grid", true}}}};
  json y = {{"field", "us"},
            {"type", "quantitative"},
            {"title", "latency (us, log scale)"},
            {"scale", {{"type", "log"}}}};
  return {{"description", "lockstorm:latency-curves"},
          {"title", "Latency percentiles (HdrHistogram-style nines axis)"},
          {"data", {{"values", values}}},
          {"facet",
           {{"column",
             {{"field", "op"},
              {"type", "nominal"},
              {"title", nullptr},
              {"sort", {"acquire", "release"}}}}}},
          {"resolve", {{"scale", {{"y", "independent"}}}}},
          {"spec",
           {{"width", 520},
            {"height", 320},
            {"mark", {{"type", "line"}, {"point", true}}},
            {"encoding",
             {{"x", x},
              {"y", y},
              {"color", {{"field", "series"}, {"type", "nominal"}, {"title", nullptr}}},
              {"tooltip", json::array({Field("series"), Field("op"), Field("p", "percentile"),
                                       Field("us", "us")})}}}}}};
}

// Ok acquires per bucket of one row, counted from the history (for reports without
// throughput_series): {start_us, bucket_ms, acquired}.
std::optional<std::tuple<int64_t, int64_t, std::vector<int64_t>>> SeriesFromHistory(
    const json& row, const std::vector<Event>& history) {
  std::string impl = Text(row, {"impl"}), scenario = Text(row, {"scenario"});
  int64_t first = INT64_MAX, last = INT64_MIN;
  std::vector<int64_t> done;
  for (const Event& e : history) {
    if (e.impl != impl || e.scenario != scenario || !e.phase.empty()) continue;
    if (e.type == OpType::kSample) continue;
    first = std::min(first, e.invoke_us);
    last = std::max(last, e.complete_us);
    if (e.type == OpType::kAcquire && e.outcome == Outcome::kOk) done.push_back(e.complete_us);
  }
  if (done.empty()) return std::nullopt;
  int64_t bucket_ms = kFallbackBucketMs;
  while ((last - first) / (bucket_ms * 1000) + 1 > kMaxBuckets) bucket_ms *= 2;
  std::vector<int64_t> acquired((last - first) / (bucket_ms * 1000) + 1, 0);
  for (int64_t t : done) ++acquired[(t - first) / (bucket_ms * 1000)];
  return std::make_tuple(first, bucket_ms, std::move(acquired));
}

// (b) Acquired/s over time per row, fault periods shaded.
json ThroughputSpec(const std::vector<const json*>& rows, const std::vector<Event>& history,
                    std::string* note) {
  bool one_scenario = OneScenario(rows);
  json values = json::array(), faults = json::array();
  bool from_history = false;
  for (const json* r : rows) {
    std::string series = SeriesName(*r, one_scenario);
    std::optional<double> start = Number(*r, {"throughput_series", "start_us"});
    std::optional<double> bucket = Number(*r, {"throughput_series", "bucket_ms"});
    const json* acquired = At(*r, {"throughput_series", "acquired"});
    std::vector<double> counts;
    if (start && bucket && *bucket > 0 && acquired != nullptr && acquired->is_array()) {
      for (const json& n : *acquired) counts.push_back(n.is_number() ? n.get<double>() : 0);
    } else if (auto s = SeriesFromHistory(*r, history)) {
      from_history = true;
      start = static_cast<double>(std::get<0>(*s));
      bucket = static_cast<double>(std::get<1>(*s));
      for (int64_t n : std::get<2>(*s)) counts.push_back(static_cast<double>(n));
    }
    for (size_t i = 0; i < counts.size(); ++i) {
      double t_s = (*start + (static_cast<double>(i) + 0.5) * *bucket * 1000) / 1e6;
      values.push_back({{"series", series}, {"t_s", t_s}, {"per_s", counts[i] * 1000.0 / *bucket}});
    }
    if (const json* fl = At(*r, {"faults"}); fl != nullptr && fl->is_array()) {
      for (const json& f : *fl) {
        std::optional<double> fs = Number(f, {"start_us"}), fe = Number(f, {"end_us"});
        if (!fs) continue;
        double end = std::max(fe.value_or(*fs), *fs + 1000);  // at least 1 ms wide
        std::string detail = Text(f, {"detail"});
        if (detail.size() > kFaultDetailChars) detail = detail.substr(0, kFaultDetailChars) + "...";
        faults.push_back({{"start_s", *fs / 1e6},
                          {"end_s", end / 1e6},
                          {"fault", Text(f, {"fault"}, "?")},
                          {"series", series},
                          {"detail", detail}});
      }
    }
  }
  if (values.empty()) return nullptr;
  if (from_history) *note = "Rows without throughput_series: counted from history.jsonl.";
  json x = {{"field", "t_s"},
            {"type", "quantitative"},
            {"title", "seconds since the run started"},
            {"scale", {{"zero", false}, {"nice", false}}}};
  json line = {{"data", {{"values", values}}},
               {"mark", {{"type", "line"}, {"interpolate", "step"}}},
               {"encoding",
                {{"x", x},
                 {"y", {{"field", "per_s"}, {"type", "quantitative"}, {"title", "acquired/s"}}},
                 {"color", {{"field", "series"}, {"type", "nominal"}, {"title", nullptr}}},
                 {"tooltip", json::array({Field("series"), Field("t_s", "s", ".2f"),
                                          Field("per_s", "acquired/s", ".1f")})}}}};
  json layers = json::array();
  if (!faults.empty()) {
    layers.push_back(
        {{"data", {{"values", faults}}},
         {"mark", {{"type", "rect"}, {"color", kFaultColor}, {"opacity", 0.2}}},
         {"encoding",
          {{"x", {{"field", "start_s"}, {"type", "quantitative"}}},
           {"x2", {{"field", "end_s"}}},
           {"tooltip", json::array({Field("fault"), Field("series"), Field("detail")})}}}});
  }
  layers.push_back(line);
  return {{"description", "lockstorm:throughput"},
          {"title",
           {{"text", "Throughput (ok acquires per second)"},
            {"subtitle",
             faults.empty() ? "no fault periods" : "shaded: fault periods (hover for the fault)"}}},
          {"width", 1100},
          {"height", 300},
          {"layer", layers}};
}

// A lease as docs/checkers.md defines it, for the holder timeline.
struct Lease {
  int64_t acquire_op = 0;
  int64_t release_op = -1;
  int client = -1;
  int64_t start_us = 0;
  int64_t end_us = 0;
  std::string ended_by = "deadline";
  bool overlap = false;
};

struct Timeline {
  std::string key;
  std::vector<Lease> leases;  // sorted by start, at most kTimelineMaxBars
  size_t total = 0;           // leases of the key in the row
  std::optional<int64_t> violation_us;
  json violation_marks = json::array();
};

// The key a row's timeline shows, among those with ok acquires: the first violation's, else
// one ending ":k0", else the key with the most ok acquires.
std::string TimelineKey(const json& row, const std::vector<const Event*>& acquires) {
  std::map<std::string, int64_t> per_key;
  for (const Event* e : acquires) ++per_key[e->key];
  if (const json* list = At(row, {"violations"}); list != nullptr && list->is_array()) {
    for (const json& v : *list) {
      if (std::string k = Text(v, {"key"}); per_key.count(k)) return k;
    }
  }
  for (const auto& [k, n] : per_key) {
    if (k.size() >= 3 && k.compare(k.size() - 3, 3, ":k0") == 0) return k;
  }
  std::string best;
  int64_t most = -1;
  for (const auto& [k, n] : per_key) {
    if (n > most) best = k, most = n;
  }
  return best;
}

// Sets `overlap` on every lease (of positive length) that intersects a lease of another
// client. `leases` is sorted by start. O(n log n).
void MarkOverlaps(std::vector<Lease>* leases) {
  std::vector<Lease*> live;
  for (Lease& l : *leases) {
    if (l.end_us > l.start_us) live.push_back(&l);
  }
  // A lease overlaps one that started before it (or with it) iff another client's latest end
  // so far is past its start: keep the latest end and the latest of the other clients.
  struct Best {
    int64_t end_us = INT64_MIN;
    int client = INT32_MIN;
  } first, second;
  for (Lease* l : live) {
    int64_t other = first.client != l->client ? first.end_us : second.end_us;
    if (other > l->start_us) l->overlap = true;
    if (l->client == first.client) {
      first.end_us = std::max(first.end_us, l->end_us);
    } else if (l->end_us > first.end_us) {
      second = first;
      first = {l->end_us, l->client};
    } else if (l->end_us > second.end_us) {
      second = {l->end_us, l->client};
    }
  }
  // A lease overlaps one that starts during it iff the leases starting in [start, end) are
  // not all its own client's: next_other[k] is the first index >= k whose client differs
  // from live[k]'s.
  size_t n = live.size();
  std::vector<size_t> next_other(n + 1, n);
  for (size_t k = n; k-- > 0;) {
    next_other[k] = k + 1 < n && live[k + 1]->client != live[k]->client ? k + 1
                    : k + 1 < n                                         ? next_other[k + 1]
                                                                        : n;
  }
  for (size_t k = 0; k < n; ++k) {
    Lease* l = live[k];
    // Indices after k whose start is before l's end.
    size_t hi = std::lower_bound(live.begin() + k + 1, live.end(), l->end_us,
                                 [](const Lease* x, int64_t t_us) { return x->start_us < t_us; }) -
                live.begin();
    if (k + 1 < hi && (live[k + 1]->client != l->client || next_other[k + 1] < hi)) {
      l->overlap = true;
    }
  }
}

std::optional<Timeline> BuildTimeline(const json& row, const std::vector<Event>& history) {
  std::string impl = Text(row, {"impl"}), scenario = Text(row, {"scenario"});
  std::vector<const Event*> events, acquires;
  for (const Event& e : history) {
    if (e.impl != impl || e.scenario != scenario) continue;
    events.push_back(&e);
    if (e.type == OpType::kAcquire && e.outcome == Outcome::kOk) acquires.push_back(&e);
  }
  if (acquires.empty()) return std::nullopt;
  Timeline t;
  t.key = TimelineKey(row, acquires);
  std::map<int64_t, Lease> leases;  // by acquire op
  for (const Event* e : acquires) {
    if (e->key != t.key) continue;
    Lease l;
    l.acquire_op = e->op_id;
    l.client = e->client;
    l.start_us = e->complete_us;
    int64_t valid_ms = e->valid_ms > 0 ? e->valid_ms : e->ttl_ms;
    l.end_us = e->complete_us + valid_ms * 1000;
    leases[e->op_id] = l;
  }
  for (const Event* e : events) {
    if (e->type == OpType::kCrash) {
      for (auto& [op, l] : leases) {
        if (l.client == e->client && l.start_us <= e->invoke_us && e->invoke_us < l.end_us) {
          l.end_us = e->invoke_us, l.ended_by = "crash";
        }
      }
      continue;
    }
    auto it = leases.find(e->lease_op);
    if (it == leases.end()) continue;
    Lease& l = it->second;
    if (e->type == OpType::kRelease) {
      l.release_op = e->op_id;
      if (e->invoke_us < l.end_us) l.end_us = e->invoke_us, l.ended_by = "release";
    } else if (e->type == OpType::kExtend && e->outcome == Outcome::kOk && e->valid_ms > 0) {
      if (l.ended_by == "deadline") l.end_us = e->complete_us + e->valid_ms * 1000;
    } else if (e->type == OpType::kExtend && e->complete_us < l.end_us) {
      l.end_us = e->complete_us, l.ended_by = "failed extend";
    }
  }
  std::vector<Lease> all;
  for (auto& [op, l] : leases) {
    if (l.end_us < l.start_us) l.end_us = l.start_us;
    all.push_back(l);
  }
  std::sort(all.begin(), all.end(),
            [](const Lease& a, const Lease& b) { return a.start_us < b.start_us; });
  // Red: a lease that intersects another client's, or that the checker named in an overlap.
  std::set<int64_t> named;
  if (const json* list = At(row, {"violations"}); list != nullptr && list->is_array()) {
    for (const json& v : *list) {
      if (Text(v, {"key"}) != t.key) continue;
      auto start = Number(v, {"start_us"});
      if (start && (!t.violation_us || *start < *t.violation_us)) {
        t.violation_us = static_cast<int64_t>(*start);
      }
      if (start && t.violation_marks.size() < kTimelineMarks) {
        t.violation_marks.push_back({{"t_s", *start / 1e6}, {"what", ViolationLine(v)}});
      }
      if (Text(v, {"kind"}) != "overlap") continue;
      for (const char* f : {"op_a", "op_b"}) {
        if (auto op = Number(v, {f})) named.insert(static_cast<int64_t>(*op));
      }
    }
  }
  for (Lease& l : all) l.overlap = named.count(l.acquire_op) > 0;
  MarkOverlaps(&all);
  t.total = all.size();
  size_t from = 0;
  if (t.violation_us) {
    // The first lease starting at or after the violation; kTimelineBarsBefore before it.
    size_t anchor =
        std::lower_bound(all.begin(), all.end(), *t.violation_us,
                         [](const Lease& l, int64_t t_us) { return l.start_us < t_us; }) -
        all.begin();
    from = anchor > static_cast<size_t>(kTimelineBarsBefore) ? anchor - kTimelineBarsBefore : 0;
  }
  size_t to = std::min(all.size(), from + static_cast<size_t>(kTimelineMaxBars));
  t.leases.assign(all.begin() + from, all.begin() + to);
  if (t.leases.empty()) return std::nullopt;
  return t;
}

json TimelineSpec(const json& row, const Timeline& t) {
  json values = json::array();
  for (const Lease& l : t.leases) {
    std::string ops = "acquire op " + std::to_string(l.acquire_op) + ", release op " +
                      (l.release_op > 0 ? std::to_string(l.release_op) : std::string("none"));
    values.push_back({{"client", l.client},
                      {"start_s", l.start_us / 1e6},
                      {"end_s", l.end_us / 1e6},
                      {"held_ms", (l.end_us - l.start_us) / 1e3},
                      {"acquire_op", l.acquire_op},
                      {"release_op", l.release_op > 0 ? json(l.release_op) : json("none")},
                      {"ended_by", l.ended_by},
                      {"state", l.overlap ? "overlap" : "held"},
                      {"label", "client " + std::to_string(l.client) + ": " + ops +
                                    (l.overlap ? ", OVERLAP" : "")}});
  }
  json x = {{"field", "start_s"},
            {"type", "quantitative"},
            {"title", "seconds since the run started"},
            {"scale", {{"zero", false}, {"nice", false}}}};
  json bars = {
      {"data", {{"values", values}}},
      {"mark", {{"type", "bar"}}},
      {"encoding",
       {{"y",
         {{"field", "client"},
          {"type", "ordinal"},
          {"title", "client"},
          {"axis", {{"labelExpr", "'c' + datum.value"}}}}},
        {"x", x},
        {"x2", {{"field", "end_s"}}},
        {"color",
         {{"field", "state"},
          {"type", "nominal"},
          {"title", "lease"},
          {"scale", {{"domain", {"held", "overlap"}}, {"range", {kHeldColor, kOverlapColor}}}}}},
        {"description", {{"field", "label"}}},
        {"tooltip",
         json::array({Field("client"), Field("acquire_op", "acquire op"),
                      Field("release_op", "release op"), Field("start_s", "from (s)", ".6f"),
                      Field("end_s", "to (s)", ".6f"), Field("held_ms", "held (ms)", ".3f"),
                      Field("ended_by", "ended by"), Field("state")})}}}};
  json layers = json::array({bars});
  if (!t.violation_marks.empty()) {
    layers.push_back(
        {{"data", {{"values", t.violation_marks}}},
         {"mark",
          {{"type", "rule"}, {"color", "#333333"}, {"opacity", 0.6}, {"strokeDash", {4, 3}}}},
         {"encoding",
          {{"x", {{"field", "t_s"}, {"type", "quantitative"}}},
           {"tooltip", json::array({Field("what", "violation")})}}}});
  }
  std::string subtitle = std::to_string(t.leases.size()) + " of " + std::to_string(t.total) +
                         " leases of key " + t.key;
  subtitle += t.violation_us ? ", around the first violation (dashed: the first violations)"
                             : ", from the start";
  return {{"description", "lockstorm:holder-timeline"},
          {"title", {{"text", "Lock holders: " + RowLabel(row)}, {"subtitle", subtitle}}},
          {"width", 1100},
          {"height", {{"step", 14}}},
          {"layer", layers}};
}

constexpr const char* kStyle = R"css(
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
p.header { color: #444; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.alarming td.verdict { color: #b00020; font-weight: bold; }
li.violation { font-family: ui-monospace, monospace; font-size: 12px; margin: 2px 0; }
.note { color: #666; font-style: italic; }
.plot { margin: 12px 0 28px 0; }
)css";

// Counts errors from the start (vendored scripts included).
constexpr const char* kErrorScript = R"js(
window.lockstorm = {errors: 0, rendered: 0, done: false};
window.lockstorm.report = function () {
  if (window.lockstorm.done) {
    document.body.dataset.lockstormStatus =
        'rendered:' + window.lockstorm.rendered + ' errors:' + window.lockstorm.errors;
  }
};
window.addEventListener('error', function () {
  window.lockstorm.errors++;
  window.lockstorm.report();
});
window.addEventListener('unhandledrejection', function () {
  window.lockstorm.errors++;
  window.lockstorm.report();
});
)js";

// Embeds every spec, then publishes the status.
constexpr const char* kEmbedScript = R"js(
(function () {
  var ls = window.lockstorm;
  var specs = JSON.parse(document.getElementById('lockstorm-specs').textContent);
  function finish() {
    ls.done = true;
    ls.report();
  }
  if (typeof vegaEmbed !== 'function') {
    ls.errors += specs.length;
    finish();
    return;
  }
  var pending = specs.map(function (s) {
    var target = document.getElementById(s.id);
    return vegaEmbed(target, s.spec, {mode: 'vega-lite', renderer: 'svg', actions: false})
        .then(function () {
          ls.rendered++;
        }, function (e) {
          ls.errors++;
          target.textContent = 'plot failed: ' + e;
        });
  });
  Promise.all(pending).then(finish);
})();
)js";

}  // namespace

std::string RenderHtml(const json& report, const std::vector<Event>& history) {
  std::vector<const json*> rows = Rows(report);
  json specs = json::array();
  std::ostringstream body;

  body << "<h1>lockstorm report</h1>\n<p class=\"header\">" << HtmlEscape(HeaderLine(report))
       << "</p>\n";
  Table t = ComparisonTable(report);
  body << "<table class=\"comparison\">\n<tr>";
  for (const std::string& h : t.head) body << "<th>" << HtmlEscape(h) << "</th>";
  body << "</tr>\n";
  for (size_t i = 0; i < t.rows.size(); ++i) {
    body << "<tr" << (t.alarming[i] ? " class=\"alarming\"" : "") << ">";
    for (size_t c = 0; c < t.rows[i].size(); ++c) {
      const char* cls = c == 2 ? " class=\"verdict\"" : t.numeric[c] ? " class=\"num\"" : "";
      body << "<td" << cls << ">" << HtmlEscape(t.rows[i][c]) << "</td>";
    }
    body << "</tr>\n";
  }
  body << "</table>\n";
  if (const json* s = At(report, {"summary"})) {
    body << "<p>exit code " << HtmlEscape(FormatNumber(Number(*s, {"exit_code"})))
         << (At(*s, {"interrupted"}) != nullptr && (*s)["interrupted"] == true ? " (interrupted)"
                                                                               : "")
         << "</p>\n";
  }
  const json& ctx = Context(report);
  if (std::string schedule = Text(ctx, {"config", "schedule"}); !schedule.empty()) {
    body << "<h2>Scenario</h2>\n<p><b>" << HtmlEscape(Text(ctx, {"config", "scenario"}, "?"))
         << "</b>";
    if (std::string d = Text(ctx, {"config", "scenario_description"}); !d.empty())
      body << ": " << HtmlEscape(d);
    body << "</p>\n<pre class=\"schedule\">" << HtmlEscape(schedule) << "</pre>\n";
  }
  if (const json* skipped = At(ctx, {"config", "skipped_faults"});
      skipped != nullptr && skipped->is_array() && !skipped->empty()) {
    body << "<p><b>Skipped faults</b> (" << skipped->size() << "):</p>\n<ul class=\"skipped\">\n";
    for (const json& f : *skipped)
      body << "<li>" << HtmlEscape(Text(f, {"fault"}, "?")) << ": " << HtmlEscape(Text(f, {"why"}))
           << "</li>\n";
    body << "</ul>\n";
  }

  bool section = false;
  for (const json* r : rows) {
    if (Text(*r, {"verdict"}) == "pass") continue;
    std::vector<const json*> shown = FirstViolations(*r, 3, 10);
    const json* infra = At(*r, {"infra_errors"});
    size_t infra_n = infra != nullptr && infra->is_array() ? infra->size() : 0;
    if (shown.empty() && infra_n == 0) continue;
    if (!section) body << "<h2>Violations</h2>\n";
    section = true;
    body << "<h3>" << HtmlEscape(RowLabel(*r)) << ": " << HtmlEscape(VerdictText(*r))
         << "</h3>\n<ul>\n";
    for (const json* v : shown) {
      body << "<li class=\"violation\">" << HtmlEscape(ViolationLine(*v)) << "</li>\n";
    }
    for (size_t i = 0; i < infra_n && i < 5; ++i) {
      const json& e = (*infra)[i];
      body << "<li class=\"violation\">infrastructure: "
           << HtmlEscape(e.is_string() ? e.get<std::string>() : e.dump()) << "</li>\n";
    }
    body << "</ul>\n";
  }

  auto plot = [&](const std::string& id, json spec) {
    body << "<div class=\"plot\" id=\"" << id << "\"></div>\n";
    specs.push_back({{"id", id}, {"spec", std::move(spec)}});
  };
  body << "<h2>Latency percentiles</h2>\n";
  if (json spec = LatencySpec(rows); !spec.is_null()) {
    plot("plot-latency", std::move(spec));
  } else {
    body << "<p class=\"note\">No latency data in the report.</p>\n";
  }
  body << "<h2>Throughput</h2>\n";
  std::string note;
  if (json spec = ThroughputSpec(rows, history, &note); !spec.is_null()) {
    if (!note.empty()) body << "<p class=\"note\">" << HtmlEscape(note) << "</p>\n";
    plot("plot-throughput", std::move(spec));
  } else {
    body << "<p class=\"note\">No throughput series in the report and no history.</p>\n";
  }
  body << "<h2>Lock holders</h2>\n<p class=\"note\">One bar per lease (an ok acquire, from its "
          "completion to its release's invoke or its validity's end, as the checker sees it); "
          "red: it overlaps another client's lease. Hover a bar for its operation ids.</p>\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    if (auto timeline = BuildTimeline(*rows[i], history)) {
      plot("plot-timeline-" + std::to_string(i), TimelineSpec(*rows[i], *timeline));
    } else {
      body << "<p class=\"note\">" << HtmlEscape(RowLabel(*rows[i]))
           << ": no ok acquire in the history (history.jsonl missing or empty).</p>\n";
    }
  }

  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<title>lockstorm report</title>\n<style>" << kStyle << "</style>\n</head>\n"
      << "<body data-lockstorm-status=\"pending\" data-lockstorm-plots=\"" << specs.size()
      << "\">\n<script>" << kErrorScript << "</script>\n"
      << body.str();
  using Bundle = std::pair<const unsigned char*, std::size_t>;
  for (auto [bytes, size] : {Bundle{vendor::kVegaJs, vendor::kVegaJsSize},
                             Bundle{vendor::kVegaLiteJs, vendor::kVegaLiteJsSize},
                             Bundle{vendor::kVegaEmbedJs, vendor::kVegaEmbedJsSize}}) {
    out << "<script>\n" << ScriptBody(bytes, size) << "\n</script>\n";
  }
  out << "<script type=\"application/json\" id=\"lockstorm-specs\">" << ScriptJson(specs)
      << "</script>\n<script>" << kEmbedScript << "</script>\n</body>\n</html>\n";
  return out.str();
}

}  // namespace lockstorm
