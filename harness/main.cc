// lockstorm: a correctness-and-performance test harness for Redis lock implementations.
// This file only parses the command line; harness/run.cc does the work.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <sstream>

#include "harness/exec_lock.h"
#include "harness/explore_cmd.h"
#include "harness/mutation.h"
#include "harness/process.h"
#include "harness/redis_server.h"
#include "harness/run.h"
#include "harness/shutdown.h"
#include "reports/report.h"
#include "scenarios/generate.h"

namespace {

// --impl takes a comma-separated list of built-in names, or one exec spec (which may
// itself contain commas); the flag may be repeated.
std::vector<std::string> SplitImpls(const std::vector<std::string>& raw) {
  std::vector<std::string> out;
  for (const std::string& v : raw) {
    if (lockstorm::IsExecImpl(v)) {
      out.push_back(v);
      continue;
    }
    std::stringstream ss(v);
    std::string item;
    while (std::getline(ss, item, ','))
      if (!item.empty()) out.push_back(item);
  }
  return out;
}

// CLI11's messages can span lines; lockstorm's errors are one line.
std::string OneLine(std::string s) {
  for (char& c : s)
    if (c == '\n') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lockstorm;
  CLI::App app{
      "lockstorm: drives Redis lock implementations through contention and faults against real "
      "redis-servers, checks mutual exclusion from the recorded history, and reports latency.\n"
      "Exit codes: 0 no unexpected violation, 1 safety violation, 2 liveness violation, "
      "3 inconclusive, 4 usage/configuration/infrastructure error."};
  app.require_subcommand(1);
  app.footer(
      "Environment: an option marked (Env:NAME) also reads NAME. LOCKSTORM_REDIS_PASSWORD is the "
      "AUTH password of --servers/--sentinel servers (never written to a report or log).\n"
      "Quick start: scripts/run.sh (the default comparison), scripts/test.sh (the tests). "
      "Docs: README.md, ARCHITECTURE.md, docs/.");
  app.set_version_flag("--version",
                       std::string(LOCKSTORM_VERSION) + " (" + LOCKSTORM_GIT_REVISION + ")");

  RunOptions ro;
  std::vector<std::string> raw_impls;
  int clients = 0, keys = 0;
  double duration_s = 0;
  int64_t ttl_ms = 0, wait_ms = 0;
  uint64_t seed = 0;
  CLI::App* run =
      app.add_subcommand("run", "Run lock implementations through a scenario and write a report");
  run->add_option(
         "--impl", raw_impls,
         "Locks to test: built-in names (comma-separated; default: all built-in), or "
         "'exec:COMMAND' / 'NAME=exec:COMMAND' / 'exec:@file.json' for a plug-in. Repeatable.")
      ->envname("LOCKSTORM_IMPL");
  run->add_option("--scenario", ro.scenario,
                  "Built-in scenario name (see `lockstorm list`; default contention), or a "
                  "scenario file NAME.json (docs/scenario-format.md)")
      ->envname("LOCKSTORM_SCENARIO");
  auto* o_clients =
      run->add_option("--clients", clients, "Concurrent clients (scenario default: 16)");
  auto* o_keys = run->add_option("--keys", keys, "Keys contended on (default 1)");
  auto* o_duration =
      run->add_option("--duration", duration_s, "Seconds per implementation (default 10)")
          ->envname("LOCKSTORM_DURATION");
  auto* o_ttl = run->add_option("--ttl-ms", ttl_ms, "Lock TTL in ms (default 500)");
  auto* o_wait =
      run->add_option("--wait-ms", wait_ms, "Acquire retry budget in ms (default 2x TTL)");
  auto* o_seed =
      run->add_option("--seed", seed, "Seed of every random choice (printed when not given)")
          ->envname("LOCKSTORM_SEED");
  run->add_option("--out", ro.out_dir, "Run directory to create (default runs/<time>-<seed>)")
      ->envname("LOCKSTORM_OUT");
  run->add_option("--servers", ro.servers,
                  "Use these redis servers instead of starting embedded ones: host:port or "
                  "redis://[user:password@]host[:port][/db], comma-separated (a password is "
                  "better given in LOCKSTORM_REDIS_PASSWORD; it is never written out). Only "
                  "keys under the run's prefix are touched; faults that kill, pause, restart "
                  "or skew a server are skipped, and the report lists them. rediss:// is TLS")
      ->envname("LOCKSTORM_SERVERS");
  run->add_option("--sentinel", ro.sentinel,
                  "Ask Redis Sentinel for the servers: HOST:PORT[,HOST:PORT...]/MASTER[,MASTER...] "
                  "(or redis[s]:// URLs before the '/'); the current master of each MASTER "
                  "becomes a server, as with --servers")
      ->envname("LOCKSTORM_SENTINEL");
  run->add_option("--tls-ca-cert", ro.tls.ca_file,
                  "rediss://: the CA bundle (PEM) the servers' certificates must chain to "
                  "(default: the system's)")
      ->envname("LOCKSTORM_TLS_CA_CERT");
  run->add_option("--tls-cert", ro.tls.cert_file,
                  "rediss://: a client certificate (PEM), for servers with tls-auth-clients yes")
      ->envname("LOCKSTORM_TLS_CERT");
  run->add_option("--tls-key", ro.tls.key_file, "rediss://: the private key of --tls-cert (PEM)")
      ->envname("LOCKSTORM_TLS_KEY");
  bool tls_insecure = false;
  run->add_flag("--tls-insecure", tls_insecure,
                "rediss://: accept any server certificate (no CA or name check)")
      ->envname("LOCKSTORM_TLS_INSECURE");
  run->add_option("--nodes", ro.nodes,
                  "Embedded nodes for multi-node locks such as redlock (default 5)");
  run->add_option("--persistence", ro.persistence,
                  "Embedded servers' persistence: none, rdb, aof-everysec, aof-always");
  run->add_option("--pin", ro.pin,
                  "CPU placement: none, same (lockstorm and servers on CPU 0), split (lockstorm on "
                  "0, servers on 1)")
      ->envname("LOCKSTORM_PIN");
  run->add_flag("--extend", ro.extend, "Clients extend their lease when a hold would outlive it");
  run->add_flag("--quiet", ro.quiet, "Print only the summary table");
  double rate_per_s = 0;
  auto* o_rate =
      run->add_option("--rate", rate_per_s,
                      "Open loop: start acquire+release cycles at this total rate (cycles/s over "
                      "all clients), latency timed from each cycle's intended start "
                      "(coordinated omission corrected); default closed loop")
          ->envname("LOCKSTORM_RATE");
  int client_threads = 0;
  auto* o_client_threads =
      run->add_option("--client-threads", client_threads,
                      "Run the clients as fibers on this many threads (0 = an OS thread per "
                      "client); default: a thread per client up to 64 clients, else fibers on "
                      "one thread per CPU lockstorm may use")
          ->envname("LOCKSTORM_CLIENT_THREADS");
  run->add_option("--repeat", ro.repeat,
                  "Run every impl this many times (rows SCENARIO#1..#R), for `lockstorm "
                  "compare`'s statistics (default 1)")
      ->envname("LOCKSTORM_REPEAT");
  run->add_option("--progress", ro.progress,
                  "Progress line: auto (on a terminal, not in CI), always, never (default auto)")
      ->envname("LOCKSTORM_PROGRESS");
  bool no_samples = false;
  run->add_flag("--no-samples", no_samples,
                "Do not read lock keys back (GET+PTTL) after acquires: turns off the contract "
                "checks (docs/checkers.md) and saves a round trip per operation");

  CLI::App* list = app.add_subcommand("list", "List built-in locks and scenarios");
  std::string check_dir;
  CLI::App* check =
      app.add_subcommand("check", "Re-check a stored run directory's history offline");
  check->add_option("RUN_DIR", check_dir, "Run directory (holds history.jsonl and report.json)")
      ->required();

  std::string report_dir;
  CLI::App* report = app.add_subcommand(
      "report", "Re-render report.md, report.html and junit.xml of a stored run directory");
  report->add_option("RUN_DIR", report_dir, "Run directory (holds report.json and history.jsonl)")
      ->required();

  CompareCommandOptions co;
  CLI::App* compare = app.add_subcommand(
      "compare",
      "Compare a candidate run with a baseline: fails (exit 1) on a new violation, a verdict "
      "change, a missing impl x scenario, or a latency regression; prints Markdown");
  compare->add_option("BASE", co.base, "Baseline run directory or report.json")->required();
  compare->add_option("CANDIDATE", co.candidate, "Candidate run directory or report.json")
      ->required();
  compare
      ->add_option("--threshold-pct", co.threshold_pct,
                   "Slowdown of the median (p50/p99 per impl x scenario) that counts as a "
                   "regression, in percent (default 10)")
      ->envname("LOCKSTORM_THRESHOLD_PCT");
  compare
      ->add_option("--alpha", co.alpha,
                   "Significance of the Mann-Whitney U test across repetitions (default 0.05)")
      ->envname("LOCKSTORM_ALPHA");
  compare
      ->add_option("--metric", co.metrics,
                   "Latency metrics compared, HIST.FIELD (HIST: acquire, acquire_contended, "
                   "time_to_acquire, release, extend, cycle; FIELD: p50, p90, p99, p999, mean, "
                   "min, max); repeatable (default acquire.p50, acquire.p99, release.p50, "
                   "release.p99)")
      ->delimiter(',');
  compare->add_option("--out", co.out_md, "Also write the Markdown to this file");

  MutantsOptions mo;
  std::vector<std::string> raw_mutants;
  double mutants_duration_s = 0;
  CLI::App* mutants = app.add_subcommand(
      "mutants",
      "Run the mutant corpus (correct locks with one real-world bug each) through the scenarios "
      "that should expose them, beside their correct base locks; print the mutation score. "
      "Exit 0 only at 100% with no false alarm");
  mutants->add_option("--mutant", raw_mutants, "Only these mutants (comma-separated; default all)")
      ->envname("LOCKSTORM_MUTANTS");
  mutants->add_option("--seed", mo.seed, "Seed of every scenario run (default 1)")
      ->envname("LOCKSTORM_SEED");
  mutants->add_option("--out", mo.out_dir, "Run directory (default runs/mutants-<time>-<seed>)")
      ->envname("LOCKSTORM_OUT");
  auto* o_mdur = mutants->add_option("--duration", mutants_duration_s,
                                     "Seconds per lock in the fault-free scenarios (default 3)");
  bool mutants_verbose = false;
  mutants->add_flag("--verbose", mutants_verbose, "Show each scenario run's progress");

  ExploreCommandOptions xo;
  CLI::App* explore = app.add_subcommand(
      "explore",
      "Search generated fault schedules for a violation of one lock, shrink the first one "
      "found to a minimal schedule and write it as counterexample.json (a scenario file `run` "
      "replays). Exit 1 when a counterexample was found, 0 when none within the budget");
  explore->add_option("--impl", xo.impl, "The lock to explore (a built-in lock or mutant)")
      ->required()
      ->envname("LOCKSTORM_IMPL");
  explore
      ->add_option("--faults", xo.faults,
                   "Fault groups to draw from (comma-separated): " + FaultGroupList() +
                       "; default none (the workload alone)")
      ->delimiter(',')
      ->envname("LOCKSTORM_FAULTS");
  explore->add_option("--nodes", xo.nodes, "Nodes for multi-node locks (default 3)");
  explore
      ->add_option("--budget", xo.budget_s, "Seconds of search for a first failure (default 120)")
      ->envname("LOCKSTORM_BUDGET");
  explore->add_option("--shrink-budget", xo.shrink_budget_s, "Seconds of shrinking (default 600)");
  explore->add_option("--seed", xo.seed, "Seed of the search (default 1)")
      ->envname("LOCKSTORM_SEED");
  explore->add_option("--max-events", xo.max_events,
                      "Fault events per schedule, 0..10 (default 3)");
  explore->add_option("--reproduce-tries", xo.reproduce_tries,
                      "Runs of a shrink candidate at most (default 3)");
  explore->add_option("--reproduce-min", xo.reproduce_min,
                      "Failing runs among them that make a candidate count as still failing "
                      "(default 2)");
  explore->add_option("--confirm-runs", xo.confirm_runs,
                      "Runs of the counterexample for its reproduction rate (default 5)");
  explore->add_option("--out", xo.out_dir, "Run directory (default runs/explore-<time>-<seed>)")
      ->envname("LOCKSTORM_OUT");
  explore->add_flag("--fresh-servers", xo.fresh_servers,
                    "Start new redis-servers for every case instead of reusing the running ones "
                    "(reused servers are refreshed: resumed, restarted if down, clocks reset)");

  if (argc > 1 && argv[1][0] != '-') {
    const std::string sub = argv[1];
    if (sub != "run" && sub != "list" && sub != "check" && sub != "mutants" && sub != "report" &&
        sub != "compare" && sub != "explore") {
      std::cerr << "lockstorm: unknown command '" << sub
                << "' (expected run, list, check, report, compare, mutants or explore; see "
                   "lockstorm --help)\n";
      return kExitUsage;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "lockstorm: " << OneLine(e.what()) << " (see lockstorm --help)\n";
    return kExitUsage;
  }

  if (Status s = StartReaper(); !s.ok()) {
    std::cerr << "lockstorm: " << s.message() << "\n";
    return kExitUsage;
  }
  InstallShutdownHandlers();

  if (*list) return ListCommand();
  if (*check) return CheckCommand(check_dir);
  if (*report) return ReportCommand(report_dir);
  if (*compare) return CompareCommand(co);
  if (*mutants) {
    mo.mutants = SplitImpls(raw_mutants);
    if (*o_mdur) {
      if (mutants_duration_s <= 0 || mutants_duration_s > 3600) {
        std::cerr << "lockstorm: --duration: expected 0 < seconds <= 3600, got "
                  << mutants_duration_s << "\n";
        return kExitUsage;
      }
      mo.duration_s = mutants_duration_s;
    }
    mo.quiet = !mutants_verbose;
    return MutantsCommand(mo);
  }
  if (*explore) {
    return ExploreCommand(xo);
  }

  ro.impls = SplitImpls(raw_impls);
  ro.samples = !no_samples;
  if (*o_clients) ro.clients = clients;
  if (*o_keys) ro.keys = keys;
  if (*o_duration) ro.duration_s = duration_s;
  if (*o_ttl) ro.ttl_ms = ttl_ms;
  if (*o_wait) ro.wait_ms = wait_ms;
  if (*o_seed) ro.seed = seed;
  if (*o_rate) ro.rate_per_s = rate_per_s;
  if (*o_client_threads) ro.client_threads = client_threads;
  ro.tls.verify = !tls_insecure;
  for (int i = 0; i < argc; ++i) ro.command_line += (i ? " " : "") + std::string(argv[i]);
  ro.command_line = RedactPasswords(ro.command_line);  // a redis:// URL may carry one
  return RunCommand(ro);
}
