#include "qa/train/adamw_kernel.hpp"

#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <cmath>
#include <random>

namespace qa {

// Segments of odd sizes over several parallel chunks (the kernel's chunks are 32768 elements and
// start mid-segment): every element gets its own segment's multiplier and decay, its gradient is
// read once (clip factor applied) and zeroed; checked against the formula in double precision.
TEST(AdamWKernel, EachElementUsesItsSegmentAcrossChunkBoundaries) {
  const int64_t n = 150001;
  const std::vector<AdamWSegment> segs = {{0, 7, 1.0f, 0.0f}, {7, 40000, 0.5f, 0.01f}, {40000, 40001, 2.0f, 0.0f},
                                          {40001, 120000, 0.25f, 0.002f}, {120000, n, 0.01f, 0.1f}};
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  std::vector<float> p(n), g(n), m(n), v(n);
  for (int64_t i = 0; i < n; ++i) p[i] = normal(rng), g[i] = normal(rng), m[i] = 0.1f * normal(rng), v[i] = std::abs(normal(rng));
  const auto p0 = p, g0 = g, m0 = m, v0 = v;
  AdamWStep s;
  s.lr = 0.01, s.step = 3, s.grad_scale = 0.5, s.zero_grad = true;
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  adamw_step_cpu(p.data(), g.data(), m.data(), v.data(), segs, n, s);
  at::set_num_threads(threads);
  const double bias1 = 1 - std::pow(0.9, 3), bias2 = 1 - std::pow(0.999, 3);
  std::size_t k = 0;
  for (int64_t i = 0; i < n; ++i) {
    while (i >= segs[k].end) ++k;
    const double gi = 0.5 * g0[i];
    const double mi = 0.9 * m0[i] + 0.1 * gi, vi = 0.999 * v0[i] + 0.001 * gi * gi;
    const double pi = p0[i] * (1 - 0.01 * segs[k].decay) - 0.01 * segs[k].lr_scale * (mi / bias1) / (std::sqrt(vi / bias2) + 1e-8);
    ASSERT_NEAR(m[i], mi, 1e-6 * (1 + std::abs(mi))) << i;
    ASSERT_NEAR(v[i], vi, 1e-6 * (1 + vi)) << i;
    ASSERT_NEAR(p[i], pi, 1e-5 * (1 + std::abs(pi))) << i;
    ASSERT_EQ(g[i], 0.0f) << i;
  }
}

}  // namespace qa
