// Test support: a tiny T5 architecture (16-wide, 2+2 layers) for tests that need a real model quickly.
#pragma once

#include <string>

#include "qa/model/t5_config.hpp"

namespace qa::test {

// num_heads * d_kv = 4 * heads: 3 heads give an inner width (12) unlike d_model, as in flan-t5-small.
inline T5Config tiny_t5_config(int64_t vocab_size, int64_t num_heads = 2, const std::string& feed_forward_proj = "gated-gelu",
                               bool tie_word_embeddings = false) {
  T5Config c;
  c.vocab_size = vocab_size;
  c.d_model = 16;
  c.d_kv = 4;
  c.d_ff = 24;
  c.num_layers = 2;
  c.num_decoder_layers = 2;
  c.num_heads = num_heads;
  c.dropout_rate = 0.0;
  c.feed_forward_proj = feed_forward_proj;
  c.tie_word_embeddings = tie_word_embeddings;
  c.derive_activation("test");
  return c;
}

}  // namespace qa::test
