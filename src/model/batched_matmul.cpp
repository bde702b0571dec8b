#include "qa/model/batched_matmul.hpp"

#include <ATen/Parallel.h>

#include "qa/runtime/torch_compat.hpp"

namespace qa {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// The i-th matrix of a stack with 1 or 2 leading dimensions (a view, no copy).
torch::Tensor matrix(const torch::Tensor& t, int64_t i) {
  if (t.dim() == 3) return t.select(0, i);
  const int64_t inner = t.size(1);
  return t.select(0, i / inner).select(0, i % inner);
}

// [..., M, K] x [..., K, N] -> [..., M, N]
std::vector<int64_t> result_sizes(const torch::Tensor& a, const torch::Tensor& b) {
  auto sizes = a.sizes().vec();
  sizes.back() = b.size(-1);
  return sizes;
}

// out[i] = a[i] b[i] for every matrix i of the stacks; out may be a strided view (see backward).
void stacked_products(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& out) {
  const int64_t count = out.numel() == 0 ? 0 : out.numel() / (out.size(-2) * out.size(-1));
  // Inside a parallel region the BLAS runs single-threaded (OpenBLAS and oneDNN check for it), so each
  // task is one whole product; grain 1 hands the matrices out evenly.
  at::parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      auto o = matrix(out, i);
      at::mm_out(o, matrix(a, i), matrix(b, i));
    }
  });
}

class BatchedMatmulFunction : public torch::autograd::Function<BatchedMatmulFunction> {
 public:
  // out_strides: the result's strides, or empty for a contiguous result (autograd's apply takes no
  // undefined tensors, so the layout comes as numbers).
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& a, const torch::Tensor& b,
                               const std::vector<int64_t>& out_strides) {
    ctx->save_for_backward({a, b});
    const auto sizes = result_sizes(a, b);
    auto out = out_strides.empty() ? torch::empty(sizes, a.options()) : torch::empty_strided(sizes, out_strides, a.options());
    stacked_products(a, b, out);
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& a = saved[0];
    const auto& b = saved[1];
    const auto& g = grads[0];
    // Each gradient takes its input's memory layout (empty_like keeps the strides of a dense view):
    // the heads' gradients then land in [B, L, H * D] order and flow back through split_heads'
    // transposes and views without copies.
    torch::Tensor da, db;
    if (ctx->needs_input_grad(0)) {
      da = torch::empty_like(a);
      stacked_products(g, b.transpose(-2, -1), da);  // dA = G B^T
    }
    if (ctx->needs_input_grad(1)) {
      db = torch::empty_like(b);
      stacked_products(a.transpose(-2, -1), g, db);  // dB = A^T G
    }
    return {da, db, torch::Tensor()};  // nothing for out_strides
  }
};

// Below this many multiply-adds per matrix (attention over 16 tokens, generation's single query over a
// short cache) the cost of a call per matrix outweighs the gain, and LibTorch's bmm was as fast or
// faster (qa-bench-attention-products, bench/RESULTS.md).
constexpr int64_t kMinMultiplyAdds = 32768;

}  // namespace

bool batched_matmul_applies(const torch::Tensor& a, const torch::Tensor& b) {
  if (!a.device().is_cpu() || !b.device().is_cpu()) return false;
  if (a.scalar_type() != torch::kFloat || b.scalar_type() != torch::kFloat) return false;
  if (compat::autocast_state(c10::DeviceType::CPU).enabled) return false;  // autocast decides the dtype
  if (a.dim() != b.dim() || a.dim() < 3 || a.dim() > 4) return false;
  for (int64_t d = 0; d + 2 < a.dim(); ++d)
    if (a.size(d) != b.size(d)) return false;
  return a.size(-1) == b.size(-2) && a.size(-2) * a.size(-1) * b.size(-1) >= kMinMultiplyAdds;
}

torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& out_layout) {
  std::vector<int64_t> out_strides;
  if (out_layout.defined()) {
    const auto sizes = result_sizes(a, b);
    TORCH_CHECK(out_layout.sizes() == c10::IntArrayRef(sizes), "batched_matmul: out_layout has shape ", out_layout.sizes(),
                " but the result has ", c10::IntArrayRef(sizes));
    // Only a dense, non-overlapping layout can hold the result; anything else gets a contiguous one.
    if (out_layout.is_non_overlapping_and_dense()) out_strides = out_layout.strides().vec();
  }
  return BatchedMatmulFunction::apply(a, b, out_strides);
}

}  // namespace qa
