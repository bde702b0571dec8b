// The fused bf16 bias + softmax gives what the separate operators compute (against a double
// precision reference, to bf16's rounding) for the encoder's, the decoder's and cross-attention's
// biases, with gradients for the scores (bf16) and the learned bias (fp32, summed over what it
// broadcasts over), and its bits do not depend on the thread count.
#include "qa/model/bias_softmax.hpp"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <limits>

namespace qa {
namespace {

constexpr float kLowest = std::numeric_limits<float>::lowest();

struct Result {
  torch::Tensor weights, dscores, dbias;
};

// Weights and gradients for the output gradient `g`: fused, or in double through softmax.
Result run(const torch::Tensor& scores, const torch::Tensor& learned, const torch::Tensor& mask, const torch::Tensor& g,
           bool fused) {
  const auto dtype = fused ? torch::kBFloat16 : torch::kDouble;
  auto s = scores.detach().to(dtype).clone().requires_grad_(true);  // a leaf of its own per run
  auto lb = learned.defined() ? learned.detach().to(fused ? torch::kFloat : torch::kDouble).clone().requires_grad_(true) : learned;
  torch::Tensor bias = lb;
  if (mask.defined()) {
    const auto m = fused ? mask : mask.to(torch::kDouble);
    bias = bias.defined() ? bias + m : m;
  }
  torch::Tensor w;
  if (fused) {
    EXPECT_TRUE(bias_softmax_applies(s, bias));
    w = bias_softmax(s, bias);
    EXPECT_EQ(w.scalar_type(), torch::kBFloat16);
  } else {
    w = torch::softmax(bias.defined() ? s + bias : s, -1);
  }
  w.backward(g.to(w.scalar_type()));
  return {w.detach().to(torch::kDouble), s.grad().to(torch::kDouble),
          lb.defined() ? lb.grad().to(torch::kDouble) : torch::Tensor()};
}

// Within bf16's rounding (8 significant bits) of the reference, relative to the row's scale.
void expect_bf16_close(const torch::Tensor& got, const torch::Tensor& want, const char* what) {
  const double scale = want.abs().max().item<double>();
  const double err = (got - want).abs().max().item<double>();
  EXPECT_LE(err, scale / 128) << what << ": max error " << err << " of scale " << scale;
}

void check(int64_t b, int64_t h, int64_t q, int64_t k, const torch::Tensor& learned, const torch::Tensor& mask) {
  torch::manual_seed(5);
  const auto scores = (3 * torch::randn({b, h, q, k})).to(torch::kBFloat16);
  const auto g = torch::randn({b, h, q, k}).to(torch::kBFloat16);  // representable in bf16, as the product's gradient is
  const Result fused = run(scores, learned, mask, g, true), ref = run(scores, learned, mask, g, false);
  expect_bf16_close(fused.weights, ref.weights, "weights");
  expect_bf16_close(fused.dscores, ref.dscores, "scores' gradient");
  if (learned.defined()) {
    ASSERT_EQ(fused.dbias.sizes(), learned.sizes());
    const double err = (fused.dbias - ref.dbias).abs().max().item<double>();
    EXPECT_LE(err, 1e-5 * (1 + ref.dbias.abs().max().item<double>())) << "bias gradient";
  }
}

}  // namespace

TEST(BiasSoftmax, EncoderBiasWithPaddingMask) {  // [1, H, S, S] learned + [B, 1, 1, S] padding
  auto mask = torch::zeros({2, 1, 1, 19});
  mask.index_put_({1, 0, 0, torch::indexing::Slice(15, 19)}, kLowest);
  check(2, 3, 19, 19, torch::randn({1, 3, 19, 19}), mask);
}

TEST(BiasSoftmax, BatchWideLearnedBias) {  // the encoder's bias as the model builds it: [B, H, S, S]
  check(2, 3, 7, 33, torch::randn({2, 3, 7, 33}), torch::Tensor());
}

TEST(BiasSoftmax, DecoderBiasWithCausalMask) {  // [1, H, T, T] learned + [T, T] causal
  const auto causal = torch::full({7, 7}, kLowest).triu(1).view({1, 1, 7, 7});
  check(3, 2, 7, 7, torch::randn({1, 2, 7, 7}), causal);
}

TEST(BiasSoftmax, CrossAttentionMaskWithoutGradient) {
  auto mask = torch::zeros({2, 1, 1, 17});
  mask.index_put_({0, 0, 0, torch::indexing::Slice(9, 17)}, kLowest);
  check(2, 4, 5, 17, torch::Tensor(), mask);
}

TEST(BiasSoftmax, NoBias) { check(2, 2, 3, 40, torch::Tensor(), torch::Tensor()); }

// A row whose keys are all masked gets equal weights, as softmax gives it.
TEST(BiasSoftmax, FullyMaskedRowGivesEqualWeights) {
  const auto scores = torch::randn({1, 1, 2, 8}).to(torch::kBFloat16);
  const auto bias = torch::full({1, 1, 2, 8}, kLowest);
  const auto w = bias_softmax(scores, bias).to(torch::kFloat);
  EXPECT_TRUE(torch::allclose(w, torch::full({1, 1, 2, 8}, 0.125f)));
}

TEST(BiasSoftmax, BitsDoNotDependOnTheThreadCount) {
  torch::manual_seed(9);
  const auto scores = torch::randn({4, 6, 64, 64}).to(torch::kBFloat16);
  const auto bias = torch::randn({1, 6, 64, 64});
  const auto g = torch::randn({4, 6, 64, 64}).to(torch::kBFloat16);
  const auto once = [&](int threads) {
    const int before = at::get_num_threads();
    at::set_num_threads(threads);
    auto s = scores.clone().requires_grad_(true);
    auto lb = bias.clone().requires_grad_(true);
    auto w = bias_softmax(s, lb);
    w.backward(g);
    at::set_num_threads(before);
    return std::vector<torch::Tensor>{w.detach(), s.grad(), lb.grad()};
  };
  const auto one = once(1), two = once(2);
  for (std::size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(torch::equal(one[i], two[i])) << i;
}

TEST(BiasSoftmax, AppliesOnlyToBf16ScoresAndFp32Biases) {
  const auto s = torch::zeros({2, 3, 4, 5}, torch::kBFloat16);
  EXPECT_TRUE(bias_softmax_applies(s, torch::Tensor()));
  EXPECT_TRUE(bias_softmax_applies(s, torch::zeros({1, 3, 4, 5})));
  EXPECT_TRUE(bias_softmax_applies(s, torch::zeros({2, 1, 1, 5})));
  EXPECT_FALSE(bias_softmax_applies(s.to(torch::kFloat), torch::Tensor()));          // fp32 scores: fused_attention's
  EXPECT_FALSE(bias_softmax_applies(s, torch::zeros({1, 3, 4, 5}, torch::kBFloat16)));  // bias not fp32
  EXPECT_FALSE(bias_softmax_applies(s, torch::zeros({3, 3, 4, 5})));                  // batch neither 1 nor B
  EXPECT_FALSE(bias_softmax_applies(s, torch::zeros({1, 3, 4, 6})));                  // keys differ
  EXPECT_FALSE(bias_softmax_applies(torch::zeros({3, 4, 5}, torch::kBFloat16), torch::Tensor()));
}

}  // namespace qa
