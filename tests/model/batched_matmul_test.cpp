// The per-thread stacked product gives torch::matmul's output and gradients for attention's strided
// views, its gradients keep the inputs' layouts, and its bits do not depend on the thread count.
#include "qa/model/batched_matmul.hpp"

#include <gtest/gtest.h>

#include <tuple>
#include <vector>

#include "../support/value_and_grads.hpp"
#include "qa/runtime/torch_compat.hpp"

namespace qa {
namespace {

// a = heads split out of [B, L, H * D] (as split_heads does), b = the same for another tensor,
// transposed to [B, H, D, L] (scores) or not (weighted values), as in attention. The gradients are
// those of the unsplit tensors.
test::ValueAndGrads run(const torch::Tensor& x, const torch::Tensor& z, const torch::Tensor& dy, int64_t heads,
                        bool transpose_b, bool fused) {
  const auto split = [heads](const torch::Tensor& t) {
    return t.view({t.size(0), t.size(1), heads, t.size(2) / heads}).transpose(1, 2);
  };
  return test::value_and_grads(
      [&](const torch::Tensor& x, const torch::Tensor& z) {
        auto a = split(x);
        auto b = transpose_b ? split(z).transpose(2, 3) : split(z);
        return fused ? batched_matmul(a, b) : torch::matmul(a, b);
      },
      x, z, dy);
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, const char* what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  const double err = (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-12);
  EXPECT_LT(err, 1e-5) << what;
}

TEST(BatchedMatmul, MatchesMatmulForAttentionsLayouts) {
  torch::manual_seed(5);
  const int64_t batch = 3, len = 17, heads = 4, d = 8;
  auto x = torch::randn({batch, len, heads * d}), z = torch::randn({batch, len, heads * d});
  // scores: [B, H, L, D] x [B, H, D, L]
  auto dy = torch::randn({batch, heads, len, len});
  auto f = run(x, z, dy, heads, true, true), m = run(x, z, dy, heads, true, false);
  expect_close(f.value, m.value, "scores");
  expect_close(f.grad_a, m.grad_a, "d queries");
  expect_close(f.grad_b, m.grad_b, "d keys");
  // weighted values: [B, H, L, L'] x [B, H, L', D], with L' = L here
  auto w = torch::softmax(torch::randn({batch, heads, len, len}), -1);
  auto dout = torch::randn({batch, heads, len, d});
  const auto weighted_values = [&](bool fused) {
    return test::value_and_grads(
        [&](const torch::Tensor& wl, const torch::Tensor& zl) {
          auto v = zl.view({batch, len, heads, d}).transpose(1, 2);
          return fused ? batched_matmul(wl, v) : torch::matmul(wl, v);
        },
        w, z, dout);
  };
  const auto fw = weighted_values(true), mw = weighted_values(false);
  expect_close(fw.value, mw.value, "weighted values");
  expect_close(fw.grad_a, mw.grad_a, "d weights");
  expect_close(fw.grad_b, mw.grad_b, "d values");
}

TEST(BatchedMatmul, ThreeDimensionalStacksAndTransposedInputs) {
  torch::manual_seed(6);
  auto a0 = torch::randn({5, 9, 6}), b0 = torch::randn({5, 7, 9});
  auto dy = torch::randn({5, 6, 7});
  torch::Tensor grads[2][2];
  torch::Tensor outs[2];
  for (int fused = 0; fused < 2; ++fused) {
    auto a = a0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
    auto at = a.transpose(1, 2), bt = b.transpose(1, 2);  // column-major matrices
    outs[fused] = (fused ? batched_matmul(at, bt) : torch::matmul(at, bt));
    outs[fused].backward(dy);
    grads[fused][0] = a.grad();
    grads[fused][1] = b.grad();
  }
  expect_close(outs[1].detach(), outs[0].detach(), "y");
  expect_close(grads[1][0], grads[0][0], "da");
  expect_close(grads[1][1], grads[0][1], "db");
}

TEST(BatchedMatmul, GradientsKeepTheInputsLayout) {
  // The gradient of the heads view comes back in the view's own strides, so split_heads' backward
  // needs no copy: the leaf's gradient is then a plain contiguous [B, L, H * D] tensor.
  auto x = torch::randn({2, 5, 12}, torch::requires_grad());
  auto z = torch::randn({2, 5, 12}, torch::requires_grad());
  auto a = x.view({2, 5, 3, 4}).transpose(1, 2);
  auto b = z.view({2, 5, 3, 4}).transpose(1, 2).transpose(2, 3);
  auto y = batched_matmul(a, b);
  EXPECT_TRUE(y.is_contiguous());
  auto grads = torch::autograd::grad({y}, {a, b}, {torch::ones_like(y)});
  EXPECT_EQ(grads[0].strides(), a.strides());
  EXPECT_EQ(grads[1].strides(), b.strides());
}

TEST(BatchedMatmul, ResultTakesTheGivenLayoutSoThatHeadsMergeWithoutACopy) {
  torch::manual_seed(8);
  const int64_t batch = 2, q_len = 7, k_len = 5, heads = 3, d = 4;
  auto queries = torch::randn({batch, q_len, heads * d}).view({batch, q_len, heads, d}).transpose(1, 2);
  auto w0 = torch::softmax(torch::randn({batch, heads, q_len, k_len}), -1);
  auto z0 = torch::randn({batch, k_len, heads * d});
  auto dy = torch::randn({batch, q_len, heads * d});
  torch::Tensor outs[2], dws[2], dzs[2];
  for (int fused = 0; fused < 2; ++fused) {
    auto w = w0.clone().requires_grad_(true), z = z0.clone().requires_grad_(true);
    auto v = z.view({batch, k_len, heads, d}).transpose(1, 2);
    auto out = fused ? batched_matmul(w, v, queries) : torch::matmul(w, v);
    if (fused) {
      EXPECT_EQ(out.strides(), queries.strides());
    }
    auto merged = out.transpose(1, 2).reshape({batch, q_len, heads * d});
    if (fused) {
      EXPECT_EQ(merged.data_ptr(), out.data_ptr()) << "the reshape copied";
    }
    merged.backward(dy);
    outs[fused] = merged.detach(), dws[fused] = w.grad(), dzs[fused] = z.grad();
  }
  expect_close(outs[1], outs[0], "y");
  expect_close(dws[1], dws[0], "d weights");
  expect_close(dzs[1], dzs[0], "d values");
  EXPECT_THROW(batched_matmul(w0, z0.view({batch, k_len, heads, d}).transpose(1, 2), torch::empty({1, 2})),
               c10::Error);
}

TEST(BatchedMatmul, SingleRowsColumnsAndEmptySums) {
  // Generation's single query, a single key, and k = 0: the BLAS's leading dimensions of size-1
  // dimensions and the empty sum are handled before it is called.
  torch::manual_seed(9);
  for (const auto& [m, k, n] : std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 64, 7}, {5, 64, 1}, {1, 8, 1}, {3, 1, 4}}) {
    auto a = torch::randn({2, 3, m, k}), b = torch::randn({2, 3, k, n}), dy = torch::ones({2, 3, m, n});
    const auto f =
        test::value_and_grads([](const torch::Tensor& a, const torch::Tensor& b) { return batched_matmul(a, b); }, a, b, dy);
    const auto r = test::value_and_grads([](const torch::Tensor& a, const torch::Tensor& b) { return torch::matmul(a, b); },
                                         a, b, dy);
    expect_close(f.value, r.value, "y");
    expect_close(f.grad_a, r.grad_a, "da");
    expect_close(f.grad_b, r.grad_b, "db");
  }
  const auto empty = batched_matmul(torch::randn({2, 3, 0}), torch::randn({2, 0, 4}));
  EXPECT_TRUE(torch::equal(empty, torch::zeros({2, 3, 4})));
}

