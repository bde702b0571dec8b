#include "qa/train/adamw_kernel.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

namespace qa {
namespace {

struct Coefficients {
  float b1, b2, one_minus_b1, one_minus_b2, decay, scale, inv_sqrt_bias2, eps, grad_scale;
  bool zero;
};

// One segment's elements [from, to). A function of its own, with restrict-qualified parameters and
// the coefficients by value: inside the parallel_for lambda (captures by reference), GCC stopped
// vectorising the loop once the unit was compiled with OpenMP (no packed sqrt left), and the
// two-thread step ran at half the speed of the one-thread one.
void adamw_range(float* __restrict p, float* __restrict g_in, float* __restrict m, float* __restrict v,
                 int64_t from, int64_t to, Coefficients c) {
  for (int64_t i = from; i < to; ++i) {
    const float g = g_in[i] * c.grad_scale;
    if (c.zero) g_in[i] = 0.0f;
    const float pi = p[i] + c.decay * p[i];  // decoupled weight decay
    const float mi = m[i] * c.b1 + c.one_minus_b1 * g;
    const float vi = v[i] * c.b2 + c.one_minus_b2 * g * g;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi + c.scale * mi / (std::sqrt(vi) * c.inv_sqrt_bias2 + c.eps);
  }
}

}  // namespace

void adamw_step_cpu(float* param, float* grad, float* exp_avg, float* exp_avg_sq,
                    const std::vector<AdamWSegment>& segments, int64_t n, const AdamWStep& s) {
  const double bias1 = 1.0 - std::pow(s.beta1, static_cast<double>(s.step));
  const double bias2 = 1.0 - std::pow(s.beta2, static_cast<double>(s.step));
  Coefficients base{};
  base.b1 = static_cast<float>(s.beta1);
  base.b2 = static_cast<float>(s.beta2);
  base.one_minus_b1 = static_cast<float>(1.0 - s.beta1);
  base.one_minus_b2 = static_cast<float>(1.0 - s.beta2);
  base.inv_sqrt_bias2 = static_cast<float>(1.0 / std::sqrt(bias2));
  base.eps = static_cast<float>(s.eps);
  base.grad_scale = static_cast<float>(s.grad_scale);
  base.zero = s.zero_grad;
  const float neg_lr = static_cast<float>(-s.lr);
  const float step_size = static_cast<float>(-s.lr / bias1);
  at::parallel_for(0, n, 1 << 15, [&](int64_t begin, int64_t end) {
    // The segment holding `begin`, then segment by segment to `end`.
    auto seg = std::upper_bound(segments.begin(), segments.end(), begin,
                                [](int64_t i, const AdamWSegment& sg) { return i < sg.end; });
    for (int64_t from = begin; from < end && seg != segments.end(); ++seg) {
      const int64_t to = std::min(end, seg->end);
      Coefficients c = base;
      c.decay = neg_lr * seg->decay;
      c.scale = step_size * seg->lr_scale;
      adamw_range(param, grad, exp_avg, exp_avg_sq, from, to, c);
      from = to;
    }
  });
}

}  // namespace qa
