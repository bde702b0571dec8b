// Stacked projections (q, k, v and wi_0, wi_1 as one product each; StackedProjections in model/t5.hpp)
// compute what the separate products compute, with fewer casts of their input under autocast.
#include <gtest/gtest.h>

#include "../support/tiny_model.hpp"
#include "../support/tiny_pass.hpp"
#include "qa/model/onednn_linear.hpp"
#include "qa/model/t5.hpp"
#include "qa/runtime/torch_compat.hpp"

namespace qa {
namespace {

struct Pass : test::TinyPass {
  int64_t casts = 0;  // aten::_to_copy calls in the forward pass
};
using test::rel_err;

// 3 heads of 4 (CUDA: 8, for the memory-efficient kernel): q, k, v are 12 wide, d_model 16, d_ff 24,
// so a wrong split size or order shows. The source is padded, the decoder causal.
Pass run(StackedProjections s, bool bf16, torch::Device device = torch::kCPU) {
  auto m = test::tiny_training_model(/*num_heads=*/3, /*seed=*/11, device);
  m->use_sdpa(device.is_cuda());
  m->set_stacked_projections(s);
  int64_t casts = 0;
  const auto pass = test::tiny_pass_counting(m, device, bf16, "aten::_to_copy", casts);
  return {pass, casts};
}

void expect_same_as_separate(torch::Device device) {
  const Pass separate = run(StackedProjections::kOff, false, device), stacked = run(StackedProjections::kOn, false, device);
  EXPECT_LT(rel_err(stacked.logits, separate.logits), 1e-5);
  ASSERT_EQ(stacked.grads.size(), separate.grads.size());
  for (std::size_t i = 0; i < separate.grads.size(); ++i) {
    EXPECT_LT(rel_err(stacked.grads[i], separate.grads[i]), 1e-4) << "parameter " << i;
  }
  // bf16 autocast: the products' inputs are the same bf16 values either way; only the summation order
  // of the products and of the input's gradient differ. A wrong split would be off by O(1). Against
  // autocast's own separate products: on the CPU, model/bf16_linear's would otherwise take them, and
  // cast nothing (bf16_linear_test).
  set_onednn_linear_enabled(false);
  const Pass separate_bf16 = run(StackedProjections::kOff, true, device), stacked_bf16 = run(StackedProjections::kOn, true, device);
  set_onednn_linear_enabled(true);
  EXPECT_LT(rel_err(stacked_bf16.logits, separate_bf16.logits), 2e-2);
  for (std::size_t i = 0; i < separate.grads.size(); ++i) {
    EXPECT_LT(rel_err(stacked_bf16.grads[i], separate.grads[i]), 0.1) << "parameter " << i;
  }
  // Per encoder block the normed input is cast once for q, k, v (not 3 times) and once for wi_0, wi_1
  // (not twice): 3 fewer; per decoder block also once for the cross-attention's k, v of the encoder
  // states: 4 fewer.
  const auto& c = test::tiny_t5_config(40, 3);
  EXPECT_LE(stacked_bf16.casts, separate_bf16.casts - 3 * c.num_layers - 4 * c.num_decoder_layers)
      << separate_bf16.casts << " casts separate, " << stacked_bf16.casts << " stacked";
}

TEST(StackedProjections, SameLogitsAndGradientsAsSeparateProducts) { expect_same_as_separate(torch::kCPU); }

TEST(StackedProjections, SameLogitsAndGradientsAsSeparateProductsOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs LibTorch with CUDA and a GPU";
  expect_same_as_separate(torch::Device(torch::kCUDA, 0));
  // The stacked q, k, v are strided views of one product; the memory-efficient kernel took them.
  EXPECT_TRUE(!compat::kHasEfficientAttention || efficient_attention_usable());
}

// kAuto stacks on CUDA in training mode, whatever the grad mode (activation checkpointing runs a block
// without grad, then again with grad: both must compute alike), and nowhere else.
TEST(StackedProjections, AutoStacksOnCudaInTrainingMode) {
  const torch::Device cuda(torch::kCUDA, 0), cpu(torch::kCPU);
  EXPECT_TRUE(stacks_projections(StackedProjections::kAuto, cuda, /*training=*/true));
  EXPECT_FALSE(stacks_projections(StackedProjections::kAuto, cuda, /*training=*/false));
  EXPECT_FALSE(stacks_projections(StackedProjections::kAuto, cpu, /*training=*/true));
  EXPECT_TRUE(stacks_projections(StackedProjections::kOn, cpu, false));
  EXPECT_FALSE(stacks_projections(StackedProjections::kOff, cuda, true));
}

// kAuto leaves the CPU's products separate (bit for bit what kOff computes).
TEST(StackedProjections, AutoKeepsTheCpuProductsSeparate) {
  const Pass automatic = run(StackedProjections::kAuto, true), separate = run(StackedProjections::kOff, true);
  EXPECT_TRUE(automatic.logits.equal(separate.logits));
  EXPECT_EQ(automatic.casts, separate.casts);
}

}  // namespace
}  // namespace qa
