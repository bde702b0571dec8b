// Token cross-entropy on the CPU as one kernel per pass: the forward pass reads each row of logits
// once for its log-sum-exp, the backward pass writes softmax - one-hot straight from the logits.
// LibTorch's composite (log_softmax, nll_loss, their backward passes and a zero-filled gradient)
// writes and rereads the [tokens, vocab] matrix several times: ~12 ms of a flan-t5-small step on
// two cores where this takes ~3 (bench/cross_entropy.cpp; bench/RESULTS.md, twelfth CPU round).
#pragma once

#include <torch/torch.h>

namespace qa {

// True when fused_cross_entropy_sum handles these: logits an fp32 [N, V] CPU matrix with unit column
// stride, N, V > 0; labels int64 [N] on the CPU. Otherwise callers use LibTorch's cross_entropy.
bool fused_cross_entropy_applies(const torch::Tensor& logits, const torch::Tensor& labels);

// Sum over the rows whose label is not ignore_index of logsumexp(logits[i]) - logits[i][label[i]]:
// an fp32 scalar, differentiable in logits. The rows' losses are added in a fixed order (double), so
// the result does not depend on the thread count. A label outside [0, V) is an error, as in LibTorch.
torch::Tensor fused_cross_entropy_sum(const torch::Tensor& logits, const torch::Tensor& labels, int64_t ignore_index);

}  // namespace qa
