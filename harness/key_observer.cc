#include "harness/key_observer.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <utility>

#include "harness/clock.h"

namespace lockstorm {
namespace {

// For each key KEYS[i]: its value (false → nil if absent) and its PTTL, as one flat array
// value1, pttl1, value2, pttl2, ... Read-only. A key that is not a string is reported with
// the value "(<type>)" so that it shows up (as foreign) instead of aborting the script.
constexpr const char* kObserveLua =
    "local out = {} "
    "for i = 1, #KEYS do "
    "  local v = redis.pcall('get', KEYS[i]) "
    "  if type(v) == 'table' then v = '(' .. redis.call('type', KEYS[i]).ok .. ')' end "
    "  out[2 * i - 1] = v "
    "  out[2 * i] = redis.call('pttl', KEYS[i]) "
    "end "
    "return out";

constexpr int64_t kMinPollIntervalUs = 100;
constexpr int64_t kMaxPollIntervalUs = 60'000'000;
constexpr int64_t kMaxCommandTimeoutUs = 10'000'000;
constexpr size_t kMaxErrorChars = 300;  // of a bad reply, in last_error

}  // namespace

KeyObserver::KeyObserver(std::vector<ServerAddress> nodes, std::vector<std::string> keys,
                         KeyObserverOptions opts)
    : KeyObserver([nodes = std::move(nodes)] { return NewRedisTransport(nodes); }, std::move(keys),
                  opts) {}

KeyObserver::KeyObserver(TransportFactory make_transport, std::vector<std::string> keys,
                         KeyObserverOptions opts)
    : make_transport_(std::move(make_transport)), keys_(std::move(keys)), opts_(opts) {}

KeyObserver::~KeyObserver() { Stop(); }

Status KeyObserver::Start() {
  if (keys_.empty()) return Status::InvalidArgument("key observer: no keys to observe");
  if (keys_.size() > kMaxKeys) {
    return Status::InvalidArgument("key observer: " + std::to_string(keys_.size()) +
                                   " keys, at most " + std::to_string(kMaxKeys));
  }
  if (opts_.poll_interval_us < kMinPollIntervalUs || opts_.poll_interval_us > kMaxPollIntervalUs) {
    return Status::InvalidArgument(
        "key observer: poll_interval_us must be in [" + std::to_string(kMinPollIntervalUs) + ", " +
        std::to_string(kMaxPollIntervalUs) + "], got " + std::to_string(opts_.poll_interval_us));
  }
  if (opts_.command_timeout_us <= 0 || opts_.command_timeout_us > kMaxCommandTimeoutUs) {
    return Status::InvalidArgument("key observer: command_timeout_us must be in [1, " +
                                   std::to_string(kMaxCommandTimeoutUs) + "], got " +
                                   std::to_string(opts_.command_timeout_us));
  }
  if (opts_.max_presences == 0 || opts_.max_run_us <= 0 || opts_.timeout_backoff_us < 0) {
    return Status::InvalidArgument(
        "key observer: max_presences and max_run_us must be > 0, timeout_backoff_us >= 0");
  }
  std::unique_ptr<Transport> transport = make_transport_ ? make_transport_() : nullptr;
  if (transport == nullptr) return Status::InvalidArgument("key observer: no transport");
  if (transport->node_count() < 1) return Status::InvalidArgument("key observer: no nodes");
  std::lock_guard<std::mutex> lock(mu_);
  if (started_ || stop_) return Status::Internal("key observer: Start() after Start() or Stop()");
  started_ = true;
  node_count_ = transport->node_count();
  open_.assign(static_cast<size_t>(node_count_) * keys_.size(), Open{});
  stats_.errors_per_node.assign(static_cast<size_t>(node_count_), 0);
  thread_ = std::thread([this, t = std::move(transport)]() mutable { Loop(std::move(t)); });
  return Status::Ok();
}

void KeyObserver::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  round_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::vector<KeyPresence> KeyObserver::Presences() const {
  std::lock_guard<std::mutex> lock(mu_);
  return presences_;
}

KeyObserverStats KeyObserver::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

bool KeyObserver::WaitFor(const std::function<bool(const std::vector<KeyPresence>&)>& pred,
                          int64_t timeout_us) const {
  std::unique_lock<std::mutex> lock(mu_);
  return round_cv_.wait_for(lock, std::chrono::microseconds(std::max<int64_t>(timeout_us, 0)),
                            [&] { return pred(presences_); });
}

void KeyObserver::Loop(std::unique_ptr<Transport> transport) {
  std::vector<int64_t> backoff_until_us(static_cast<size_t>(node_count_), 0);
  const int64_t end_us = HistoryNowUs() + opts_.max_run_us;
  // Bounded: ends on Stop(), at max_run_us, or after as many rounds as fit in max_run_us.
  const int64_t max_rounds = opts_.max_run_us / opts_.poll_interval_us + 1;
  for (int64_t round = 0; round < max_rounds; ++round) {
    const int64_t start_us = HistoryNowUs();
    if (start_us >= end_us) break;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
    }
    const bool completed = PollRound(transport.get(), &backoff_until_us);
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (completed) ++stats_.rounds;
      round_cv_.notify_all();
      // The next round starts one interval after this one started (at once if this one
      // overran); Stop() wakes the wait.
      const int64_t wait_us = start_us + opts_.poll_interval_us - HistoryNowUs();
      if (wait_us > 0) {
        round_cv_.wait_for(lock, std::chrono::microseconds(wait_us), [this] { return stop_; });
      }
      if (stop_) break;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  round_cv_.notify_all();
}

bool KeyObserver::PollRound(Transport* transport, std::vector<int64_t>* backoff_until_us) {
  std::vector<int> nodes;
  const int64_t now_us = HistoryNowUs();
  int64_t skipped = 0;
  for (int n = 0; n < node_count_; ++n) {
    if ((*backoff_until_us)[static_cast<size_t>(n)] > now_us) {
      ++skipped;
    } else {
      nodes.push_back(n);
    }
  }
  const size_t chunks = (keys_.size() + kMaxKeysPerPoll - 1) / kMaxKeysPerPoll;
  bool completed = true;
  for (size_t c = 0; c < chunks && !nodes.empty(); ++c) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) {
        completed = false;
        break;
      }
    }
    const size_t first = c * kMaxKeysPerPoll;
    const size_t count = std::min(kMaxKeysPerPoll, keys_.size() - first);
    Command cmd = {"EVAL", kObserveLua, std::to_string(count)};
    cmd.insert(cmd.end(), keys_.begin() + static_cast<std::ptrdiff_t>(first),
               keys_.begin() + static_cast<std::ptrdiff_t>(first + count));
    // Stamp each node's reply when it is read: the transport consults `decided` as replies
    // arrive. (A transport that ignores it leaves the stamps to the fan-out's completion.)
    std::vector<int64_t> read_us(nodes.size(), -1);
    std::vector<Reply> replies = transport->CallManyUntil(
        nodes, cmd, opts_.command_timeout_us, [&read_us](const std::vector<const Reply*>& so_far) {
          const int64_t t = HistoryNowUs();
          for (size_t i = 0; i < so_far.size() && i < read_us.size(); ++i) {
            if (so_far[i] != nullptr && read_us[i] < 0) read_us[i] = t;
          }
          return false;  // wait for every node
        });
    const int64_t done_us = HistoryNowUs();
    std::vector<int> answered;
    for (size_t i = 0; i < nodes.size(); ++i) {
      const Reply no_reply = Reply::IoError("no reply from transport");
      const Reply& r = i < replies.size() ? replies[i] : no_reply;
      const int64_t at_us = read_us[i] >= 0 ? read_us[i] : done_us;
      if (!r.unknown() && Apply(nodes[i], first, count, r, at_us)) {
        answered.push_back(nodes[i]);
        continue;
      }
      NoteError(nodes[i], r.ToString().substr(0, kMaxErrorChars));
      if (r.type == Reply::Type::kTimeout) {
        (*backoff_until_us)[static_cast<size_t>(nodes[i])] = done_us + opts_.timeout_backoff_us;
      }
    }
    nodes = std::move(answered);  // a node that failed is skipped for the rest of the round
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.skipped += skipped;
  return completed;
}

