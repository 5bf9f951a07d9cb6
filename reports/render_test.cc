// Unit tests of the report renderings (reports/render.h): golden report.md and junit.xml,
// the HTML's specs and self-containment, escaping, and RenderRunDir's errors.
#include "reports/render.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "harness/process.h"

namespace lockstorm {
namespace {

using nlohmann::json;

const std::string kTestdata = std::string(LOCKSTORM_SOURCE_DIR) + "/reports/testdata/";

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

json Fixture(const std::string& name) { return json::parse(Slurp(kTestdata + name)); }

// Compares `actual` with the golden file byte for byte; LOCKSTORM_UPDATE_GOLDEN=1 rewrites it.
void ExpectGolden(const std::string& name, const std::string& actual) {
  const std::string path = kTestdata + name;
  const char* update = std::getenv("LOCKSTORM_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << actual;
    GTEST_SKIP() << "rewrote " << path;
  }
  std::string expected = Slurp(path);
  if (expected == actual) return;
  // The first differing line, as a hint.
  std::istringstream e(expected), a(actual);
  std::string el, al;
  int line = 0;
  for (int i = 0; i < 100000; ++i) {
    bool more_e = static_cast<bool>(std::getline(e, el));
    bool more_a = static_cast<bool>(std::getline(a, al));
    ++line;
    if (!more_e && !more_a) break;
    if (!more_e) el = "<end of file>";
    if (!more_a) al = "<end of output>";
    if (el != al) break;
  }
  ADD_FAILURE() << path << " differs from the rendering, first at line " << line
                << ":\n  golden: " << el << "\n  actual: " << al
                << "\nIf the change is intended, regenerate the golden files with\n"
                << "  LOCKSTORM_UPDATE_GOLDEN=1 ./unit_tests --gtest_filter='RenderGolden.*'\n"
                << "and review them with a diff.";
}

// A small XML well-formedness check: balanced tags, quoted attributes, only the predefined
// or numeric entities, no raw '<' in text or attributes, no forbidden control characters.
// Returns "" when well-formed, else what is wrong.
std::string XmlProblem(const std::string& xml) {
  std::vector<std::string> open;
  size_t i = 0;
  auto entity_ok = [&](size_t amp) {
    size_t semi = xml.find(';', amp);
    if (semi == std::string::npos || semi - amp > 10) return false;
    std::string name = xml.substr(amp + 1, semi - amp - 1);
    if (name == "amp" || name == "lt" || name == "gt" || name == "quot" || name == "apos") {
      return true;
    }
    return name.size() > 1 && name[0] == '#';
  };
  for (unsigned char c : xml) {
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return "a control character";
  }
  if (xml.rfind("<?xml", 0) == 0) i = xml.find("?>") + 2;
  bool root_seen = false;
  while (i < xml.size()) {
    if (xml[i] == '&') {
      if (!entity_ok(i)) return "a bad entity at " + std::to_string(i);
      ++i;
      continue;
    }
    if (xml[i] != '<') {
      if (open.empty() && !std::isspace(static_cast<unsigned char>(xml[i]))) {
        return "text outside the root at " + std::to_string(i);
      }
      ++i;
      continue;
    }
    size_t end = i + 1;
    char quote = 0;
    for (; end < xml.size(); ++end) {
      char c = xml[end];
      if (quote != 0) {
        if (c == quote) quote = 0;
        if (c == '<') return "'<' in an attribute at " + std::to_string(end);
        if (c == '&' && !entity_ok(end)) return "a bad entity at " + std::to_string(end);
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '<') {
        return "'<' inside a tag at " + std::to_string(end);
      } else if (c == '>') {
        break;
      }
    }
    if (end >= xml.size()) return "an unterminated tag at " + std::to_string(i);
    std::string tag = xml.substr(i + 1, end - i - 1);
    if (tag.empty()) return "an empty tag";
    if (tag[0] == '/') {
      if (open.empty() || open.back() != tag.substr(1)) {
        return "a mismatched </" + tag.substr(1) + ">";
      }
      open.pop_back();
    } else {
      size_t name_end = tag.find_first_of(" \t\n/");
      std::string name = tag.substr(0, name_end);
      if (open.empty() && root_seen) return "a second root <" + name + ">";
      root_seen = true;
      // Attributes: name="value" pairs.
      std::string rest = name_end == std::string::npos ? "" : tag.substr(name_end);
      if (!rest.empty() && rest.back() == '/') rest.pop_back();
      size_t p = 0;
      for (int guard = 0; guard < 1000; ++guard) {
        while (p < rest.size() && std::isspace(static_cast<unsigned char>(rest[p]))) ++p;
        if (p >= rest.size()) break;
        size_t eq = rest.find('=', p);
        if (eq == std::string::npos || eq + 1 >= rest.size() ||
            (rest[eq + 1] != '"' && rest[eq + 1] != '\'')) {
          return "an unquoted attribute in <" + name + ">";
        }
        size_t close = rest.find(rest[eq + 1], eq + 2);
        if (close == std::string::npos) return "an unterminated attribute in <" + name + ">";
        p = close + 1;
      }
      if (tag.back() != '/') open.push_back(name);
    }
    i = end + 1;
  }
  if (!open.empty()) return "<" + open.back() + "> is not closed";
  return root_seen ? "" : "no root element";
}

// xmllint's verdict when it is installed: "" when well-formed or absent, else its error.
std::string XmllintProblem(const std::string& xml) {
  std::string lint = FindExecutable("xmllint");
  if (lint.empty()) return "";
  char dir_template[] = "/tmp/lockstorm-render-XXXXXX";
  std::string dir = mkdtemp(dir_template);
  std::ofstream(dir + "/junit.xml") << xml;
  SpawnOptions o;
  o.argv = {lint, "--noout", dir + "/junit.xml"};
  o.stderr_path = dir + "/err.txt";
  std::unique_ptr<Process> p;
  Status s = Spawn(o, &p);
  std::string problem = s.ok() ? "" : s.ToString();
  int st = 0;
  if (s.ok()) {
    if (!p->WaitFor(30000, &st)) {
      problem = "xmllint did not finish in 30 s";
    } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      problem = "xmllint: " + Slurp(dir + "/err.txt");
    }
  }
  std::filesystem::remove_all(dir);
  return problem;
}

void ExpectWellFormedXml(const std::string& xml) {
  EXPECT_EQ(XmlProblem(xml), "") << xml;
  EXPECT_EQ(XmllintProblem(xml), "");
}

// The specs embedded in report.html.
json Specs(const std::string& html) {
  const std::string open = "<script type=\"application/json\" id=\"lockstorm-specs\">";
  size_t from = html.find(open);
  if (from == std::string::npos) return json();
  from += open.size();
  size_t to = html.find("</script>", from);
  return json::parse(html.substr(from, to - from));
}

const json* SpecOf(const json& specs, const std::string& description, int nth = 0) {
  for (const json& s : specs) {
    if (s["spec"].value("description", "") == description && nth-- == 0) return &s["spec"];
  }
  return nullptr;
}

Event Acquire(int64_t op, int client, int64_t invoke_us, int64_t complete_us,
              const std::string& impl = "set-nx-del", const std::string& key = "p:k0") {
  Event e;
  e.op_id = op;
  e.impl = impl;
  e.scenario = "contention";
  e.client = client;
  e.key = key;
  e.type = OpType::kAcquire;
  e.invoke_us = invoke_us;
  e.complete_us = complete_us;
  e.outcome = Outcome::kOk;
  e.ttl_ms = 100;
  e.valid_ms = 99;
  return e;
}

Event Release(int64_t op, const Event& acquire, int64_t invoke_us) {
  Event e = acquire;
  e.op_id = op;
  e.lease_op = acquire.op_id;
  e.type = OpType::kRelease;
  e.invoke_us = invoke_us;
  e.complete_us = invoke_us + 50;
  e.ttl_ms = e.valid_ms = 0;
  return e;
}

// The timeline's bars by acquire op.
std::map<int64_t, json> Bars(const json& spec) {
  std::map<int64_t, json> bars;
  for (const json& v : spec["layer"][0]["data"]["values"]) bars[v["acquire_op"].get<int64_t>()] = v;
  return bars;
}

TEST(RenderGolden, MarkdownV1) {
  ExpectGolden("report_v1.md", RenderMarkdown(Fixture("report_v1.json")));
}

TEST(RenderGolden, MarkdownV2) {
  ExpectGolden("report_v2.md", RenderMarkdown(Fixture("report_v2.json")));
}

TEST(RenderGolden, JUnitV1) {
  ExpectGolden("report_v1.junit.xml", RenderJUnit(Fixture("report_v1.json")));
}

TEST(RenderGolden, JUnitV2) {
  ExpectGolden("report_v2.junit.xml", RenderJUnit(Fixture("report_v2.json")));
}

TEST(RenderMarkdown, ShowsContentionOnlyWhenPresent) {
  std::string v1 = RenderMarkdown(Fixture("report_v1.json"));
  std::string v2 = RenderMarkdown(Fixture("report_v2.json"));
  EXPECT_EQ(v1.find("fairness"), std::string::npos);
  EXPECT_NE(v2.find("fairness (Jain)"), std::string::npos);
  EXPECT_NE(v2.find("mode closed"), std::string::npos);
  EXPECT_NE(v2.find("Example CPU"), std::string::npos);
  // Repetitions are rows of their own.
  EXPECT_NE(v2.find("| kill-node#1 |"), std::string::npos);
  EXPECT_NE(v2.find("| kill-node#2 |"), std::string::npos);
  // No emoji: the markers are ASCII.
  for (unsigned char c : v2) EXPECT_FALSE(c == 0xF0) << "a 4-byte UTF-8 sequence (emoji?)";
}

TEST(RenderMarkdown, DegradesOnAnEmptyReport) {
  std::string md = RenderMarkdown(json::object());
  EXPECT_NE(md.find("lockstorm ?"), std::string::npos);
  EXPECT_NE(md.find("(no result rows)"), std::string::npos);
  EXPECT_NE(RenderJUnit(json::object()).find("<testsuites"), std::string::npos);
  ExpectWellFormedXml(RenderJUnit(json::array()));
  EXPECT_NE(RenderHtml(json(42), {}).find("</html>"), std::string::npos);
}

TEST(RenderJUnit, WellFormedWithOneSuitePerScenario) {
  std::string xml = RenderJUnit(Fixture("report_v2.json"));
  ExpectWellFormedXml(xml);
  EXPECT_NE(xml.find("<testsuite name=\"lockstorm.contention\" tests=\"2\" failures=\"0\""),
            std::string::npos);
  EXPECT_NE(xml.find("<testsuite name=\"lockstorm.kill-node\" tests=\"2\" failures=\"2\""),
            std::string::npos);
  EXPECT_NE(xml.find("classname=\"lockstorm.kill-node#1\" name=\"token-lua\" time=\"2.500\""),
            std::string::npos);
  // expected-fail passes with a note; fail and inconclusive fail with evidence.
  EXPECT_NE(xml.find("<system-out>expected-fail (safety)"), std::string::npos);
  EXPECT_NE(xml.find("<failure message=\"fail (safety)"), std::string::npos);
  EXPECT_NE(xml.find("<failure message=\"inconclusive"), std::string::npos);
  EXPECT_NE(xml.find("ops 901, 907"), std::string::npos);
}

TEST(RenderJUnit, ListsAtMostTwentyViolations) {
  json report = Fixture("report_v2.json");
  json& row = report["results"][0];
  row["verdict"] = "fail";
  for (int i = 0; i < 50; ++i) {
    row["violations"].push_back({{"kind", "overlap"}, {"key", "k"}, {"op_a", 10000 + i}});
  }
  std::string xml = RenderJUnit(report);
  size_t from = xml.find("<failure message=\"fail (safety)");
  ASSERT_NE(from, std::string::npos) << xml;
  from = xml.find('>', from) + 1;
  std::string body = xml.substr(from, xml.find("</failure>", from) - from);
  EXPECT_NE(body.find("the first 20 of 66 listed:\n"), std::string::npos) << body;
  size_t lines = std::count(body.begin(), body.end(), '\n');
  EXPECT_EQ(lines, 21u) << body;  // the summary and 20 violations
  ExpectWellFormedXml(xml);
}

TEST(RenderHtml, SelfContainedWithThePlotSpecs) {
  json report = Fixture("report_v2.json");
  Event a1 = Acquire(1, 0, 100, 200), a2 = Acquire(3, 1, 300, 400);
  std::vector<Event> history = {a1, Release(2, a1, 250), a2, Release(4, a2, 500)};
  std::string html = RenderHtml(report, history);
  json specs = Specs(html);
  ASSERT_TRUE(specs.is_array()) << "no lockstorm-specs JSON";
  // The scenario and its fault schedule, as in report.md.
  EXPECT_NE(html.find("<h2>Scenario</h2>\n<p><b>contention</b>: 16 clients contend for one key"),
            std::string::npos);
  EXPECT_NE(html.find("<pre class=\"schedule\">16 clients, 1 key, ttl 500 ms, 3.0 s on 1 node; "
                      "0 faults</pre>"),
            std::string::npos);
  ASSERT_NE(SpecOf(specs, "lockstorm:latency-curves"), nullptr);
  ASSERT_NE(SpecOf(specs, "lockstorm:throughput"), nullptr);
  ASSERT_NE(SpecOf(specs, "lockstorm:holder-timeline"), nullptr);
  // One timeline: only set-nx-del/contention has ok acquires in this history.
  EXPECT_EQ(SpecOf(specs, "lockstorm:holder-timeline", 1), nullptr);
  EXPECT_NE(html.find("data-lockstorm-plots=\"3\""), std::string::npos);
  EXPECT_NE(html.find("data-lockstorm-status=\"pending\""), std::string::npos);
  EXPECT_NE(html.find("renderer: 'svg'"), std::string::npos);
  // Nothing is loaded from elsewhere: every script is inline, no stylesheet link.
  EXPECT_EQ(html.find("<script src"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  size_t scripts = 0;
  for (size_t p = html.find("<script"); p != std::string::npos; p = html.find("<script", p + 1)) {
    std::string tag = html.substr(p, html.find('>', p) - p);
    EXPECT_EQ(tag.find("src="), std::string::npos) << tag;
    ++scripts;
  }
  EXPECT_EQ(scripts, 6u);  // errors, vega, vega-lite, vega-embed, specs, embed
  EXPECT_NE(html.find("vegaEmbed"), std::string::npos);
  // The fault period of kill-node#1 is shaded, the nines axis is labelled.
  const json& tp = *SpecOf(specs, "lockstorm:throughput");
  EXPECT_EQ(tp["layer"][0]["mark"]["type"], "rect");
  EXPECT_EQ(tp["layer"][0]["data"]["values"][0]["fault"], "kill-node");
  EXPECT_NE(SpecOf(specs, "lockstorm:latency-curves")->dump().find("99.9%"), std::string::npos);
  // The md table is in the page.
  EXPECT_NE(html.find("<td class=\"verdict\">[xfail] expected-fail (safety)</td>"),
            std::string::npos);
}

TEST(RenderHtml, LatencyCurvesUseTheNinesAxis) {
  json specs = Specs(RenderHtml(Fixture("report_v2.json"), {}));
  const json* spec = SpecOf(specs, "lockstorm:latency-curves");
  ASSERT_NE(spec, nullptr);
  bool saw_p999 = false;
  for (const json& v : (*spec)["data"]["values"]) {
    EXPECT_LT(v["p"].get<double>(), 100.0);  // p = 100 has no place on a nines axis
    EXPECT_GT(v["us"].get<double>(), 0.0);
    if (v["p"] == 99.9) {
      saw_p999 = true;
      EXPECT_NEAR(v["x"].get<double>(), 3.0, 1e-9);
    }
  }
  EXPECT_TRUE(saw_p999);
  EXPECT_EQ((*spec)["spec"]["encoding"]["y"]["scale"]["type"], "log");
}

TEST(RenderHtml, V1FallsBackToPercentilesAndHistoryThroughput) {
  Event a1 = Acquire(1, 0, 100, 200), a2 = Acquire(3, 1, 300, 250000);
  std::vector<Event> history = {a1, Release(2, a1, 250), a2, Release(4, a2, 260000)};
  std::string html = RenderHtml(Fixture("report_v1.json"), history);
  json specs = Specs(html);
  const json* lat = SpecOf(specs, "lockstorm:latency-curves");
  ASSERT_NE(lat, nullptr);
  EXPECT_GE((*lat)["data"]["values"].size(), 8u);  // p0..p99.9 of acquire and release, 2 rows
  const json* tp = SpecOf(specs, "lockstorm:throughput");
  ASSERT_NE(tp, nullptr);
  EXPECT_NE(html.find("counted from history.jsonl"), std::string::npos);
}

TEST(RenderHtml, TimelineColorsOverlappingLeasesRed) {
  json report = Fixture("report_v1.json");
  // c0 holds [200, 10000) (release invoked at 10000); c1 acquires at 5000: overlap.
  // c2 holds [20000, 30000) alone. c3's lease ended at its deadline before c4 acquired.
  Event a1 = Acquire(1, 0, 100, 200), a2 = Acquire(3, 1, 4000, 5000),
        a3 = Acquire(5, 2, 19000, 20000), a4 = Acquire(7, 3, 30000, 40000),
        a5 = Acquire(9, 4, 140000, 141000);
  std::vector<Event> history = {
      a1, a2, Release(2, a1, 10000),  Release(4, a2, 12000),  a3, Release(6, a3, 30000),
      a4, a5, Release(8, a4, 150000), Release(10, a5, 150500)};
  std::string html = RenderHtml(report, history);
  json specs = Specs(html);
  const json* spec = SpecOf(specs, "lockstorm:holder-timeline");
  ASSERT_NE(spec, nullptr);
  std::map<int64_t, json> bars = Bars(*spec);
  ASSERT_EQ(bars.size(), 5u);
  EXPECT_EQ(bars[1]["state"], "overlap");
  EXPECT_EQ(bars[3]["state"], "overlap");
  EXPECT_EQ(bars[5]["state"], "held");
  // c3's lease ends at its validity (40000 + 99 ms), not at its late release.
  EXPECT_EQ(bars[7]["state"], "held");
  EXPECT_EQ(bars[7]["ended_by"], "deadline");
  EXPECT_DOUBLE_EQ(bars[7]["end_s"].get<double>(), 0.139);
  EXPECT_EQ(bars[9]["state"], "held");
  EXPECT_EQ(bars[1]["release_op"], 2);
  EXPECT_EQ(bars[1]["label"], "client 0: acquire op 1, release op 2, OVERLAP");
  EXPECT_EQ((*spec)["layer"][0]["encoding"]["color"]["scale"]["range"][1], "#d62728");
}

TEST(RenderHtml, TimelineWindowIsBoundedAroundTheFirstViolation) {
  json report = Fixture("report_v1.json");
  json& row = report["results"][0];
  // 5000 back-to-back leases of 1 ms; one overlap between ops 7001 and 7003 at t = 3.5 s.
  std::vector<Event> history;
  int64_t op = 1;
  for (int i = 0; i < 5000; ++i) {
    int64_t t = 1000 + i * 1000;
    Event a = Acquire(op, i % 4, t - 10, t);
    a.valid_ms = 1;
    history.push_back(a);
    history.push_back(Release(op + 1, a, t + 900));
    op += 2;
  }
  Event late = Acquire(100001, 7, 3500100, 3500200);
  history.push_back(late);
  history.push_back(Release(100002, late, 3500500));
  row["violations"] = json::array({{{"kind", "overlap"},
                                    {"key", "p:k0"},
                                    {"op_a", 6999},
                                    {"op_b", 100001},
                                    {"client_a", 3},
                                    {"client_b", 7},
                                    {"start_us", 3500200},
                                    {"overlap_us", 300}}});
  json specs = Specs(RenderHtml(report, history));
  const json* spec = SpecOf(specs, "lockstorm:holder-timeline");
  ASSERT_NE(spec, nullptr);
  std::map<int64_t, json> bars = Bars(*spec);
  EXPECT_LE(bars.size(), static_cast<size_t>(kTimelineMaxBars));
  EXPECT_GE(bars.size(), static_cast<size_t>(kTimelineMaxBars) - 1);
  ASSERT_TRUE(bars.count(100001));
  EXPECT_EQ(bars[100001]["state"], "overlap");
  EXPECT_EQ(bars[6999]["state"], "overlap");
  EXPECT_FALSE(bars.count(1)) << "the window starts near the violation, not at the start";
  EXPECT_EQ((*spec)["layer"][1]["mark"]["type"], "rule");  // the violation's mark
}

TEST(RenderSkippedFaults, MarkdownAndHtmlListWhatWasSkippedAndWhy) {
  json report = Fixture("report_v2.json");
  EXPECT_EQ(RenderMarkdown(report).find("Skipped faults"), std::string::npos);  // none skipped
  report["context"]["config"]["skipped_faults"] = json::array(
      {{{"fault", "at 3.0 s: failover"}, {"why", "not started by lockstorm"}},
       {{"fault", "topology: 1 replica(s) per node"}, {"why", "not started by lockstorm"}}});
  const std::string md = RenderMarkdown(report);
  EXPECT_NE(md.find("**Skipped faults** (2):\n- at 3.0 s: failover: not started by lockstorm\n"
                    "- topology: 1 replica(s) per node: not started by lockstorm\n"),
            std::string::npos)
      << md;
  const std::string html = RenderHtml(report, {});
  EXPECT_NE(html.find("<p><b>Skipped faults</b> (2):</p>\n<ul class=\"skipped\">\n<li>at 3.0 s: "
                      "failover: not started by lockstorm</li>"),
            std::string::npos);
}

TEST(RenderEscaping, HostileStringsAreEscapedEverywhere) {
  const std::string hostile = "<script>alert(\"x&y\")</script>'|`*_[]\x01";
  json report = Fixture("report_v2.json");
  for (json& row : report["results"]) row["impl"] = hostile;
  report["results"][0]["violations"][0]["detail"] = hostile;
  report["results"][2]["faults"][0]["fault"] = hostile;
  report["context"]["git_revision"] = hostile;
  report["context"]["config"]["scenario_description"] = hostile;
  report["context"]["config"]["schedule"] = "2 clients; 1 fault:\n  " + hostile;
  report["context"]["config"]["skipped_faults"] =
      json::array({{{"fault", hostile}, {"why", hostile}}});
  Event a1 = Acquire(1, 0, 100, 200, hostile, hostile);
  std::vector<Event> history = {a1, Release(2, a1, 300)};

  std::string md = RenderMarkdown(report);
  EXPECT_EQ(md.find("<script>"), std::string::npos);
  EXPECT_NE(md.find("&lt;script&gt;alert(\"x&amp;y\")&lt;/script&gt;'\\|\\`\\*\\_\\[\\]"),
            std::string::npos)
      << md;

  std::string xml = RenderJUnit(report);
  ExpectWellFormedXml(xml);
  EXPECT_EQ(xml.find("<script>"), std::string::npos);
  EXPECT_NE(xml.find("name=\"&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&apos;"),
            std::string::npos);

  std::string html = RenderHtml(report, history);
  EXPECT_EQ(html.find("<script>alert"), std::string::npos);
  EXPECT_EQ(html.find("</script>'"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#39;"),
            std::string::npos);
  json specs = Specs(html);  // the JSON in <script> still parses to the original strings
  ASSERT_TRUE(specs.is_array());
  EXPECT_NE(specs.dump().find("<script>alert"), std::string::npos);
  EXPECT_NE(SpecOf(specs, "lockstorm:holder-timeline"), nullptr);
}

class RenderRunDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lockstorm-render-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name, std::ios::binary | std::ios::trunc) << text;
  }
  std::string dir_;
};

TEST_F(RenderRunDirTest, RenderRunDirWritesTheThreeFiles) {
  Write("report.json", Slurp(kTestdata + "report_v1.json"));
  Event a1 = Acquire(1, 0, 100, 200);
  Write("history.jsonl", EventToJson(a1) + "\n" + EventToJson(Release(2, a1, 300)) + "\n");
  Status s = RenderRunDir(dir_);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Slurp(dir_ + "/report.md"), RenderMarkdown(Fixture("report_v1.json")));
  EXPECT_EQ(Slurp(dir_ + "/junit.xml"), RenderJUnit(Fixture("report_v1.json")));
  EXPECT_NE(Slurp(dir_ + "/report.html").find("lockstorm:holder-timeline"), std::string::npos);
}

