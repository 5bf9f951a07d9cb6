// report.md, the helpers every rendering shares, and RenderRunDir.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "reports/render.h"

namespace lockstorm {
namespace render_internal {

using nlohmann::json;

const json* At(const json& j, std::initializer_list<const char*> path) {
  const json* cur = &j;
  for (const char* key : path) {
    if (!cur->is_object()) return nullptr;
    auto it = cur->find(key);
    if (it == cur->end()) return nullptr;
    cur = &*it;
  }
  return cur;
}

const json& Context(const json& report) {
  static const json kNone = json::object();
  const json* c = At(report, {"context"});
  return c != nullptr ? *c : kNone;
}

std::optional<double> Number(const json& j, std::initializer_list<const char*> path) {
  const json* v = At(j, path);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  return v->get<double>();
}

std::string Text(const json& j, std::initializer_list<const char*> path,
                 const std::string& fallback) {
  const json* v = At(j, path);
  if (v == nullptr) return fallback;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_number() || v->is_boolean()) return v->dump();
  return fallback;
}

std::string FormatNumber(std::optional<double> v, int decimals) {
  if (!v || !std::isfinite(*v)) return "-";
  char buf[64];
  if (*v == std::floor(*v) && std::fabs(*v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", *v);
  } else {
    std::snprintf(buf, sizeof buf, "%.*f", decimals, *v);
  }
  return buf;
}

std::vector<const json*> Rows(const json& report) {
  std::vector<const json*> rows;
  const json* results = At(report, {"results"});
  if (results == nullptr || !results->is_array()) return rows;
  for (const json& r : *results) {
    if (r.is_object()) rows.push_back(&r);
  }
  return rows;
}

std::string RowLabel(const json& row) {
  return Text(row, {"impl"}, "?") + " / " + Text(row, {"scenario"}, "?");
}

namespace {

// violations_by_kind of a row: counts' (schema doc) or check's (where v1 writers put it).
const json* ViolationsByKind(const json& row) {
  const json* m = At(row, {"counts", "violations_by_kind"});
  if (m == nullptr || !m->is_object()) m = At(row, {"check", "violations_by_kind"});
  return m != nullptr && m->is_object() ? m : nullptr;
}

// "p50 / p99 / p99.9" of a latency histogram, "-" when the histogram is missing or empty.
std::string Percentiles(const json& row, const char* op) {
  const json* h = At(row, {"latency_us", op});
  if (h == nullptr || Number(*h, {"count"}).value_or(0) <= 0) return "-";
  return FormatNumber(Number(*h, {"p50"})) + " / " + FormatNumber(Number(*h, {"p99"})) + " / " +
         FormatNumber(Number(*h, {"p999"}));
}

std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

}  // namespace

std::string ViolationSummary(const json& row) {
  if (const json* m = ViolationsByKind(row)) {
    int64_t total = 0;
    std::vector<std::string> kinds;
    for (auto it = m->begin(); it != m->end(); ++it) {
      if (!it->is_number()) continue;
      total += it->get<int64_t>();
      kinds.push_back(it.key() + " " + FormatNumber(it->get<double>()));
    }
    if (kinds.empty()) return "0";
    return std::to_string(total) + " (" + Join(kinds, ", ") + ")";
  }
  return FormatNumber(Number(row, {"counts", "violations"}));
}

std::string ViolationLine(const json& v) {
  std::ostringstream out;
  out << Text(v, {"kind"}, "?") << " on " << Text(v, {"key"}, "?");
  std::vector<std::string> clients, ops;
  for (const char* f : {"client_a", "client_b"}) {
    if (Number(v, {f}).value_or(-1) >= 0) clients.push_back(FormatNumber(Number(v, {f})));
  }
  for (const char* f : {"op_a", "op_b"}) {
    if (Number(v, {f}).value_or(-1) > 0) ops.push_back(FormatNumber(Number(v, {f})));
  }
  if (!clients.empty())
    out << ": client" << (clients.size() > 1 ? "s " : " ") << Join(clients, ", ");
  if (!ops.empty()) out << "; op" << (ops.size() > 1 ? "s " : " ") << Join(ops, ", ");
  if (auto t = Number(v, {"start_us"})) out << "; at " << FormatNumber(t) << " us";
  if (Text(v, {"kind"}) == "overlap") {
    if (auto o = Number(v, {"overlap_us"})) out << " for " << FormatNumber(o) << " us";
  }
  std::string detail = Text(v, {"detail"});
  if (!detail.empty()) out << ": " << detail;
  return out.str();
}

std::vector<const json*> FirstViolations(const json& row, size_t per_kind, size_t total) {
  std::vector<const json*> out;
  const json* list = At(row, {"violations"});
  if (list == nullptr || !list->is_array()) return out;
  std::map<std::string, size_t> shown;
  for (const json& v : *list) {
    if (out.size() >= total) break;
    if (!v.is_object() || shown[Text(v, {"kind"})]++ >= per_kind) continue;
    out.push_back(&v);
  }
  return out;
}

std::string HeaderLine(const json& report) {
  const json& c = Context(report);
  std::vector<std::string> parts = {
      "lockstorm " + Text(c, {"lockstorm_version"}, "?"),
      "seed " + Text(c, {"seed"}, "?"),
      "git " + Text(c, {"git_revision"}, "?"),
      "redis " + Text(c, {"redis_version"}, "?"),
  };
  std::string mode = Text(c, {"mode"}, "closed");
  if (mode == "open") {
    mode += " (target " + FormatNumber(Number(c, {"target_rate_per_s"})) + "/s)";
  }
  parts.push_back("mode " + mode);
  if (Number(c, {"repeat"}).value_or(1) > 1) {
    parts.push_back("repeat " + FormatNumber(Number(c, {"repeat"})));
  }
  std::string placement = "placement ";
  std::string pin = Text(c, {"cpu", "pin"}, "?");
  if (pin == "none") {
    placement += "unpinned";
  } else {
    placement += "pin " + pin + ", lockstorm CPUs " + Text(c, {"cpu", "lockstorm_cpus"}, "?");
    std::vector<std::string> servers;
    if (const json* s = At(c, {"cpu", "server_cpus"}); s != nullptr && s->is_array()) {
      for (const json& x : *s) servers.push_back(x.is_string() ? x.get<std::string>() : x.dump());
    }
    placement += ", server CPUs " + (servers.empty() ? std::string("?") : Join(servers, " "));
  }
  std::vector<std::string> machine;
  if (auto cores = Number(c, {"cpu", "cores"})) machine.push_back(FormatNumber(cores) + " cores");
  if (std::string m = Text(c, {"cpu", "model"}); !m.empty()) machine.push_back(m);
  if (!machine.empty()) placement += " (" + Join(machine, ", ") + ")";
  parts.push_back(placement);
  if (std::string t = Text(c, {"start_time"}); !t.empty()) parts.push_back("started " + t);
  return Join(parts, " · ");
}

std::string VerdictText(const json& row) {
  std::string verdict = Text(row, {"verdict"}, "?");
  std::string failure = Text(row, {"failure"});
  std::string why = failure.empty() ? "" : " (" + failure + ")";
  if (verdict == "pass") return "[ok] pass";
  if (verdict == "fail") return "[FAIL] fail" + why;
  if (verdict == "expected-fail") return "[xfail] expected-fail" + why;
  if (verdict == "unexpected-pass") return "[XPASS] unexpected-pass";
  if (verdict == "inconclusive") return "[??] inconclusive";
  return "[?] " + verdict;
}

Table ComparisonTable(const json& report) {
  std::vector<const json*> rows = Rows(report);
  bool contention = false;
  for (const json* r : rows) contention = contention || At(*r, {"contention"}) != nullptr;
  Table t;
  t.head = {"impl",
            "scenario",
            "verdict",
            "violations",
            "acquire p50 / p99 / p99.9 µs",
            "release p50 / p99 / p99.9 µs",
            "acquired/s"};
  if (contention) {
    for (const char* h : {"attempts/acquire", "contended-fail", "fairness (Jain)",
                          "handoff gap p50 µs", "split votes", "unknown"}) {
      t.head.push_back(h);
    }
  }
  t.numeric.assign(t.head.size(), true);
  t.numeric[0] = t.numeric[1] = t.numeric[2] = false;
  for (const json* r : rows) {
    const json& row = *r;
    std::vector<std::string> cells = {Text(row, {"impl"}, "?"),
                                      Text(row, {"scenario"}, "?"),
                                      VerdictText(row),
                                      ViolationSummary(row),
                                      Percentiles(row, "acquire"),
                                      Percentiles(row, "release"),
                                      FormatNumber(Number(row, {"throughput_acquired_per_s"}))};
    if (contention) {
      std::optional<double> fail_rate = Number(row, {"contention", "contended_fail_rate"});
      std::string rate = "-";
      if (fail_rate) rate = FormatNumber(*fail_rate * 100.0, 1) + "%";
      std::optional<double> unknown = Number(row, {"contention", "unknown_acquires"});
      if (!unknown) unknown = Number(row, {"counts", "unknown"});
      char fair[32] = "-";
      if (auto f = Number(row, {"contention", "fairness_jain"})) {
        std::snprintf(fair, sizeof fair, "%.3f", *f);
      }
      char attempts[32] = "-";
      if (auto a = Number(row, {"contention", "attempts_per_acquire_mean"})) {
        std::snprintf(attempts, sizeof attempts, "%.2f", *a);
      }
      const json* gap = At(row, {"contention", "handoff_gap_us"});
      std::string gap_p50 = "-";
      if (gap != nullptr && Number(*gap, {"count"}).value_or(0) > 0) {
        gap_p50 = FormatNumber(Number(*gap, {"p50"}));
      }
      for (std::string s :
           {std::string(attempts), rate, std::string(fair), gap_p50,
            FormatNumber(Number(row, {"contention", "split_votes"})), FormatNumber(unknown)}) {
        cells.push_back(s);
      }
    }
    std::string verdict = Text(row, {"verdict"});
    t.alarming.push_back(verdict == "fail" || verdict == "unexpected-pass" ||
                         verdict == "inconclusive");
    t.rows.push_back(std::move(cells));
  }
  return t;
}

}  // namespace render_internal

namespace {

using nlohmann::json;
using namespace render_internal;

// Text for a Markdown table cell or list item: inline markup, HTML and line breaks defused.
std::string MdEscape(const std::string& s) {
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
      case '\n':
      case '\r':
      case '\t':
        out += ' ';
        break;
      case '\\':
      case '`':
      case '*':
      case '_':
      case '[':
      case ']':
      case '|':
      case '~':
        out += '\\';
        out += c;
        break;
      default:
        out += c;
    }
  }
  return out;
}

