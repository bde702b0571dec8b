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

// One product A op(B) of a sum: A [rows, k] whose bf16 values are in a_bf16 (a itself, or fp32 a
// rounded into it block by block), B bf16 contiguous ([n, k] when trans_b, else [k, n]).
struct Term {
  torch::Tensor a, a_bf16, b;
  bool trans_b;
  // A's rows [r0, r1), or all of them over the threads, rounded into a_bf16 where A is fp32.
  void round_a(int64_t r0, int64_t r1) const {
    if (a.scalar_type() == torch::kFloat) round_rows(a, a_bf16, r0, r1);
  }
  void round_all_of_a() const {
    if (a.scalar_type() == torch::kFloat) round_all_rows(a, a_bf16);
  }
};

// A [rows, n] result, fp32 or bf16, contiguous: the sum of its terms' products, summed in fp32
// (oneDNN's beta = 1 adds each product after the first into the block; a bf16 C is rounded once, from
// an fp32 block).
struct Output {
  torch::Tensor c;
  std::vector<Term> terms;
};

// The outputs, all of the same rows: blocks of 128 rows where there are at least two, each block's
// fp32 A rounded just before the products read it, then every output's block (one parallel region,
// the block's A still in the core's cache); else blocks of each C's columns (decoder steps, short batches).
void sum_of_products(const std::vector<Output>& outputs) {
  const int64_t rows = outputs[0].c.size(0);
  // Output o's block of [m, cols] at row r0, column c0.
  const auto block = [&](const Output& o, int64_t r0, int64_t m, int64_t c0, int64_t cols, std::vector<float>& scratch) {
    const int64_t n = o.c.size(1);
    const bool c_bf16 = o.c.scalar_type() == torch::kBFloat16;
    float* out = c_bf16 ? nullptr : o.c.data_ptr<float>() + r0 * n + c0;
    int64_t ldc = n;
    if (c_bf16) {
      scratch.resize(static_cast<std::size_t>(m * cols));
      out = scratch.data(), ldc = cols;
    }
    for (std::size_t t = 0; t < o.terms.size(); ++t) {
      const auto& term = o.terms[t];
      const int64_t k = term.a.size(1), lda = term.a_bf16.stride(0), ldb = term.b.stride(0);
      const std::uint16_t* b = term.trans_b ? bits(term.b) + c0 * ldb : bits(term.b) + c0;
      onednn_gemm_bf16_row_major(false, term.trans_b, m, cols, k, 1.0f, bits(term.a_bf16) + r0 * lda, lda, b, ldb,
                                 t == 0 ? 0.0f : 1.0f, out, ldc);
    }
    if (c_bf16) {
      for (int64_t i = 0; i < m; ++i) narrow_bf16(scratch.data() + i * cols, bf16_data(o.c) + (r0 + i) * n + c0, cols);
    }
  };
  if (rows >= 2 * kBf16LinearRowBlock) {
    for_each_block(rows, kBf16LinearRowBlock, [&](int64_t r0, int64_t r1, std::vector<float>& scratch) {
      for (const auto& o : outputs) {
        for (const auto& term : o.terms) term.round_a(r0, r1);
      }
      for (const auto& o : outputs) block(o, r0, r1 - r0, 0, o.c.size(1), scratch);
    });
    return;
  }
  for (const auto& o : outputs) {
    for (const auto& term : o.terms) term.round_all_of_a();
  }
  for (const auto& o : outputs) {
    const int64_t n = o.c.size(1);
    for_each_block(n, column_block(n), [&](int64_t c0, int64_t c1, std::vector<float>& scratch) {
      block(o, 0, rows, c0, c1 - c0, scratch);
    });
  }
}

// a's bf16 values: a itself where it is bf16, else an uninitialised bf16 matrix its products round it into.
torch::Tensor bf16_operand(const torch::Tensor& a) {
  return a.scalar_type() == torch::kBFloat16 ? a : torch::empty(a.sizes(), a.options().dtype(torch::kBFloat16));
}

