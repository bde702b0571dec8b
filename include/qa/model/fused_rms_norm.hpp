// RMSNorm forward and backward as one pass each over the rows (CPU, fp32), instead of the five
// element-wise kernels and three temporaries of the composite expression. Same formula as Hugging
// Face's T5LayerNorm: y = w * x * rsqrt(mean(x^2) + eps), statistics in fp32.
#pragma once

#include <torch/torch.h>

namespace qa {

// True when fused_rms_norm handles these tensors (CPU, fp32 input and weight); otherwise callers
// use the composite expression.
bool fused_rms_norm_applies(const torch::Tensor& x, const torch::Tensor& weight);

// x: [..., D], weight: [D]. Differentiable in x and weight.
torch::Tensor fused_rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

}  // namespace qa