bool KeyObserver::Apply(int node, size_t first, size_t count, const Reply& reply, int64_t at_us) {
  if (reply.type != Reply::Type::kArray || reply.elements.size() != 2 * count) return false;
  for (size_t i = 0; i < count; ++i) {
    const Reply& v = reply.elements[2 * i];
    const Reply& t = reply.elements[2 * i + 1];
    if ((v.type != Reply::Type::kString && v.type != Reply::Type::kNil) ||
        t.type != Reply::Type::kInteger) {
      return false;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.polls;
  for (size_t i = 0; i < count; ++i) {
    const Reply& v = reply.elements[2 * i];
    Open& o = open_[static_cast<size_t>(node) * keys_.size() + first + i];
    const bool present = v.type == Reply::Type::kString;
    const std::string value = present ? v.str.substr(0, kMaxValueBytes) : std::string();
    if (o.present && present && o.value == value) {
      if (o.index >= 0) presences_[static_cast<size_t>(o.index)].last_seen_us = at_us;
      continue;
    }
    if (o.present) {  // gone, or replaced by another value
      if (o.index >= 0) presences_[static_cast<size_t>(o.index)].gone_us = at_us;
      o = Open{};
    }
    if (!present) continue;
    o.present = true;
    o.value = value;
    if (presences_.size() >= opts_.max_presences) {
      ++stats_.dropped;
      o.index = -1;
      continue;
    }
    KeyPresence p;
    p.node = node;
    p.key = keys_[first + i];
    p.value = value;
    p.first_seen_us = at_us;
    p.last_seen_us = at_us;
    p.gone_us = -1;
    p.pttl_ms_first = reply.elements[2 * i + 1].integer;
    o.index = static_cast<int64_t>(presences_.size());
    presences_.push_back(std::move(p));
  }
  return true;
}

void KeyObserver::NoteError(int node, const std::string& what) {
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.errors;
  ++stats_.errors_per_node[static_cast<size_t>(node)];
  stats_.last_error = "node " + std::to_string(node) + ": " + what;
}

GhostReport FindGhostLocks(const std::vector<KeyPresence>& presences,
                           const std::vector<Event>& events, const std::string& impl,
                           const std::string& scenario, size_t max_examples) {
  GhostReport r;
  r.impl = impl;
  r.scenario = scenario;

  // The pair's keys and acquires by token; other pairs' tokens, to tell them from foreign.
  std::set<std::string> keys;
  std::map<std::string, const Event*> acquires;  // token → acquire (an ok one if any)
  std::set<std::string> other_tokens;
  for (const Event& e : events) {
    const bool ours = e.impl == impl && e.scenario == scenario;
    if (ours) keys.insert(e.key);
    if (e.type != OpType::kAcquire) continue;
    if (!ours) {
      if (!e.token.empty()) other_tokens.insert(e.token);
      continue;
    }
    if (e.token.empty()) {
      if (e.outcome != Outcome::kOk) ++r.untokened_acquires;
      continue;
    }
    auto [it, inserted] = acquires.emplace(e.token, &e);
    if (!inserted && e.outcome == Outcome::kOk) it->second = &e;
  }

  std::vector<GhostLock> ghosts;
  std::set<int64_t> ghost_ops;
  for (const KeyPresence& p : presences) {
    if (keys.count(p.key) == 0) {
      ++r.other_keys;
      continue;
    }
    ++r.examined;
    auto it = acquires.find(p.value);
    if (it == acquires.end()) {
      if (other_tokens.count(p.value) > 0) {
        ++r.other_runs;
      } else {
        ++r.foreign;
      }
      continue;
    }
    const Event& a = *it->second;
    if (a.outcome == Outcome::kOk) {
      ++r.legit;
      continue;
    }
    GhostLock g;
    g.node = p.node;
    g.key = p.key;
    g.token = p.value;
    g.acquire_op = a.op_id;
    g.outcome = a.outcome;
    g.client = a.client;
    g.first_seen_us = p.first_seen_us;
    g.still_present = p.gone_us < 0;
    const int64_t end_us = g.still_present ? p.last_seen_us : p.gone_us;
    g.lifetime_ms = static_cast<double>(std::max<int64_t>(end_us - p.first_seen_us, 0)) / 1000.0;
    if (g.still_present) ++r.still_present;
    if (p.node >= 0) {
      if (r.per_node.size() <= static_cast<size_t>(p.node)) {
        r.per_node.resize(static_cast<size_t>(p.node) + 1, 0);
      }
      ++r.per_node[static_cast<size_t>(p.node)];
    }
    ghost_ops.insert(a.op_id);
    ghosts.push_back(std::move(g));
  }
  r.count = static_cast<int64_t>(ghosts.size());
  r.ghost_tokens = static_cast<int64_t>(ghost_ops.size());
  if (ghosts.empty()) return r;

  // Longest first; ties: earliest seen, then node.
  std::sort(ghosts.begin(), ghosts.end(), [](const GhostLock& a, const GhostLock& b) {
    if (a.lifetime_ms != b.lifetime_ms) return a.lifetime_ms > b.lifetime_ms;
    if (a.first_seen_us != b.first_seen_us) return a.first_seen_us < b.first_seen_us;
    return a.node < b.node;
  });
  r.max_lifetime_ms = ghosts.front().lifetime_ms;
  // Nearest rank ceil(n/2) in ascending order = index n - ceil(n/2) in descending order.
  const size_t n = ghosts.size();
  r.p50_lifetime_ms = ghosts[n - (n + 1) / 2].lifetime_ms;
  ghosts.resize(std::min(n, max_examples));
  r.examples = std::move(ghosts);
  return r;
}

nlohmann::json GhostReportToJson(const GhostReport& r) {
  nlohmann::json examples = nlohmann::json::array();
  for (const GhostLock& g : r.examples) {
    examples.push_back({{"node", g.node},
                        {"key", g.key},
                        {"token", g.token},
                        {"acquire_op", g.acquire_op},
                        {"outcome", OutcomeName(g.outcome)},
                        {"client", g.client},
                        {"first_seen_us", g.first_seen_us},
                        {"lifetime_ms", g.lifetime_ms},
                        {"still_present", g.still_present}});
  }
  return {{"impl", r.impl},
          {"scenario", r.scenario},
          {"count", r.count},
          {"ghost_tokens", r.ghost_tokens},
          {"still_present", r.still_present},
          {"examined", r.examined},
          {"other_keys", r.other_keys},
          {"legit", r.legit},
          {"foreign", r.foreign},
          {"other_runs", r.other_runs},
          {"untokened_acquires", r.untokened_acquires},
          {"p50_lifetime_ms", r.p50_lifetime_ms},
          {"max_lifetime_ms", r.max_lifetime_ms},
          {"per_node", r.per_node},
          {"examples", std::move(examples)}};
}

}  // namespace lockstorm