// VerdictText for Markdown: its marker ("[ok]", one of a fixed set) as it is, the rest escaped.
std::string MdVerdict(const std::string& text) {
  size_t close = text.find("] ");
  if (text.empty() || text[0] != '[' || close == std::string::npos) return MdEscape(text);
  return text.substr(0, close + 2) + MdEscape(text.substr(close + 2));
}

constexpr size_t kViolationsPerKind = 3;
constexpr size_t kViolationsPerRow = 10;
constexpr size_t kInfraErrorsPerRow = 5;

}  // namespace

std::string RenderMarkdown(const json& report) {
  std::ostringstream out;
  out << "## lockstorm report\n\n" << MdEscape(HeaderLine(report)) << "\n\n";
  Table t = ComparisonTable(report);
  out << "|";
  for (const std::string& h : t.head) out << " " << MdEscape(h) << " |";
  out << "\n|";
  for (bool numeric : t.numeric) out << (numeric ? "---:|" : "---|");
  out << "\n";
  for (size_t i = 0; i < t.rows.size(); ++i) {
    out << "|";
    for (size_t c = 0; c < t.rows[i].size(); ++c) {
      std::string cell = c == 2 ? MdVerdict(t.rows[i][c]) : MdEscape(t.rows[i][c]);
      if (c == 2 && t.alarming[i]) cell = "**" + cell + "**";
      out << " " << cell << " |";
    }
    out << "\n";
  }
  if (t.rows.empty()) out << "\n(no result rows)\n";
  if (const json* s = At(report, {"summary"})) {
    out << "\nexit code " << FormatNumber(Number(*s, {"exit_code"}));
    if (At(*s, {"interrupted"}) != nullptr && (*s)["interrupted"] == true) {
      out << " (interrupted)";
    }
    out << "\n";
  }

  const json& c = Context(report);
  if (std::string schedule = Text(c, {"config", "schedule"}); !schedule.empty()) {
    out << "\n### Scenario\n\n**" << MdEscape(Text(c, {"config", "scenario"}, "?")) << "**";
    if (std::string d = Text(c, {"config", "scenario_description"}); !d.empty())
      out << ": " << MdEscape(d);
    // The workload line, then one bullet per fault event (DescribeSchedule's indented lines).
    std::istringstream lines(schedule);
    std::string line;
    for (bool first = true; std::getline(lines, line); first = false) {
      const size_t text = line.find_first_not_of(' ');
      if (text == std::string::npos) continue;
      out << (first ? "\n\n" : "- ") << MdEscape(line.substr(text)) << "\n";
    }
  }
  if (const json* skipped = At(c, {"config", "skipped_faults"});
      skipped != nullptr && skipped->is_array() && !skipped->empty()) {
    out << "\n**Skipped faults** (" << skipped->size() << "):\n";
    for (const json& f : *skipped)
      out << "- " << MdEscape(Text(f, {"fault"}, "?")) << ": " << MdEscape(Text(f, {"why"}))
          << "\n";
  }

  bool section = false;
  for (const json* r : Rows(report)) {
    const json& row = *r;
    if (Text(row, {"verdict"}) == "pass") continue;
    std::vector<const json*> shown = FirstViolations(row, kViolationsPerKind, kViolationsPerRow);
    const json* infra = At(row, {"infra_errors"});
    size_t infra_n = infra != nullptr && infra->is_array() ? infra->size() : 0;
    if (shown.empty() && infra_n == 0) continue;
    if (!section) out << "\n### Violations\n";
    section = true;
    const json* listed = At(row, {"violations"});
    size_t listed_n = listed != nullptr && listed->is_array() ? listed->size() : 0;
    out << "\n**" << MdEscape(RowLabel(row)) << "**: " << MdVerdict(VerdictText(row));
    if (!shown.empty()) {
      out << ", " << shown.size() << " of " << listed_n << " listed violations";
    }
    out << "\n\n";
    for (const json* v : shown) out << "- " << MdEscape(ViolationLine(*v)) << "\n";
    for (size_t i = 0; i < infra_n && i < kInfraErrorsPerRow; ++i) {
      const json& e = (*infra)[i];
      out << "- infrastructure: " << MdEscape(e.is_string() ? e.get<std::string>() : e.dump())
          << "\n";
    }
  }
  return out.str();
}

