// The fused CPU attention gives the separate operators' output and gradients (against a double
// precision reference) for the encoder's, the decoder's and cross-attention's operands, keeps the
// layouts the model relies on, and its bits do not depend on the thread count.
#include "qa/model/fused_attention.hpp"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <limits>

#include "../support/tiny_model.hpp"
#include "../support/tiny_pass.hpp"
#include "qa/model/t5.hpp"
#include "qa/runtime/blas.hpp"
#include "qa/runtime/torch_compat.hpp"

namespace qa {
namespace {

constexpr float kLowest = std::numeric_limits<float>::lowest();

// Heads split out of [B, L, H * D], as the model's split_heads does.
torch::Tensor split_heads(const torch::Tensor& t, int64_t heads) {
  return t.view({t.size(0), t.size(1), heads, t.size(2) / heads}).transpose(1, 2);
}

struct Operands {
  torch::Tensor q, k, v;      // [B, L, H * D]
  torch::Tensor learned_bias;  // [Bb, H, Q, K] or undefined: gets a gradient
  torch::Tensor mask;          // additive, no gradient, or undefined
  int64_t heads;
};

struct Result {
  torch::Tensor out, dq, dk, dv, dbias;
};

// Output and gradients for a fixed output gradient; fused, or softmax(q k^T + bias) v in double.
// bf16: the fused pass gets q, k, v and the output's gradient in bf16 (as autocast's projections give
// them; the bias stays fp32), the reference the same values in double.
Result run(const Operands& o, const torch::Tensor& dout_in, bool fused, bool bf16 = false) {
  const auto leaf = [fused](const torch::Tensor& t) {
    return t.defined() ? (fused ? t : t.to(torch::kDouble)).clone().requires_grad_(true) : t;
  };
  const auto operand = [&](const torch::Tensor& t) { return leaf(bf16 ? t.to(torch::kBFloat16) : t); };
  auto q = operand(o.q), k = operand(o.k), v = operand(o.v), lb = leaf(o.learned_bias);
  const auto dout = bf16 ? dout_in.to(torch::kBFloat16) : dout_in;
  torch::Tensor bias = lb;
  if (o.mask.defined()) {
    const auto m = fused ? o.mask : o.mask.to(torch::kDouble);
    bias = bias.defined() ? bias + m : m;
  }
  const auto qh = split_heads(q, o.heads), kh = split_heads(k, o.heads), vh = split_heads(v, o.heads);
  torch::Tensor out;
  if (fused) {
    EXPECT_TRUE(fused_attention_applies(qh, kh, vh, bias));
    out = fused_attention(qh, kh, vh, bias);
  } else {
    auto scores = torch::matmul(qh, kh.transpose(2, 3));
    if (bias.defined()) scores = scores + bias;
    out = torch::matmul(torch::softmax(scores, -1), vh);
  }
  out.backward(fused ? dout : dout.to(torch::kDouble));
  return {out.detach(), q.grad(), k.grad(), v.grad(), lb.defined() ? lb.grad() : torch::Tensor()};
}

// Relative to the reference's largest value: fp32 products' rounding, and bf16's (8 significant bits:
// the output, the weights and the scores' gradient are rounded once each).
constexpr double kFp32Tolerance = 2e-6, kBf16Tolerance = 1.0 / 128;

void expect_close(const torch::Tensor& got, const torch::Tensor& want, const char* what,
                  double tolerance = kFp32Tolerance) {
  ASSERT_TRUE(got.defined()) << what;
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const auto g = got.to(torch::kDouble);
  const double err = (g - want).abs().max().item<double>() / std::max(want.abs().max().item<double>(), 1e-12);
  EXPECT_LT(err, tolerance) << what;
}

void expect_matches_reference(const Operands& o, bool bf16 = false) {
  const int64_t b = o.q.size(0), q_len = o.q.size(1), d = o.q.size(2) / o.heads;
  const auto dout = torch::randn({b, o.heads, q_len, d});
  const auto f = run(o, dout, true, bf16), r = run(o, dout, false, bf16);
  const double tolerance = bf16 ? kBf16Tolerance : kFp32Tolerance;
  if (bf16) {
    for (const auto* t : {&f.out, &f.dq, &f.dk, &f.dv}) EXPECT_EQ(t->scalar_type(), torch::kBFloat16);
  }
  expect_close(f.out, r.out, "output", tolerance);
  expect_close(f.dq, r.dq, "d queries", tolerance);
  expect_close(f.dk, r.dk, "d keys", tolerance);
  expect_close(f.dv, r.dv, "d values", tolerance);
  if (o.learned_bias.defined()) {
    EXPECT_EQ(f.dbias.scalar_type(), torch::kFloat);
    expect_close(f.dbias, r.dbias, "d bias", tolerance);
  }
}

// Padding: the last `padded` keys of row 0 masked with the lowest float, as the model's mask does.
torch::Tensor padding_mask(int64_t batch, int64_t k_len, int64_t padded) {
  auto keep = torch::ones({batch, k_len});
  keep.index_put_({0, torch::indexing::Slice(k_len - padded, torch::indexing::None)}, 0.0);
  return ((1.0 - keep) * kLowest).view({batch, 1, 1, k_len});
}

// The same bits with one thread as with two (each matrix is one thread's work).
void expect_thread_independent(bool bf16) {
  const int64_t b = 2, l = 33, h = 3, d = 8;
  const Operands o{torch::randn({b, l, h * d}), torch::randn({b, l, h * d}), torch::randn({b, l, h * d}),
                   torch::randn({1, h, l, l}), padding_mask(b, l, 3), h};
  const auto dout = torch::randn({b, h, l, d});
  at::set_num_threads(1);
  const auto one = run(o, dout, true, bf16);
  at::set_num_threads(2);
  const auto two = run(o, dout, true, bf16);
  EXPECT_TRUE(torch::equal(one.out, two.out));
  EXPECT_TRUE(torch::equal(one.dq, two.dq));
  EXPECT_TRUE(torch::equal(one.dk, two.dk));
  EXPECT_TRUE(torch::equal(one.dv, two.dv));
  EXPECT_TRUE(torch::equal(one.dbias, two.dbias));
}

// The whole tiny model (padded source, causal decoder, cross-attention; under autocast where bf16) with
// the fused pass and with separate operators: logits and every gradient within the given relative
// errors, and the fused pass is what runs, in every attention.
void expect_model_matches_separate_operators(bool bf16, double logits_err, double grad_err) {
  const auto run = [bf16](bool fused, int64_t* fused_calls) {
    auto m = test::tiny_training_model(/*num_heads=*/3, /*seed=*/11);
    m->set_fused_cpu_attention(fused);
    return test::tiny_pass_counting(m, torch::kCPU, bf16, "qa::fused_attention", *fused_calls);
  };
  int64_t calls_fused = 0, calls_separate = 0;
  const auto fused = run(true, &calls_fused), separate = run(false, &calls_separate);
  const auto c = test::tiny_t5_config(40, 3);
  EXPECT_EQ(calls_fused, c.num_layers + 2 * c.num_decoder_layers);
  EXPECT_EQ(calls_separate, 0);
  EXPECT_LT(test::rel_err(fused.logits, separate.logits), logits_err);
  ASSERT_EQ(fused.grads.size(), separate.grads.size());
  for (std::size_t i = 0; i < fused.grads.size(); ++i) {
    EXPECT_LT(test::rel_err(fused.grads[i], separate.grads[i]), grad_err) << "parameter " << i;
  }
}

class FusedAttention : public ::testing::Test {
 protected:
  // Two threads, whatever the machine has: the pass applies only where the matrices are at least as many
  // as the threads, and the small operands here are meant to take it.
  void SetUp() override {
    if (!blas_sgemm_available()) GTEST_SKIP() << "no BLAS sgemm in this process: the model keeps separate operators";
    torch::manual_seed(11);
    threads_ = at::get_num_threads();
    at::set_num_threads(2);
  }
  void TearDown() override { at::set_num_threads(threads_); }
  int threads_ = 1;
};

TEST_F(FusedAttention, EncoderSelfAttentionWithPositionBiasAndPadding) {
  const int64_t b = 3, l = 37, h = 4, d = 8;
  // The encoder's bias: a learned [1, H, L, L] position bias plus the [B, 1, 1, L] padding mask.
  expect_matches_reference({torch::randn({b, l, h * d}), torch::randn({b, l, h * d}), torch::randn({b, l, h * d}),
                            torch::randn({1, h, l, l}), padding_mask(b, l, 5), h});
}

TEST_F(FusedAttention, FullPerBatchBiasAndBroadcastShapes) {
  const int64_t b = 2, l = 19, h = 3, d = 16;
  const auto x = [&] { return torch::randn({b, l, h * d}); };
  expect_matches_reference({x(), x(), x(), torch::randn({b, h, l, l}), torch::Tensor(), h});  // [B, H, Q, K]
  expect_matches_reference({x(), x(), x(), torch::randn({b, 1, l, l}), torch::Tensor(), h});  // shared by heads
  expect_matches_reference({x(), x(), x(), torch::randn({1, h, 1, l}), torch::Tensor(), h});  // shared by queries
  expect_matches_reference({x(), x(), x(), torch::Tensor(), torch::Tensor(), h});              // no bias
}

TEST_F(FusedAttention, CausalDecoderSelfAttention) {
  const int64_t b = 2, t = 9, h = 2, d = 8;
  const auto causal = torch::full({t, t}, kLowest).triu(1).view({1, 1, t, t});
  expect_matches_reference({torch::randn({b, t, h * d}), torch::randn({b, t, h * d}), torch::randn({b, t, h * d}),
                            torch::randn({1, h, t, t}), causal, h});
}

TEST_F(FusedAttention, CrossAttentionAndASingleQuery) {
  const int64_t b = 3, t = 5, s = 23, h = 2, d = 8;
  // Queries from the decoder over the encoder's keys, masked only: the bias has no gradient.
  expect_matches_reference({torch::randn({b, t, h * d}), torch::randn({b, s, h * d}), torch::randn({b, s, h * d}),
                            torch::Tensor(), padding_mask(b, s, 4), h});
  // A decoding step: one query over the keys so far.
  expect_matches_reference({torch::randn({b, 1, h * d}), torch::randn({b, s, h * d}), torch::randn({b, s, h * d}),
                            torch::randn({1, h, 1, s}), torch::Tensor(), h});
}

TEST_F(FusedAttention, DropoutOfTheWeightsWithTheSameDraws) {
  const int64_t b = 2, l = 21, h = 3, d = 8;
  const double p = 0.25;
  auto q = torch::randn({b, h, l, d}), k = torch::randn({b, h, l, d}), v = torch::randn({b, h, l, d});
  auto bias = torch::randn({1, h, l, l});
  const auto dout = torch::randn({b, h, l, d});
  const auto leaves = [&](torch::ScalarType t) {
    std::vector<torch::Tensor> out;
    for (const auto& x : {q, k, v, bias}) out.push_back(x.to(t).clone().requires_grad_(true));
    return out;
  };
  auto f = leaves(torch::kFloat);
  torch::manual_seed(3);
  auto fused = fused_attention(f[0], f[1], f[2], f[3], p);
  fused.backward(dout);
  // The reference draws the same Bernoulli(1 - p) weights from the same seed.
  torch::manual_seed(3);
  const auto keep = torch::empty({b, h, l, l}).bernoulli_(1.0 - p).to(torch::kDouble);
  EXPECT_GT(keep.sum().item<double>(), 0.6 * keep.numel());
  EXPECT_LT(keep.sum().item<double>(), 0.9 * keep.numel());
  auto r = leaves(torch::kDouble);
  const auto weights = torch::softmax(torch::matmul(r[0], r[1].transpose(2, 3)) + r[3], -1) * keep / (1.0 - p);
  auto reference = torch::matmul(weights, r[2]);
  reference.backward(dout.to(torch::kDouble));
  expect_close(fused.detach(), reference.detach(), "output");
  const char* names[] = {"d queries", "d keys", "d values", "d bias"};
  for (int i = 0; i < 4; ++i) expect_close(f[i].grad(), r[i].grad(), names[i]);
}

TEST_F(FusedAttention, AFullyMaskedRowAveragesTheValuesAsSoftmaxDoes) {
  const int64_t b = 1, l = 6, h = 1, d = 4;
  auto q = torch::randn({b, h, l, d}), k = torch::randn({b, h, l, d}), v = torch::randn({b, h, l, d});
  auto mask = torch::zeros({b, 1, l, l});
  mask.index_put_({0, 0, 2}, kLowest);  // query 2 sees no key
  const auto fused = fused_attention(q, k, v, mask);
  const auto reference = torch::matmul(torch::softmax(torch::matmul(q, k.transpose(2, 3)) + mask, -1), v);
  EXPECT_TRUE(torch::allclose(fused, reference, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(fused[0][0][2], v[0][0].mean(0), 1e-5, 1e-6));
  // Masked keys get exactly zero weight: changing their values changes nothing.
  auto partly = torch::zeros({b, 1, 1, l});
  partly.index_put_({0, 0, 0, 5}, kLowest);
  auto v2 = v.clone();
  v2.index_put_({0, 0, 5}, 1e6);
  EXPECT_TRUE(torch::equal(fused_attention(q, k, v, partly), fused_attention(q, k, v2, partly)));
}

TEST_F(FusedAttention, KeepsTheLayoutsTheModelReliesOn) {
  const int64_t b = 2, l = 7, h = 3, d = 4;
  auto x = torch::randn({b, l, h * d}, torch::requires_grad());
  const auto qh = split_heads(x, h);
  auto out = fused_attention(qh, qh, qh, torch::Tensor());
  // Merging the heads is a view: [B, H, Q, D] laid out as [B, Q, H, D].
  EXPECT_TRUE(out.transpose(1, 2).is_contiguous());
  out.sum().backward();
  EXPECT_TRUE(x.grad().is_contiguous());
  EXPECT_EQ(x.grad().sizes(), x.sizes());
}

TEST_F(FusedAttention, BitsDoNotDependOnTheThreadCount) { expect_thread_independent(false); }

TEST_F(FusedAttention, TheModelComputesTheSameWithSeparateOperators) {
  expect_model_matches_separate_operators(/*bf16=*/false, 1e-5, 1e-4);
}

// What the model reports (logs, bench JSON) is what its layers take.
TEST_F(FusedAttention, TheModelReportsThePathItsLayersTake) {
  auto m = test::tiny_training_model(/*num_heads=*/3, /*seed=*/11);
  EXPECT_EQ(m->attention_path(/*batch=*/2, /*bf16=*/false), "fused_cpu");
  // bf16: autocast's projections give bf16 q, k and v, which the pass takes where oneDNN's bf16 product runs
  EXPECT_EQ(m->attention_path(2, /*bf16=*/true), onednn_gemm_bf16_available() ? "fused_cpu" : "explicit");
  at::set_num_threads(8);
  EXPECT_EQ(m->attention_path(2, false), "explicit");  // 2 x 3 matrices for 8 threads
  at::set_num_threads(2);
  m->set_fused_cpu_attention(false);
  EXPECT_EQ(m->attention_path(2, false), "explicit");
  int64_t calls = 0;
  test::tiny_pass_counting(m, torch::kCPU, /*bf16=*/false, "qa::fused_attention", calls);
  EXPECT_EQ(calls, 0);
}

TEST_F(FusedAttention, AppliesOnlyToWhatItHandles) {
  const auto t = torch::randn({2, 3, 5, 4}), keys = torch::randn({2, 3, 6, 4});
  EXPECT_TRUE(fused_attention_applies(t, keys, keys, torch::randn({2, 3, 5, 6})));
  EXPECT_TRUE(fused_attention_applies(t, keys, keys, torch::Tensor()));
  const auto tb = t.to(torch::kBFloat16), kb = keys.to(torch::kBFloat16);
  EXPECT_EQ(fused_attention_applies(tb, kb, kb, torch::Tensor()), onednn_gemm_bf16_available());
  EXPECT_FALSE(fused_attention_applies(tb, keys, keys, torch::Tensor()));                      // mixed types
  EXPECT_FALSE(fused_attention_applies(t.to(torch::kHalf), keys.to(torch::kHalf), keys.to(torch::kHalf), torch::Tensor()));
  EXPECT_FALSE(fused_attention_applies(tb, kb, kb, torch::randn({2, 3, 5, 6}).to(torch::kBFloat16)));  // the bias is fp32
  EXPECT_FALSE(fused_attention_applies(t, keys, keys, torch::randn({2, 3, 5, 5})));            // bias over 5 keys, not 6
  EXPECT_FALSE(fused_attention_applies(t, keys, keys, torch::randn({2, 2, 5, 6})));            // 2 heads, not 3 or 1
  EXPECT_FALSE(fused_attention_applies(t, torch::randn({2, 3, 6, 5}), keys, torch::Tensor()));  // d_kv differs
  EXPECT_FALSE(fused_attention_applies(t[0], keys[0], keys[0], torch::Tensor()));                // not [B, H, ., .]
  EXPECT_FALSE(fused_attention_applies(t, keys, keys, torch::randn({2, 3, 5, 6}, torch::kDouble)));
  // Fewer matrices (2 x 3) than threads: LibTorch's products split each over all of them instead.
  at::set_num_threads(8);
  EXPECT_FALSE(fused_attention_applies(t, keys, keys, torch::Tensor()));
  at::set_num_threads(2);
  compat::set_autocast_state(c10::DeviceType::CPU, {true, torch::kBFloat16});  // autocast chooses the products' dtype
  const bool under_autocast = fused_attention_applies(t, keys, keys, torch::Tensor());
  compat::set_autocast_state(c10::DeviceType::CPU, {false, torch::kBFloat16});
  EXPECT_FALSE(under_autocast);
}

// bf16 operands, as autocast's projections return them: oneDNN's bf16 products accumulating in fp32,
// the bias, softmax and every [Q, K] matrix in fp32 in between.
class FusedAttentionBf16 : public FusedAttention {
 protected:
  void SetUp() override {
    FusedAttention::SetUp();
    if (!onednn_gemm_bf16_available()) GTEST_SKIP() << "no oneDNN bf16 product here: bf16 attention keeps separate operators";
  }
};

TEST_F(FusedAttentionBf16, EncoderDecoderAndCrossAttention) {
  const int64_t b = 3, l = 37, t = 9, h = 4, d = 8;
  const auto x = [&](int64_t len) { return torch::randn({b, len, h * d}); };
  const auto causal = torch::full({t, t}, kLowest).triu(1).view({1, 1, t, t});
  expect_matches_reference({x(l), x(l), x(l), torch::randn({1, h, l, l}), padding_mask(b, l, 5), h}, true);
  expect_matches_reference({x(t), x(t), x(t), torch::randn({1, h, t, t}), causal, h}, true);
  expect_matches_reference({x(t), x(l), x(l), torch::Tensor(), padding_mask(b, l, 4), h}, true);
  expect_matches_reference({x(1), x(l), x(l), torch::randn({1, h, 1, l}), torch::Tensor(), h}, true);  // a decoding step
  expect_matches_reference({x(l), x(l), x(l), torch::randn({b, 1, l, l}), torch::Tensor(), h}, true);  // shared by heads
  expect_matches_reference({x(l), x(l), x(l), torch::Tensor(), torch::Tensor(), h}, true);              // no bias
}

TEST_F(FusedAttentionBf16, DropoutDrawsAsInFp32) {
  const int64_t b = 2, l = 21, h = 3, d = 8;
  const double p = 0.25;
  const auto q = torch::randn({b, h, l, d}).to(torch::kBFloat16), k = torch::randn({b, h, l, d}).to(torch::kBFloat16),
             v = torch::randn({b, h, l, d}).to(torch::kBFloat16);
  const auto bias = torch::randn({1, h, l, l});
  torch::manual_seed(3);
  const auto bf16 = fused_attention(q, k, v, bias, p);
  torch::manual_seed(3);
  const auto fp32 = fused_attention(q.to(torch::kFloat), k.to(torch::kFloat), v.to(torch::kFloat), bias, p);
  EXPECT_EQ(bf16.scalar_type(), torch::kBFloat16);
  expect_close(bf16, fp32.to(torch::kDouble), "output with dropout", kBf16Tolerance);
}

TEST_F(FusedAttentionBf16, BitsDoNotDependOnTheThreadCount) { expect_thread_independent(true); }

// Under bf16 autocast the separate operators are LibTorch's bf16 products around model/bias_softmax:
// the same to bf16's rounding (against fp32, both differ by up to ~5% in some gradient).
TEST_F(FusedAttentionBf16, TheModelComputesTheSameWithSeparateOperators) {
  expect_model_matches_separate_operators(/*bf16=*/true, 2e-2, 5e-2);
}

}  // namespace
}  // namespace qa
