// x W^T under CPU bf16 autocast through oneDNN's bf16 product: its value and both gradients against a
// double-precision reference of the same bf16-rounded operands, in both result types, whichever way
// the products are split; the bits do not depend on the thread count; several weights of one x as one
// call; and the model under autocast computes what autocast's own products compute, every projection
// taking it.
#include "qa/model/bf16_linear.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../support/tiny_model.hpp"
#include "../support/tiny_pass.hpp"
#include "../support/value_and_grads.hpp"
#include "qa/model/onednn_linear.hpp"
#include "qa/model/t5.hpp"
#include "qa/runtime/blas.hpp"
#include "qa/runtime/torch_compat.hpp"

namespace qa {
namespace {

constexpr double kFp32Tolerance = 1e-5;       // fp32 sums of bf16 products, relative to the largest value
constexpr double kBf16Tolerance = 1.0 / 128;  // a result rounded to bf16 once more

class Bf16Linear : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!onednn_gemm_bf16_available()) GTEST_SKIP() << "no oneDNN bf16 product here: autocast's products remain";
    torch::manual_seed(7);
    threads_ = at::get_num_threads();
    at::set_num_threads(2);  // the blocks shared out over threads, whatever the machine has
  }
  void TearDown() override {
    at::set_num_threads(threads_);
    set_onednn_linear_enabled(true);
  }
  int threads_ = 1;
};

torch::Tensor bf16_rounded(const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kDouble); }

test::ValueAndGrads under_autocast(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& dy, torch::ScalarType out) {
  return test::value_and_grads(
      [out](const torch::Tensor& a, const torch::Tensor& b) {
        compat::AutocastScope scope(torch::kCPU, true);
        EXPECT_TRUE(bf16_linear_applies(a, b));
        return bf16_linear(a, b, out);
      },
      x, w, dy);
}

void expect_close(const torch::Tensor& ours, const torch::Tensor& exact, double tolerance, const std::string& what) {
  EXPECT_LT(test::rel_err(ours.to(torch::kDouble), exact), tolerance) << what;
}

// Value and gradients against double products of the bf16-rounded operands (dy rounded too: the
// products read it in bf16); each in its type: the value in `out`, dx in x's type, dW in fp32.
void expect_matches_reference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& dy, torch::ScalarType out) {
  const auto ours = under_autocast(x, w, dy, out);
  const int64_t in = w.size(1);
  const auto xd = bf16_rounded(x).reshape({-1, in}), wd = bf16_rounded(w), dyd = bf16_rounded(dy).reshape({-1, w.size(0)});
  const auto value = xd.mm(wd.t()).view(ours.value.sizes());
  const auto dx = dyd.mm(wd).view(x.sizes());
  const auto dw = dyd.t().mm(xd);
  const std::string shape = "x " + std::to_string(x.size(0)) + " rows, out " + std::to_string(w.size(0));
  EXPECT_EQ(ours.value.scalar_type(), out);
  EXPECT_EQ(ours.grad_a.scalar_type(), x.scalar_type());
  EXPECT_EQ(ours.grad_b.scalar_type(), torch::kFloat);
  EXPECT_EQ(ours.grad_a.sizes(), x.sizes());
  EXPECT_EQ(ours.grad_b.sizes(), w.sizes());
  const auto tolerance = [](const torch::Tensor& t) { return t.scalar_type() == torch::kBFloat16 ? kBf16Tolerance : kFp32Tolerance; };
  expect_close(ours.value, value, tolerance(ours.value), "value, " + shape);
  expect_close(ours.grad_a, dx, tolerance(ours.grad_a), "dx, " + shape);
  expect_close(ours.grad_b, dw, kFp32Tolerance, "dW, " + shape);
}

