// The fused RMSNorm gives the composite expression's output and gradients (Hugging Face's formula),
// for any row width, and the same bits with 1 or 2 threads.
#include "qa/model/fused_rms_norm.hpp"

#include <gtest/gtest.h>

#include "../support/value_and_grads.hpp"

namespace qa {
namespace {

// Output, dx and dw.
test::ValueAndGrads run(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& dy, bool fused) {
  return test::value_and_grads(
      [fused](const torch::Tensor& x, const torch::Tensor& w) {
        return fused ? fused_rms_norm(x, w, 1e-6) : w * (x * torch::rsqrt(x.pow(2).mean(-1, true) + 1e-6));
      },
      x, w, dy);
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, const char* what) {
  const double err = (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-12);
  EXPECT_LT(err, 2e-6) << what;
}

TEST(FusedRMSNorm, MatchesTheCompositeForwardAndBackward) {
  torch::manual_seed(3);
  for (const auto& shape : std::vector<std::vector<int64_t>>{{2, 5, 128}, {3, 7, 37}, {1, 1, 8}, {4, 300, 512}}) {
    auto x = torch::randn(shape) * 3.0;
    auto w = torch::rand({shape.back()}) + 0.5;
    auto dy = torch::randn(shape);
    const auto f = run(x, w, dy, true), c = run(x, w, dy, false);
    expect_close(f.value, c.value, "y");
    expect_close(f.grad_a, c.grad_a, "dx");
    expect_close(f.grad_b, c.grad_b, "dw");
  }
}

TEST(FusedRMSNorm, SameBitsWithOneOrTwoThreads) {
  torch::manual_seed(4);
  auto x = torch::randn({8, 333, 96}), w = torch::rand({96}), dy = torch::randn({8, 333, 96});
  const int before = torch::get_num_threads();
  torch::set_num_threads(1);
  const auto one = run(x, w, dy, true);
  torch::set_num_threads(2);
  const auto two = run(x, w, dy, true);
  torch::set_num_threads(before);
  EXPECT_TRUE(torch::equal(one.value, two.value));
  EXPECT_TRUE(torch::equal(one.grad_a, two.grad_a));
  EXPECT_TRUE(torch::equal(one.grad_b, two.grad_b));
}

TEST(FusedRMSNorm, AppliesOnlyToCpuFloat) {
  EXPECT_TRUE(fused_rms_norm_applies(torch::zeros({2, 4}), torch::ones({4})));
  EXPECT_FALSE(fused_rms_norm_applies(torch::zeros({2, 4}, torch::kBFloat16), torch::ones({4})));
  EXPECT_FALSE(fused_rms_norm_applies(torch::zeros({2, 4}), torch::ones({4}, torch::kDouble)));
  EXPECT_FALSE(fused_rms_norm_applies(torch::zeros({2, 4}), torch::ones({5})));
}

}  // namespace
}  // namespace qa
