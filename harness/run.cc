#include "harness/run.h"

#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "harness/checker.h"
#include "harness/compare.h"
#include "harness/exec_lock.h"
#include "harness/history.h"
#include "harness/key_observer.h"
#include "harness/limits.h"
#include "harness/metrics.h"
#include "harness/nemesis.h"
#include "harness/placement.h"
#include "harness/redis_server.h"
#include "harness/replication.h"
#include "harness/runner.h"
#include "harness/server_pool.h"
#include "harness/shutdown.h"
#include "harness/witness.h"
#include "impls/registry.h"
#include "reports/render.h"
#include "reports/report.h"
#include "scenarios/scenario.h"
#include "scenarios/scenario_file.h"

namespace lockstorm {
namespace {

namespace fs = std::filesystem;

// "model name" of the first CPU in /proc/cpuinfo, or "unknown".
std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  for (int i = 0; i < 1000 && std::getline(f, line); ++i) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

// The progress line of a running workload on a terminal: elapsed/remaining, acquires/s and
// overlaps seen live, redrawn in place every kRedrawMs; erased by Stop(). Off = does nothing.
class ProgressLine {
 public:
  static constexpr int kRedrawMs = 500;
  ProgressLine(bool on, std::string label, int64_t duration_ms, const RunProgress* progress)
      : label_(std::move(label)), duration_ms_(duration_ms), progress_(progress) {
    if (on) thread_ = std::thread([this] { Loop(); });
  }
  ~ProgressLine() { Stop(); }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) {
      thread_.join();
      std::cout << "\r\033[K  running " << label_ << " ..." << std::flush;
    }
  }

 private:
  void Loop() {
    const auto start = std::chrono::steady_clock::now();
    int64_t last_acquired = 0;
    auto last = start;
    std::unique_lock<std::mutex> lock(mu_);
    // Bounded: ends on Stop(); each wait is kRedrawMs.
    while (!cv_.wait_for(lock, std::chrono::milliseconds(kRedrawMs), [this] { return stop_; })) {
      const auto now = std::chrono::steady_clock::now();
      const double elapsed_s = std::chrono::duration<double>(now - start).count();
      const double dt_s = std::chrono::duration<double>(now - last).count();
      const int64_t acquired = progress_->acquired.load(std::memory_order_relaxed);
      const double rate = dt_s > 0 ? static_cast<double>(acquired - last_acquired) / dt_s : 0;
      last_acquired = acquired;
      last = now;
      const double total_s = static_cast<double>(duration_ms_) / 1000.0;
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    "\r\033[K  running %s: %.1f/%.1f s (%.1f s left), %.0f acquires/s, %lld "
                    "acquired, %lld overlap(s) seen",
                    label_.c_str(), elapsed_s, total_s, std::max(0.0, total_s - elapsed_s), rate,
                    static_cast<long long>(acquired),
                    static_cast<long long>(progress_->overlaps_seen.load()));
      std::cout << buf << std::flush;
    }
  }

  std::string label_;
  int64_t duration_ms_;
  const RunProgress* progress_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

