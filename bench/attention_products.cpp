// Attention on the CPU in fp32, forward and backward, two ways in one run: separate operators (the
// products through qa::batched_matmul, a whole matrix per thread, or with --bmm through LibTorch's
// matmul, whose CPU bmm splits each matrix over all threads; the bias addition and softmax between
// them) against one pass per matrix, qa::fused_attention (with --bmm: against qa::batched_matmul).
// The two alternate step by step, so that the machine's drift falls on both alike; the ratio is the
// result.
//
//   qa-bench-attention-products [--batch 8] [--heads 6] [--q-len 256] [--k-len 256] [--d-kv 64]
//                               [--steps 20] [--threads 2] [--bmm]
#include <cstdio>

#include <torch/torch.h>

#include "compare.hpp"
#include "qa/model/batched_matmul.hpp"
#include "qa/model/fused_attention.hpp"

namespace {

struct Shape {
  int64_t batch = 8, heads = 6, q_len = 256, k_len = 256, d_kv = 64, steps = 20, threads = 2;
  bool bmm = false;  // compare LibTorch's bmm with batched_matmul instead of batched_matmul with the fused pass
};

enum class Way { kBmm, kBatchedMatmul, kFused };

// One attention's products as the model runs them: heads split out of [B, L, H * D] without copies,
// scores plus a bias, softmax, weighted values, back to [B, Q, H * D]; then the backward pass.
void step(const Shape& s, Way way, const torch::Tensor& x, const torch::Tensor& kv, const torch::Tensor& bias,
          const torch::Tensor& grad_out) {
  const auto product = [way](const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& layout = {}) {
    return way == Way::kBatchedMatmul ? qa::batched_matmul(a, b, layout) : torch::matmul(a, b);
  };
  const auto split = [&s](const torch::Tensor& t) {
    return t.view({t.size(0), t.size(1), s.heads, s.d_kv}).transpose(1, 2);
  };
  auto xq = x.detach().requires_grad_(true);
  auto xk = kv.detach().requires_grad_(true);
  auto xv = kv.detach().requires_grad_(true);
  const auto queries = split(xq);
  torch::Tensor heads_out;
  if (way == Way::kFused) {
    heads_out = qa::fused_attention(queries, split(xk), split(xv), bias);
  } else {
    auto weights = torch::softmax(product(queries, split(xk).transpose(2, 3)) + bias, -1);
    heads_out = product(weights, split(xv), queries);
  }
  auto out = heads_out.transpose(1, 2).reshape({s.batch, s.q_len, s.heads * s.d_kv});
  out.backward(grad_out);
}

}  // namespace

int main(int argc, char** argv) {
  Shape s;
  qa::bench::parse_options(argc, argv, "qa-bench-attention-products",
                           {{"--batch", &s.batch}, {"--heads", &s.heads}, {"--q-len", &s.q_len}, {"--k-len", &s.k_len},
                            {"--d-kv", &s.d_kv}, {"--steps", &s.steps}, {"--threads", &s.threads}},
                           {{"--bmm", &s.bmm}});
  torch::set_num_threads(static_cast<int>(s.threads));
  torch::manual_seed(0);
  const int64_t inner = s.heads * s.d_kv;
  const auto x = torch::randn({s.batch, s.q_len, inner});
  const auto kv = torch::randn({s.batch, s.k_len, inner});
  const auto bias = torch::randn({1, s.heads, s.q_len, s.k_len});
  const auto grad_out = torch::randn({s.batch, s.q_len, inner});
  const Way first = s.bmm ? Way::kBmm : Way::kBatchedMatmul, second = s.bmm ? Way::kBatchedMatmul : Way::kFused;
  const auto r = qa::bench::compare(s.steps, [&] { step(s, first, x, kv, bias, grad_out); },
                                    [&] { step(s, second, x, kv, bias, grad_out); });
  // 2 products forward, 4 backward, each 2 * B * H * Q * K * D flops.
  const double flops = 6.0 * 2.0 * s.batch * s.heads * s.q_len * s.k_len * s.d_kv;
  const double a = r.first_ms / 1e3, b = r.second_ms / 1e3;
  std::printf("attention products, batch %lld, %lld heads, q %lld x k %lld, d_kv %lld, %lld threads, forward + backward (median of %lld):\n",
              static_cast<long long>(s.batch), static_cast<long long>(s.heads), static_cast<long long>(s.q_len),
              static_cast<long long>(s.k_len), static_cast<long long>(s.d_kv), static_cast<long long>(s.threads),
              static_cast<long long>(s.steps));
  const char* names[] = {"torch::matmul (LibTorch bmm)", "qa::batched_matmul, separate softmax", "qa::fused_attention"};
  std::printf("  %-38s %8.2f ms  %6.1f GFLOP/s of products (softmax and bias included in the time)\n",
              names[static_cast<int>(first)], a * 1e3, flops / a / 1e9);
  std::printf("  %-38s %8.2f ms  %6.1f GFLOP/s\n", names[static_cast<int>(second)], b * 1e3, flops / b / 1e9);
  // What the model takes at these sizes: the fused pass where it applies, else separate operators
  // whose products go through batched_matmul where it applies.
  const auto q = torch::empty({s.batch, s.heads, s.q_len, s.d_kv}), k = torch::empty({s.batch, s.heads, s.k_len, s.d_kv});
  const bool fused = qa::fused_attention_applies(q, k, k, torch::empty({1, s.heads, s.q_len, s.k_len}));
  const bool per_thread = qa::batched_matmul_applies(q, k.transpose(2, 3));
  const char* used = fused ? "fused" : per_thread ? "batched_matmul" : "bmm";
  std::printf("  ratio %.2fx; the model uses %s at these sizes\n", a / b, used);
  std::printf("{\"first\": \"%s\", \"first_ms\": %.3f, \"second\": \"%s\", \"second_ms\": %.3f, \"ratio\": %.4f, \"model_uses\": \"%s\"}\n",
              s.bmm ? "bmm" : "batched_matmul", a * 1e3, s.bmm ? "batched_matmul" : "fused", b * 1e3, a / b, used);
  return 0;
}
