// Autoregressive decoding (greedy) with Hugging Face generate()'s semantics for T5.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "qa/model/t5.hpp"

namespace qa {

struct GenerateOptions {
  int64_t max_new_tokens = 32;  // EOS included
  bool use_cache = true;        // false: recompute the whole prefix each step (for tests)
};

// Greedy decoding of a batch. Returns per row the generated ids after the decoder start token,
// stopping before EOS (or after max_new_tokens). Rows that finish leave the batch early.
std::vector<std::vector<int32_t>> greedy_generate(T5Model& model, const torch::Tensor& input_ids,
                                                  const torch::Tensor& attention_mask, const GenerateOptions& options);

}  // namespace qa
