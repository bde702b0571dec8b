// x W^T with its backward products through oneDNN gives torch::linear's value (the same bits, where the
// forward product stays LibTorch's; else against a double-precision reference) and its gradients
// (against that reference), whatever the operands' layouts, and takes over every projection of the
// model when training in fp32 on the CPU.
#include "qa/model/onednn_linear.hpp"

#include <gtest/gtest.h>

#include "../support/tiny_model.hpp"
#include "../support/tiny_pass.hpp"
#include "../support/value_and_grads.hpp"
#include "qa/model/t5.hpp"
#include "qa/runtime/blas.hpp"
#include "qa/runtime/torch_compat.hpp"

namespace qa {
namespace {

class OnednnLinear : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!onednn_linear_usable()) GTEST_SKIP() << "no oneDNN sgemm in this process, or not an AVX-512 CPU: the model keeps LibTorch's products";
    torch::manual_seed(5);
  }
  void TearDown() override { set_onednn_linear_enabled(true); }
};

// Value and gradients of x W^T for output gradient `dy`: through onednn_linear, and in double.
void expect_matches_reference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& dy) {
  const auto ours = test::value_and_grads(
      [](const torch::Tensor& a, const torch::Tensor& b) {
        EXPECT_TRUE(onednn_linear_applies(a, b));
        return onednn_linear(a, b);
      },
      x, w, dy);
  const auto exact = test::value_and_grads([](const torch::Tensor& a, const torch::Tensor& b) { return torch::linear(a, b); },
                                           x.to(torch::kDouble), w.to(torch::kDouble), dy.to(torch::kDouble));
  if (onednn_forward_for_rows(x.numel() / x.size(-1))) {  // long, or LibTorch's BLAS is slow here
    EXPECT_LT(test::rel_err(ours.value.to(torch::kDouble), exact.value), 2e-6);
  } else {
    EXPECT_TRUE(torch::equal(ours.value, torch::linear(x, w)));  // the forward product is LibTorch's own
  }
  EXPECT_LT(test::rel_err(ours.grad_a.to(torch::kDouble), exact.grad_a), 2e-6);
  EXPECT_LT(test::rel_err(ours.grad_b.to(torch::kDouble), exact.grad_b), 2e-6);
  EXPECT_EQ(ours.grad_a.sizes(), x.sizes());
  EXPECT_EQ(ours.grad_b.sizes(), w.sizes());
}

TEST_F(OnednnLinear, GradientsOfAMatrixAndOfABatchOfSequences) {
  expect_matches_reference(torch::randn({37, 48}), torch::randn({20, 48}), torch::randn({37, 20}));
  expect_matches_reference(torch::randn({3, 11, 48}), torch::randn({64, 48}), torch::randn({3, 11, 64}));
}

TEST_F(OnednnLinear, StridedInputsAndOutputGradients) {
  // x a transposed view (the heads merged back, say), dy a column slice (a split of stacked projections).
  const auto x = torch::randn({48, 3, 10}).permute({1, 2, 0});
  const auto dy = torch::randn({3, 10, 40}).slice(2, 5, 25);
  expect_matches_reference(x, torch::randn({20, 48}), dy);
}

// From kOnednnTransposedForwardMinRows rows on, the forward product is oneDNN's, with W^T copied.
TEST_F(OnednnLinear, LongForwardProducts) {
  const int64_t rows = kOnednnTransposedForwardMinRows;
  EXPECT_TRUE(onednn_forward_for_rows(rows));
  EXPECT_EQ(onednn_forward_for_rows(rows - 1), onednn_linear_forward());
  expect_matches_reference(torch::randn({rows, 48}), torch::randn({20, 48}), torch::randn({rows, 20}));
  expect_matches_reference(torch::randn({2, rows / 2 + 3, 40}), torch::randn({72, 40}), torch::randn({2, rows / 2 + 3, 72}));
  const auto x = torch::randn({48, 2, rows / 2}).permute({1, 2, 0});  // strided
  expect_matches_reference(x, torch::randn({24, 48}), torch::randn({2, rows / 2, 24}));
}

// Evaluation, generation and activation checkpointing's first pass run without a gradient: a long
// product must take the same path there, and compute the same bits, as with one.
TEST_F(OnednnLinear, LongProductsComputeTheSameWithoutAGradient) {
  const auto x = torch::randn({3, 400, 64}), w = torch::randn({96, 64});
  const auto with_grad = onednn_linear(x.clone().requires_grad_(true), w.clone().requires_grad_(true)).detach();
  torch::NoGradGuard no_grad;
  ASSERT_TRUE(onednn_linear_applies(x, w));
  EXPECT_TRUE(torch::equal(onednn_linear(x, w), with_grad));
  EXPECT_LT(test::rel_err(with_grad.to(torch::kDouble), torch::linear(x.to(torch::kDouble), w.to(torch::kDouble))), 2e-6);
  EXPECT_EQ(onednn_linear_applies(x.narrow(1, 0, 300), w), onednn_linear_forward());  // 900 rows
}