namespace {

Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return Status::IoError(path + ": cannot write: " + std::strerror(errno));
  f << text;
  f.close();
  if (!f) return Status::IoError(path + ": write failed: " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace

Status RenderRunDir(const std::string& run_dir) {
  const std::string report_path = run_dir + "/report.json";
  std::ifstream in(report_path, std::ios::binary);
  if (!in) {
    return Status::IoError(report_path + ": cannot open: " + std::strerror(errno) +
                           " (expected the report.json of a lockstorm run)");
  }
  json report;
  try {
    report = json::parse(in);
  } catch (const json::exception& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 2: ...".
    std::string what = e.what();
    size_t bracket = what.find("] ");
    if (bracket != std::string::npos) what = what.substr(bracket + 2);
    return Status::InvalidArgument(report_path + ": expected JSON: " + what);
  }
  const json* results = At(report, {"results"});
  if (results == nullptr || !results->is_array()) {
    return Status::InvalidArgument(report_path +
                                   ": expected a JSON object with a \"results\" array");
  }
  std::optional<double> version = Number(report, {"schema_version"});
  if (!version || *version < 1 || *version > 2) {
    return Status::InvalidArgument(report_path + ": expected \"schema_version\" 1 or 2, got " +
                                   Text(report, {"schema_version"}, "none"));
  }
  const std::string history_path = run_dir + "/history.jsonl";
  std::vector<Event> history;
  std::error_code ec;
  if (std::filesystem::exists(history_path, ec)) {
    Status s = ReadHistory(history_path, &history);
    if (!s.ok()) return s;
  }
  for (const auto& [name, text] :
       {std::pair<const char*, std::string>{"report.md", RenderMarkdown(report)},
        {"junit.xml", RenderJUnit(report)},
        {"report.html", RenderHtml(report, history)}}) {
    Status s = WriteFile(run_dir + "/" + name, text);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace lockstorm
