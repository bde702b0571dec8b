// One AdamW update of flat fp32 buffers in a single pass over memory (CPU): reads parameter,
// gradient and both moments once and writes them once, instead of the ~10 full passes of the
// element-wise expression. Torch-free header.
#pragma once

#include <cstdint>
#include <vector>

namespace qa {

struct AdamWStep {
  double lr = 0;          // learning rate of this step (times the segment's lr_scale)
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  int64_t step = 1;       // 1-based, for the bias corrections
  double grad_scale = 1;  // gradient clipping factor, applied on the fly
  bool zero_grad = false; // write 0 to each gradient once read (saves zero_grad's separate pass)
};

// A run of elements (one parameter tensor) sharing a learning-rate multiplier and weight decay.
struct AdamWSegment {
  int64_t begin = 0, end = 0;
  float lr_scale = 1, decay = 0;  // decay: lr_scale x weight decay (0 for RMSNorm weights)
};

// torch.optim.AdamW's update per element i of segment k:
//   p *= 1 - lr * decay_k;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
//   p -= lr * lr_scale_k * (m / (1-b1^t)) / (sqrt(v) / sqrt(1-b2^t) + eps)
// with g = grad_scale * grad[i]. `segments` are sorted and cover [0, n). Parallel over fixed chunks
// with LibTorch's intra-op threads.
void adamw_step_cpu(float* param, float* grad, float* exp_avg, float* exp_avg_sq,
                    const std::vector<AdamWSegment>& segments, int64_t n, const AdamWStep& s);

}  // namespace qa
