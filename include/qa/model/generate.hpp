// Autoregressive decoding (greedy and beam search) with Hugging Face generate()'s semantics for T5.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "qa/model/t5.hpp"

namespace qa {

struct GenerateOptions {
  int64_t max_new_tokens = 32;  // EOS included
  bool use_cache = true;        // false: recompute the whole prefix each step (for tests)
  int64_t num_beams = 1;        // 1: greedy
  double length_penalty = 1.0;  // beam score = sum of log-probs / length^length_penalty
  bool early_stopping = false;  // beam search: stop once num_beams hypotheses are finished
};

// Per row: the generated ids after the decoder start token, stopping before EOS (or after
// max_new_tokens), and for beam search the sequence score (HF's sequences_scores; 0 for greedy).
struct Generation {
  std::vector<std::vector<int32_t>> ids;
  std::vector<double> scores;
};

// Greedy decoding of a batch. Rows that finish leave the batch early.
std::vector<std::vector<int32_t>> greedy_generate(T5Model& model, const torch::Tensor& input_ids,
                                                  const torch::Tensor& attention_mask, const GenerateOptions& options);

// Beam search over a batch (transformers' BeamSearchScorer semantics), with the key/value cache
// reordered between steps. Inputs that are done leave the batch early.
Generation beam_search_generate(T5Model& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                const GenerateOptions& options);

// Greedy when options.num_beams == 1, beam search otherwise.
Generation generate(T5Model& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                    const GenerateOptions& options);

}  // namespace qa
