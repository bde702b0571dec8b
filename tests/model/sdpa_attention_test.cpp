// The scaled_dot_product_attention path (LibTorch >= 2.1: the container's 2.6 build, GPU machines)
// computes what the explicit products compute: logits and every gradient, fp32 and bf16 autocast.
#include <gtest/gtest.h>

#include <cmath>

#include "../support/tiny_model.hpp"
#include "../support/tiny_pass.hpp"
#include "qa/model/t5.hpp"
#include "qa/runtime/torch_compat.hpp"

namespace qa {
namespace {

using Pass = test::TinyPass;
using test::rel_err;

// On CUDA the encoder's learned bias goes through compat::efficient_attention with 6 keys padded to 16.
Pass run(bool sdpa, bool bf16, torch::Device device = torch::kCPU) {
  auto m = test::tiny_training_model(/*num_heads=*/2, /*seed=*/7, device);
  EXPECT_EQ(m->use_sdpa(sdpa), sdpa);
  return test::tiny_pass(m, device, bf16);
}

// All gradients as one vector: |a - b| / |b| in L2.
double global_err(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double diff = 0, ref = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]).pow(2).sum().item<double>();
    ref += b[i].pow(2).sum().item<double>();
  }
  return std::sqrt(diff / std::max(ref, 1e-30));
}

void expect_same_as_explicit(torch::Device device) {
  // fp32: the same computation up to summation order.
  const Pass ref = run(false, false, device), got = run(true, false, device);
  EXPECT_LT(rel_err(got.logits, ref.logits), 1e-5);
  ASSERT_EQ(got.grads.size(), ref.grads.size());
  for (std::size_t i = 0; i < ref.grads.size(); ++i) EXPECT_LT(rel_err(got.grads[i], ref.grads[i]), 1e-4) << i;
  // bf16: both paths round differently (the fused kernel keeps its own precision inside), so each is
  // compared with the fp32 result: the fused path must be about as accurate as the explicit one. A
  // wrong mask or scale would be off by O(1).
  const Pass explicit_bf16 = run(false, true, device), sdpa_bf16 = run(true, true, device);
  EXPECT_LT(rel_err(sdpa_bf16.logits, ref.logits), 3e-2);
  const double err_explicit = global_err(explicit_bf16.grads, ref.grads);
  const double err_sdpa = global_err(sdpa_bf16.grads, ref.grads);
  EXPECT_LT(err_explicit, 0.1);
  EXPECT_LE(err_sdpa, 3 * err_explicit + 0.02) << "explicit " << err_explicit;
  for (std::size_t i = 0; i < ref.grads.size(); ++i) EXPECT_LT(rel_err(sdpa_bf16.grads[i], ref.grads[i]), 0.3) << i;
}

TEST(SdpaAttention, SameLogitsAndGradientsAsTheExplicitProducts) {
  if (!compat::kHasSdpa) GTEST_SKIP() << "LibTorch " << TORCH_VERSION << " has no scaled_dot_product_attention with scale";
  expect_same_as_explicit(torch::kCPU);
}

TEST(SdpaAttention, SameLogitsAndGradientsAsTheExplicitProductsOnCuda) {
  if (!compat::kHasSdpa || !torch::cuda::is_available()) GTEST_SKIP() << "needs LibTorch >= 2.1 with CUDA and a GPU";
  expect_same_as_explicit(torch::Device(torch::kCUDA, 0));
}

// The bias layout the memory-efficient kernel takes (pure tensor work: checked on the CPU): the values
// of the broadcast bias, rows contiguous and 16-aligned, the gradient back to the [1, H, Q, K] bias,
// and a bias laid out so already passes through untouched (a stack prepares it once for its layers).
TEST(SdpaAttention, EfficientAttentionBiasIsMaterialisedAlignedAndPreparedOnce) {
  auto bias = torch::randn({5, 6, 2}).permute({2, 0, 1}).unsqueeze(0).detach().requires_grad_();  // [1, 2, 5, 6]
  const auto b = compat::efficient_attention_bias(bias, 3, 2, 5, 6);
  ASSERT_EQ(b.sizes(), torch::IntArrayRef({3, 2, 5, 6}));
  EXPECT_EQ(b.stride(3), 1);
  EXPECT_EQ(b.stride(2), 16);
  EXPECT_TRUE(torch::equal(b, bias.expand({3, 2, 5, 6})));
  b.sum().backward();
  EXPECT_TRUE(torch::equal(bias.grad(), torch::full({1, 2, 5, 6}, 3.0)));
  EXPECT_TRUE(compat::efficient_attention_bias(b, 3, 2, 5, 6).is_same(b));
  const auto aligned = compat::efficient_attention_bias(torch::randn({3, 1, 1, 32}), 3, 2, 4, 32);
  EXPECT_TRUE(aligned.is_contiguous());
  EXPECT_TRUE(compat::efficient_attention_bias(aligned, 3, 2, 4, 32).is_same(aligned));
}

// The kernel itself, without the model: output and all four gradients (the bias's included) as the
// explicit softmax(q k^T + bias) v computes them, with a bias broadcast over the batch and 6 keys
// (padded to 16 inside).
TEST(SdpaAttention, EfficientAttentionGivesTheBiasGradientOnCuda) {
  if (!compat::kHasEfficientAttention || !torch::cuda::is_available()) GTEST_SKIP() << "needs LibTorch >= 2.1 and a GPU";
  torch::manual_seed(3);
  const auto opts = torch::TensorOptions().device(torch::kCUDA, 0);
  auto q = torch::randn({2, 2, 5, 8}, opts).requires_grad_(), k = torch::randn({2, 2, 6, 8}, opts).requires_grad_();
  // The bias laid out as the position bias comes ([Q, K, H] permuted: channels-last-like strides).
  auto v = torch::randn({2, 2, 6, 8}, opts).requires_grad_();
  auto bias = torch::randn({5, 6, 2}, opts).permute({2, 0, 1}).unsqueeze(0).detach().requires_grad_();
  auto w = torch::randn({2, 2, 5, 8}, opts);
  auto grads = [&](const torch::Tensor& out) {
    for (auto* t : {&q, &k, &v, &bias}) t->mutable_grad() = torch::Tensor();
    (out * w).sum().backward();
    return std::vector<torch::Tensor>{out.detach(), q.grad().clone(), k.grad().clone(), v.grad().clone(), bias.grad().clone()};
  };
  const auto got = grads(compat::efficient_attention(q, k, v, bias, 0.0, 1.0));
  const auto ref = grads(torch::matmul(torch::softmax(torch::matmul(q, k.transpose(2, 3)) + bias, -1), v));
  const char* names[] = {"output", "q", "k", "v", "bias"};
  for (std::size_t i = 0; i < ref.size(); ++i) {
    ASSERT_EQ(got[i].sizes(), ref[i].sizes()) << names[i];
    EXPECT_LT(rel_err(got[i].cpu(), ref[i].cpu()), 1e-4) << names[i];
  }
}

TEST(SdpaAttention, UnavailableBefore2_1) {
  T5Model m(test::tiny_t5_config(40));
  EXPECT_EQ(m->use_sdpa(true), compat::kHasSdpa);
  EXPECT_FALSE(m->use_sdpa(false));
}

}  // namespace
}  // namespace qa
