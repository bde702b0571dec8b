#include "qa/util/random.hpp"

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

}  // namespace qa
