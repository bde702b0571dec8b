// Model FLOPs of a T5 training step, counted from the architecture: every weight matrix does one
// multiply-add per element per token it sees (encoder weights and cross-attention keys/values: source
// tokens; the other decoder weights and lm_head: target tokens), plus the attention score and value
// products; 2 FLOPs per multiply-add; backward = 2 x forward, so a training step is 3 x forward.
#pragma once

#include <cstdint>

#include "qa/model/t5_config.hpp"

namespace qa {

// Forward FLOPs of `batch` sequences of `src_len` source and `tgt_len` target tokens (padding included).
double forward_flops(const T5Config& c, int64_t batch, int64_t src_len, int64_t tgt_len);
inline double training_flops(const T5Config& c, int64_t batch, int64_t src_len, int64_t tgt_len) {
  return 3.0 * forward_flops(c, batch, src_len, tgt_len);
}

}  // namespace qa
