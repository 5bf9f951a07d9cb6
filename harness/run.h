// The `run`, `list` and `check` commands: everything between the command line and the
// reports. main.cc only parses flags into these structs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "harness/status.h"
#include "harness/tls.h"

namespace lockstorm {

class ServerPool;

struct RunOptions {
  std::vector<std::string> impls;       // built-in names or exec specs, in order
  std::string scenario = "contention";  // built-in scenario name
  std::optional<int> clients;           // overrides of the scenario's workload
  std::optional<int> keys;
  std::optional<double> duration_s;
  std::optional<int64_t> ttl_ms;
  std::optional<int64_t> wait_ms;
  bool extend = false;           // clients extend when a hold would outlive the lease
  std::optional<uint64_t> seed;  // random if absent (printed)
  std::string out_dir;           // the run directory; default runs/<time>-<seed>
  std::string servers;           // external servers "host:port,..." (empty: embedded)
  TlsOptions tls;                // for rediss:// servers (and sentinels)
  // "host:port[,host:port...]/MASTER": the servers are the masters Sentinel names (one per
  // MASTER, comma-separated after the '/'), asked of the first sentinel that answers.
  std::string sentinel;
  int nodes = 5;             // embedded nodes when a multi-node lock runs
  std::string persistence;   // overrides the scenario's ("" = keep)
  std::string pin = "none";  // none | same | split
  bool quiet = false;
  bool samples = true;  // contract samples (GET+PTTL after acquires); --no-samples turns off
  std::optional<double> rate_per_s;   // open loop at this total cycle rate (0 = closed loop)
  std::optional<int> client_threads;  // fibers on N threads (0 = a thread per client); absent:
                                      // AutoClientThreads (harness/runner.h)
  int repeat = 1;                     // repetitions of every impl (rows "SCENARIO#k")
  std::string progress = "auto";      // auto (a TTY outside CI) | always | never
  std::string command_line;           // for the report's context
  // Embedded servers from this pool (kept running after the run) instead of servers started
  // and stopped for this run alone; not for replicated topologies. Not owned; null = none.
  ServerPool* server_pool = nullptr;
};

// Prints "lockstorm: LINE" (one line) to stderr and returns kExitUsage (4): how every command
// reports bad input.
int UsageError(const std::string& line);

// runs/<kind><local time YYYYmmdd-HHMMSS>-<seed>: a run directory's default name.
std::string DefaultRunDir(const std::string& kind, uint64_t seed);

// Runs the comparison; returns the process exit code (reports/report.h ExitCode). Usage and
// infrastructure errors print one line to stderr and return 4.
int RunCommand(const RunOptions& opts);

// Prints the built-in locks and scenarios.
int ListCommand();

// Re-checks a stored run directory offline and prints the table; returns the exit code.
int CheckCommand(const std::string& run_dir);

// Re-renders report.md, report.html and junit.xml from RUN_DIR's report.json and
// history.jsonl. 0, or 4 with one line on stderr.
int ReportCommand(const std::string& run_dir);

struct CompareCommandOptions {
  std::string base, candidate;  // run directories or report.json files
  double threshold_pct = 10;
  double alpha = 0.05;
  std::vector<std::string> metrics;  // HIST.FIELD, e.g. acquire.p50 (empty = compare's default)
  std::string out_md;                // also write the Markdown here ("" = stdout only)
};
// `lockstorm compare`: prints the comparison as Markdown; 0 = the gate passes, 1 = it fails
// (harness/compare.h), 4 = usage error.
int CompareCommand(const CompareCommandOptions& opts);

}  // namespace lockstorm
