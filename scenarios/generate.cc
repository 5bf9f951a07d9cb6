#include "scenarios/generate.h"

#include <algorithm>
#include <cstdio>
#include <tuple>
#include <utility>

namespace lockstorm {
namespace {

struct FaultGroup {
  const char* name;
  std::vector<const char*> kinds;
};

const std::vector<FaultGroup>& FaultGroups() {
  static const std::vector<FaultGroup> groups = {
      {"pause", {"pause-holder", "pause-node"}},
      {"partition", {"partition"}},
      {"one-way", {"one-way-replies", "drop-requests"}},
      {"latency", {"latency"}},
      {"restart", {"kill-node", "restart-node"}},
      {"crash", {"crash-client", "crash-mid-acquire"}},
      {"clock",
       {"clock-jump", "clock-rate", "client-clock-jump", "client-clock-rate",
        "client-wall-clock-jump"}},
      {"connections", {"reset-connections", "refuse-connections"}},
  };
  return groups;
}

// Faults that happen at one instant (their duration_ms is 0), except the two whose duration
// is a length of their own: a pause's, and a crashed client's down time.
bool IsInstantFault(const std::string& f) {
  return f == "clock-jump" || f == "reset-connections" || f == "client-clock-jump" ||
         f == "client-wall-clock-jump" || f == "failover" || f == "crash-mid-acquire";
}

constexpr int64_t kStepMs = 100;  // event times and lengths are whole multiples of this

}  // namespace

Status FaultKindsForGroups(const std::vector<std::string>& groups,
                           std::vector<std::string>* kinds) {
  kinds->clear();
  for (const std::string& g : groups) {
    const FaultGroup* found = nullptr;
    for (const FaultGroup& fg : FaultGroups())
      if (g == fg.name) found = &fg;
    if (!found) {
      return Status::InvalidArgument("--faults: unknown fault group '" + g + "' (expected " +
                                     FaultGroupList() + ")");
    }
    for (const char* k : found->kinds)
      if (std::find(kinds->begin(), kinds->end(), k) == kinds->end()) kinds->push_back(k);
  }
  return Status::Ok();
}

std::string FaultGroupList() {
  std::string s;
  for (const FaultGroup& g : FaultGroups()) s += (s.empty() ? "" : ", ") + std::string(g.name);
  return s;
}

rc::Gen<NemesisEvent> GenEvent(const std::string& fault, const Workload& w, int nodes,
                               const ExploreBounds& bounds) {
  const int64_t steps = std::max<int64_t>(w.duration_ms / kStepMs, 1);
  const int node_masks = 1 << std::clamp(nodes, 1, 15);
  const std::vector<Persistence> persistence = bounds.restart_persistence.empty()
                                                   ? std::vector<Persistence>{Persistence::kNone}
                                                   : bounds.restart_persistence;
  // Each part shrinks on its own, towards: time 0, 100 ms long, node 0, the default clients,
  // 10 ms latency, no jitter, a 250 ms forward jump, a 1 % clock rate change, the first
  // persistence, no restart delay.
  auto parts = rc::gen::tuple(
      rc::gen::inRange<int64_t>(0, steps), rc::gen::inRange<int64_t>(1, steps + 1),
      rc::gen::inRange(1, node_masks), rc::gen::inRange(0, w.clients + 1),
      rc::gen::inRange<int64_t>(1, 31), rc::gen::inRange<int64_t>(0, 6),
      rc::gen::inRange<int64_t>(1, 21), rc::gen::arbitrary<bool>(), rc::gen::inRange(1, 101),
      rc::gen::inRange<size_t>(0, persistence.size()), rc::gen::inRange<int64_t>(0, steps));
  return rc::gen::map(std::move(parts), [fault, w, persistence](const auto& p) {
    const auto& [at, len, mask, client, latency, jitter, jump, backwards, rate_pct, pers, delay] =
        p;
    NemesisEvent e;
    e.fault = fault;
    e.at_ms = std::min<int64_t>(at * kStepMs, std::max<int64_t>(w.duration_ms - kStepMs, 0));
    const int64_t room_ms = w.duration_ms - e.at_ms;
    e.duration_ms = IsInstantFault(fault) ? 0 : std::min(len * kStepMs, room_ms);
    if (FaultUsesField(fault, "nodes")) {
      for (int n = 0; n < 15; ++n)
        if (mask >> n & 1) e.nodes.push_back(n);
    }
    if (FaultUsesField(fault, "clients") && client > 0) e.clients = {client - 1};
    if (FaultUsesField(fault, "latency_ms")) {
      e.latency_ms = latency * 10;
      e.jitter_ms = e.latency_ms * jitter / 10;
    }
    if (FaultUsesField(fault, "delta_ms")) e.delta_ms = (backwards ? -250 : 250) * jump;
    if (FaultUsesField(fault, "rate")) {
      const double change = rate_pct / 100.0;
      e.rate = backwards ? 1.0 / (1.0 + change) : 1.0 + change;
    }
    if (FaultUsesField(fault, "persistence")) {
      e.persistence = PersistenceName(persistence[pers]);
      e.delay_ms = std::min(delay * kStepMs, room_ms);
    }
    return e;
  });
}

rc::Gen<Scenario> GenScenario(const ExploreBounds& bounds) {
  const ExploreBounds b = bounds;
  const int64_t lo = std::max<int64_t>(b.min_duration_ms / 500, 1);
  const int64_t hi = std::max<int64_t>(b.max_duration_ms / 500, lo);
  const std::vector<int64_t> ttls = b.ttls_ms.empty() ? std::vector<int64_t>{500} : b.ttls_ms;
  const std::vector<std::vector<HoldBand>> mixes =
      b.hold_mixes.empty() ? std::vector<std::vector<HoldBand>>{Workload().holds} : b.hold_mixes;
  auto workload = rc::gen::map(
      rc::gen::tuple(rc::gen::inRange(b.min_clients, std::max(b.min_clients, b.max_clients) + 1),
                     rc::gen::inRange(1, std::max(b.max_keys, 1) + 1),
                     rc::gen::inRange<int64_t>(lo, hi + 1),
                     rc::gen::map(rc::gen::inRange<size_t>(0, ttls.size()),
                                  [ttls](size_t i) { return ttls[i]; }),
                     rc::gen::inRange<size_t>(0, mixes.size())),
      [mixes](const auto& p) {
        const auto& [clients, keys, half_seconds, ttl_ms, mix] = p;
        Workload w;
        w.clients = clients;
        w.keys = keys;
        w.duration_ms = half_seconds * 500;
        w.ttl_ms = ttl_ms;
        w.wait_ms = 2 * ttl_ms;
        w.holds = mixes[mix];
        return w;
      });
  return rc::gen::mapcat(std::move(workload), [b](const Workload& w) {
    const int nodes = std::max(b.nodes, 1);
    rc::Gen<NemesisEvent> event = rc::gen::mapcat(
        rc::gen::map(rc::gen::inRange<size_t>(0, std::max<size_t>(b.faults.size(), 1)),
                     [b](size_t i) { return b.faults[i]; }),
        [w, nodes, b](const std::string& fault) { return GenEvent(fault, w, nodes, b); });
    // 0..max_events events: the list's length is drawn at size min(size, max_events) while
    // the events themselves get the full size, so no event is generated only to be cut off
    // (a hidden event would turn RapidCheck's "drop a chunk" shrinks into sideways moves).
    const int max_events = std::max(b.max_events, 0);
    rc::Gen<std::vector<NemesisEvent>> events =
        b.faults.empty() || max_events == 0
            ? rc::gen::just(std::vector<NemesisEvent>{})
            : rc::Gen<std::vector<NemesisEvent>>([event, max_events](const rc::Random& random,
                                                                     int size) {
                return rc::gen::container<std::vector<NemesisEvent>>(rc::gen::resize(size, event))(
                    random, std::min(size, max_events));
              });
    return rc::gen::map(std::move(events), [w, nodes, b](std::vector<NemesisEvent> ev) {
      std::stable_sort(ev.begin(), ev.end(), [](const NemesisEvent& x, const NemesisEvent& y) {
        return x.at_ms < y.at_ms;
      });
      Scenario s;
      s.name = "explore";
      s.description = "generated by lockstorm explore";
      s.nodes = nodes;
      for (const std::string& f : b.faults)
        if (f == "failover" || f == "cut-replication") s.replicas = 1;
      s.workload = w;
      s.nemesis = std::move(ev);
      return s;
    });
  });
}

}  // namespace lockstorm
