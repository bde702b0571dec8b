#include "qa/util/random.hpp"

#include <algorithm>
#include <numeric>

namespace qa {

uint64_t SplitMix64::next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t SplitMix64::below(uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // rejection sampling removes the modulo bias
  uint64_t v;
  do {
    v = next();
  } while (v >= limit);
  return v % n;
}

std::vector<std::size_t> sample_indices(std::size_t n, std::size_t k, SplitMix64& rng) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  if (k >= n) return order;
  for (std::size_t i = 0; i < k; ++i) std::swap(order[i], order[i + rng.below(n - i)]);  // partial Fisher-Yates
  order.resize(k);
  std::sort(order.begin(), order.end());
  return order;
}

}  // namespace qa
