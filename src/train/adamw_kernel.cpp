#include "qa/train/adamw_kernel.hpp"

#include <ATen/Parallel.h>

#include <cmath>

namespace qa {

void adamw_step_cpu(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, const float* lr_scale,
                    const float* decay, int64_t n, const AdamWStep& s) {
  const double bias1 = 1.0 - std::pow(s.beta1, static_cast<double>(s.step));
  const double bias2 = 1.0 - std::pow(s.beta2, static_cast<double>(s.step));
  const float b1 = static_cast<float>(s.beta1), b2 = static_cast<float>(s.beta2);
  const float one_minus_b1 = static_cast<float>(1.0 - s.beta1), one_minus_b2 = static_cast<float>(1.0 - s.beta2);
  const float neg_lr = static_cast<float>(-s.lr);
  const float step_size = static_cast<float>(-s.lr / bias1);
  const float inv_sqrt_bias2 = static_cast<float>(1.0 / std::sqrt(bias2));
  const float eps = static_cast<float>(s.eps), gs = static_cast<float>(s.grad_scale);
  at::parallel_for(0, n, 1 << 15, [&](int64_t begin, int64_t end) {
    // Plain float loop the compiler vectorises (no aliasing between the buffers).
    float* __restrict p = param;
    const float* __restrict g_in = grad;
    float* __restrict m = exp_avg;
    float* __restrict v = exp_avg_sq;
    const float* __restrict scale = lr_scale;
    const float* __restrict wd = decay;
    for (int64_t i = begin; i < end; ++i) {
      const float g = g_in[i] * gs;
      const float pi = p[i] + neg_lr * p[i] * wd[i];  // decoupled weight decay
      const float mi = m[i] * b1 + one_minus_b1 * g;
      const float vi = v[i] * b2 + one_minus_b2 * g * g;
      m[i] = mi;
      v[i] = vi;
      p[i] = pi + step_size * (mi * scale[i]) / (std::sqrt(vi) * inv_sqrt_bias2 + eps);
    }
  });
}

}  // namespace qa
