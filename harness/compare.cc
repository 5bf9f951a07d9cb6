// `lockstorm compare`: pairs the rows of two reports, judges verdicts, violation kinds and
// latencies, and renders the gate's outcome as Markdown and JSON (docs/compare.md).
#include "harness/compare.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <set>
#include <sstream>
#include <utility>

namespace lockstorm {

namespace {

using Json = nlohmann::json;

// Samples of at most this many values on both sides get the exact U distribution.
constexpr size_t kMaxExactSample = 20;
// Latency fields a metric may name.
const char* const kMetricFields[] = {"mean", "min", "p50", "p90", "p99", "p999", "max"};
// Relative slack on `p <= alpha`, so that p = 1/20 rejects at alpha = 0.05 whatever the rounding.
constexpr double kAlphaSlack = 1e-9;

// ---------------------------------------------------------------------------------------------
// JSON access that never throws.

// j[key] when j is an object holding key, else nullptr.
const Json* Get(const Json& j, const std::string& key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

// j[key] as a string, or `fallback` when absent or not a string.
std::string GetString(const Json& j, const std::string& key, const std::string& fallback) {
  const Json* v = Get(j, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : fallback;
}

// j[key] as a number into *out; false when absent or not a number.
bool GetNumber(const Json& j, const std::string& key, double* out) {
  const Json* v = Get(j, key);
  if (v == nullptr || !v->is_number()) return false;
  *out = v->get<double>();
  return std::isfinite(*out);
}

// ---------------------------------------------------------------------------------------------
// Rows and pairs.

using PairKey = std::pair<std::string, std::string>;  // (impl, base scenario)

// The rows of one report grouped by pair, in the order of each pair's first row.
struct Grouped {
  std::vector<PairKey> order;
  std::map<PairKey, std::vector<const Json*>> rows;
};

Grouped GroupRows(const Json& report) {
  Grouped g;
  const Json* results = Get(report, "results");
  if (results == nullptr || !results->is_array()) return g;
  for (const Json& row : *results) {
    const Json* impl = Get(row, "impl");
    const Json* scenario = Get(row, "scenario");
    if (impl == nullptr || !impl->is_string() || scenario == nullptr || !scenario->is_string()) {
      continue;
    }
    PairKey key{impl->get<std::string>(),
                GetString(row, "base_scenario", scenario->get<std::string>())};
    auto [it, inserted] = g.rows.try_emplace(key);
    if (inserted) g.order.push_back(key);
    it->second.push_back(&row);
  }
  return g;
}

// Severity of a verdict for "the worst over repetitions": higher is worse.
int VerdictRank(const std::string& v) {
  if (v == "pass") return 0;
  if (v == "expected-fail") return 1;
  if (v == "unexpected-pass") return 2;
  if (v == "inconclusive") return 3;
  if (v == "fail") return 5;
  return 4;  // unknown: worse than inconclusive, better than fail
}

// The verdicts of one side of a pair.
struct Verdicts {
  std::map<std::string, int> counts;  // verdict → repetitions
  std::string worst;                  // "" when there are no rows
};

Verdicts CollectVerdicts(const std::vector<const Json*>& rows) {
  Verdicts v;
  for (const Json* row : rows) {
    const std::string verdict = GetString(*row, "verdict", "(none)");
    ++v.counts[verdict];
    if (v.worst.empty() || VerdictRank(verdict) > VerdictRank(v.worst)) v.worst = verdict;
  }
  return v;
}

// counts.violations_by_kind summed over rows; a row without it counts counts.violations as
// "overlap" (schema v1 before the field existed).
std::map<std::string, int64_t> CollectKinds(const std::vector<const Json*>& rows) {
  std::map<std::string, int64_t> kinds;
  for (const Json* row : rows) {
    const Json* counts = Get(*row, "counts");
    if (counts == nullptr) continue;
    const Json* by_kind = Get(*counts, "violations_by_kind");
    if (by_kind != nullptr && by_kind->is_object()) {
      for (const auto& [kind, n] : by_kind->items()) {
        if (n.is_number()) kinds[kind] += n.get<int64_t>();
      }
      continue;
    }
    double overlaps = 0;
    if (GetNumber(*counts, "violations", &overlaps)) {
      kinds["overlap"] += static_cast<int64_t>(overlaps);
    }
  }
  return kinds;
}

// Splits "HIST.FIELD"; false when malformed.
bool SplitMetric(const std::string& metric, std::string* hist, std::string* field) {
  const size_t dot = metric.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == metric.size()) return false;
  *hist = metric.substr(0, dot);
  *field = metric.substr(dot + 1);
  return true;
}

// row.latency_us[hist][field] of each row whose histogram recorded something.
std::vector<double> CollectMetric(const std::vector<const Json*>& rows, const std::string& metric) {
  std::vector<double> values;
  std::string hist, field;
  if (!SplitMetric(metric, &hist, &field)) return values;
  for (const Json* row : rows) {
    const Json* latency = Get(*row, "latency_us");
    const Json* h = latency == nullptr ? nullptr : Get(*latency, hist);
    double count = 0, value = 0;
    if (h == nullptr || !GetNumber(*h, "count", &count) || count <= 0) continue;
    if (GetNumber(*h, field, &value)) values.push_back(value);
  }
  return values;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// One metric of one pair.
struct MetricCmp {
  std::string name;
  std::vector<double> base, cand;  // per-repetition values
  double base_median = 0, cand_median = 0;
  bool has_delta = false;  // false when a side is empty or the base median is 0
  double delta_pct = 0;    // (cand - base) / base * 100
  bool tested = false;     // both sides have >= 3 values: the U test decides with the threshold
  UTest slower, faster;    // candidate greater / candidate smaller
  bool regression = false, improvement = false;
};

MetricCmp CompareMetric(const std::string& name, const std::vector<const Json*>& base_rows,
                        const std::vector<const Json*>& cand_rows, const CompareOptions& opt) {
  MetricCmp m;
  m.name = name;
  m.base = CollectMetric(base_rows, name);
  m.cand = CollectMetric(cand_rows, name);
  m.base_median = Median(m.base);
  m.cand_median = Median(m.cand);
  if (m.base.empty() || m.cand.empty()) return m;
  if (m.base_median > 0) {
    m.has_delta = true;
    m.delta_pct = (m.cand_median - m.base_median) / m.base_median * 100;
  }
  m.tested = m.base.size() >= 3 && m.cand.size() >= 3;
  m.slower = MannWhitneyGreater(m.base, m.cand);
  m.faster = MannWhitneyGreater(m.cand, m.base);
  const double alpha = opt.alpha * (1 + kAlphaSlack);
  // A base median of 0 makes any positive candidate median an unbounded relative slowdown.
  const bool slower_enough =
      m.has_delta ? m.delta_pct > opt.threshold_pct : m.cand_median > m.base_median;
  const bool faster_enough = m.has_delta && -m.delta_pct > opt.threshold_pct;
  m.regression = slower_enough && (!m.tested || m.slower.p <= alpha);
  m.improvement = faster_enough && (!m.tested || m.faster.p <= alpha);
  return m;
}

enum class Presence { kBoth, kMissing, kNew };
const char* PresenceName(Presence p) {
  switch (p) {
    case Presence::kBoth:
      return "both";
    case Presence::kMissing:
      return "missing";
    case Presence::kNew:
      return "new";
  }
  return "both";
}

// A verdict change: "same", "worse", "better", or "changed" (two unknown verdicts).
std::string VerdictChange(const std::string& base, const std::string& cand) {
  if (base == cand) return "same";
  const int b = VerdictRank(base), c = VerdictRank(cand);
  if (c > b) return "worse";
  if (c < b) return "better";
  return "changed";
}

struct PairCmp {
  std::string impl, scenario;
  Presence presence = Presence::kBoth;
  size_t base_reps = 0, cand_reps = 0;
  Verdicts base_verdicts, cand_verdicts;
  std::string change = "same";
  std::map<std::string, int64_t> base_kinds, cand_kinds;
  std::vector<std::string> new_kinds;  // > 0 in the candidate, 0 in the base
  std::vector<MetricCmp> metrics;
};

// A reason the gate failed.
struct Reason {
  std::string impl, scenario;
  std::string kind;  // verdict-change | new-violation | regression | missing
  std::string message;
};

// ---------------------------------------------------------------------------------------------
// Formatting.

std::string Printf(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// A latency in µs: integral values without decimals.
std::string FormatUs(double v) {
  if (std::fabs(v) < 1e15 && v == std::floor(v)) return Printf("%.0f", v);
  return Printf("%.1f", v);
}

std::string FormatPct(double v) { return Printf("%+.1f%%", v); }
std::string FormatP(double p) { return Printf("%.2g", p); }

std::string Plural(size_t n, const std::string& one, const std::string& many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// Text for a Markdown table cell: pipes escaped, newlines flattened.
std::string Cell(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n' || c == '\r') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

// `impl / scenario` for bullets.
std::string PairName(const std::string& impl, const std::string& scenario) {
  std::string s = impl + " / " + scenario;
  std::replace(s.begin(), s.end(), '`', '\'');
  std::replace(s.begin(), s.end(), '\n', ' ');
  return "`" + s + "`";
}

// A side's verdict: the worst, with "(k/R)" when not every repetition had it.
std::string VerdictText(const Verdicts& v, size_t reps) {
  if (v.worst.empty()) return "—";
  std::string s = v.worst;
  auto it = v.counts.find(v.worst);
  const int k = it == v.counts.end() ? 0 : it->second;
  if (static_cast<size_t>(k) < reps)
    s += " (" + std::to_string(k) + "/" + std::to_string(reps) + ")";
  return s;
}

// "base median → candidate median (Δ%, p=…) marker".
std::string MetricCell(const MetricCmp& m) {
  if (m.base.empty() && m.cand.empty()) return "—";
  const std::string b = m.base.empty() ? "—" : FormatUs(m.base_median);
  const std::string c = m.cand.empty() ? "—" : FormatUs(m.cand_median);
  std::string s = b + " → " + c;
  if (m.base.empty() || m.cand.empty()) return s;
  std::string detail = m.has_delta ? FormatPct(m.delta_pct) : "n/a %";
  if (m.tested) {
    // The p-value in the direction of the change.
    detail += ", p=" + FormatP(m.cand_median >= m.base_median ? m.slower.p : m.faster.p);
  } else {
    detail +=
        ", no test: " + Plural(std::min(m.base.size(), m.cand.size()), "repetition", "repetitions");
  }
  s += " (" + detail + ")";
  if (m.regression) s = "**" + s + "** ❌";
  if (m.improvement) s += " ✅";
  return s;
}

std::string RegressionText(const MetricCmp& m, const CompareOptions& opt, bool slower) {
  std::string s = m.name + " " + (slower ? "regressed" : "improved") + ": median " +
                  FormatUs(m.base_median) + " → " + FormatUs(m.cand_median) + " µs (" +
                  (m.has_delta ? FormatPct(m.delta_pct) : std::string("from 0")) + ", threshold " +
                  Printf("%g", opt.threshold_pct) + "%";
  if (m.tested) {
    s += "; Mann-Whitney p=" + FormatP(slower ? m.slower.p : m.faster.p) +
         " ≤ α=" + Printf("%g", opt.alpha) + ", " + std::to_string(m.base.size()) + " vs " +
         std::to_string(m.cand.size()) + " repetitions";
  } else {
    s +=
        "; no test: " + Plural(std::min(m.base.size(), m.cand.size()), "repetition", "repetitions");
  }
  return s + ")";
}

// j at the path `keys` (objects only), or nullptr.
const Json* GetPath(const Json& j, std::initializer_list<const char*> keys) {
  const Json* v = &j;
  for (const char* key : keys) {
    v = Get(*v, key);
    if (v == nullptr) return nullptr;
  }
  return v;
}

// Differences of run context that make latencies less comparable (information only).
std::vector<std::string> ContextNotes(const Json& base, const Json& cand) {
  struct Field {
    const char* name;
    std::initializer_list<const char*> path;
  };
  const Field kFields[] = {{"redis_version", {"context", "redis_version"}},
                           {"cpu.model", {"context", "cpu", "model"}},
                           {"cpu.cores", {"context", "cpu", "cores"}},
                           {"cpu.pin", {"context", "cpu", "pin"}},
                           {"mode", {"context", "mode"}},
                           {"target_rate_per_s", {"context", "target_rate_per_s"}},
                           {"config.nodes", {"context", "config", "nodes"}},
                           {"config.persistence", {"context", "config", "persistence"}},
                           {"config.workload", {"context", "config", "workload"}}};
  std::vector<std::string> notes;
  for (const Field& f : kFields) {
    const Json* b = GetPath(base, f.path);
    const Json* c = GetPath(cand, f.path);
    if (b == nullptr || c == nullptr || *b == *c) continue;
    std::string note = std::string("context.") + f.name + " differs";
    if (!b->is_structured() && !c->is_structured()) note += ": " + b->dump() + " → " + c->dump();
    notes.push_back(note);
  }
  const Json* bi = GetPath(base, {"summary", "interrupted"});
  const Json* ci = GetPath(cand, {"summary", "interrupted"});
  if (bi != nullptr && *bi == true) notes.push_back("the base run was interrupted");
  if (ci != nullptr && *ci == true) notes.push_back("the candidate run was interrupted");
  return notes;
}

Json KindsJson(const std::map<std::string, int64_t>& kinds) {
  Json j = Json::object();
  for (const auto& [k, n] : kinds) j[k] = n;
  return j;
}

Json MetricJson(const MetricCmp& m) {
  Json j = {{"metric", m.name}, {"base", m.base}, {"candidate", m.cand}};
  j["base_median"] = m.base.empty() ? Json(nullptr) : Json(m.base_median);
  j["candidate_median"] = m.cand.empty() ? Json(nullptr) : Json(m.cand_median);
  j["delta_pct"] = m.has_delta ? Json(m.delta_pct) : Json(nullptr);
  const bool compared = !m.base.empty() && !m.cand.empty();
  j["test"] = !compared        ? "none"
              : !m.tested      ? "threshold-only"
              : m.slower.exact ? "exact"
                               : "normal";
  j["u"] = compared ? Json(m.slower.u) : Json(nullptr);
  j["p_slower"] = compared ? Json(m.slower.p) : Json(nullptr);
  j["p_faster"] = compared ? Json(m.faster.p) : Json(nullptr);
  j["regression"] = m.regression;
  j["improvement"] = m.improvement;
  return j;
}

// The standard normal's upper tail: P(Z >= z).
double UpperNormalTail(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }

std::string ReadError(const std::string& path) {
  return path + ": cannot read: " + std::strerror(errno);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

UTest MannWhitneyGreater(const std::vector<double>& x, const std::vector<double>& y) {
  UTest t;
  const size_t n = x.size(), m = y.size();
  if (n == 0 || m == 0) return t;
  for (double yj : y) {
    for (double xi : x) t.u += yj > xi ? 1.0 : yj == xi ? 0.5 : 0.0;
  }
  // Pool the samples; doubled midranks are integers (a tie group at ranks i..j gets i + j).
  const size_t total = n + m;
  std::vector<std::pair<double, bool>> pooled;  // (value, from y)
  pooled.reserve(total);
  for (double v : x) pooled.emplace_back(v, false);
  for (double v : y) pooled.emplace_back(v, true);
  std::sort(pooled.begin(), pooled.end());
  std::vector<int64_t> rank2(total);
  double tie_term = 0;  // sum of t^3 - t over tie groups
  for (size_t i = 0; i < total;) {
    size_t j = i;
    while (j + 1 < total && pooled[j + 1].first == pooled[i].first) ++j;  // j < total: bounded
    const double t_len = static_cast<double>(j - i + 1);
    tie_term += t_len * t_len * t_len - t_len;
    for (size_t k = i; k <= j; ++k) rank2[k] = static_cast<int64_t>(i + 1 + j + 1);
    i = j + 1;
  }
  if (n <= kMaxExactSample && m <= kMaxExactSample) {
    // ways[k][s]: subsets of k pooled values whose doubled ranks sum to s. The y sample is
    // one of C(total, m) equally likely subsets under the null hypothesis.
    int64_t observed = 0, max_sum = 0;
    for (size_t k = 0; k < total; ++k) {
      max_sum += rank2[k];
      if (pooled[k].second) observed += rank2[k];
    }
    std::vector<std::vector<double>> ways(m + 1, std::vector<double>(max_sum + 1, 0.0));
    ways[0][0] = 1;
    for (size_t i = 0; i < total; ++i) {
      const int64_t r = rank2[i];
      for (size_t k = std::min(i + 1, m); k >= 1; --k) {
        for (int64_t s = max_sum; s >= r; --s) ways[k][s] += ways[k - 1][s - r];
      }
    }
    double at_least = 0, all = 0;
    for (int64_t s = 0; s <= max_sum; ++s) {
      all += ways[m][s];
      if (s >= observed) at_least += ways[m][s];
    }
    t.p = all > 0 ? at_least / all : 1;
    t.exact = true;
    return t;
  }
  const double nd = static_cast<double>(n), md = static_cast<double>(m);
  const double nt = nd + md;
  const double var = nd * md / 12.0 * ((nt + 1) - tie_term / (nt * (nt - 1)));
  if (var <= 0) return t;  // every value tied: no evidence either way
  const double z = (t.u - nd * md / 2 - 0.5) / std::sqrt(var);
  t.p = std::min(1.0, UpperNormalTail(z));
  return t;
}

Status CheckCompareOptions(const CompareOptions& opt) {
  if (!std::isfinite(opt.threshold_pct) || opt.threshold_pct < 0) {
    return Status::InvalidArgument("--threshold " + Printf("%g", opt.threshold_pct) +
                                   ": expected a percentage >= 0");
  }
  if (!(opt.alpha > 0 && opt.alpha < 1)) {
    return Status::InvalidArgument("--alpha " + Printf("%g", opt.alpha) +
                                   ": expected a significance level in (0, 1)");
  }
  if (opt.metrics.empty()) return Status::InvalidArgument("--metric: expected at least one");
  for (const std::string& metric : opt.metrics) {
    std::string hist, field;
    bool ok = SplitMetric(metric, &hist, &field);
    ok = ok && std::all_of(hist.begin(), hist.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
         });
    ok = ok && std::any_of(std::begin(kMetricFields), std::end(kMetricFields),
                           [&field](const char* f) { return field == f; });
    if (!ok) {
      return Status::InvalidArgument("--metric '" + metric +
                                     "': expected HIST.FIELD, e.g. acquire.p99 (FIELD one of "
                                     "mean, min, p50, p90, p99, p999, max)");
    }
  }
  return Status::Ok();
}

Status LoadReportFile(const std::string& path, Json* out) {
  namespace fs = std::filesystem;
  const char* const kExpected = " (expected a run directory or a report.json)";
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st))
    return Status::InvalidArgument(path + ": no such file or directory" + kExpected);
  std::string file = path;
  if (fs::is_directory(st)) {
    file = (fs::path(path) / "report.json").string();
    if (!fs::exists(fs::status(file, ec))) {
      return Status::InvalidArgument(path + ": no report.json" + kExpected);
    }
  }
  std::ifstream f(file, std::ios::binary);
  if (!f) return Status::IoError(ReadError(file));
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Status::IoError(ReadError(file));
  Json doc;
  try {
    doc = Json::parse(ss.str());
  } catch (const Json::parse_error& e) {
    std::string what = e.what();
    const size_t close = what.find("] ");  // drop "[json.exception.parse_error.101] "
    if (close != std::string::npos) what = what.substr(close + 2);
    return Status::InvalidArgument(file + ": invalid JSON: " + what);
  }
  if (!doc.is_object()) {
    return Status::InvalidArgument(file + ": expected a JSON object (a lockstorm report.json)");
  }
  const Json* version = Get(doc, "schema_version");
  if (version == nullptr) {
    return Status::InvalidArgument(file + ": no schema_version (expected a lockstorm report.json)");
  }
  if (!version->is_number_integer() || version->get<int64_t>() < 1) {
    return Status::InvalidArgument(file + ": schema_version " + version->dump() +
                                   " is not a positive integer");
  }
  if (version->get<int64_t>() > kCompareMaxSchemaVersion) {
    return Status::InvalidArgument(file + ": schema_version " + version->dump() +
                                   " is newer than this lockstorm (" +
                                   std::to_string(kCompareMaxSchemaVersion) + ")");
  }
  const Json* results = Get(doc, "results");
  if (results == nullptr || !results->is_array()) {
    return Status::InvalidArgument(file + ": results: expected an array of rows");
  }
  for (size_t i = 0; i < results->size(); ++i) {
    const Json& row = (*results)[i];
    const Json* impl = Get(row, "impl");
    const Json* scenario = Get(row, "scenario");
    if (impl == nullptr || !impl->is_string() || scenario == nullptr || !scenario->is_string()) {
      return Status::InvalidArgument(file + ": results[" + std::to_string(i) +
                                     "]: expected an object with string impl and scenario");
    }
  }
  *out = std::move(doc);
  return Status::Ok();
}

CompareResult CompareReports(const Json& base, const Json& candidate, const CompareOptions& opt) {
  const Grouped b = GroupRows(base);
  const Grouped c = GroupRows(candidate);
  static const std::vector<const Json*> kNoRows;

  // Pairs: the base's order, then pairs only in the candidate.
  std::vector<PairKey> keys = b.order;
  for (const PairKey& k : c.order) {
    if (b.rows.count(k) == 0) keys.push_back(k);
  }

  std::vector<PairCmp> pairs;
  std::vector<Reason> reasons;
  std::vector<std::string> info;
  size_t n_verdict = 0, n_new_violation = 0, n_regression = 0, n_missing = 0;
  size_t n_improvement = 0, n_new_pair = 0;
  for (const PairKey& key : keys) {
    auto bi = b.rows.find(key);
    auto ci = c.rows.find(key);
    const auto& brows = bi == b.rows.end() ? kNoRows : bi->second;
    const auto& crows = ci == c.rows.end() ? kNoRows : ci->second;
    PairCmp p;
    p.impl = key.first;
    p.scenario = key.second;
    p.presence = crows.empty()   ? Presence::kMissing
                 : brows.empty() ? Presence::kNew
                                 : Presence::kBoth;
    p.base_reps = brows.size();
    p.cand_reps = crows.size();
    p.base_verdicts = CollectVerdicts(brows);
    p.cand_verdicts = CollectVerdicts(crows);
    p.base_kinds = CollectKinds(brows);
    p.cand_kinds = CollectKinds(crows);
    for (const std::string& metric : opt.metrics) {
      p.metrics.push_back(CompareMetric(metric, brows, crows, opt));
    }
    const std::string name = PairName(p.impl, p.scenario);
    if (p.presence == Presence::kMissing) {
      ++n_missing;
      reasons.push_back({p.impl, p.scenario, "missing",
                         name + ": missing in the candidate (present in the base, " +
                             Plural(p.base_reps, "repetition", "repetitions") + ")"});
      pairs.push_back(std::move(p));
      continue;
    }
    if (p.presence == Presence::kNew) {
      ++n_new_pair;
      info.push_back(name + ": new in the candidate (" + p.cand_verdicts.worst +
                     "; not in the base, not a failure)");
      pairs.push_back(std::move(p));
      continue;
    }
    p.change = VerdictChange(p.base_verdicts.worst, p.cand_verdicts.worst);
    if (p.change != "same") {
      ++n_verdict;
      std::string msg = name + ": verdict got " + p.change + ": " +
                        VerdictText(p.base_verdicts, p.base_reps) + " → " +
                        VerdictText(p.cand_verdicts, p.cand_reps);
      if (p.change == "better") msg += " (update the baseline)";
      reasons.push_back({p.impl, p.scenario, "verdict-change", msg});
    }
    for (const auto& [kind, count] : p.cand_kinds) {
      if (count <= 0) continue;
      auto it = p.base_kinds.find(kind);
      if (it != p.base_kinds.end() && it->second > 0) continue;
      p.new_kinds.push_back(kind);
      ++n_new_violation;
      reasons.push_back({p.impl, p.scenario, "new-violation",
                         name + ": new violation " + kind + ": 0 → " + std::to_string(count)});
    }
    for (const MetricCmp& m : p.metrics) {
      if (m.regression) {
        ++n_regression;
        reasons.push_back({p.impl, p.scenario, "regression",
                           name + ": " + RegressionText(m, opt, /*slower=*/true)});
      }
      if (m.improvement) {
        ++n_improvement;
        info.push_back(name + ": " + RegressionText(m, opt, /*slower=*/false));
      }
    }
    pairs.push_back(std::move(p));
  }
  const std::vector<std::string> notes = ContextNotes(base, candidate);

  CompareResult r;
  r.exit_code = reasons.empty() ? kCompareExitPass : kCompareExitFail;
  const std::string gate = reasons.empty() ? "PASS" : "FAIL";

  // Markdown.
  std::ostringstream md;
  md << "## lockstorm compare: " << gate << " — "
     << Plural(n_verdict, "verdict change", "verdict changes") << ", "
     << Plural(n_new_violation, "new violation", "new violations") << ", "
     << Plural(n_regression, "latency regression", "latency regressions") << ", "
     << Plural(n_missing, "missing pair", "missing pairs") << " ("
     << Plural(pairs.size(), "pair", "pairs") << "; "
     << Plural(n_improvement, "improvement", "improvements") << ", "
     << Plural(n_new_pair, "new pair", "new pairs") << ")\n\n";
  auto side_line = [](const Json& report) {
    const Json* context = Get(report, "context");
    const std::string rev = context ? GetString(*context, "git_revision", "") : "";
    const std::string start = context ? GetString(*context, "start_time", "") : "";
    std::string s;
    if (!rev.empty()) s += " `" + rev + "`";
    if (!start.empty()) s += " (" + start + ")";
    return s.empty() ? std::string(" (no context)") : s;
  };
  md << "Base" << side_line(base) << " → candidate" << side_line(candidate) << ". Threshold "
     << Printf("%g", opt.threshold_pct) << "%, α = " << Printf("%g", opt.alpha) << ".\n\n";
  md << "| impl | scenario | verdict | new violations |";
  for (const std::string& metric : opt.metrics) md << " " << Cell(metric) << " (µs) |";
  md << "\n|---|---|---|---|";
  for (size_t i = 0; i < opt.metrics.size(); ++i) md << "---|";
  md << "\n";
  for (const PairCmp& p : pairs) {
    std::string verdict;
    if (p.presence == Presence::kMissing) {
      verdict = VerdictText(p.base_verdicts, p.base_reps) + " → (missing) ❌";
    } else if (p.presence == Presence::kNew) {
      verdict = "(new) → " + VerdictText(p.cand_verdicts, p.cand_reps);
    } else if (p.change == "same") {
      verdict = VerdictText(p.cand_verdicts, p.cand_reps);
    } else {
      verdict = "**" + VerdictText(p.base_verdicts, p.base_reps) + " → " +
                VerdictText(p.cand_verdicts, p.cand_reps) + "** ❌ " + p.change;
    }
    std::string new_violations;
    for (const std::string& kind : p.new_kinds) {
      if (!new_violations.empty()) new_violations += ", ";
      new_violations += kind + " 0 → " + std::to_string(p.cand_kinds.at(kind)) + " ❌";
    }
    if (new_violations.empty()) new_violations = "—";
    md << "| " << Cell(p.impl) << " | " << Cell(p.scenario) << " | " << Cell(verdict) << " | "
       << Cell(new_violations) << " |";
    for (const MetricCmp& m : p.metrics) md << " " << Cell(MetricCell(m)) << " |";
    md << "\n";
  }
  md << "\nLatency cells: median over repetitions, base → candidate (change, one-sided "
        "Mann-Whitney p in the direction of the change). ❌ fails the gate, ✅ an improvement.\n";
  if (!reasons.empty()) {
    md << "\n### Why the gate failed\n\n";
    for (const Reason& reason : reasons) md << "- " << reason.message << "\n";
  }
  if (!info.empty() || !notes.empty()) {
    md << "\n### Information\n\n";
    for (const std::string& s : info) md << "- " << s << "\n";
    for (const std::string& s : notes) md << "- " << s << "\n";
  }
  r.markdown = md.str();

  // JSON.
  Json j;
  j["gate"] = gate;
  j["exit_code"] = r.exit_code;
  j["options"] = {
      {"threshold_pct", opt.threshold_pct}, {"alpha", opt.alpha}, {"metrics", opt.metrics}};
  j["counts"] = {{"pairs", pairs.size()},
                 {"verdict_changes", n_verdict},
                 {"new_violations", n_new_violation},
                 {"regressions", n_regression},
                 {"missing", n_missing},
                 {"improvements", n_improvement},
                 {"new_pairs", n_new_pair}};
  Json jpairs = Json::array();
  for (const PairCmp& p : pairs) {
    Json jp = {{"impl", p.impl}, {"scenario", p.scenario}, {"presence", PresenceName(p.presence)}};
    jp["repetitions"] = {{"base", p.base_reps}, {"candidate", p.cand_reps}};
    jp["verdict"] = {
        {"base", p.base_verdicts.worst.empty() ? Json(nullptr) : Json(p.base_verdicts.worst)},
        {"candidate", p.cand_verdicts.worst.empty() ? Json(nullptr) : Json(p.cand_verdicts.worst)},
        {"change", p.presence == Presence::kBoth ? Json(p.change) : Json(nullptr)}};
    jp["verdict_counts"] = {{"base", p.base_verdicts.counts},
                            {"candidate", p.cand_verdicts.counts}};
    jp["violations_by_kind"] = {{"base", KindsJson(p.base_kinds)},
                                {"candidate", KindsJson(p.cand_kinds)}};
    jp["new_violations"] = p.new_kinds;
    Json jm = Json::array();
    for (const MetricCmp& m : p.metrics) jm.push_back(MetricJson(m));
    jp["metrics"] = std::move(jm);
    jpairs.push_back(std::move(jp));
  }
  j["pairs"] = std::move(jpairs);
  Json jreasons = Json::array();
  for (const Reason& reason : reasons) {
    jreasons.push_back({{"impl", reason.impl},
                        {"scenario", reason.scenario},
                        {"kind", reason.kind},
                        {"message", reason.message}});
  }
  j["failures"] = std::move(jreasons);
  j["information"] = info;
  j["notes"] = notes;
  r.json = std::move(j);
  return r;
}

}  // namespace lockstorm
