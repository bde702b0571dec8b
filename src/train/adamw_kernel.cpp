#include "qa/train/adamw_kernel.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

namespace qa {

void adamw_step_cpu(float* param, float* grad, float* exp_avg, float* exp_avg_sq,
                    const std::vector<AdamWSegment>& segments, int64_t n, const AdamWStep& s) {
  const double bias1 = 1.0 - std::pow(s.beta1, static_cast<double>(s.step));
  const double bias2 = 1.0 - std::pow(s.beta2, static_cast<double>(s.step));
  const float b1 = static_cast<float>(s.beta1), b2 = static_cast<float>(s.beta2);
  const float one_minus_b1 = static_cast<float>(1.0 - s.beta1), one_minus_b2 = static_cast<float>(1.0 - s.beta2);
  const float neg_lr = static_cast<float>(-s.lr);
  const float step_size = static_cast<float>(-s.lr / bias1);
  const float inv_sqrt_bias2 = static_cast<float>(1.0 / std::sqrt(bias2));
  const float eps = static_cast<float>(s.eps), gs = static_cast<float>(s.grad_scale);
  const bool zero = s.zero_grad;
  at::parallel_for(0, n, 1 << 15, [&](int64_t begin, int64_t end) {
    // The segment holding `begin`, then segment by segment to `end`.
    auto seg = std::upper_bound(segments.begin(), segments.end(), begin,
                                [](int64_t i, const AdamWSegment& sg) { return i < sg.end; });
    for (int64_t from = begin; from < end && seg != segments.end(); ++seg) {
      const int64_t to = std::min(end, seg->end);
      const float decay = neg_lr * seg->decay, scale = step_size * seg->lr_scale;
      // Plain float loop the compiler vectorises (no aliasing between the buffers).
      float* __restrict p = param;
      float* __restrict g_in = grad;
      float* __restrict m = exp_avg;
      float* __restrict v = exp_avg_sq;
      for (int64_t i = from; i < to; ++i) {
        const float g = g_in[i] * gs;
        if (zero) g_in[i] = 0.0f;
        const float pi = p[i] + decay * p[i];  // decoupled weight decay
        const float mi = m[i] * b1 + one_minus_b1 * g;
        const float vi = v[i] * b2 + one_minus_b2 * g * g;
        m[i] = mi;
        v[i] = vi;
        p[i] = pi + scale * mi / (std::sqrt(vi) * inv_sqrt_bias2 + eps);
      }
      from = to;
    }
  });
}

}  // namespace qa