std::string Hostname() {
  char buf[256] = {0};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

std::string IsoTimeUtc(std::time_t t) {
  char buf[64];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Resolves --impl values (built-in names or exec specs) into ImplUnderTest entries.
Status ResolveImpls(const std::vector<std::string>& values, const std::string& run_dir,
                    std::vector<ImplUnderTest>* out) {
  for (const std::string& v : values) {
    if (IsExecImpl(v)) {
      ExecSpec spec;
      Status s = ParseExecImpl(v, &spec);
      if (!s.ok()) return s;
      ImplUnderTest impl;
      impl.name = spec.name;
      impl.expected_unsafe = spec.expected_unsafe;
      impl.builtin = false;
      impl.multi_node = true;  // a plug-in is handed every node; it decides what to use
      std::string file_name = spec.name;
      for (char& c : file_name)
        if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
      std::string stderr_path = run_dir + "/plugin-" + file_name + ".stderr.log";
      // The plug-in connects by itself: it gets addresses, not the transport.
      impl.make = [spec, stderr_path](int, const LockEnv& env,
                                      const std::vector<ServerAddress>& servers) {
        return NewExecLock(spec, env.client_id, env.seed, servers, stderr_path);
      };
      out->push_back(std::move(impl));
      continue;
    }
    const ImplInfo* info = FindBuiltinImpl(v);
    const MutantInfo* mutant = info ? nullptr : FindMutant(v);
    if (mutant) info = &mutant->impl;
    if (!info) {
      return Status::InvalidArgument("--impl: unknown implementation '" + v +
                                     "' (see `lockstorm list`, or use exec:COMMAND)");
    }
    ImplUnderTest impl;
    impl.name = info->name;
    impl.expected_unsafe = info->expected_unsafe;
    if (mutant) impl.expected_by_scenario = mutant->exposed_by;
    impl.multi_node = info->multi_node;
    auto make = info->make;
    impl.make = [make](int, const LockEnv& env, const std::vector<ServerAddress>&) {
      return make(env);
    };
    out->push_back(std::move(impl));
  }
  for (size_t i = 0; i < out->size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if ((*out)[i].name == (*out)[j].name)
        return Status::InvalidArgument("--impl: '" + (*out)[i].name + "' given twice");
  return Status::Ok();
}

Status ApplyOverrides(const RunOptions& o, Scenario* sc) {
  Workload& w = sc->workload;
  if (o.clients) {
    if (*o.clients < 1 || *o.clients > 10000)
      return Status::InvalidArgument("--clients: expected 1..10000, got " +
                                     std::to_string(*o.clients));
    w.clients = *o.clients;
  }
  if (o.keys) {
    if (*o.keys < 1 || *o.keys > 1000000)
      return Status::InvalidArgument("--keys: expected 1..1000000, got " + std::to_string(*o.keys));
    w.keys = *o.keys;
  }
  if (o.duration_s) {
    if (!(*o.duration_s > 0) || *o.duration_s > 86400)
      return Status::InvalidArgument("--duration: expected seconds in (0, 86400]");
    w.duration_ms = static_cast<int64_t>(*o.duration_s * 1000);
  }
  if (o.ttl_ms) {
    if (*o.ttl_ms < 10 || *o.ttl_ms > 3600000)
      return Status::InvalidArgument("--ttl-ms: expected 10..3600000, got " +
                                     std::to_string(*o.ttl_ms));
    // Holds and the wait budget scale with the TTL.
    if (!o.wait_ms) w.wait_ms = w.wait_ms * *o.ttl_ms / w.ttl_ms;
    w.ttl_ms = *o.ttl_ms;
  }
  if (o.wait_ms) {
    if (*o.wait_ms < 0 || *o.wait_ms > 3600000)
      return Status::InvalidArgument("--wait-ms: expected 0..3600000");
    w.wait_ms = *o.wait_ms;
  }
  if (o.extend) w.extend = true;
  if (o.rate_per_s) {
    if (!(*o.rate_per_s >= 0) || *o.rate_per_s > 1e7)
      return Status::InvalidArgument("--rate: expected cycles/s in [0, 1e7] (0 = closed loop)");
    w.rate_per_s = *o.rate_per_s;
  }
  if (!o.persistence.empty() && !ParsePersistence(o.persistence, &sc->persistence)) {
    return Status::InvalidArgument(
        "--persistence: expected none, rdb, aof-everysec or aof-always, got '" + o.persistence +
        "'");
  }
  return Status::Ok();
}

nlohmann::json WorkloadJson(const Workload& w) {
  nlohmann::json holds = nlohmann::json::array();
  for (const auto& b : w.holds)
    holds.push_back(
        {{"weight", b.weight}, {"lo_ttl_frac", b.lo_ttl_frac}, {"hi_ttl_frac", b.hi_ttl_frac}});
  return {{"clients", w.clients},         {"keys", w.keys},
          {"duration_ms", w.duration_ms}, {"ttl_ms", w.ttl_ms},
          {"wait_ms", w.wait_ms},         {"holds", holds},
          {"extend", w.extend},           {"late_extend_frac", w.late_extend_frac},
          {"check_lease", w.check_lease}, {"rate_per_s", w.rate_per_s}};
}

// Stale writes the witness accepted, from the history's kWrite events (per impl×scenario),
// by the witness's own rule (CountStaleAcceptedWrites) in completion order.
int64_t StaleWritesAccepted(const std::vector<Event>& events, const std::string& impl,
                            const std::string& scenario) {
  std::vector<const Event*> writes;
  for (const Event& e : events)
    if (e.type == OpType::kWrite && e.impl == impl && e.scenario == scenario && e.fence)
      writes.push_back(&e);
  std::stable_sort(writes.begin(), writes.end(),
                   [](const Event* a, const Event* b) { return a->complete_us < b->complete_us; });
  std::vector<WitnessRecord> records;
  for (const Event* e : writes) {
    WitnessRecord r;
    r.key = e->key;
    r.client = e->client;
    r.fence = *e->fence;
    r.accepted = e->outcome == Outcome::kOk;
    r.time_us = e->complete_us;
    records.push_back(r);
  }
  return CountStaleAcceptedWrites(records);
}

// The nemesis' view of a ReplicatedNode.
class ReplicaAdapter : public ReplicaControl {
 public:
  explicit ReplicaAdapter(ReplicatedNode* n) : n_(n) {}
  EmbeddedServer* master() override { return n_->master(); }
  EmbeddedServer* replica() override { return n_->replica(); }
  Status CutLink() override { return n_->CutLink(); }
  Status HealLink() override { return n_->HealLink(); }
  Status Promote() override { return n_->Promote(); }
  Status Restore() override { return n_->Restore(); }

 private:
  ReplicatedNode* n_;
};

// The fault periods of one impl × scenario, from the history (nemesis events and the client
// faults the runner recorded), for the report.
nlohmann::json FaultsOf(const std::vector<Event>& events, const std::string& impl,
                        const std::string& scenario) {
  nlohmann::json out = nlohmann::json::array();
  for (const Event& e : events) {
    if (e.impl != impl || e.scenario != scenario) continue;
    if (e.type != OpType::kFault && e.type != OpType::kCrash) continue;
    const size_t colon = e.note.find(':');
    nlohmann::json f = {{"fault", e.note.substr(0, colon)},
                        {"start_us", e.invoke_us},
                        {"end_us", e.complete_us},
                        {"ok", e.outcome == Outcome::kOk},
                        {"detail", colon == std::string::npos ? "" : e.note.substr(colon + 2)}};
    if (e.client >= 0) f["client"] = e.client;
    out.push_back(std::move(f));
  }
  return out;
}

constexpr const char* kSkippedFaultReason =
    "the servers were not started by lockstorm (--servers), and lockstorm kills, pauses, "
    "restarts, fails over or skews the clock of only its own servers";

nlohmann::json SkippedFaultsJson(const std::vector<std::string>& skipped) {
  nlohmann::json out = nlohmann::json::array();
  for (const std::string& f : skipped) out.push_back({{"fault", f}, {"why", kSkippedFaultReason}});
  return out;
}

// Deletes every key under `prefix` (SCAN + DEL, bounded), on every node. Only the run's own
// keys: safe on servers lockstorm did not start.
void CleanupKeys(const std::vector<ServerAddress>& servers, const std::string& prefix) {
  auto t = NewRedisTransport(servers);
  for (int n = 0; n < t->node_count(); ++n) {
    std::string cursor = "0";
    for (int round = 0; round < 100000; ++round) {
      Reply r = t->Call(n, {"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"}, 2000000);
      if (r.type != Reply::Type::kArray || r.elements.size() != 2) break;
      cursor = r.elements[0].str;
      Command del = {"DEL"};
      for (const auto& k : r.elements[1].elements) del.push_back(k.str);
      if (del.size() > 1) t->Call(n, del, 2000000);
      if (cursor == "0") break;
    }
  }
}

}  // namespace

int UsageError(const std::string& line) {
  std::cerr << "lockstorm: " << line << "\n";
  return kExitUsage;
}

std::string DefaultRunDir(const std::string& kind, uint64_t seed) {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::tm tm{};
  localtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  return "runs/" + kind + stamp + "-" + std::to_string(seed);
}

int RunCommand(const RunOptions& o) {
  // --- configuration: every problem here is one line and exit 4.
  // --scenario is a built-in name, or a JSON file (docs/scenario-format.md).
  Scenario scenario;
  const bool from_file = o.scenario.ends_with(".json") || fs::is_regular_file(o.scenario);
  if (from_file) {
    if (Status s = LoadScenarioFile(o.scenario, &scenario); !s.ok()) return UsageError(s.message());
  } else if (const Scenario* base = FindBuiltinScenario(o.scenario)) {
    scenario = *base;
  } else {
    return UsageError("--scenario: unknown scenario '" + o.scenario +
                      "' (see `lockstorm list`, or give a .json scenario file)");
  }
  if (Status s = ApplyOverrides(o, &scenario); !s.ok()) return UsageError(s.message());
  if (o.repeat < 1 || o.repeat > 1000) return UsageError("--repeat: expected 1..1000");
  if (o.progress != "auto" && o.progress != "always" && o.progress != "never")
    return UsageError("--progress: expected auto, always or never, got '" + o.progress + "'");
  if (Status s = ValidateScenario(scenario, from_file ? o.scenario : "--scenario"); !s.ok())
    return UsageError(s.message());
  if (!IsPlacement(o.pin)) {
    return UsageError("--pin: expected none, same or split, got '" + o.pin + "'");
  }
  if (o.nodes < 1 || o.nodes > 15) return UsageError("--nodes: expected 1..15");
  if (o.client_threads && (*o.client_threads < 0 || *o.client_threads > 1024))
    return UsageError("--client-threads: expected 0..1024 (0 = an OS thread per client)");
  if (scenario.replicas > 1)
    return UsageError(std::string(from_file ? o.scenario : "--scenario") +
                      ": topology.replicas: expected 0 or 1 (one replica per node is supported)");
  std::vector<ServerAddress> external;
  const char* env_password_or_null = std::getenv("LOCKSTORM_REDIS_PASSWORD");
  const std::string env_password = env_password_or_null ? env_password_or_null : "";
  if (!o.servers.empty() && !o.sentinel.empty())
    return UsageError("--sentinel: give --servers or --sentinel, not both");
  if (!o.servers.empty()) {
    if (Status s = ParseServerList("--servers", o.servers, &external, env_password, o.tls); !s.ok())
      return UsageError(s.message());
  }
  if (!o.sentinel.empty()) {
    if (Status s =
            ResolveSentinelMasters("--sentinel", o.sentinel, env_password, o.tls, 2000, &external);
        !s.ok())
      return UsageError(s.message());
  }
  // Faults on processes, clocks and replication are destructive: only on our own servers. On
  // others they are skipped, and the console, config.json and every report say which and why.
  std::vector<std::string> skipped_faults;
  if (!external.empty()) scenario = Nemesis::WithoutServerFaults(scenario, &skipped_faults);
  const uint64_t seed =
      o.seed ? *o.seed : std::random_device{}() * 0x100000000ULL + std::random_device{}();
  const std::time_t start_time = std::time(nullptr);
  const std::string run_dir = o.out_dir.empty() ? DefaultRunDir("", seed) : o.out_dir;
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec || !fs::is_directory(run_dir)) {
    return UsageError("--out: cannot create directory '" + run_dir +
                      "': " + (ec ? ec.message() : "not a directory"));
  }
  {
    std::ofstream probe(run_dir + "/config.json");
    if (!probe) return UsageError("--out: directory '" + run_dir + "' is not writable");
  }
  std::vector<ImplUnderTest> impls;
  std::vector<std::string> impl_values = o.impls;
  if (impl_values.empty())
    for (const ImplInfo& i : BuiltinImpls()) impl_values.push_back(i.name);
  if (Status s = ResolveImpls(impl_values, run_dir, &impls); !s.ok())
    return UsageError(s.message());
  // Plug-ins are told the servers' URLs and one password (harness/exec_lock.h
  // ServerEnvironment): servers with different passwords cannot be described to them.
  const bool one_password = std::all_of(external.begin(), external.end(), [&](const auto& a) {
    return a.password == external[0].password;
  });
  for (const ImplUnderTest& i : impls)
    if (!i.builtin && !one_password)
      return UsageError("--servers: plug-in '" + i.name +
                        "' is given one password (LOCKSTORM_REDIS_PASSWORD), but the servers' "
                        "passwords differ");

  // --- servers.
  int nodes = 1;
  bool multi_node = false;
  for (const auto& i : impls) multi_node = multi_node || i.multi_node;
  if (multi_node) nodes = o.nodes;
  if (scenario.nodes > 0) nodes = scenario.nodes;
  if (multi_node && !external.empty() && static_cast<int>(external.size()) < scenario.nodes)
    return UsageError("--servers: scenario '" + scenario.name + "' needs " +
                      std::to_string(scenario.nodes) + " servers for a multi-node lock, got " +
                      std::to_string(external.size()));
  // Every client holds a connection per node (and a sampler's, and proxy sockets): raise the
  // open-file limit first, so the embedded redis-servers inherit it too.
  if (Status s = RaiseFileLimit(FileDescriptorsNeeded(scenario.workload.clients, nodes, o.samples,
                                                      Nemesis::NeedsLinks(scenario)));
      !s.ok())
    std::cerr << "lockstorm: warning: " << s.message() << "\n";
  ServerSet own_servers;  // started (and stopped) for this run alone
  ServerSet* pooled = nullptr;
  if (external.empty()) {
    ServerOptions sopts;
    sopts.persistence = scenario.persistence;
    for (const NemesisEvent& e : scenario.nemesis)
      if (e.fault == "clock-jump" || e.fault == "clock-rate") sopts.clock_control = true;
    if (scenario.replicas > 0)
      for (const std::string& line : MasterReplicationConfig(ReplicationOptions()))
        sopts.extra_config.push_back(line);
    if (o.server_pool && scenario.replicas == 0) {
      if (Status s = o.server_pool->Get(nodes, sopts, &pooled); !s.ok())
        return UsageError(s.message());
    } else if (Status s = own_servers.StartEmbedded(run_dir, nodes, sopts); !s.ok()) {
      return UsageError(s.message());
    }
  } else {
    if (Status s = own_servers.UseExternal(external, 2000); !s.ok()) return UsageError(s.message());
  }
  ServerSet& servers = pooled ? *pooled : own_servers;
  // Replicas: one per node, replicating through a cuttable link (harness/replication.h).
  std::vector<std::unique_ptr<ReplicatedNode>> replicated;
  std::vector<std::unique_ptr<ReplicaControl>> replica_controls;
  if (scenario.replicas > 0 && servers.embedded()) {
    for (int i = 0; i < servers.size(); ++i) {
      ReplicationOptions ro;
      ro.replica.persistence = scenario.persistence;
      auto r = std::make_unique<ReplicatedNode>(servers.server(i), run_dir, ro);
      if (Status s = r->Start(); !s.ok())
        return UsageError("replica of node " + std::to_string(i) + ": " + s.message());
      replica_controls.push_back(std::make_unique<ReplicaAdapter>(r.get()));
      replicated.push_back(std::move(r));
    }
  }
  nlohmann::json server_list = nlohmann::json::array();
  for (int i = 0; i < servers.size(); ++i) {
    nlohmann::json sj = {{"address", servers.addresses()[static_cast<size_t>(i)].ToString()},
                         {"embedded", servers.embedded()}};
    if (servers.embedded()) {
      sj["pid"] = servers.server(i)->pid();
      sj["log"] = servers.server(i)->log_path();
    }
    server_list.push_back(sj);
  }
  // Placement: "same" puts lockstorm and the servers on CPU 0, "split" lockstorm on 0 and
  // the servers on 1 (the round trip differs several-fold on a 2-vCPU machine).
  const int ncpu = static_cast<int>(std::thread::hardware_concurrency());
  if (o.pin != "none") {
    PinProcess(getpid(), ClientCpu(o.pin));
    if (servers.embedded())
      for (int i = 0; i < servers.size(); ++i)
        PinProcess(servers.server(i)->pid(), ServerCpu(o.pin));
  }
  // After pinning: the automatic choice counts the CPUs lockstorm may now run on.
  const int client_threads =
      o.client_threads ? *o.client_threads : AutoClientThreads(scenario.workload.clients);
  nlohmann::json cpu = {{"cores", ncpu},
                        {"model", CpuModel()},
                        {"pin", o.pin},
                        {"lockstorm_cpus", CpuListOf(getpid())}};
  if (servers.embedded()) {
    nlohmann::json sc = nlohmann::json::array();
    for (int i = 0; i < servers.size(); ++i) sc.push_back(CpuListOf(servers.server(i)->pid()));
    cpu["server_cpus"] = sc;
  }
  {
    std::ofstream f(run_dir + "/servers.json");
    f << server_list.dump(2) << "\n";
  }

  // --- context and config.
  std::string run_id;
  {
    std::random_device device;
    Rng rng(uint64_t{device()} << 32 | device());
    run_id = RandomToken(rng).substr(0, 12);
  }
  const std::string key_prefix = "lockstorm:" + run_id + ":";
  nlohmann::json impl_names = nlohmann::json::array();
  for (const auto& i : impls) impl_names.push_back(i.name);
  nlohmann::json config = {{"impls", impl_names},
                           {"scenario", scenario.name},
                           {"scenario_description", scenario.description},
                           {"schedule", DescribeSchedule(scenario)},
                           {"workload", WorkloadJson(scenario.workload)},
                           {"persistence", PersistenceName(scenario.persistence)},
                           {"nodes", servers.size()},
                           {"servers", server_list},
                           {"embedded", servers.embedded()},
                           {"key_prefix", key_prefix},
                           {"skipped_faults", SkippedFaultsJson(skipped_faults)},
                           {"seed", seed},
                           {"run_dir", run_dir}};
  {
    std::ofstream f(run_dir + "/config.json");
    f << config.dump(2) << "\n";
  }
  RunReport report;
  report.context = {{"lockstorm_version", LOCKSTORM_VERSION},
                    {"git_revision", LOCKSTORM_GIT_REVISION},
                    {"redis_version", servers.RedisVersion()},
                    {"seed", seed},
                    {"host", Hostname()},
                    {"cpu", cpu},
                    {"start_time", IsoTimeUtc(start_time)},
                    {"command_line", o.command_line},
                    {"mode", scenario.workload.rate_per_s > 0 ? "open" : "closed"},
                    {"target_rate_per_s", scenario.workload.rate_per_s},
                    {"repeat", o.repeat},
                    {"client_threads", client_threads},
                    {"config", config}};

  HistoryWriter history;
  if (Status s = history.Open(run_dir + "/history.jsonl"); !s.ok()) return UsageError(s.message());
  Witness witness;
  std::atomic<bool> stop{false};
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done.load()) {
      if (WaitForShutdownOrTimeout(50)) {
        stop.store(true);
        return;
      }
    }
  });

  if (!o.quiet) {
    std::cout << "lockstorm " << LOCKSTORM_VERSION << ": seed " << seed << ", run dir " << run_dir
              << ", " << servers.size() << (servers.embedded() ? " embedded" : " external")
              << " redis-server(s) " << servers.RedisVersion() << ", scenario " << scenario.name
              << ", " << scenario.workload.clients << " clients x "
              << scenario.workload.duration_ms / 1000.0 << " s per impl" << std::endl;
  }
  if (!o.quiet && !skipped_faults.empty()) {
    std::cout << "  skipped, as " << kSkippedFaultReason << ":\n";
    for (const std::string& f : skipped_faults) std::cout << "    " << f << "\n";
    std::cout << std::flush;
  }
  // Every repetition runs every impl (repetition-major, so slow drift of the machine spreads
  // over all impls alike). With --repeat > 1 repetition k's rows are "SCENARIO#k".
  const Scenario& base_scenario = scenario;
  struct Pass {
    size_t impl;        // index into impls
    int repetition;     // 1..repeat
    Scenario scenario;  // named SCENARIO#k when repeat > 1
    RunStats stats;
  };
  std::vector<Pass> passes;
  std::map<std::string, std::vector<KeyPresence>> presences;  // impl/scenario → lock keys
  const bool show_progress =
      !o.quiet && (o.progress == "always" ||
                   (o.progress == "auto" && isatty(STDOUT_FILENO) && std::getenv("CI") == nullptr));
  for (int rep = 1; rep <= o.repeat && !stop.load(); ++rep) {
    for (size_t impl_index = 0; impl_index < impls.size(); ++impl_index) {
      if (stop.load()) break;
      const ImplUnderTest& impl = impls[impl_index];
      Scenario scenario = base_scenario;
      if (o.repeat > 1) scenario.name += "#" + std::to_string(rep);
      RunContext ctx;
      ctx.servers = servers.addresses();
      if (!impl.multi_node) ctx.servers.resize(1);
      ctx.history = &history;
      ctx.witness = &witness;
      ctx.key_prefix = key_prefix;
      ctx.seed = seed + static_cast<uint64_t>(rep - 1);
      ctx.stop = &stop;
      ctx.contract_samples = o.samples;
      ctx.client_threads = client_threads;
      RunProgress progress;
      ctx.progress = &progress;
      // The nemesis, and the fault proxies between each client and each node when the
      // scenario cuts or slows links.
      std::unique_ptr<LinkGrid> grid;
      if (Nemesis::NeedsLinks(scenario)) {
        if (Status s = LinkGrid::Start(scenario.workload.clients, ctx.servers, seed, &grid);
            !s.ok())
          return UsageError("fault proxy: " + s.message());
        LinkGrid* g = grid.get();
        ctx.client_servers = [g](int c) { return g->ClientServers(c); };
      }
      NemesisTargets targets;
      targets.servers = &servers;
      targets.links = grid.get();
      for (auto& rc : replica_controls) targets.replicas.push_back(rc.get());
      targets.history = &history;
      targets.impl = impl.name;
      targets.impl_nodes = static_cast<int>(ctx.servers.size());
      targets.key_prefix = key_prefix;
      Nemesis nemesis(scenario, targets);
      if (!scenario.nemesis.empty()) ctx.faults = &nemesis;
      // Under link faults, watch the lock keys on every node (directly, not through the
      // proxies) to measure ghost locks: keys set by acquires their client thinks failed.
      std::unique_ptr<KeyObserver> observer;
      if (grid) {
        std::vector<std::string> keys;
        for (int k = 0; k < scenario.workload.keys && k < 1000; ++k)
          keys.push_back(LockKey(key_prefix, impl.name, scenario.name, k));
        observer = std::make_unique<KeyObserver>(ctx.servers, keys);
        if (Status s = observer->Start(); !s.ok()) {
          std::cerr << "lockstorm: warning: key observer: " << s.message() << "\n";
          observer.reset();
        }
      }
      const std::string label =
          impl.name + (o.repeat > 1 ? " (repetition " + std::to_string(rep) + ")" : "");
      if (!o.quiet) std::cout << "  running " << label << " ..." << std::flush;
      ProgressLine progress_line(show_progress, label, scenario.workload.duration_ms, &progress);
      RunStats stats = RunWorkload(impl, scenario, ctx);
      progress_line.Stop();
      if (observer) {
        observer->Stop();
        presences[impl.name + "/" + scenario.name] = observer->Presences();
      }
      nemesis.HealAll();
      const size_t fault_count = nemesis.records().size();
      if (Status s = nemesis.Reset(); !s.ok())
        std::cerr << "lockstorm: warning: resetting faults: " << s.message() << "\n";
      passes.push_back(Pass{impl_index, rep, scenario, std::move(stats)});
      if (!o.quiet) {
        const RunStats& st = passes.back().stats;
        std::cout << " " << st.acquired << " acquired";
        if (!scenario.nemesis.empty())
          std::cout << ", " << fault_count << " fault event(s), " << st.pauses << " pause(s), "
                    << st.crashes << " crash(es)";
        std::cout << ", liveness probes " << st.probes_ok << "/" << st.probes << std::endl;
      }
    }
  }
  done.store(true);
  watcher.join();
  report.interrupted = stop.load();
  history.Flush();

  // --- check and report.
  const std::vector<Event> events = history.Snapshot();
  auto checks = CheckHistory(events);
  for (Pass& pass : passes) {
    const ImplUnderTest& impl = impls[pass.impl];
    const std::string& base_name = base_scenario.name;
    ResultRow row;
    row.impl = impl.name;
    row.scenario = pass.scenario.name;
    if (o.repeat > 1) {
      row.base_scenario = base_name;
      row.repetition = pass.repetition;
    }
    row.expected = impl.expected_unsafe.count(base_name) > 0 ? kExpectUnsafe : kExpectSafe;
    if (auto e = impl.expected_by_scenario.find(base_name); e != impl.expected_by_scenario.end())
      row.expected = e->second;
    // The scenario's expectations override the lock's own declaration.
    if (auto e = base_scenario.expectations.find(row.impl); e != base_scenario.expectations.end())
      row.expected = e->second;
    row.stats = std::move(pass.stats);
    row.mode = base_scenario.workload.rate_per_s > 0 ? "open" : "closed";
    row.target_rate_per_s = base_scenario.workload.rate_per_s;
    auto it = checks.find({row.impl, row.scenario});
    if (it != checks.end()) row.check = it->second;
    row.stale_writes_accepted = StaleWritesAccepted(events, row.impl, row.scenario);
    row.faults = FaultsOf(events, row.impl, row.scenario);
    if (auto p = presences.find(row.impl + "/" + row.scenario); p != presences.end())
      row.ghosts = GhostReportToJson(FindGhostLocks(p->second, events, row.impl, row.scenario));
    // The pair's own events, for the contention metrics (one pair in memory at a time).
    std::vector<Event> own;
    for (const Event& e : events)
      if (e.impl == row.impl && e.scenario == row.scenario) own.push_back(e);
    row.contention = ContentionToJson(ComputeContention(own));
    row.throughput_series = ThroughputToJson(ComputeThroughput(own, row.stats.start_us));
    JudgeRow(&row);
    report.rows.push_back(std::move(row));
  }
  report.exit_code = ExitCodeFor(report.rows, report.interrupted);
  CleanupKeys(servers.addresses(), key_prefix);
  {
    std::ofstream f(run_dir + "/report.json");
    f << ReportToJson(report).dump(2) << "\n";
    if (!f) return UsageError("--out: cannot write " + run_dir + "/report.json");
  }
  std::cout << "\n" << ConsoleTable(report);
  std::string details = ConsoleViolations(report, 3);
  if (!details.empty()) std::cout << "\n" << details;
  if (Status s = RenderRunDir(run_dir); !s.ok())
    std::cerr << "lockstorm: warning: reports: " << s.message() << "\n";
  std::cout << "\nreport: " << run_dir << "/report.json, report.md, report.html, junit.xml  (exit "
            << report.exit_code << ")" << (report.interrupted ? " — interrupted" : "") << std::endl;
  own_servers.StopAll();  // pooled servers stay up for the next run
  return report.exit_code;
}

