// Witness: the fenced resource — a stand-in for a storage service that checks fencing tokens.
//
// A client holding a fenced lease writes to the witness with its lease's fencing token. The
// witness accepts a write to a key iff its token is >= the highest token it has accepted for
// that key so far (equal is accepted: the same lease may write several times), and rejects it
// otherwise. Every write, accepted or rejected, is recorded with the client, the token and
// the time on the history clock (HistoryNowUs()), in the order the witness decided them.
//
// Lock-level overlap vs. resource damage. These are different things:
//   - lock-level overlap: two clients *believed* they held the lock at the same time (e.g.
//     the first was paused past its TTL, the lock expired and the second acquired it). The
//     checker's belief intervals find this. Fencing does not prevent it — no lock with
//     expiring leases can stop a paused client from waking up and acting.
//   - resource damage: the guarded resource *accepted* a write from a stale holder after it
//     had accepted a write from a newer one. With fencing this must not happen: the stale
//     holder's token is lower than the newer holder's, so the witness rejects it.
// So for a fenced lock, overlaps may appear in the history while CountStaleAcceptedWrites
// stays 0; the rejected writes are exactly the damage that fencing prevented.
//
// The witness trusts tokens: two different clients writing with the *same* token are both
// accepted (that would be a bug of the lock's fencing, not of the resource).
//
// Thread-safety: Witness is thread-safe; every client thread writes to the same instance.
// CountStaleAcceptedWrites is a pure function.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace lockstorm {

// highest_before when nothing has been accepted for the key yet.
inline constexpr int64_t kNoAcceptedFence = std::numeric_limits<int64_t>::min();

// The witness's answer to one write.
struct WitnessWrite {
  bool accepted = false;
  // The highest token accepted for the key before this write (kNoAcceptedFence if none).
  int64_t highest_before = kNoAcceptedFence;
};

// One write as the witness recorded it.
struct WitnessRecord {
  std::string key;
  int client = -1;
  int64_t fence = 0;  // the token the write carried
  bool accepted = false;
  int64_t highest_before = kNoAcceptedFence;  // as returned to the writer
  int64_t time_us = 0;                        // HistoryNowUs() when decided
};

class Witness {
 public:
  Witness() = default;
  Witness(const Witness&) = delete;
  Witness& operator=(const Witness&) = delete;

  // Writes to `key` on behalf of `client` with fencing token `fence`. Accepted iff `fence` is
  // >= the highest token accepted for `key` so far (always, for the first write to a key);
  // an accepted write raises that highest token. Recorded either way.
  WitnessWrite Write(const std::string& key, int client, int64_t fence);

  // Every write so far, in the order the witness decided them (time_us non-decreasing).
  std::vector<WitnessRecord> Writes() const;

  // The highest token accepted for `key`, kNoAcceptedFence if none.
  int64_t HighestAccepted(const std::string& key) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, int64_t> highest_;  // key -> highest accepted token
  std::vector<WitnessRecord> writes_;
};

// The resource damage in `records` (in decision order): the number of accepted writes whose
// token is lower than a token accepted earlier for the same key. Rejected writes never count.
// Always 0 for the records of a Witness, by construction; the checker applies the same rule
// to the kWrite events of a history.
int64_t CountStaleAcceptedWrites(const std::vector<WitnessRecord>& records);

}  // namespace lockstorm