TEST(BatchedMatmul, SameBitsWithOneOrTwoThreads) {
  torch::manual_seed(7);
  auto x = torch::randn({4, 64, 6 * 16}), z = torch::randn({4, 64, 6 * 16}), dy = torch::randn({4, 6, 64, 64});
  const int before = torch::get_num_threads();
  torch::set_num_threads(1);
  const auto one = run(x, z, dy, 6, true, true);
  torch::set_num_threads(2);
  const auto two = run(x, z, dy, 6, true, true);
  torch::set_num_threads(before);
  EXPECT_TRUE(torch::equal(one.value, two.value));
  EXPECT_TRUE(torch::equal(one.grad_a, two.grad_a));
  EXPECT_TRUE(torch::equal(one.grad_b, two.grad_b));
}

TEST(BatchedMatmul, AppliesToCpuFloatStacksOfEqualLeadingSizes) {
  const auto z = [](std::vector<int64_t> s, torch::ScalarType t = torch::kFloat) { return torch::zeros(s, t); };
  EXPECT_TRUE(batched_matmul_applies(z({2, 3, 32, 64}), z({2, 3, 64, 32})));
  EXPECT_TRUE(batched_matmul_applies(z({2, 256, 64}), z({2, 64, 256})));
  // Small matrices only where the BLAS is called directly (through at::mm_out they would lose).
  const bool direct = batched_matmul_calls_blas();
  EXPECT_EQ(batched_matmul_applies(z({2, 3, 16, 64}), z({2, 3, 64, 16})), direct);
  EXPECT_EQ(batched_matmul_applies(z({2, 3, 1, 64}), z({2, 3, 64, 256})), direct);  // one query: generation
  EXPECT_FALSE(batched_matmul_applies(z({2, 3, 32, 64}, torch::kBFloat16), z({2, 3, 64, 32}, torch::kBFloat16)));
  EXPECT_FALSE(batched_matmul_applies(z({2, 3, 32, 64}), z({1, 3, 64, 32})));  // broadcasting: torch::matmul's job
  EXPECT_FALSE(batched_matmul_applies(z({2, 3, 32, 64}), z({2, 3, 32, 64})));  // inner sizes differ
  EXPECT_FALSE(batched_matmul_applies(z({256, 64}), z({64, 256})));
  EXPECT_FALSE(batched_matmul_applies(z({2, 3, 32, 64}), z({2, 64, 32})));
  compat::set_autocast_state(c10::DeviceType::CPU, {true, torch::kBFloat16});
  const bool under_autocast = batched_matmul_applies(z({2, 32, 64}), z({2, 64, 32}));
  compat::set_autocast_state(c10::DeviceType::CPU, {false, torch::kBFloat16});
  EXPECT_FALSE(under_autocast);
}

}  // namespace
}  // namespace qa