// x W_i^T for weights W_1..W_k that read the same x: x is rounded once, and in the backward pass dx =
// sum_i dy_i W_i is one sum of products in fp32 (no separate dx_i to add).
class Bf16LinearFunction : public torch::autograd::Function<Bf16LinearFunction> {
 public:
  // wbs: the weights' bf16 copies, without history (their gradients are the fp32 weights', in fp32).
  static tensor_list forward(AutogradContext* ctx, const torch::Tensor& x, torch::TensorList ws, torch::TensorList wbs,
                             torch::ScalarType out_type) {
    const int64_t in = ws[0].size(1);
    const auto xm = matrix_rows(x, in);
    const int64_t rows = xm.size(0);
    const auto xb = bf16_operand(xm);
    ctx->set_materialize_grads(false);  // an output nobody used adds nothing to dx
    std::vector<Output> outputs;
    for (std::size_t i = 0; i < ws.size(); ++i) {
      // x is rounded by the first product that reads it; the others read xb as it is.
      outputs.push_back({torch::empty({rows, ws[i].size(0)}, xm.options().dtype(out_type)),
                         {Term{i == 0 ? xm : xb, xb, wbs[i], /*trans_b=*/true}}});
    }
    sum_of_products(outputs);
    tensor_list ys;
    for (const auto& o : outputs) ys.push_back(with_leading_dims_of(o.c, x));
    tensor_list saved{xb};
    saved.insert(saved.end(), wbs.begin(), wbs.end());
    ctx->save_for_backward(saved);  // x as the products read it: the dW_i's operand
    ctx->saved_data["x_type"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["x_sizes"] = x.sizes().vec();
    return ys;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto& xb = saved[0];
    const std::size_t k = saved.size() - 1;
    const int64_t in = xb.size(1), rows = xb.size(0);
    // Each dy_i in its result's type (autograd casts gradients to it); an output without one adds nothing.
    std::vector<Term> terms;
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < k; ++i) {
      if (!grads[i].defined()) continue;
      const auto& wb = saved[1 + i];
      const auto dy = matrix_rows(grads[i], wb.size(0));
      terms.push_back(Term{dy, bf16_operand(dy), wb, /*trans_b=*/false});
      which.push_back(i);
    }
    tensor_list out(1 + 2 * k + 1);  // dx, dW_1..dW_k, nothing for the bf16 copies and the type
    if (ctx->needs_input_grad(0) && !terms.empty()) {
      // dx = sum_i dy_i W_i, rounding each dy_i into its bf16 copy as it goes; in x's type.
      const auto x_type = static_cast<torch::ScalarType>(ctx->saved_data["x_type"].toInt());
      auto dx = torch::empty({rows, in}, xb.options().dtype(x_type));
      sum_of_products({Output{dx, terms}});
      out[0] = dx.view(ctx->saved_data["x_sizes"].toIntVector());
    } else {
      for (const auto& term : terms) term.round_all_of_a();  // dW's operands
    }
    // dW_i = dy_i^T x in fp32, blocks of its rows: [out_i, rows] x [rows, in]; every weight's blocks in
    // one parallel region.
    struct Task {
      std::size_t term;
      int64_t o0, o1;
    };
    std::vector<Task> tasks;
    std::vector<torch::Tensor> dws(terms.size());
    for (std::size_t t = 0; t < terms.size(); ++t) {
      if (!ctx->needs_input_grad(1 + which[t])) continue;
      const int64_t n_out = terms[t].b.size(0), block = column_block(n_out);
      dws[t] = torch::empty({n_out, in}, xb.options().dtype(torch::kFloat));
      for (int64_t o0 = 0; o0 < n_out; o0 += block) tasks.push_back({t, o0, std::min(n_out, o0 + block)});
    }
    at::parallel_for(0, static_cast<int64_t>(tasks.size()), 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const auto& task = tasks[b];
        const auto& dyb = terms[task.term].a_bf16;
        onednn_gemm_bf16_row_major(true, false, task.o1 - task.o0, in, rows, 1.0f, bits(dyb) + task.o0, dyb.stride(0),
                                   bits(xb), xb.stride(0), 0.0f, dws[task.term].data_ptr<float>() + task.o0 * in, in);
      }
    });
    for (std::size_t t = 0; t < terms.size(); ++t) out[1 + which[t]] = dws[t];
    return out;
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

std::vector<torch::Tensor> bf16_linears(const torch::Tensor& x, const std::vector<torch::Tensor>& ws, torch::ScalarType out) {
  RECORD_FUNCTION("qa::bf16_linear", std::vector<c10::IValue>());  // named in profiles
  TORCH_CHECK(out == torch::kFloat || out == torch::kBFloat16, "bf16_linear: the result is fp32 or bf16");
  TORCH_CHECK(!ws.empty(), "bf16_linear: no weights");
  // Autocast's cached copies: each weight is rounded once per autocast scope, whichever products read it.
  std::vector<torch::Tensor> wbs;
  for (const auto& w : ws) {
    TORCH_CHECK(w.dim() == 2 && w.size(1) == ws[0].size(1), "bf16_linear: the weights differ in their input size");
    wbs.push_back(at::autocast::cached_cast(torch::kBFloat16, w, c10::DeviceType::CPU).detach());
  }
  // As TensorLists: autograd takes a list of that type (and only that type) as its tensors, one input each.
  return Bf16LinearFunction::apply(x, torch::TensorList(ws), torch::TensorList(wbs), out);
}

torch::Tensor bf16_linear(const torch::Tensor& x, const torch::Tensor& w, torch::ScalarType out) {
  return bf16_linears(x, {w}, out)[0];
}

}  // namespace qa
