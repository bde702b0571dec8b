#include "qa/model/bf16_linear.hpp"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "qa/model/bf16_rows.hpp"
#include "qa/model/matrix_rows.hpp"
#include "qa/model/onednn_linear.hpp"
#include "qa/runtime/blas.hpp"
#include "qa/runtime/torch_compat.hpp"

namespace qa {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;
using BF16 = c10::BFloat16;

const std::uint16_t* bits(const torch::Tensor& t) { return reinterpret_cast<const std::uint16_t*>(t.data_ptr<BF16>()); }
BF16* bf16_data(const torch::Tensor& t) { return t.data_ptr<BF16>(); }

// A block size for splitting n columns: kBf16LinearColumnBlock, or larger where that would make more
// than 16 blocks (lm_head's 32,128 outputs: each call packs its other operand again). From n alone, so
// that the blocks do not depend on the thread count.
int64_t column_block(int64_t n) {
  const int64_t b = kBf16LinearColumnBlock;
  return std::max(b, (n + 16 * b - 1) / (16 * b) * b);
}

// f(begin, end, scratch) for each block of `block` elements of [0, n), the blocks shared out over
// LibTorch's threads a contiguous run each; inside the parallel region oneDNN's products run on the
// calling thread. One block runs on the caller, oneDNN then using the threads itself.
template <class F>
void for_each_block(int64_t n, int64_t block, const F& f) {
  const int64_t blocks = (n + block - 1) / block;
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> scratch;  // a bf16 result's fp32 block
    for (int64_t b = b0; b < b1; ++b) f(b * block, std::min(n, (b + 1) * block), scratch);
  });
}

// Rows [r0, r1) of fp32 a rounded into bf16 a_bf16.
void round_rows(const torch::Tensor& a, const torch::Tensor& a_bf16, int64_t r0, int64_t r1) {
  const int64_t k = a.size(1);
  for (int64_t r = r0; r < r1; ++r) narrow_bf16(a.data_ptr<float>() + r * a.stride(0), bf16_data(a_bf16) + r * a_bf16.stride(0), k);
}

// All of a's rows, over the threads.
void round_all_rows(const torch::Tensor& a, const torch::Tensor& a_bf16) {
  at::parallel_for(0, a.size(0), 16, [&](int64_t r0, int64_t r1) { round_rows(a, a_bf16, r0, r1); });
}

// The process-wide setting on and oneDNN's bf16 product running here.
bool usable() { return onednn_linear_enabled() && onednn_gemm_bf16_available(); }

// C = A op(B): A [rows, k] whose bf16 values are in a_bf16 (a itself, or fp32 a rounded into it here),
// B bf16 contiguous ([n, k] when trans_b, else [k, n]), C [rows, n] contiguous, fp32 or bf16.
void product(const torch::Tensor& a, const torch::Tensor& a_bf16, const torch::Tensor& b, bool trans_b, const torch::Tensor& c) {
  const int64_t rows = a.size(0), k = a.size(1), n = c.size(1);
  const bool round_a = a.scalar_type() == torch::kFloat;
  const bool c_bf16 = c.scalar_type() == torch::kBFloat16;
  const std::uint16_t* bp = bits(b);
  const int64_t ldb = b.stride(0), lda = a_bf16.stride(0);
  // One call's result [m, cols] for C's rows from r0 and columns from c0, rounded through scratch for bf16.
  const auto call = [&](int64_t r0, int64_t m, int64_t c0, int64_t cols, const std::uint16_t* bblock, std::vector<float>& scratch) {
    if (!c_bf16) {
      onednn_gemm_bf16_row_major(false, trans_b, m, cols, k, 1.0f, bits(a_bf16) + r0 * lda, lda, bblock, ldb, 0.0f,
                                 c.data_ptr<float>() + r0 * n + c0, n);
      return;
    }
    scratch.resize(static_cast<std::size_t>(m * cols));
    onednn_gemm_bf16_row_major(false, trans_b, m, cols, k, 1.0f, bits(a_bf16) + r0 * lda, lda, bblock, ldb, 0.0f,
                               scratch.data(), cols);
    for (int64_t i = 0; i < m; ++i) narrow_bf16(scratch.data() + i * cols, bf16_data(c) + (r0 + i) * n + c0, cols);
  };
  if (rows >= 2 * kBf16LinearRowBlock) {  // blocks of rows, each rounded just before its product reads it
    for_each_block(rows, kBf16LinearRowBlock, [&](int64_t r0, int64_t r1, std::vector<float>& scratch) {
      if (round_a) round_rows(a, a_bf16, r0, r1);
      call(r0, r1 - r0, 0, n, bp, scratch);
    });
    return;
  }
  // Few rows (decoder steps, short batches): blocks of C's columns, i.e. of B's rows or columns.
  if (round_a) round_all_rows(a, a_bf16);
  for_each_block(n, column_block(n), [&](int64_t c0, int64_t c1, std::vector<float>& scratch) {
    call(0, rows, c0, c1 - c0, trans_b ? bp + c0 * ldb : bp + c0, scratch);
  });
}