TEST_F(RenderRunDirTest, RenderRunDirWithoutHistoryStillRenders) {
  Write("report.json", Slurp(kTestdata + "report_v2.json"));
  Status s = RenderRunDir(dir_);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::string html = Slurp(dir_ + "/report.html");
  EXPECT_NE(html.find("no ok acquire in the history"), std::string::npos);
  EXPECT_EQ(html.find("lockstorm:holder-timeline"), std::string::npos);
}

TEST_F(RenderRunDirTest, RenderRunDirErrorsNameTheFileAndWhatWasExpected) {
  Status s = RenderRunDir(dir_ + "/nope");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message(), dir_ +
                             "/nope/report.json: cannot open: No such file or directory "
                             "(expected the report.json of a lockstorm run)");

  Write("report.json", "{\"results\": [");
  s = RenderRunDir(dir_);
  EXPECT_EQ(s.message().rfind(dir_ + "/report.json: expected JSON: parse error at line 1", 0), 0u)
      << s.message();

  Write("report.json", "{\"schema_version\": 1, \"results\": 3}");
  s = RenderRunDir(dir_);
  EXPECT_EQ(s.message(), dir_ + "/report.json: expected a JSON object with a \"results\" array");

  Write("report.json", "{\"schema_version\": 9, \"results\": []}");
  s = RenderRunDir(dir_);
  EXPECT_EQ(s.message(), dir_ + "/report.json: expected \"schema_version\" 1 or 2, got 9");

  Write("report.json", "{\"schema_version\": 2, \"results\": []}");
  Write("history.jsonl", EventToJson(Acquire(1, 0, 1, 2)) + "\n{\"op\": \"x\"}\n");
  s = RenderRunDir(dir_);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind(dir_ + "/history.jsonl:2: expected", 0), 0u) << s.message();
  for (const char* f : {"report.md", "junit.xml", "report.html"}) {
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/" + f)) << f;
  }
  for (char c : s.message()) EXPECT_NE(c, '\n');
}

}  // namespace
}  // namespace lockstorm
