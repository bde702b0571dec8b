// Token-level cross-entropy, summed, so that any batching can be normalised by its real token count.
#pragma once

#include <torch/torch.h>

namespace qa {

// Sum over non-ignored label positions (labels == -100 are skipped) of -log p(label), in fp32.
// logits [B, T, V], labels [B, T].
torch::Tensor token_cross_entropy_sum(const torch::Tensor& logits, const torch::Tensor& labels);

}  // namespace qa