class Bf16LinearFunction : public torch::autograd::Function<Bf16LinearFunction> {
 public:
  // wb: w's bf16 copy, without history (its gradient is w's, returned in fp32).
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& wb,
                               torch::ScalarType out_type) {
    const int64_t in = w.size(1), out = w.size(0);
    const auto xm = matrix_rows(x, in);
    const int64_t rows = xm.size(0);
    const auto xb = xm.scalar_type() == torch::kBFloat16 ? xm : torch::empty({rows, in}, xm.options().dtype(torch::kBFloat16));
    auto y = torch::empty({rows, out}, xm.options().dtype(out_type));
    product(xm, xb, wb, /*trans_b=*/true, y);
    ctx->save_for_backward({xb, wb});  // x as the product read it: dW's operand
    ctx->saved_data["x_type"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["x_sizes"] = x.sizes().vec();
    return with_leading_dims_of(y, x);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& xb = saved[0];
    const auto& wb = saved[1];
    const int64_t in = wb.size(1), out = wb.size(0);
    const auto dy = matrix_rows(grads[0], out);  // in the result's type: autograd casts gradients to it
    const int64_t rows = dy.size(0);
    const auto dyb = dy.scalar_type() == torch::kBFloat16 ? dy : torch::empty({rows, out}, dy.options().dtype(torch::kBFloat16));
    torch::Tensor dx, dw;
    if (ctx->needs_input_grad(0)) {
      // dx = dy W, rounding dy into dyb as it goes; in x's type.
      const auto x_type = static_cast<torch::ScalarType>(ctx->saved_data["x_type"].toInt());
      dx = torch::empty({rows, in}, dy.options().dtype(x_type));
      product(dy, dyb, wb, /*trans_b=*/false, dx);
      dx = dx.view(ctx->saved_data["x_sizes"].toIntVector());
    } else if (!dy.is_same(dyb)) {
      round_all_rows(dy, dyb);
    }
    if (ctx->needs_input_grad(1)) {
      // dW = dy^T x in fp32, blocks of its rows: [out, rows] x [rows, in].
      dw = torch::empty({out, in}, dy.options().dtype(torch::kFloat));
      const int64_t ld_dy = dyb.stride(0), ld_x = xb.stride(0);
      for_each_block(out, column_block(out), [&](int64_t o0, int64_t o1, std::vector<float>&) {
        onednn_gemm_bf16_row_major(true, false, o1 - o0, in, rows, 1.0f, bits(dyb) + o0, ld_dy, bits(xb), ld_x, 0.0f,
                                   dw.data_ptr<float>() + o0 * in, in);
      });
    }
    return {dx, dw, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

bool bf16_linear_applies(const torch::Tensor& x, const torch::Tensor& w) {
  const auto autocast = compat::autocast_state(c10::DeviceType::CPU);
  if (!autocast.enabled || autocast.dtype != torch::kBFloat16) return false;
  const auto xt = x.scalar_type();
  const bool handled = x.device().is_cpu() && w.device().is_cpu() && (xt == torch::kFloat || xt == torch::kBFloat16) &&
                       w.scalar_type() == torch::kFloat && w.dim() == 2 && w.is_contiguous() && x.dim() >= 1 &&
                       x.size(-1) == w.size(1) && x.numel() > 0 && w.numel() > 0;
  return handled && usable();
}

bool bf16_linear_in_training(const torch::Device& device) {
  return device.is_cpu() && usable();
}

torch::Tensor bf16_linear(const torch::Tensor& x, const torch::Tensor& w, torch::ScalarType out) {
  RECORD_FUNCTION("qa::bf16_linear", std::vector<c10::IValue>());  // named in profiles
  TORCH_CHECK(out == torch::kFloat || out == torch::kBFloat16, "bf16_linear: the result is fp32 or bf16");
  // Autocast's cached copy: each weight is rounded once per autocast scope, whichever products read it.
  const auto wb = at::autocast::cached_cast(torch::kBFloat16, w, c10::DeviceType::CPU).detach();
  return Bf16LinearFunction::apply(x, w, wb, out);
}

}  // namespace qa
