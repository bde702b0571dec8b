// Micro-batches as tensors: dynamic padding to the longest sequence of the batch.
#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <vector>

#include "qa/data/encoded_dataset.hpp"

namespace qa {

inline constexpr int64_t kIgnoreLabel = -100;  // label padding, skipped by the loss

struct Batch {
  torch::Tensor input_ids;          // [B, S] int64, right-padded with pad_id
  torch::Tensor attention_mask;     // [B, S] int64, 1 real / 0 padding
  torch::Tensor decoder_input_ids;  // [B, T] labels shifted right, starting with decoder_start_id
  torch::Tensor labels;             // [B, T] target ids, padded with kIgnoreLabel
  int64_t source_tokens = 0;        // real (unpadded) tokens
  int64_t target_tokens = 0;

  Batch to(const torch::Device& device) const;
};

Batch collate(const EncodedDataset& data, const std::vector<std::size_t>& indices, int64_t pad_id,
              int64_t decoder_start_id);

// `b` right-padded to `source_length` and `target_length` (each at least b's own), in new tensors on
// b's device: the fixed shape a recorded CUDA graph reads. Padding changes no loss or gradient
// (masked keys, ignored labels, causal decoder); the token counts stay b's.
Batch padded_to(const Batch& b, int64_t source_length, int64_t target_length, int64_t pad_id);

// Writes `b` into `into` (same rows, lengths at least b's) and pads the rest, in place.
void copy_padded(const Batch& b, Batch& into, int64_t pad_id);

}  // namespace qa
