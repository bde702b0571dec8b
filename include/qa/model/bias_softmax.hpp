// bf16 attention's middle on the CPU, softmax(float(scores) + bias) narrowed to bf16, as one pass per
// row forward and one backward. Under autocast the separate operators widen the bf16 scores to fp32,
// add the bias, take the softmax and narrow the weights again for the next product: four passes over
// every [B, H, Q, K] tensor forward and as many backward, plus the bias gradient's. Here each row is
// widened, biased, normalised and narrowed while it is in cache; the fp32 weights are kept for the
// backward pass, as softmax keeps them. Used where bf16 attention runs as separate products
// (`bench --attention explicit`, fewer matrices than threads, no oneDNN bf16 product); otherwise
// model/fused_attention computes the whole attention.
#pragma once

#include <torch/torch.h>

namespace qa {

// True when bias_softmax handles these operands: CPU, scores bf16 [B, H, Q, K], bias undefined or an
// fp32 [B or 1, H or 1, Q or 1, K] tensor. Otherwise callers use the separate operators.
bool bias_softmax_applies(const torch::Tensor& scores, const torch::Tensor& bias);

// softmax(scores.float() + bias, -1) as bf16, differentiable in scores (its gradient in bf16, as the
// widening cast's backward gives it) and bias (fp32, summed over the dimensions it broadcasts over).
// Rows are independent, so the bits do not depend on the number of threads.
torch::Tensor bias_softmax(const torch::Tensor& scores, const torch::Tensor& bias);

}  // namespace qa