int ListCommand() {
  std::cout << "Built-in locks:\n";
  for (const ImplInfo& i : BuiltinImpls()) {
    std::cout << "  " << i.name << (i.multi_node ? "  (multi-node)" : "") << "\n"
              << "      " << i.description << "\n"
              << "      weakness: " << (i.weakness.empty() ? "none known" : i.weakness) << "\n";
    if (!i.expected_unsafe.empty()) {
      std::cout << "      expected to violate in:";
      for (const auto& s : i.expected_unsafe) std::cout << " " << s;
      std::cout << "\n";
    }
  }
  std::cout << "  exec:COMMAND  any lock in any language (docs/exec-protocol.md)\n\n";
  std::cout << "Scenarios:\n";
  for (const Scenario& s : BuiltinScenarios()) {
    std::cout << "  " << s.name << "\n      " << s.description << "\n";
    std::string predicts;
    for (const auto& [impl, expect] : s.expectations)
      if (expect != kExpectSafe) predicts += " " + impl + "=" + expect;
    if (!predicts.empty()) std::cout << "      predicts:" << predicts << " (others safe)\n";
  }
  std::cout << "\nMutants (`lockstorm mutants`; each a correct lock with one real-world bug):\n";
  for (const MutantInfo& m : Mutants()) {
    std::cout << "  " << m.impl.name << "  (from " << m.base << ")\n      " << m.impl.description
              << "\n      exposed by:";
    for (const auto& [scenario, expect] : m.exposed_by)
      std::cout << " " << scenario << "=" << expect;
    std::cout << "\n";
  }
  std::cout << "\nPredictions and the evidence each fault records: docs/faults.md\n";
  return kExitOk;
}