// From 2 x kBf16LinearRowBlock rows on, blocks of rows (the last one short), their columns split too
// below 16 row blocks (short last blocks of columns); fp32 and bf16 x and results.
TEST_F(Bf16Linear, BlocksOfRows) {
  for (const int64_t rows : {2 * kBf16LinearRowBlock + 45, 16 * kBf16LinearRowBlock + 5}) {
    for (const auto out : {torch::kFloat, torch::kBFloat16}) {
      expect_matches_reference(torch::randn({rows, 48}), torch::randn({200, 48}), torch::randn({rows, 200}), out);
      expect_matches_reference(torch::randn({3, rows / 3, 40}).to(torch::kBFloat16), torch::randn({72, 40}),
                               torch::randn({3, rows / 3, 72}).to(out), out);
    }
  }
}

// Fewer rows (a decoding step, a short batch): blocks of the result's columns, lm_head's wide ones too.
TEST_F(Bf16Linear, BlocksOfColumns) {
  for (const auto out : {torch::kFloat, torch::kBFloat16}) {
    expect_matches_reference(torch::randn({7, 48}), torch::randn({200, 48}), torch::randn({7, 200}), out);
    expect_matches_reference(torch::randn({7, 200}), torch::randn({48, 200}), torch::randn({7, 48}), out);  // dx's blocks
    expect_matches_reference(torch::randn({2, 1, 32}).to(torch::kBFloat16), torch::randn({70, 32}), torch::randn({2, 1, 70}), out);
    expect_matches_reference(torch::randn({5, 16}), torch::randn({16 * kBf16LinearColumnBlock + 30, 16}),
                             torch::randn({5, 16 * kBf16LinearColumnBlock + 30}), out);
  }
}

TEST_F(Bf16Linear, StridedInputsAndOutputGradients) {
  // x a transposed view (the heads merged back), dy a column slice (a split of a wider gradient).
  const int64_t rows = 2 * kBf16LinearRowBlock + 3;
  const auto x = torch::randn({48, 3, rows / 3}).permute({1, 2, 0});
  const auto dy = torch::randn({3, rows / 3, 240}).slice(2, 20, 220);
  expect_matches_reference(x, torch::randn({200, 48}), dy, torch::kFloat);
  expect_matches_reference(x.narrow(1, 0, 2), torch::randn({200, 48}), dy.narrow(1, 0, 2), torch::kBFloat16);
}

// Fixed blocks: each product sums the same rows and columns on one thread or two.
TEST_F(Bf16Linear, BitsDoNotDependOnTheThreadCount) {
  for (const int64_t rows : {int64_t{5}, 2 * kBf16LinearRowBlock + 45}) {
    const auto x = torch::randn({rows, 48}), w = torch::randn({200, 48}), dy = torch::randn({rows, 200});
    at::set_num_threads(1);
    const auto one = under_autocast(x, w, dy, torch::kBFloat16);
    at::set_num_threads(2);
    const auto two = under_autocast(x, w, dy, torch::kBFloat16);
    EXPECT_TRUE(torch::equal(one.value, two.value)) << rows << " rows";
    EXPECT_TRUE(torch::equal(one.grad_a, two.grad_a)) << rows << " rows";
    EXPECT_TRUE(torch::equal(one.grad_b, two.grad_b)) << rows << " rows";
  }
}

// Evaluation, generation and activation checkpointing's first pass run without a gradient: the same
// path and bits as with one.
TEST_F(Bf16Linear, TheSameBitsWithoutAGradient) {
  const auto x = torch::randn({3, 100, 64}), w = torch::randn({96, 64});
  const auto with_grad = under_autocast(x, w, torch::randn({3, 100, 96}), torch::kFloat).value;
  torch::NoGradGuard no_grad;
  compat::AutocastScope scope(torch::kCPU, true);
  ASSERT_TRUE(bf16_linear_applies(x, w));
  EXPECT_TRUE(torch::equal(bf16_linear(x, w, torch::kFloat), with_grad));
}

TEST_F(Bf16Linear, OnlyTheGradientsThatAreWanted) {
  const auto w = torch::randn({20, 48}).requires_grad_(true);
  const auto x = torch::randn({5, 48});
  {
    compat::AutocastScope scope(torch::kCPU, true);
    bf16_linear(x, w, torch::kFloat).sum().backward();
  }
  ASSERT_TRUE(w.grad().defined());
  EXPECT_LT(test::rel_err(w.grad().to(torch::kDouble), torch::ones({20, 5}, torch::kDouble).mm(bf16_rounded(x))), kFp32Tolerance);
  EXPECT_FALSE(x.grad().defined());
}

