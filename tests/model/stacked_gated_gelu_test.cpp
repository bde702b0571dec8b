// stacked_gated_gelu computes gelu(a) * b of x = [a | b] and its gradient, as autograd would from the
// split halves, with the gradient laid out as x.
#include "qa/model/stacked_gated_gelu.hpp"

#include <gtest/gtest.h>

#include "../support/value_and_grads.hpp"

namespace qa {
namespace {

// The stacked function and the composite one, as functions of the two halves.
test::ValueAndGrads stacked(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& g, const std::string& approx) {
  return test::value_and_grads([&](const torch::Tensor& x0, const torch::Tensor& x1) {
    return stacked_gated_gelu(torch::cat({x0, x1}, -1), approx);
  }, a, b, g);
}
test::ValueAndGrads composite(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& g, const std::string& approx) {
  return test::value_and_grads([&](const torch::Tensor& x0, const torch::Tensor& x1) { return at::gelu(x0, approx) * x1; },
                               a, b, g);
}

TEST(StackedGatedGelu, SameValueAndGradientsAsTheCompositeExpression) {
  torch::manual_seed(3);
  const auto a = torch::randn({2, 5, 24}) * 3, b = torch::randn({2, 5, 24}), g = torch::randn({2, 5, 24});
  for (const std::string approx : {"tanh", "none"}) {
    const auto s = stacked(a, b, g, approx), c = composite(a, b, g, approx);
    EXPECT_TRUE(torch::allclose(s.value, c.value, 1e-6, 1e-6)) << approx;
    EXPECT_TRUE(torch::allclose(s.grad_a, c.grad_a, 1e-6, 1e-6)) << approx;
    EXPECT_TRUE(torch::allclose(s.grad_b, c.grad_b, 1e-6, 1e-6)) << approx;
  }
  // The halves are not interchangeable: gelu applies to the first.
  const auto swapped = stacked(b, a, g, "tanh"), c = composite(a, b, g, "tanh");
  EXPECT_FALSE(torch::allclose(swapped.value, c.value, 1e-3, 1e-3));
}

TEST(StackedGatedGeluBf16, GradientOfTheStackedInputIsOneTensorInItsLayout) {
  torch::manual_seed(4);
  auto x = torch::randn({3, 16}).to(torch::kBFloat16).requires_grad_(true);
  auto h = stacked_gated_gelu(x, "tanh");
  EXPECT_EQ(h.sizes(), (std::vector<int64_t>{3, 8}));
  EXPECT_EQ(h.scalar_type(), torch::kBFloat16);
  h.sum().backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().sizes(), x.sizes());
  EXPECT_EQ(x.grad().scalar_type(), torch::kBFloat16);
  // Against fp32: one bf16 rounding of each gradient value, more or less.
  auto x32 = x.detach().to(torch::kFloat).requires_grad_(true);
  (at::gelu(x32.narrow(-1, 0, 8), "tanh") * x32.narrow(-1, 8, 8)).sum().backward();
  EXPECT_TRUE(torch::allclose(x.grad().to(torch::kFloat), x32.grad(), 2e-2, 2e-2));
}

}  // namespace
}  // namespace qa
