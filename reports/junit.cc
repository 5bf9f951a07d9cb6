// junit.xml: one <testsuite> per scenario, one <testcase> per result row.
#include <cstdio>
#include <map>
#include <sstream>

#include "reports/render.h"

namespace lockstorm {
namespace {

using nlohmann::json;
using namespace render_internal;

constexpr size_t kEvidencePerCase = 20;  // violations in a <failure> body
constexpr size_t kInfraPerCase = 20;     // infrastructure errors in a <failure> body

// Text for XML content and attribute values: the five special characters escaped, characters
// that XML 1.0 forbids (controls but tab, newline, carriage return) replaced by '?'.
std::string XmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
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
        out += "&apos;";
        break;
      default:
        if (u < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          out += '?';
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string Seconds(const json& row) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", Number(row, {"elapsed_us"}).value_or(0) / 1e6);
  return buf;
}

// The suite a row belongs to: its base scenario for a repetition, else its scenario.
std::string SuiteOf(const json& row) {
  std::string base = Text(row, {"base_scenario"});
  return base.empty() ? Text(row, {"scenario"}, "?") : base;
}

// The evidence of a row: its first violations, or its infrastructure errors.
std::string Evidence(const json& row) {
  std::ostringstream out;
  std::vector<const json*> shown = FirstViolations(row, kEvidencePerCase, kEvidencePerCase);
  const json* listed = At(row, {"violations"});
  size_t listed_n = listed != nullptr && listed->is_array() ? listed->size() : 0;
  if (!shown.empty()) {
    out << "violations: " << ViolationSummary(row) << "; the first " << shown.size() << " of "
        << listed_n << " listed:\n";
  }
  for (const json* v : shown) out << ViolationLine(*v) << "\n";
  if (const json* infra = At(row, {"infra_errors"}); infra != nullptr && infra->is_array()) {
    for (size_t i = 0; i < infra->size() && i < kInfraPerCase; ++i) {
      const json& e = (*infra)[i];
      out << "infrastructure: " << (e.is_string() ? e.get<std::string>() : e.dump()) << "\n";
    }
  }
  return out.str();
}

struct Suite {
  std::string name;
  std::vector<const json*> rows;
  int failures = 0;
  double seconds = 0;
};

bool Fails(const json& row) {
  std::string v = Text(row, {"verdict"});
  return v == "fail" || v == "inconclusive";
}

}  // namespace

std::string RenderJUnit(const json& report) {
  std::vector<Suite> suites;
  std::map<std::string, size_t> index;
  int failures = 0, tests = 0;
  double seconds = 0;
  for (const json* r : Rows(report)) {
    std::string name = SuiteOf(*r);
    auto [it, fresh] = index.emplace(name, suites.size());
    if (fresh) suites.push_back({name, {}, 0, 0});
    Suite& s = suites[it->second];
    s.rows.push_back(r);
    double sec = Number(*r, {"elapsed_us"}).value_or(0) / 1e6;
    s.seconds += sec;
    seconds += sec;
    ++tests;
    if (Fails(*r)) {
      ++s.failures;
      ++failures;
    }
  }
  const json& context =
      report.is_object() && report.contains("context") ? report["context"] : json::object();
  auto fmt = [](double sec) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", sec);
    return std::string(buf);
  };

  std::ostringstream out;
  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out << "<testsuites name=\"lockstorm\" tests=\"" << tests << "\" failures=\"" << failures
      << "\" errors=\"0\" time=\"" << fmt(seconds) << "\">\n";
  for (const Suite& s : suites) {
    out << "  <testsuite name=\"lockstorm." << XmlEscape(s.name) << "\" tests=\"" << s.rows.size()
        << "\" failures=\"" << s.failures << "\" errors=\"0\" skipped=\"0\" time=\""
        << fmt(s.seconds) << "\"";
    if (std::string t = Text(context, {"start_time"}); !t.empty()) {
      out << " timestamp=\"" << XmlEscape(t) << "\"";
    }
    if (std::string h = Text(context, {"host"}); !h.empty()) {
      out << " hostname=\"" << XmlEscape(h) << "\"";
    }
    out << ">\n    <properties>\n";
    for (const char* p :
         {"lockstorm_version", "git_revision", "redis_version", "seed", "command_line", "mode"}) {
      if (std::string v = Text(context, {p}); !v.empty()) {
        out << "      <property name=\"" << p << "\" value=\"" << XmlEscape(v) << "\"/>\n";
      }
    }
    out << "    </properties>\n";
    for (const json* r : s.rows) {
      const json& row = *r;
      std::string verdict = Text(row, {"verdict"}, "?");
      std::string failure = Text(row, {"failure"});
      out << "    <testcase classname=\"lockstorm." << XmlEscape(Text(row, {"scenario"}, "?"))
          << "\" name=\"" << XmlEscape(Text(row, {"impl"}, "?")) << "\" time=\"" << Seconds(row)
          << "\"";
      std::string evidence = Evidence(row);
      if (Fails(row)) {
        std::string message = verdict + (failure.empty() ? "" : " (" + failure + ")");
        if (verdict == "inconclusive") {
          message += ": nothing was acquired in the safety phase";
        } else {
          message += ": violations " + ViolationSummary(row);
        }
        out << ">\n      <failure message=\"" << XmlEscape(message) << "\" type=\""
            << XmlEscape(failure.empty() ? verdict : failure) << "\">" << XmlEscape(evidence)
            << "</failure>\n    </testcase>\n";
      } else if (verdict == "expected-fail" || verdict == "unexpected-pass") {
        std::string note = verdict == "expected-fail"
                               ? "expected-fail" + (failure.empty() ? "" : " (" + failure + ")") +
                                     ": the lock is declared " + Text(row, {"expected"}, "?") +
                                     " in this scenario and the checkers confirmed it.\n" + evidence
                               : "unexpected-pass: the lock is declared " +
                                     Text(row, {"expected"}, "?") +
                                     " in this scenario, but no violation was found.\n";
        out << ">\n      <system-out>" << XmlEscape(note) << "</system-out>\n    </testcase>\n";
      } else {
        out << "/>\n";
      }
    }
    out << "  </testsuite>\n";
  }
  out << "</testsuites>\n";
  return out.str();
}

}  // namespace lockstorm
