// Rng: the pseudo-random generator of clients and locks (xoshiro256**, seeded through
// SplitMix64).
//
// Why not std::mt19937_64: its state is 2.5 KiB, and at 1,000 clients (two generators each)
// refilling it showed up as cache misses in every cycle; xoshiro256**'s is 32 bytes. And it is
// one fixed algorithm, so a seed gives the same draws with any standard library.
// Satisfies UniformRandomBitGenerator (use it with the <random> distributions).
// Thread-safety: none; each client and each lock owns its own.
#pragma once

#include <cstdint>
#include <limits>

namespace lockstorm {

class Rng {
 public:
  using result_type = uint64_t;

  explicit Rng(uint64_t seed = 0) { this->seed(seed); }

  // Restarts the sequence from `seed` (any value, 0 included).
  void seed(uint64_t seed) {
    for (uint64_t& word : s_) {
      seed += 0x9e3779b97f4a7c15ULL;  // SplitMix64
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      word = z ^ (z >> 31);
    }
  }

  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

  result_type operator()() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace lockstorm