TEST_F(Bf16Linear, AppliesOnlyToWhatItHandles) {
  const auto x = torch::randn({4, 8}), w = torch::randn({6, 8});
  EXPECT_FALSE(bf16_linear_applies(x, w));  // no autocast: fp32 products
  {  // (LibTorch 1.13's CPU autocast has no fp16 to try)
    compat::AutocastScope scope(torch::kCPU, true);
    EXPECT_TRUE(bf16_linear_applies(x, w));
    EXPECT_TRUE(bf16_linear_applies(x.to(torch::kBFloat16), w));
    EXPECT_FALSE(bf16_linear_applies(x.to(torch::kDouble), w));
    EXPECT_FALSE(bf16_linear_applies(x, w.to(torch::kBFloat16)));  // a stack of bf16 copies: torch::linear's
    EXPECT_FALSE(bf16_linear_applies(x, torch::randn({8, 6}).t()));  // W not contiguous
    EXPECT_FALSE(bf16_linear_applies(x, torch::randn({6, 7})));      // 8 inputs, not 7
    EXPECT_FALSE(bf16_linear_applies(torch::randn({0, 8}), w));
    set_onednn_linear_enabled(false);  // bench --cpu-gemm blas: LibTorch's products
    EXPECT_FALSE(bf16_linear_applies(x, w));
    set_onednn_linear_enabled(true);
  }
  EXPECT_FALSE(bf16_linear_applies(x, w));  // the scope left
}

// Weights that read the same x, as one call: each result the bits of its own bf16_linear (the same
// blocks, the same products), each dW too; dx the fp32 sum of the dy_i W_i, against double; rows or
// columns, x fp32 or bf16, on one thread or two.
TEST_F(Bf16Linear, SeveralWeightsAsOneCall) {
  for (const int64_t rows : {int64_t{7}, 2 * kBf16LinearRowBlock + 45}) {
    for (const auto x_type : {torch::kFloat, torch::kBFloat16}) {
      const auto x0 = torch::randn({rows, 48}).to(x_type);
      const std::vector<torch::Tensor> w0{torch::randn({200, 48}), torch::randn({64, 48}), torch::randn({130, 48})};
      std::vector<torch::Tensor> dys;
      for (const auto& w : w0) dys.push_back(torch::randn({rows, w.size(0)}).to(torch::kBFloat16));
      const auto run = [&](bool together) {
        auto x = x0.clone().requires_grad_(true);
        std::vector<torch::Tensor> ws, ys;
        for (const auto& w : w0) ws.push_back(w.clone().requires_grad_(true));
        {
          compat::AutocastScope scope(torch::kCPU, true);
          if (together) {
            ys = bf16_linears(x, ws, torch::kBFloat16);
          } else {
            for (const auto& w : ws) ys.push_back(bf16_linear(x, w, torch::kBFloat16));
          }
        }
        torch::autograd::backward(ys, dys);
        std::vector<torch::Tensor> out{x.grad()};
        for (std::size_t i = 0; i < ws.size(); ++i) out.push_back(ys[i].detach()), out.push_back(ws[i].grad());
        return out;
      };
      at::set_num_threads(1);
      const auto one = run(true);
      at::set_num_threads(2);
      const auto together = run(true), apart = run(false);
      const std::string what = std::to_string(rows) + " rows, x " + (x_type == torch::kFloat ? "fp32" : "bf16");
      for (std::size_t i = 1; i < together.size(); ++i) EXPECT_TRUE(torch::equal(together[i], apart[i])) << what << ", output " << i;
      for (std::size_t i = 0; i < together.size(); ++i) EXPECT_TRUE(torch::equal(together[i], one[i])) << what << ", output " << i;
      auto dx = torch::zeros({rows, 48}, torch::kDouble);
      for (std::size_t i = 0; i < w0.size(); ++i) dx += dys[i].to(torch::kDouble).mm(bf16_rounded(w0[i]));
      EXPECT_EQ(together[0].scalar_type(), x_type) << what;
      expect_close(together[0], dx, x_type == torch::kFloat ? kFp32Tolerance : kBf16Tolerance, "dx, " + what);
    }
  }
}

