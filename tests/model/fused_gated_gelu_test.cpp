// The fused gated GELU gives LibTorch's gelu(a, "tanh") * b and its gradients, in fp32 to float
// rounding and in bf16 as the composite under autocast does it (fp32 inside, one rounding to bf16).
#include "qa/model/fused_gated_gelu.hpp"

#include <gtest/gtest.h>

#include "../support/value_and_grads.hpp"

#include <limits>

namespace qa {
namespace {

// Output h, da and db.
test::ValueAndGrads run(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& dh, bool fused) {
  return test::value_and_grads(
      [fused](const torch::Tensor& a, const torch::Tensor& b) {
        // The composite computes in fp32 (double for a double reference) and rounds once to the input type.
        const auto wide = a.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
        return fused ? fused_gated_gelu(a, b) : (torch::gelu(a.to(wide), "tanh") * b.to(wide)).to(a.scalar_type());
      },
      a, b, dh);
}

// Largest |x - ref| / (|ref| + 1e-3): relative where values are large, absolute (1e-3 scale) near 0.
double max_relative(const torch::Tensor& x, const torch::Tensor& ref) {
  const auto xf = x.to(torch::kDouble), rf = ref.to(torch::kDouble);
  return ((xf - rf).abs() / (rf.abs() + 1e-3)).max().item<double>();
}

TEST(FusedGatedGelu, MatchesTanhGeluTimesTheGateInFp32) {
  torch::manual_seed(11);
  for (const auto& shape : std::vector<std::vector<int64_t>>{{4, 33, 64}, {1, 7}, {2, 40000}}) {
    // Wide range: the far tails (|x| > 9) and the region near 0 both occur.
    auto a = torch::randn(shape) * 4.0, b = torch::randn(shape), dh = torch::randn(shape);
    const auto f = run(a, b, dh, true);
    // Against the formula in double precision: LibTorch's fp32 gelu itself is off by up to 5e-3 in
    // relative terms for x < -4 (0.5 x (1 + tanh u) cancels there; the fused pass uses x sigmoid(2u)).
    const auto d = run(a.to(torch::kDouble), b.to(torch::kDouble), dh.to(torch::kDouble), false);
    EXPECT_LT(max_relative(f.value, d.value), 2e-6);
    EXPECT_LT(max_relative(f.grad_b, d.grad_b), 2e-6);
    // d gelu/da crosses 0 (at a ~ -0.75) as a difference of two terms: its error is measured against
    // the gradient's scale, |dh * b| (|d gelu/da| <= 1.13).
    const auto scale = (dh * b).abs().to(torch::kDouble) + 1e-3;
    EXPECT_LT(((f.grad_a.to(torch::kDouble) - d.grad_a).abs() / scale).max().item<double>(), 2e-6);
    // And LibTorch's fp32 result, where it is accurate (|gelu(a)| > 1e-3 * |a|, i.e. not the tails).
    const auto c = run(a, b, dh, false);
    const auto body = torch::gelu(a, "tanh").abs() > a.abs() * 1e-3;
    EXPECT_LT(max_relative(f.value.masked_select(body), c.value.masked_select(body)), 2e-5);
  }
}

TEST(FusedGatedGelu, Bf16IsOneRoundingOfTheFp32Result) {
  torch::manual_seed(12);
  auto a = (torch::randn({8, 1000}) * 3.0).to(torch::kBFloat16);
  auto b = torch::randn({8, 1000}).to(torch::kBFloat16);
  auto dh = torch::randn({8, 1000}).to(torch::kBFloat16);
  const auto f = run(a, b, dh, true), c = run(a, b, dh, false);
  EXPECT_EQ(f.value.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(f.grad_a.scalar_type(), torch::kBFloat16);
  // Same fp32 inputs on both sides, each rounded once: at most one bf16 step (2^-8) apart.
  EXPECT_LT(max_relative(f.value, c.value), 1.0 / 128);
  EXPECT_LT(max_relative(f.grad_b, c.grad_b), 1.0 / 128);
  // The composite rounds g * b to bf16 before gelu_backward; the fused pass does not.
  EXPECT_LT(max_relative(f.grad_a, c.grad_a), 3.0 / 128);
  EXPECT_GT(torch::eq(f.value, c.value).to(torch::kFloat).mean().item<double>(), 0.9);
}

TEST(FusedGatedGelu, NonFiniteInputsStayNonFinite) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  auto a = torch::tensor({nan, 1.0f, 1.0f, 30.0f, -30.0f});
  auto b = torch::tensor({1.0f, nan, inf, 2.0f, 2.0f});
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    auto h = fused_gated_gelu(a.to(dtype), b.to(dtype)).to(torch::kFloat);
    EXPECT_TRUE(std::isnan(h[0].item<float>()));
    EXPECT_TRUE(std::isnan(h[1].item<float>()));
    EXPECT_TRUE(std::isinf(h[2].item<float>()));
    EXPECT_NEAR(h[3].item<float>(), 60.0f, 0.5f);  // gelu(30) = 30
    EXPECT_NEAR(h[4].item<float>(), 0.0f, 1e-30f);  // gelu(-30) = -0
  }
}

TEST(FusedGatedGelu, AppliesToCpuFp32OrBf16PairsOfOneShape) {
  EXPECT_TRUE(fused_gated_gelu_applies(torch::zeros({2, 4}), torch::zeros({2, 4})));
  EXPECT_TRUE(fused_gated_gelu_applies(torch::zeros({2, 4}, torch::kBFloat16), torch::zeros({2, 4}, torch::kBFloat16)));
  EXPECT_FALSE(fused_gated_gelu_applies(torch::zeros({2, 4}), torch::zeros({2, 4}, torch::kBFloat16)));
  EXPECT_FALSE(fused_gated_gelu_applies(torch::zeros({2, 4}, torch::kDouble), torch::zeros({2, 4}, torch::kDouble)));
  EXPECT_FALSE(fused_gated_gelu_applies(torch::zeros({2, 4}), torch::zeros({4})));
}

}  // namespace
}  // namespace qa