int CheckCommand(const std::string& run_dir) {
  std::vector<Event> events;
  if (Status s = ReadHistory(run_dir + "/history.jsonl", &events); !s.ok())
    return UsageError(s.message());
  std::ifstream rf(run_dir + "/report.json");
  if (!rf) return UsageError("check: cannot read " + run_dir + "/report.json");
  nlohmann::json stored;
  try {
    stored = nlohmann::json::parse(rf);
  } catch (const std::exception& e) {
    return UsageError("check: " + run_dir + "/report.json: not valid JSON: " + e.what());
  }
  auto checks = CheckHistory(events);
  RunReport report;
  report.context = stored.value("context", nlohmann::json::object());
  int changed = 0;
  for (const auto& r : stored.value("results", nlohmann::json::array())) {
    ResultRow row;
    row.impl = r.value("impl", "");
    row.scenario = r.value("scenario", "");
    row.expected =
        r.value("expected", r.value("expected_unsafe", false) ? kExpectUnsafe : kExpectSafe);
    auto it = checks.find({row.impl, row.scenario});
    if (it != checks.end()) row.check = it->second;
    row.stale_writes_accepted = StaleWritesAccepted(events, row.impl, row.scenario);
    row.faults = FaultsOf(events, row.impl, row.scenario);
    JudgeRow(&row);
    const std::string was = r.value("verdict", "");
    std::cout << row.impl << "/" << row.scenario << ": " << row.verdict << " (violations "
              << row.check.violation_count << ", lost updates " << row.check.lost_updates << ")"
              << (was == row.verdict ? "" : "  [stored: " + was + "]") << "\n";
    if (was != row.verdict) ++changed;
    report.rows.push_back(std::move(row));
  }
  std::cout << ConsoleViolations(report, 3);
  report.exit_code = ExitCodeFor(
      report.rows, stored.value("summary", nlohmann::json::object()).value("interrupted", false));
  std::cout << (changed ? std::to_string(changed) + " verdict(s) differ from the stored report\n"
                        : "verdicts match the stored report\n");
  return report.exit_code;
}

int ReportCommand(const std::string& run_dir) {
  if (Status s = RenderRunDir(run_dir); !s.ok()) return UsageError("report: " + s.message());
  std::cout << "wrote " << run_dir << "/report.md, " << run_dir << "/report.html, " << run_dir
            << "/junit.xml\n";
  return kExitOk;
}

int CompareCommand(const CompareCommandOptions& o) {
  CompareOptions opt;
  opt.threshold_pct = o.threshold_pct;
  opt.alpha = o.alpha;
  if (!o.metrics.empty()) opt.metrics = o.metrics;
  if (Status s = CheckCompareOptions(opt); !s.ok()) return UsageError(s.message());
  nlohmann::json base, candidate;
  if (Status s = LoadReportFile(o.base, &base); !s.ok()) return UsageError(s.message());
  if (Status s = LoadReportFile(o.candidate, &candidate); !s.ok()) return UsageError(s.message());
  const CompareResult r = CompareReports(base, candidate, opt);
  std::cout << r.markdown;
  if (!o.out_md.empty()) {
    std::ofstream f(o.out_md);
    f << r.markdown;
    if (!f) return UsageError("--out: cannot write " + o.out_md);
  }
  return r.exit_code;
}

}  // namespace lockstorm
