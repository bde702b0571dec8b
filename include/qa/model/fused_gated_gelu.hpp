// The gated GELU of T5 v1.1 / Flan-T5 feed-forward blocks, gelu_tanh(a) * b, as one pass forward and
// one backward on the CPU, instead of gelu, mul and their three backward kernels (and, under bf16
// autocast, the casts to fp32 before them and back to bf16 after). Computed in fp32 whatever the
// storage type; the result has the inputs' type, which is what the next product (wo) takes.
#pragma once

#include <torch/torch.h>

namespace qa {

// True when fused_gated_gelu handles a and b: CPU, same shape, both fp32 or both bf16. Otherwise
// callers use the composite expression.
bool fused_gated_gelu_applies(const torch::Tensor& a, const torch::Tensor& b);

// gelu_tanh(a) * b (the tanh approximation, Hugging Face's gelu_new), differentiable in a and b.
torch::Tensor fused_gated_gelu(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace qa
