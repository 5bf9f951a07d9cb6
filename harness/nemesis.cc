#include "harness/nemesis.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "harness/clock.h"
#include "scenarios/scenario_file.h"

namespace lockstorm {

// ---------------------------------------------------------------------------------------------
// LinkGrid

Status LinkGrid::Start(int clients, const std::vector<ServerAddress>& nodes, uint64_t seed,
                       std::unique_ptr<LinkGrid>* out) {
  std::shared_ptr<ProxyLoop> loop;
  if (Status s = ProxyLoop::Start(&loop); !s.ok()) return s;
  auto g = std::unique_ptr<LinkGrid>(new LinkGrid());
  g->clients_ = clients;
  g->nodes_ = static_cast<int>(nodes.size());
  for (int c = 0; c < clients; ++c) {
    for (int n = 0; n < g->nodes_; ++n) {
      FaultProxyOptions o;
      o.seed = seed ^ (static_cast<uint64_t>(c) << 20) ^ static_cast<uint64_t>(n);
      std::unique_ptr<FaultProxy> p;
      if (Status s = FaultProxy::Start(nodes[static_cast<size_t>(n)], o, loop, &p); !s.ok())
        return s;
      g->links_.push_back(std::move(p));
    }
  }
  *out = std::move(g);
  return Status::Ok();
}

std::vector<ServerAddress> LinkGrid::ClientServers(int client) const {
  std::vector<ServerAddress> v;
  for (int n = 0; n < nodes_; ++n) {
    const FaultProxy& link = *links_[static_cast<size_t>(client * nodes_ + n)];
    // The proxy forwards bytes: AUTH, SELECT and TLS still go to the server behind it, and
    // its certificate names that server, not the proxy's address.
    ServerAddress a = link.upstream();
    a.tls_name = a.TlsName();
    a.host = link.address().host;
    a.port = link.address().port;
    v.push_back(std::move(a));
  }
  return v;
}

void LinkGrid::PassAll() {
  for (auto& l : links_) {
    (void)l->SetMode(LinkMode::kPass);
    (void)l->SetLatency(Direction::kRequests, 0, 0);
    (void)l->SetLatency(Direction::kReplies, 0, 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Nemesis

namespace {

constexpr int64_t kEvidenceTimeoutUs = 300000;
constexpr int64_t kStrikeWaitMs = 2000;  // longest wait for a held lock before a node fault

bool IsLinkFault(const std::string& f) {
  return f == "partition" || f == "one-way-replies" || f == "drop-requests" || f == "latency" ||
         f == "reset-connections" || f == "refuse-connections";
}
bool IsNodeFault(const std::string& f) {
  return f == "kill-node" || f == "restart-node" || f == "pause-node" || f == "clock-jump" ||
         f == "clock-rate" || f == "failover" || f == "cut-replication";
}
bool IsInstant(const std::string& f) {
  return f == "clock-jump" || f == "reset-connections" || f == "client-clock-jump" ||
         f == "client-wall-clock-jump" || f == "failover" || f == "pause-holder" ||
         f == "crash-client" || f == "crash-mid-acquire";
}

std::string ProcState(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(f, line);
  const size_t rp = line.rfind(')');
  if (rp == std::string::npos || rp + 2 >= line.size()) return "?";
  return line.substr(rp + 2, 1);
}

std::string Join(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

LinkStats Sum(const std::vector<FaultProxy*>& links) {
  LinkStats t;
  for (FaultProxy* l : links) {
    LinkStats s = l->Stats();
    for (int d = 0; d < 2; ++d) {
      t.forwarded_chunks[d] += s.forwarded_chunks[d];
      t.dropped_chunks[d] += s.dropped_chunks[d];
      t.dropped_bytes[d] += s.dropped_bytes[d];
    }
    t.reset_connections += s.reset_connections;
    t.accepted_connections += s.accepted_connections;
  }
  return t;
}

}  // namespace

struct Nemesis::Action {
  int64_t at_us = 0;  // relative to the workload start
  size_t event = 0;
  bool begin = true;
};

// A fault in effect: what is needed to end it and to prove it happened.
struct Nemesis::Active {
  size_t event = 0;
  int64_t begin_us = 0;  // history clock
  std::vector<FaultProxy*> links;
  LinkStats before;
  std::vector<int> nodes;
  std::vector<int> clients;
  std::string detail;
  std::vector<int64_t> pttl_before_ms;  // clock-rate: per node
  // restart-node: per node, the run's keys and their values (tokens) just before the kill,
  // flattened [key, value, key, value, ...]; after the restart, how many still hold the same
  // value is the evidence (a client re-acquiring after the restart writes a new token).
  std::map<int, std::vector<std::string>> held_before;
};

Nemesis::Nemesis(const Scenario& scenario, NemesisTargets targets)
    : scenario_(scenario), t_(std::move(targets)) {
  for (size_t i = 0; i < scenario_.nemesis.size(); ++i) {
    const NemesisEvent& e = scenario_.nemesis[i];
    actions_.push_back({e.at_ms * 1000, i, true});
    const int64_t end_ms =
        e.fault == "restart-node" ? e.at_ms + e.delay_ms : e.at_ms + e.duration_ms;
    const bool has_end = e.fault == "restart-node" || (!IsInstant(e.fault) && e.duration_ms > 0);
    if (has_end) actions_.push_back({end_ms * 1000, i, false});
  }
  std::stable_sort(actions_.begin(), actions_.end(),
                   [](const Action& a, const Action& b) { return a.at_us < b.at_us; });
}

Nemesis::~Nemesis() { HealAll(); }

Scenario Nemesis::WithoutServerFaults(const Scenario& s, std::vector<std::string>* skipped) {
  Scenario out = s;
  out.nemesis.clear();
  for (const NemesisEvent& e : s.nemesis) {
    if (IsNodeFault(e.fault)) {
      skipped->push_back(DescribeEvent(e));
    } else {
      out.nemesis.push_back(e);
    }
  }
  if (s.replicas > 0) {
    skipped->push_back("topology: " + std::to_string(s.replicas) + " replica(s) per node");
    out.replicas = 0;
  }
  return out;
}

bool Nemesis::NeedsLinks(const Scenario& s) {
  for (const auto& e : s.nemesis)
    if (IsLinkFault(e.fault) || e.fault == "failover") return true;
  return false;
}

void Nemesis::Begin(ClientControl* clients, int64_t start_us) {
  clients_ = clients;
  start_us_ = start_us;
  healed_ = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
}

void Nemesis::Loop() {
  for (const Action& a : actions_) {
    std::unique_lock<std::mutex> lock(mu_);
    // Bounded: wakes at the action's time or on HealAll.
    const int64_t due = start_us_ + a.at_us;
    while (!stop_ && HistoryNowUs() < due) {
      cv_.wait_for(lock, std::chrono::microseconds(std::min<int64_t>(due - HistoryNowUs(), 50000)));
    }
    if (stop_) return;
    lock.unlock();
    Apply(a);
  }
}

std::string Nemesis::StrikeWhenHeld(int node, bool via_replica_master) {
  if (t_.impl_nodes > 0 && node >= t_.impl_nodes)
    return "node " + std::to_string(node) + " is not used by this lock: struck at once";
  const int64_t ttl_ms = scenario_.workload.ttl_ms;
  const int64_t want_pttl_ms = ttl_ms * 8 / 10;
  ServerAddress addr = t_.servers->server(node)->address();
  if (via_replica_master && node < static_cast<int>(t_.replicas.size()) &&
      t_.replicas[static_cast<size_t>(node)])
    addr = t_.replicas[static_cast<size_t>(node)]->master()->address();
  auto t = NewRedisTransport({addr});
  const int64_t begin_us = HistoryNowUs();
  const int64_t deadline_us = begin_us + kStrikeWaitMs * 1000;
  int64_t best = -2;
  for (int i = 0; i < 100000 && HistoryNowUs() < deadline_us; ++i) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
    }
    Reply r = t->Call(0,
                      {"EVAL",
                       "local m = -2 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
                       "local p = redis.call('PTTL', k) if p > m then m = p end end return m",
                       "0", t_.key_prefix + t_.impl + ":*"},
                      kEvidenceTimeoutUs);
    if (r.type == Reply::Type::kInteger) best = r.integer;
    if (best >= want_pttl_ms) break;
    RealClock()->SleepUs(2000);
  }
  const int64_t waited_ms = (HistoryNowUs() - begin_us) / 1000;
  if (best >= want_pttl_ms)
    return "struck " + std::to_string(waited_ms) + " ms after at_ms, when node " +
           std::to_string(node) + " held a fresh lock (PTTL " + std::to_string(best) + " ms)";
  return "no fresh lock on node " + std::to_string(node) + " within " +
         std::to_string(kStrikeWaitMs) + " ms (largest PTTL " + std::to_string(best) +
         "); struck anyway";
}

void Nemesis::Record(const std::string& fault, int64_t begin_us, int64_t end_us,
                     const std::string& detail, bool ok) {
  Event e;
  e.impl = t_.impl;
  e.scenario = scenario_.name;
  e.type = OpType::kFault;
  e.invoke_us = begin_us;
  e.complete_us = end_us;
  e.outcome = ok ? Outcome::kOk : Outcome::kFail;
  e.note = fault + ": " + detail;
  if (t_.history) t_.history->Append(e);
  std::lock_guard<std::mutex> lock(mu_);
  records_.push_back(
      {fault, (begin_us - start_us_) / 1000, (end_us - start_us_) / 1000, detail, ok});
}

void Nemesis::Apply(const Action& a) {
  const NemesisEvent& e = scenario_.nemesis[a.event];
  const int64_t now = HistoryNowUs();
  const int nclients = clients_ ? clients_->client_count() : 0;
  const int nnodes = t_.servers ? t_.servers->size() : 0;
  std::vector<int> nodes = e.nodes;
  std::vector<int> clients = e.clients;
  auto direct = [&]() { return NewRedisTransport(t_.servers->addresses()); };
  auto fail = [&](const std::string& why) { Record(e.fault, now, now, why, false); };

  if (!a.begin) {
    // End of a fault period: find it among the active ones.
    std::unique_ptr<Active> act;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = active_.begin(); it != active_.end(); ++it) {
        if ((*it)->event == a.event) {
          act = std::move(*it);
          active_.erase(it);
          break;
        }
      }
    }
    if (!act) return;
    std::string detail = act->detail;
    if (e.fault == "kill-node" || e.fault == "restart-node") {
      // A restart comes delay_ms after the kill, never earlier (also when healing): the
      // delayed restart's safety rests on it. Bounded by delay_ms.
      if (e.fault == "restart-node") {
        const int64_t due_us = act->begin_us + e.delay_ms * 1000;
        for (int i = 0; i < 1000000 && HistoryNowUs() < due_us; ++i)
          RealClock()->SleepUs(std::min<int64_t>(due_us - HistoryNowUs(), 10000));
      }
      auto t = direct();
      for (int n : act->nodes) {
        EmbeddedServer* s = t_.servers->server(n);
        if (e.fault == "restart-node" && !e.persistence.empty()) {
          Persistence p;
          if (ParsePersistence(e.persistence, &p)) s->set_persistence(p);
        }
        Status st = s->Restart();
        // How many of the keys the node held before the kill it still holds, with the same
        // value (not counting keys clients wrote since the restart).
        int64_t keys_after = -1;
        Command survived = {"EVAL",
                            "local n = 0 for i = 1, #ARGV, 2 do "
                            "if redis.call('GET', ARGV[i]) == ARGV[i + 1] then n = n + 1 end "
                            "end return n",
                            "0"};
        for (const std::string& x : act->held_before[n]) survived.push_back(x);
        Reply r = t->Call(n, survived, kEvidenceTimeoutUs);
        if (r.type == Reply::Type::kInteger) keys_after = r.integer;
        detail += "; " + s->name() +
                  (st.ok() ? " restarted (pid " + std::to_string(s->pid()) + ")"
                           : " restart FAILED: " + st.message());
        if (e.fault == "restart-node")
          detail += ", run keys before the kill " + std::to_string(act->held_before[n].size() / 2) +
                    ", after the restart " + std::to_string(keys_after) + " of them still held";
      }
    } else if (e.fault == "pause-node") {
      for (int n : act->nodes) {
        EmbeddedServer* s = t_.servers->server(n);
        s->Resume();
        detail += "; " + s->name() + " SIGCONT (state " + ProcState(s->pid()) + ")";
      }
    } else if (IsLinkFault(e.fault)) {
      LinkStats after = Sum(act->links);
      for (FaultProxy* l : act->links) {
        (void)l->SetMode(LinkMode::kPass);
        if (e.fault == "latency") {
          (void)l->SetLatency(Direction::kRequests, 0, 0);
          (void)l->SetLatency(Direction::kReplies, 0, 0);
        }
      }
      std::ostringstream o;
      o << "; during it: request chunks dropped "
        << after.dropped_chunks[0] - act->before.dropped_chunks[0] << ", reply chunks dropped "
        << after.dropped_chunks[1] - act->before.dropped_chunks[1] << ", chunks forwarded "
        << (after.forwarded_chunks[0] - act->before.forwarded_chunks[0]) << "/"
        << (after.forwarded_chunks[1] - act->before.forwarded_chunks[1]);
      detail += o.str();
    } else if (e.fault == "clock-rate") {
      auto t = direct();
      const double real_ms = static_cast<double>(now - act->begin_us) / 1000.0;
      for (size_t i = 0; i < act->nodes.size(); ++i) {
        const int n = act->nodes[i];
        Reply r = t->Call(n, {"PTTL", t_.key_prefix + "nemesis:probe"}, kEvidenceTimeoutUs);
        t_.servers->server(n)->clock()->SetRate(1.0);
        if (r.type == Reply::Type::kInteger && act->pttl_before_ms[i] > 0 && real_ms > 0) {
          char buf[160];
          std::snprintf(buf, sizeof buf,
                        "; node %d: probe PTTL fell %lld ms in %.0f ms real time (rate %.3f)", n,
                        static_cast<long long>(act->pttl_before_ms[i] - r.integer), real_ms,
                        static_cast<double>(act->pttl_before_ms[i] - r.integer) / real_ms);
          detail += buf;
        }
      }
      detail += "; rate back to 1";
    } else if (e.fault == "client-clock-rate") {
      for (int c : act->clients) clients_->ClientClock(c)->SetRate(1.0);
      detail += "; rate back to 1";
    } else if (e.fault == "cut-replication") {
      for (int n : act->nodes) {
        ReplicaControl* r = n < static_cast<int>(t_.replicas.size())
                                ? t_.replicas[static_cast<size_t>(n)]
                                : nullptr;
        if (r) {
          Status st = r->HealLink();
          detail += "; link healed" + (st.ok() ? std::string() : " FAILED: " + st.message());
        }
      }
    }
    Record(e.fault, act->begin_us, HistoryNowUs(), detail, true);
    return;
  }

  // Begin.
  auto act = std::make_unique<Active>();
  act->event = a.event;
  act->begin_us = now;
  const bool needs_servers = IsNodeFault(e.fault);
  if (needs_servers && (!t_.servers || !t_.servers->embedded())) {
    fail("needs embedded redis-servers (not run on --servers)");
    return;
  }
  if (nodes.empty() && (IsNodeFault(e.fault) || e.fault == "partition")) nodes = {0};
  if (nodes.empty()) {
    for (int n = 0; n < (t_.links ? t_.links->nodes() : nnodes); ++n) nodes.push_back(n);
  }
  if (clients.empty())
    for (int c = 0; c < nclients; ++c) clients.push_back(c);
  for (int n : nodes) {
    if (n < 0 || n >= std::max(nnodes, t_.links ? t_.links->nodes() : 0)) {
      fail("node " + std::to_string(n) + " does not exist");
      return;
    }
  }
  act->nodes = nodes;
  act->clients = clients;
  std::string& detail = act->detail;
  // Node faults that make a node forget (kill, restart, clock jump, failover) strike while the
  // node holds a fresh lock: the moment the predictions are about. Bounded wait.
  if (e.fault == "kill-node" || e.fault == "restart-node" || e.fault == "clock-jump" ||
      e.fault == "failover") {
    detail = StrikeWhenHeld(nodes.front(), e.fault == "failover");
    act->begin_us = HistoryNowUs();  // the fault's period starts when it strikes
  }

  if (e.fault == "pause-holder" || e.fault == "crash-client" || e.fault == "crash-mid-acquire") {
    ClientFaultRequest r;
    r.kind = e.fault == "pause-holder"   ? ClientFault::kPause
             : e.fault == "crash-client" ? ClientFault::kCrash
                                         : ClientFault::kCrashMidAcquire;
    r.clients = e.clients;
    r.duration_us = e.duration_ms * 1000;
    r.expires_us = now + std::max<int64_t>(e.duration_ms, 1000) * 1000;
    r.label = "at " + std::to_string(e.at_ms) + " ms";
    clients_->Request(r);
    Record(e.fault, now, now,
           "requested for " +
               (e.clients.empty() ? std::string("the next client to get there")
                                  : "clients " + Join(e.clients)) +
               " (the client records the fault itself when it happens)",
           true);
    return;
  }
  if (e.fault == "client-clock-jump") {
    for (int c : clients) clients_->ClientClock(c)->Jump(e.delta_ms * 1000);
    Record(e.fault, now, now,
           "clients " + Join(clients) + " clocks jumped " + std::to_string(e.delta_ms) + " ms",
           true);
    return;
  }
  if (e.fault == "client-wall-clock-jump") {
    for (int c : clients) clients_->ClientClock(c)->WallJump(e.delta_ms * 1000);
    Record(e.fault, now, now,
           "clients " + Join(clients) + " wall clocks stepped " + std::to_string(e.delta_ms) +
               " ms (their monotonic clocks unchanged)",
           true);
    return;
  }
  if (e.fault == "client-clock-rate") {
    for (int c : clients) {
      clients_->ClientClock(c)->SetRate(e.rate);
    }
    detail = "clients " + Join(clients) + " clocks at rate " + std::to_string(e.rate);
  } else if (e.fault == "kill-node" || e.fault == "restart-node") {
    auto t = direct();
    for (int n : nodes) {
      EmbeddedServer* s = t_.servers->server(n);
      if (e.fault == "restart-node") {
        Reply r = t->Call(n,
                          {"EVAL",
                           "local r = {} for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
                           "local v = redis.call('GET', k) if v then r[#r + 1] = k "
                           "r[#r + 1] = v end end return r",
                           "0", t_.key_prefix + "*"},
                          kEvidenceTimeoutUs);
        std::vector<std::string>& held = act->held_before[n];
        for (const Reply& x : r.elements)
          if (x.type == Reply::Type::kString) held.push_back(x.str);
      }
      const pid_t pid = s->pid();
      s->Kill();
      Reply ping = t->Call(n, {"PING"}, kEvidenceTimeoutUs);
      detail += (detail.empty() ? "" : "; ") + s->name() + " (pid " + std::to_string(pid) +
                ") SIGKILLed; PING then: " + ping.ToString();
    }
    if (e.fault == "restart-node")
      detail += "; restart after " + std::to_string(e.delay_ms) + " ms with persistence " +
                (e.persistence.empty() ? PersistenceName(scenario_.persistence) : e.persistence);
  } else if (e.fault == "pause-node") {
    for (int n : nodes) {
      EmbeddedServer* s = t_.servers->server(n);
      s->Pause();
      // SIGSTOP is delivered asynchronously: wait (bounded) until the kernel shows it stopped.
      std::string st = ProcState(s->pid());
      for (int i = 0; i < 200 && st != "T"; ++i) {
        RealClock()->SleepUs(1000);
        st = ProcState(s->pid());
      }
      detail += (detail.empty() ? "" : "; ") + s->name() + " (pid " + std::to_string(s->pid()) +
                ") SIGSTOPped: /proc state " + st;
    }
  } else if (e.fault == "clock-jump" || e.fault == "clock-rate") {
    auto t = direct();
    for (int n : nodes) {
      ServerClock* clk = t_.servers->server(n)->clock();
      if (!clk) {
        fail("node " + std::to_string(n) + " has no clock control");
        return;
      }
      const std::string probe = t_.key_prefix + "nemesis:probe";
      t->Call(n, {"SET", probe, "1", "PX", "3600000"}, kEvidenceTimeoutUs);
      Reply before = t->Call(n, {"PTTL", probe}, kEvidenceTimeoutUs);
      if (e.fault == "clock-jump") {
        clk->Jump(e.delta_ms * 1000);
        // Redis caches its clock per event-loop turn: the next command sees the new time.
        Reply after = t->Call(n, {"PTTL", probe}, kEvidenceTimeoutUs);
        detail += (detail.empty() ? "" : "; ") + std::string("node ") + std::to_string(n) +
                  " clock jumped " + std::to_string(e.delta_ms) + " ms: probe PTTL " +
                  before.ToString() + " -> " + after.ToString();
      } else {
        if (Status s = clk->SetRate(e.rate); !s.ok()) {
          fail(s.message());
          return;
        }
        act->pttl_before_ms.push_back(before.type == Reply::Type::kInteger ? before.integer : -1);
        detail += (detail.empty() ? "" : "; ") + std::string("node ") + std::to_string(n) +
                  " clock at rate " + std::to_string(e.rate);
      }
    }
    if (e.fault == "clock-jump") {
      Record(e.fault, now, now, detail, true);
      return;
    }
  } else if (IsLinkFault(e.fault)) {
    if (!t_.links) {
      fail("no link grid (internal: the scenario's link faults were not detected)");
      return;
    }
    const int nc = t_.links->clients();
    std::vector<std::pair<int, int>> cut;  // (client, node)
    if (e.fault == "partition" && !e.groups.empty()) {
      const int g = static_cast<int>(e.groups.size());
      for (int c = 0; c < nc; ++c) {
        const auto& reach = e.groups[static_cast<size_t>(c * g / nc)];
        for (int n = 0; n < t_.links->nodes(); ++n)
          if (std::find(reach.begin(), reach.end(), n) == reach.end()) cut.push_back({c, n});
      }
      detail = "client groups of " + std::to_string(nc / g) + "+ clients each reach only";
      for (const auto& r : e.groups) detail += " {" + Join(r) + "}";
    } else {
      for (int c : clients)
        for (int n : nodes)
          if (c < nc && n < t_.links->nodes()) cut.push_back({c, n});
      detail = "clients " + Join(clients) + " x nodes " + Join(nodes);
    }
    for (auto [c, n] : cut) act->links.push_back(t_.links->link(c, n));
    act->before = Sum(act->links);
    for (FaultProxy* l : act->links) {
      if (e.fault == "partition") (void)l->SetMode(LinkMode::kBlackhole);
      if (e.fault == "one-way-replies") (void)l->SetMode(LinkMode::kDropReplies);
      if (e.fault == "drop-requests") (void)l->SetMode(LinkMode::kDropRequests);
      if (e.fault == "latency") {
        (void)l->SetLatency(Direction::kRequests, e.latency_ms * 1000, e.jitter_ms * 1000);
        (void)l->SetLatency(Direction::kReplies, e.latency_ms * 1000, e.jitter_ms * 1000);
      }
      if (e.fault == "refuse-connections") (void)l->SetMode(LinkMode::kRefuse);
      if (e.fault == "reset-connections" || e.fault == "refuse-connections")
        (void)l->ResetConnections();
    }
    detail += ": " + std::to_string(act->links.size()) + " links " +
              (e.fault == "partition"         ? "blackholed"
               : e.fault == "one-way-replies" ? "drop replies"
               : e.fault == "drop-requests"   ? "drop requests"
               : e.fault == "latency"         ? "delayed " + std::to_string(e.latency_ms) + " ± " +
                                            std::to_string(e.jitter_ms) + " ms each way"
               : e.fault == "refuse-connections" ? "refuse new connections"
                                                 : "reset");
    if (e.fault == "reset-connections") {
      LinkStats after = Sum(act->links);
      detail += ": " + std::to_string(after.reset_connections - act->before.reset_connections) +
                " connections reset";
      Record(e.fault, now, now, detail, true);
      return;
    }
  } else if (e.fault == "cut-replication" || e.fault == "failover") {
    for (int n : nodes) {
      ReplicaControl* r =
          n < static_cast<int>(t_.replicas.size()) ? t_.replicas[static_cast<size_t>(n)] : nullptr;
      if (!r) {
        fail("node " + std::to_string(n) + " has no replica (topology.replicas = 0?)");
        return;
      }
      if (e.fault == "cut-replication") {
        Status st = r->CutLink();
        detail += (detail.empty() ? "" : "; ") + std::string("node ") + std::to_string(n) +
                  " replication link blackholed" + (st.ok() ? "" : " FAILED: " + st.message());
        continue;
      }
      // failover: the master dies, the replica is promoted, every client link follows.
      // Evidence: the master's lock keys and tokens, and how many of them the replica has.
      const std::string pattern = t_.key_prefix + t_.impl + ":*";
      auto master_t = NewRedisTransport({r->master()->address()});
      Reply held =
          master_t->Call(0,
                         {"EVAL",
                          "local out = {} for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
                          "local v = redis.call('GET', k) if v then table.insert(out, k) "
                          "table.insert(out, v) end end return out",
                          "0", pattern},
                         kEvidenceTimeoutUs);
      const pid_t old_pid = r->master()->pid();
      r->master()->Kill();
      Status st = r->Promote();
      int64_t master_keys = 0, same_on_replica = 0;
      auto replica_t = NewRedisTransport({r->replica()->address()});
      for (size_t i = 0; i + 1 < held.elements.size(); i += 2) {
        ++master_keys;
        Reply v = replica_t->Call(0, {"GET", held.elements[i].str}, kEvidenceTimeoutUs);
        if (v.type == Reply::Type::kString && v.str == held.elements[i + 1].str) ++same_on_replica;
      }
      detail += "; lock keys on the master " + std::to_string(master_keys) +
                ", of which on the promoted replica (same token) " +
                std::to_string(same_on_replica);
      detail += (detail.empty() ? "" : "; ") + std::string("node ") + std::to_string(n) +
                ": master pid " + std::to_string(old_pid) + " SIGKILLed, replica " +
                r->replica()->address().ToString() +
                (st.ok() ? " promoted (role:master)" : " promotion FAILED: " + st.message());
      if (t_.links) {
        int moved = 0;
        for (int c = 0; c < t_.links->clients(); ++c)
          if (t_.links->link(c, n)->SetUpstream(r->replica()->address()).ok()) ++moved;
        detail += "; " + std::to_string(moved) + " client links now lead to it";
      }
    }
    if (e.fault == "failover") {
      Record(e.fault, now, now, detail, true);
      return;
    }
  } else {
    fail("unknown fault");
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  active_.push_back(std::move(act));
}

void Nemesis::HealAll() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (healed_) return;
  healed_ = true;
  // End every fault still in effect, as its end action would.
  for (int guard = 0; guard < 10000; ++guard) {
    size_t event;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (active_.empty()) break;
      event = active_.front()->event;
    }
    Apply({0, event, false});
  }
  // Whatever else: every embedded node up, every link passing.
  if (t_.servers && t_.servers->embedded()) {
    for (int n = 0; n < t_.servers->size(); ++n) {
      EmbeddedServer* s = t_.servers->server(n);
      if (!s->running()) (void)s->Restart();
    }
  }
  if (t_.links) t_.links->PassAll();
  // What the faults left behind: lock keys of this impl without a TTL (they never expire).
  if (t_.servers && t_.servers->size() > 0 && clients_) {
    auto t = NewRedisTransport(t_.servers->addresses());
    std::string left;
    int64_t total = 0;
    for (int n = 0; n < t_.servers->size(); ++n) {
      Reply r = t->Call(n,
                        {"EVAL",
                         "local c = 0 for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
                         "if redis.call('PTTL', k) == -1 then c = c + 1 end end return c",
                         "0", t_.key_prefix + t_.impl + ":*"},
                        kEvidenceTimeoutUs);
      if (r.type == Reply::Type::kInteger && r.integer > 0) {
        total += r.integer;
        left += " node " + std::to_string(n) + ": " + std::to_string(r.integer);
      }
    }
    const int64_t now = HistoryNowUs();
    Record("heal", now, now,
           "every fault healed; lock keys with no TTL: " + std::to_string(total) + left, true);
  }
}

Status Nemesis::Reset() {
  if (t_.servers && t_.servers->embedded()) {
    for (int n = 0; n < t_.servers->size(); ++n) {
      if (ServerClock* c = t_.servers->server(n)->clock()) c->Reset();
    }
  }
  for (ReplicaControl* r : t_.replicas) {
    if (!r) continue;
    if (Status s = r->Restore(); !s.ok()) return s;
  }
  if (t_.links) {
    for (int n = 0; n < t_.links->nodes(); ++n) {
      ReplicaControl* r =
          n < static_cast<int>(t_.replicas.size()) ? t_.replicas[static_cast<size_t>(n)] : nullptr;
      if (!r) continue;
      for (int c = 0; c < t_.links->clients(); ++c)
        (void)t_.links->link(c, n)->SetUpstream(r->master()->address());
    }
  }
  return Status::Ok();
}

std::vector<FaultRecord> Nemesis::records() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_;
}

}  // namespace lockstorm
