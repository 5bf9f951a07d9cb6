#include "harness/witness.h"

#include <algorithm>

#include "harness/clock.h"

namespace lockstorm {

WitnessWrite Witness::Write(const std::string& key, int client, int64_t fence) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = highest_.try_emplace(key, kNoAcceptedFence);
  WitnessWrite result;
  result.highest_before = it->second;
  result.accepted = fence >= it->second;
  if (result.accepted) it->second = fence;
  // Timestamped under the lock, so record order and time order agree.
  writes_.push_back({key, client, fence, result.accepted, result.highest_before, HistoryNowUs()});
  return result;
}

std::vector<WitnessRecord> Witness::Writes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return writes_;
}

int64_t Witness::HighestAccepted(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = highest_.find(key);
  return it == highest_.end() ? kNoAcceptedFence : it->second;
}

int64_t CountStaleAcceptedWrites(const std::vector<WitnessRecord>& records) {
  std::map<std::string, int64_t> highest;  // key -> highest token accepted so far
  int64_t stale = 0;
  for (const WitnessRecord& r : records) {
    if (!r.accepted) continue;
    auto [it, inserted] = highest.try_emplace(r.key, r.fence);
    if (inserted) continue;
    if (r.fence < it->second) {
      ++stale;
    } else {
      it->second = r.fence;
    }
  }
  return stale;
}

}  // namespace lockstorm
