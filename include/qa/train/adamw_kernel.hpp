// One AdamW update of flat fp32 buffers in a single pass over memory (CPU): reads parameter,
// gradient, both moments and the two per-element multipliers once and writes parameter and moments
// once, instead of the ~10 full passes of the element-wise expression. Torch-free header.
#pragma once

#include <cstdint>

namespace qa {

struct AdamWStep {
  double lr = 0;          // learning rate of this step (times lr_scale per element)
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  int64_t step = 1;       // 1-based, for the bias corrections
  double grad_scale = 1;  // gradient clipping factor, applied on the fly
};

// torch.optim.AdamW's update per element i:
//   p *= 1 - lr * decay[i];  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//   p -= lr * lr_scale[i] * (m / (1-b1^t)) / (sqrt(v) / sqrt(1-b2^t) + eps)
// with g = grad_scale * grad[i]. Parallel over fixed chunks with LibTorch's intra-op threads.
void adamw_step_cpu(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, const float* lr_scale,
                    const float* decay, int64_t n, const AdamWStep& s);

}  // namespace qa