TEST_F(OnednnLinear, OnlyTheGradientsThatAreWanted) {
  const auto w = torch::randn({20, 48}).requires_grad_(true);
  const auto x = torch::randn({5, 48});
  onednn_linear(x, w).sum().backward();
  ASSERT_TRUE(w.grad().defined());
  EXPECT_LT(test::rel_err(w.grad(), torch::ones({5, 20}).t().mm(x)), 1e-5);
  EXPECT_FALSE(x.grad().defined());
}

TEST_F(OnednnLinear, AppliesOnlyToWhatItHandles) {
  const auto x = torch::randn({4, 8}).requires_grad_(true), w = torch::randn({6, 8});
  EXPECT_TRUE(onednn_linear_applies(x, w));
  EXPECT_TRUE(onednn_linear_applies(x.detach(), w.clone().requires_grad_(true)));
  // No gradient wanted: torch::linear alone, unless the forward product is oneDNN's anyway.
  const bool forward_too = onednn_linear_forward();
  EXPECT_EQ(onednn_linear_applies(x.detach(), w), forward_too);
  {
    torch::NoGradGuard no_grad;
    EXPECT_EQ(onednn_linear_applies(x, w), forward_too);
  }
  EXPECT_FALSE(onednn_linear_applies(x.to(torch::kBFloat16), w.to(torch::kBFloat16)));  // fp32 only
  EXPECT_FALSE(onednn_linear_applies(x, torch::randn({8, 6}).t()));                      // W not contiguous
  EXPECT_FALSE(onednn_linear_applies(x, torch::randn({6, 7})));                          // 8 inputs, not 7
  EXPECT_FALSE(onednn_linear_applies(x, torch::randn({6, 8}, torch::kDouble)));
  compat::set_autocast_state(c10::DeviceType::CPU, {true, torch::kBFloat16});  // autocast chooses the dtype
  const bool under_autocast = onednn_linear_applies(x, w);
  compat::set_autocast_state(c10::DeviceType::CPU, {false, torch::kBFloat16});
  EXPECT_FALSE(under_autocast);
  EXPECT_TRUE(onednn_linear_in_training(torch::kCPU, /*bf16=*/false));
  EXPECT_FALSE(onednn_linear_in_training(torch::kCPU, /*bf16=*/true));
  set_onednn_linear_enabled(false);
  EXPECT_FALSE(onednn_linear_applies(x, w));
  EXPECT_FALSE(onednn_linear_in_training(torch::kCPU, false));
}

// The whole model with and without it: the same logits and gradients, and every projection (lm_head
// included) takes it.
TEST_F(OnednnLinear, TheModelComputesTheSameWithLibTorchsProducts) {
  const bool forward_too = onednn_linear_forward();  // asked while the setting is on
  for (const bool tied : {false, true}) {
    const auto run = [tied](bool on, int64_t* calls) {
      set_onednn_linear_enabled(on);
      auto c = test::tiny_t5_config(40, 2, "gated-gelu", tied);
      T5Model m(c);
      m->init_weights(3);
      m->train();
      return test::tiny_pass_counting(m, torch::kCPU, /*bf16=*/false, "qa::onednn_linear", *calls);
    };
    int64_t calls_on = 0, calls_off = 0;
    const auto on = run(true, &calls_on), off = run(false, &calls_off);
    const auto c = test::tiny_t5_config(40, 2);
    // q, k, v, o and wi_0, wi_1, wo per encoder block; self- and cross-attention's four and the same
    // three per decoder block; the output projection.
    EXPECT_EQ(calls_on, 7 * c.num_layers + 11 * c.num_decoder_layers + 1) << "tied " << tied;
    EXPECT_EQ(calls_off, 0);
    if (forward_too) {
      EXPECT_LT(test::rel_err(on.logits, off.logits), 1e-5) << "tied " << tied;
    } else {
      EXPECT_TRUE(torch::equal(on.logits, off.logits)) << "tied " << tied;
    }
    ASSERT_EQ(on.grads.size(), off.grads.size());
    for (std::size_t i = 0; i < on.grads.size(); ++i) {
      EXPECT_LT(test::rel_err(on.grads[i], off.grads[i]), 1e-5) << "parameter " << i << ", tied " << tied;
    }
  }
}

TEST_F(OnednnLinear, BackwardBitsRepeat) {
  const auto x = torch::randn({64, 96}), w = torch::randn({80, 96}), dy = torch::randn({64, 80});
  const auto f = [](const torch::Tensor& a, const torch::Tensor& b) { return onednn_linear(a, b); };
  const auto one = test::value_and_grads(f, x, w, dy), two = test::value_and_grads(f, x, w, dy);
  EXPECT_TRUE(torch::equal(one.grad_a, two.grad_a));
  EXPECT_TRUE(torch::equal(one.grad_b, two.grad_b));
}

}  // namespace
}  // namespace qa
