// T5's bucketed relative positions (Hugging Face T5Attention._relative_position_bucket).
#pragma once

#include <torch/torch.h>

namespace qa {

// Buckets for `relative_position` = memory_position - query_position. Bidirectional (encoder): half
// of the buckets for each sign; causal (decoder): only non-positive positions, future ones map to 0.
// Within each half, small distances get one bucket each and larger ones share log-spaced buckets up to
// `max_distance`. The arithmetic follows the reference op by op in float32, so boundaries agree exactly.
torch::Tensor relative_position_bucket(const torch::Tensor& relative_position, bool bidirectional, int64_t num_buckets,
                                       int64_t max_distance);

// Bucket ids [query_length, key_length] for queries at positions offset..offset+query_length-1,
// computed on `device` as the reference does (no copy to the device, which would wait for it).
torch::Tensor relative_position_buckets(int64_t query_length, int64_t key_length, int64_t query_offset,
                                        bool bidirectional, int64_t num_buckets, int64_t max_distance,
                                        const torch::Device& device = torch::kCPU);

}  // namespace qa