// An output that no loss reads: its weight gets no gradient, and dx is the others' sum.
TEST_F(Bf16Linear, AnUnusedOutputAddsNothing) {
  const auto x = torch::randn({2 * kBf16LinearRowBlock, 32}).requires_grad_(true);
  const auto w0 = torch::randn({40, 32}).requires_grad_(true), w1 = torch::randn({24, 32}).requires_grad_(true);
  const auto dy = torch::randn({2 * kBf16LinearRowBlock, 40});
  {
    compat::AutocastScope scope(torch::kCPU, true);
    const auto ys = bf16_linears(x, {w0, w1}, torch::kFloat);
    ys[0].backward(dy);
  }
  EXPECT_FALSE(w1.grad().defined());
  ASSERT_TRUE(w0.grad().defined());
  expect_close(x.grad(), bf16_rounded(dy).mm(bf16_rounded(w0)), kFp32Tolerance, "dx");
}

TEST_F(Bf16Linear, WeightsOfAnotherInputSizeAreAnError) {
  compat::AutocastScope scope(torch::kCPU, true);
  try {
    bf16_linears(torch::randn({4, 8}), {torch::randn({6, 8}), torch::randn({6, 7})}, torch::kFloat);
    FAIL() << "no error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("the weights differ in their input size"), std::string::npos) << e.what();
  }
}

// The tiny model under autocast with these products and with autocast's own, against the model in
// fp32: these are at least as close to it (they round fewer results), and every projection, lm_head
// included, takes them.
TEST_F(Bf16Linear, TheModelIsAsCloseToFp32AsWithAutocastsProducts) {
  for (const bool tied : {false, true}) {
    const auto run = [tied](bool bf16, bool on, int64_t* calls) {
      set_onednn_linear_enabled(on);
      auto c = test::tiny_t5_config(40, 2, "gated-gelu", tied);
      T5Model m(c);
      m->init_weights(3);
      m->train();
      return test::tiny_pass_counting(m, torch::kCPU, bf16, "qa::bf16_linear", *calls);
    };
    int64_t calls_on = 0, calls_off = 0, calls_fp32 = 0;
    const auto on = run(true, true, &calls_on), off = run(true, false, &calls_off), fp32 = run(false, true, &calls_fp32);
    const auto c = test::tiny_t5_config(40, 2);
    // Calls: q/k/v, o, wi_0/wi_1 and wo per encoder block; self-attention's q/k/v and o, cross-attention's
    // q, k/v and o, and the feed-forward's two per decoder block; the output projection.
    EXPECT_EQ(calls_on, 4 * c.num_layers + 7 * c.num_decoder_layers + 1) << "tied " << tied;
    EXPECT_EQ(calls_off + calls_fp32, 0);
    const double logits_on = test::rel_err(on.logits, fp32.logits), logits_off = test::rel_err(off.logits, fp32.logits);
    EXPECT_LT(logits_on, 1e-2) << "tied " << tied;
    EXPECT_LE(logits_on, logits_off) << "tied " << tied;
    // Per parameter either may be closer (measured: 0.3-3.6% here, 0.2-7.6% with autocast's); summed
    // over all of them, these are (0.69 against 0.84 untied, 0.72 against 1.28 tied).
    ASSERT_EQ(on.grads.size(), off.grads.size());
    double sum_on = 0, sum_off = 0;
    for (std::size_t i = 0; i < on.grads.size(); ++i) {
      const double e_on = test::rel_err(on.grads[i], fp32.grads[i]), e_off = test::rel_err(off.grads[i], fp32.grads[i]);
      EXPECT_LT(e_on, 5e-2) << "parameter " << i << ", tied " << tied;
      sum_on += e_on, sum_off += e_off;
    }
    EXPECT_LT(sum_on, sum_off) << "tied " << tied;
  }
}

}  // namespace
}  // namespace qa
