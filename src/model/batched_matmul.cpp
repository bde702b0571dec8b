#include "qa/model/batched_matmul.hpp"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <limits>
#include <optional>

#include "qa/runtime/blas.hpp"
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

// Offset of the i-th matrix of a stack from the first, in elements.
int64_t matrix_offset(const torch::Tensor& t, int64_t i) {
  if (t.dim() == 3) return i * t.stride(0);
  const int64_t inner = t.size(1);
  return (i / inner) * t.stride(0) + (i % inner) * t.stride(1);
}

// [..., M, K] x [..., K, N] -> [..., M, N]
std::vector<int64_t> result_sizes(const torch::Tensor& a, const torch::Tensor& b) {
  auto sizes = a.sizes().vec();
  sizes.back() = b.size(-1);
  return sizes;
}

// How one matrix of a stack is read in row-major terms: as stored ('N', rows `ld` apart) or as the
// transpose of a row-major matrix ('T', a column-major one). Strides of size-1 dimensions do not
// matter and are replaced by the smallest leading dimension the BLAS accepts.
struct RowMajor {
  char trans;
  int64_t ld;
};
std::optional<RowMajor> row_major(const torch::Tensor& t) {
  const int64_t rows = t.size(-2), cols = t.size(-1);
  const int64_t s0 = rows == 1 ? std::max<int64_t>(cols, 1) : t.stride(-2);
  const int64_t s1 = cols == 1 ? std::max<int64_t>(rows, 1) : t.stride(-1);
  if (s1 == 1 && s0 >= std::max<int64_t>(cols, 1)) return RowMajor{'N', s0};
  if (s0 == 1 && s1 >= std::max<int64_t>(rows, 1)) return RowMajor{'T', s1};
  return std::nullopt;
}

// out[i] = a[i] b[i] through the BLAS directly, when every operand has a layout it reads and the sizes
// fit its ints: no tensor views, selects or dispatch per matrix (~10 us each through at::mm_out, as much
// as a 64 x 32 x 64 product takes). Returns false, having done nothing, otherwise.
bool stacked_products_blas(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& out, int64_t count) {
  if (!blas_sgemm_available()) return false;
  // A column-major result is computed as its row-major transpose, out^T = b^T a^T.
  const auto lout = row_major(out);
  const bool transposed = !lout || lout->trans == 'T';
  const torch::Tensor c = transposed ? out.transpose(-2, -1) : out;
  const torch::Tensor lhs = transposed ? b.transpose(-2, -1) : a;
  const torch::Tensor rhs = transposed ? a.transpose(-2, -1) : b;
  const auto lc = row_major(c), la = row_major(lhs), lb = row_major(rhs);
  if (!lc || lc->trans != 'N' || !la || !lb) return false;
  const int64_t m = c.size(-2), n = c.size(-1), k = lhs.size(-1);
  constexpr int64_t kMaxInt = std::numeric_limits<int>::max();
  for (int64_t v : {m, n, k, lc->ld, la->ld, lb->ld})
    if (v > kMaxInt) return false;
  const int im = static_cast<int>(m), in = static_cast<int>(n), ik = static_cast<int>(k);
  const int lda = static_cast<int>(la->ld), ldb = static_cast<int>(lb->ld), ldc = static_cast<int>(lc->ld);
  const bool ta = la->trans == 'T', tb = lb->trans == 'T';
  const float* pa = lhs.data_ptr<float>();
  const float* pb = rhs.data_ptr<float>();
  float* pc = c.data_ptr<float>();
  // Inside a parallel region the BLAS runs single-threaded, so each task is one whole product; grain 1
  // hands the matrices out evenly.
  at::parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      sgemm_row_major(ta, tb, im, in, ik, 1.0f, pa + matrix_offset(lhs, i), lda, pb + matrix_offset(rhs, i), ldb, 0.0f,
                      pc + matrix_offset(c, i), ldc);
    }
  });
  return true;
}

// out[i] = a[i] b[i] for every matrix i of the stacks; out may be a strided view (see backward).
void stacked_products(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& out) {
  const int64_t count = out.numel() == 0 ? 0 : out.numel() / (out.size(-2) * out.size(-1));
  if (count == 0) return;
  if (a.size(-1) == 0) {  // an empty sum: zeros, without relying on how a BLAS treats k = 0
    out.zero_();
    return;
  }
  if (stacked_products_blas(a, b, out, count)) return;
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

// Through at::mm_out, below this many multiply-adds per matrix (attention over 16 tokens, generation's
// single query over a short cache) the cost of a call per matrix outweighs the gain, and LibTorch's bmm
// was as fast or faster (qa-bench-attention-products, bench/RESULTS.md). Calling the BLAS directly
// was faster at every size measured, down to 1 x 64 x 1.
constexpr int64_t kMinMultiplyAddsThroughAten = 32768;

}  // namespace

bool batched_matmul_applies(const torch::Tensor& a, const torch::Tensor& b) {
  if (!a.device().is_cpu() || !b.device().is_cpu()) return false;
  if (a.scalar_type() != torch::kFloat || b.scalar_type() != torch::kFloat) return false;
  if (compat::autocast_state(c10::DeviceType::CPU).enabled) return false;  // autocast decides the dtype
  if (a.dim() != b.dim() || a.dim() < 3 || a.dim() > 4) return false;
  for (int64_t d = 0; d + 2 < a.dim(); ++d)
    if (a.size(d) != b.size(d)) return false;
  if (a.size(-1) != b.size(-2)) return false;
  return batched_matmul_calls_blas() || a.size(-2) * a.size(-1) * b.size(-1) >= kMinMultiplyAddsThroughAten;
}

bool batched_matmul_calls_blas() { return blas_sgemm_available(); }

torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& out_layout) {
  RECORD_FUNCTION("qa::batched_matmul", std::vector<c10::IValue>());  // its BLAS calls are no LibTorch operator
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
