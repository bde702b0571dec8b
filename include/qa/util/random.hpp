// A deterministic random generator: the same numbers on every platform and compiler (unlike the
// standard distributions and std::shuffle, whose algorithms are implementation-defined).
#pragma once

#include <cstdint>

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

}  // namespace qa
