// End to end: a real run (set-nx-del violates, token-lua does not), rendered by RenderRunDir,
// and report.html opened in headless Chromium: every plot renders, offline, with the
// overlapping leases red. The run directory (with report.png) is left in place and printed.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>

#include "harness/process.h"
#include "reports/render.h"
#include "tests/cli_util.h"

namespace lockstorm {
namespace {

constexpr const char* kChromium = "/usr/bin/chromium";
constexpr int64_t kChromiumTimeoutMs = 90000;

// Runs headless Chromium on `url` with `extra` flags, stdout to `out_path`. Bounded: the
// browser is killed after kChromiumTimeoutMs. Returns "" on success, else what went wrong.
std::string RunChromium(const std::string& dir, const std::string& url,
                        const std::vector<std::string>& extra, const std::string& out_path,
                        const std::string& log_path) {
  SpawnOptions o;
  o.argv = {kChromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--user-data-dir=" + dir + "/chromium-profile",
            "--virtual-time-budget=10000"};
  o.argv.insert(o.argv.end(), extra.begin(), extra.end());
  o.argv.push_back(url);
  o.stdout_path = out_path;
  o.stderr_path = log_path;
  std::unique_ptr<Process> p;
  Status s = Spawn(o, &p);
  if (!s.ok()) return s.ToString();
  int st = 0;
  if (!p->WaitFor(kChromiumTimeoutMs, &st)) {
    p->Stop(1000);
    return "chromium did not finish within " + std::to_string(kChromiumTimeoutMs) + " ms";
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    return "chromium failed (wait status " + std::to_string(st) + "): " + ReadFile(log_path);
  }
  return "";
}

// The tags (from '<' to '>') of `html` that contain every string of `parts`.
int CountTags(const std::string& html, const std::vector<std::string>& parts) {
  int n = 0;
  for (size_t p = html.find(parts[0]); p != std::string::npos; p = html.find(parts[0], p + 1)) {
    size_t open = html.rfind('<', p), close = html.find('>', p);
    if (open == std::string::npos || close == std::string::npos) continue;
    std::string tag = html.substr(open, close - open);
    bool all = true;
    for (const std::string& part : parts) all = all && tag.find(part) != std::string::npos;
    n += all;
  }
  return n;
}

// The value of the first `name="..."` attribute in `html`, or "(none)".
std::string AttrValue(const std::string& html, const std::string& name) {
  size_t p = html.find(name + "=\"");
  if (p == std::string::npos) return "(none)";
  p += name.size() + 2;
  return html.substr(p, html.find('"', p) - p);
}

TEST(RenderItest, RunRendersAndChromiumDrawsEveryPlot) {
  if (!std::filesystem::exists(kChromium)) {
    GTEST_SKIP() << kChromium << " is not installed (apt-get install chromium)";
  }
  // Kept after the test, for a look at report.html and report.png.
  char tmpl[] = "/tmp/lockstorm-render-itest-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string run = dir + "/run";
  std::cout << "render itest output (kept): " << dir << std::endl;
  Result r = RunLockstorm({"run", "--impl", "set-nx-del,token-lua", "--ttl-ms", "100", "--duration",
                           "3", "--seed", "7", "--out", run},
                          dir);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;  // set-nx-del's overlaps are expected

  Status s = RenderRunDir(run);
  ASSERT_TRUE(s.ok()) << s.ToString();
  for (const char* f : {"report.md", "junit.xml", "report.html"}) {
    EXPECT_TRUE(std::filesystem::exists(run + "/" + f)) << f;
  }
  std::string md = ReadFile(run + "/report.md");
  EXPECT_NE(md.find("| set-nx-del | contention | [xfail] expected-fail (safety) |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("overlap on "), std::string::npos);
  std::string html = ReadFile(run + "/report.html");
  const int plots = std::atoi(AttrValue(html, "data-lockstorm-plots").c_str());
  EXPECT_EQ(plots, 4);  // latency, throughput, and a holder timeline per impl

  const std::string url = "file://" + run + "/report.html";
  std::string problem =
      RunChromium(dir, url, {"--dump-dom"}, run + "/dom.html", dir + "/chromium-dom.log");
  ASSERT_EQ(problem, "");
  std::string dom = ReadFile(run + "/dom.html");
  EXPECT_EQ(AttrValue(dom, "data-lockstorm-status"),
            "rendered:" + std::to_string(plots) + " errors:0");
  EXPECT_GE(CountTags(dom, {"<svg"}), plots);
  EXPECT_GT(CountTags(dom, {"aria-roledescription=\"line mark\""}), 0);
  // Red bars: set-nx-del's overlapping leases, each named by its operation ids.
  EXPECT_GT(CountTags(dom, {"fill=\"#d62728\"", "aria-roledescription=\"bar\""}), 0);
  EXPECT_GT(CountTags(dom, {"aria-label=\"client ", "release op ", "OVERLAP"}), 0);

  const std::string png = run + "/report.png";
  problem =
      RunChromium(dir, url, {"--screenshot=" + png, "--window-size=1400,2400", "--hide-scrollbars"},
                  dir + "/chromium-shot.out", dir + "/chromium-shot.log");
  ASSERT_EQ(problem, "");
  std::cout << "screenshot: " << png << std::endl;
  ASSERT_TRUE(std::filesystem::exists(png));
  EXPECT_GT(std::filesystem::file_size(png), 20u * 1024);
  std::error_code ec;
  std::filesystem::remove_all(dir + "/chromium-profile", ec);
}

}  // namespace
}  // namespace lockstorm
