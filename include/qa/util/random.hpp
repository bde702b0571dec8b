// A deterministic random generator: the same numbers on every platform and compiler (unlike the
// standard distributions and std::shuffle, whose algorithms are implementation-defined).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace qa {

class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next();
  // Uniform in [0, n), without modulo bias.
  uint64_t below(uint64_t n);

 private:
  uint64_t state_;
};

// Fisher-Yates with SplitMix64: the same permutation everywhere.
template <class T>
void shuffle(std::vector<T>& v, SplitMix64& rng) {
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
}

// k distinct indices of [0, n), uniformly chosen, in increasing order (all of them when k >= n).
std::vector<std::size_t> sample_indices(std::size_t n, std::size_t k, SplitMix64& rng);

}  // namespace qa
