#include "qa/model/bf16_linear.hpp"

#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "qa/model/bf16_rows.hpp"
#include "qa/model/matrix_rows.hpp"
#include "qa/model/onednn_linear.hpp"
#include "qa/runtime/blas.hpp"
#include "qa/runtime/parallel_tasks.hpp"
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

int64_t blocks_of(int64_t n, int64_t block) { return (n + block - 1) / block; }

// Rows [r0, r1) of fp32 a rounded into bf16 a_bf16.
void round_rows(const torch::Tensor& a, const torch::Tensor& a_bf16, int64_t r0, int64_t r1) {
  const int64_t k = a.size(1);
  for (int64_t r = r0; r < r1; ++r) narrow_bf16(a.data_ptr<float>() + r * a.stride(0), bf16_data(a_bf16) + r * a_bf16.stride(0), k);
}

// The process-wide setting on and oneDNN's bf16 product running here.
bool usable() { return onednn_linear_enabled() && onednn_gemm_bf16_available(); }

// One product A op(B) of a sum: A [rows, k] whose bf16 values are in a_bf16 (a itself, or fp32 a
// rounded into it first), B bf16 contiguous ([n, k] when trans_b, else [k, n]).
struct Term {
  torch::Tensor a, a_bf16, b;
  bool trans_b;
  bool needs_rounding() const { return a.scalar_type() == torch::kFloat; }
};

// Every fp32 A of these terms rounded into its bf16 copy, in blocks of rows over the threads.
void round_operands(const std::vector<const Term*>& terms) {
  std::vector<std::pair<const Term*, int64_t>> tasks;  // (term, first row)
  for (const Term* t : terms) {
    if (!t->needs_rounding()) continue;
    for (int64_t r0 = 0; r0 < t->a.size(0); r0 += kBf16LinearRowBlock) tasks.emplace_back(t, r0);
  }
  parallel_tasks(static_cast<int64_t>(tasks.size()), [&](TaskQueue& q) {
    for (int64_t i; q.next(i);) {
      const auto& [t, r0] = tasks[static_cast<std::size_t>(i)];
      round_rows(t->a, t->a_bf16, r0, std::min(t->a.size(0), r0 + kBf16LinearRowBlock));
    }
  });
}

// A [rows, n] result, fp32 or bf16, contiguous: the sum of its terms' products, summed in fp32
// (oneDNN's beta = 1 adds each product after the first into the block; a bf16 C is rounded once, from
// an fp32 block).
struct Output {
  torch::Tensor c;
  std::vector<Term> terms;
};

// How a [rows, n] result is cut into blocks, one product call each. Blocks of 128 rows where there
// are at least two; a result's columns split too where its rows give fewer than 16 blocks (the
// decoder's 256 rows: lm_head 2 x 8 blocks, q/k/v 2 x 3), so that more than two threads have work and
// threads of unequal speed can even out. Fewer rows (decoder steps, short batches): blocks of the
// columns alone. From the shape alone, so that the blocks, and with them the bits, do not depend on
// the thread count.
struct Tiling {
  int64_t row_block, col_block;
};
Tiling tiling(int64_t rows, int64_t n) {
  if (rows < 2 * kBf16LinearRowBlock) return {std::max<int64_t>(rows, 1), column_block(n)};
  const int64_t col_blocks = blocks_of(16, blocks_of(rows, kBf16LinearRowBlock));
  if (col_blocks == 1) return {kBf16LinearRowBlock, n};
  return {kBf16LinearRowBlock, blocks_of(blocks_of(n, col_blocks), kBf16LinearSplitColumns) * kBf16LinearSplitColumns};
}

// The bf16 copies that one sum_of_products call reads, each block of rows rounded from its fp32 A by
// the first task that needs it, while a task needing it at the same time waits for it: no separate
// pass over A (and no parallel region of its own), and the block is still in that core's cache when
// the first product reads it.
class LazyRounding {
 public:
  LazyRounding(const std::vector<Output>& outputs, int64_t row_block) : row_block_(row_block) {
    for (const auto& o : outputs) {
      std::vector<int> of_output;
      for (const auto& term : o.terms) {
        if (term.needs_rounding() && source_of(term.a_bf16) < 0) sources_.push_back(Source{term.a, term.a_bf16, {}});
        of_output.push_back(source_of(term.a_bf16));  // a bf16 A may be the copy of another term's fp32 one
      }
      source_index_.push_back(std::move(of_output));
    }
    for (auto& src : sources_) {
      src.state = std::make_unique<std::atomic<std::uint8_t>[]>(static_cast<std::size_t>(blocks_of(src.a.size(0), row_block_)));
    }
  }

  // Rows [r0, r0 + row_block) of the A that term `t` of output `o` reads rounded, if it has an fp32 source.
  void ensure(std::size_t o, std::size_t t, int64_t r0) {
    const int i = source_index_[o][t];
    if (i < 0) return;
    auto& src = sources_[static_cast<std::size_t>(i)];
    auto& state = src.state[static_cast<std::size_t>(r0 / row_block_)];
    if (state.load(std::memory_order_acquire) == kDone) return;
    std::uint8_t expected = kNotStarted;
    if (state.compare_exchange_strong(expected, kRounding, std::memory_order_acq_rel)) {
      round_rows(src.a, src.a_bf16, r0, std::min(src.a.size(0), r0 + row_block_));
      state.store(kDone, std::memory_order_release);
      return;
    }
    while (state.load(std::memory_order_acquire) != kDone) std::this_thread::yield();
  }

 private:
  static constexpr std::uint8_t kNotStarted = 0, kRounding = 1, kDone = 2;
  struct Source {
    torch::Tensor a, a_bf16;
    std::unique_ptr<std::atomic<std::uint8_t>[]> state;  // per block of rows
  };
  int source_of(const torch::Tensor& a_bf16) const {
    for (std::size_t i = 0; i < sources_.size(); ++i) {
      if (sources_[i].a_bf16.data_ptr() == a_bf16.data_ptr()) return static_cast<int>(i);
    }
    return -1;
  }
  int64_t row_block_;
  std::vector<Source> sources_;
  std::vector<std::vector<int>> source_index_;  // [output][term] -> source, or -1
};

// The outputs, all of the same rows: every output's blocks in one parallel region (parallel_tasks:
// each thread's own share, then a slower thread's), each block one product call per term after its
// rows of A are rounded.
void sum_of_products(const std::vector<Output>& outputs) {
  const int64_t rows = outputs[0].c.size(0);
  const int64_t row_block = tiling(rows, outputs[0].c.size(1)).row_block;  // the same for every n
  LazyRounding rounding(outputs, row_block);
  struct Block {
    std::size_t o;
    int64_t r0, m, c0, cols;
  };
  // In order of rows: the products that read a block of A follow its rounding while it is in cache.
  std::vector<Block> blocks;
  for (int64_t r0 = 0; r0 < rows; r0 += row_block) {
    for (std::size_t i = 0; i < outputs.size(); ++i) {
      const int64_t n = outputs[i].c.size(1), col_block = tiling(rows, n).col_block;
      for (int64_t c0 = 0; c0 < n; c0 += col_block) {
        blocks.push_back({i, r0, std::min(row_block, rows - r0), c0, std::min(col_block, n - c0)});
      }
    }
  }
  parallel_tasks(static_cast<int64_t>(blocks.size()), [&](TaskQueue& q) {
    std::vector<float> scratch;  // a bf16 result's fp32 block
    for (int64_t i; q.next(i);) {
      const auto& [oi, r0, m, c0, cols] = blocks[static_cast<std::size_t>(i)];
      const Output& o = outputs[oi];
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
        rounding.ensure(oi, t, r0);
        const int64_t k = term.a.size(1), lda = term.a_bf16.stride(0), ldb = term.b.stride(0);
        const std::uint16_t* b = term.trans_b ? bits(term.b) + c0 * ldb : bits(term.b) + c0;
        onednn_gemm_bf16_row_major(false, term.trans_b, m, cols, k, 1.0f, bits(term.a_bf16) + r0 * lda, lda, b, ldb,
                                   t == 0 ? 0.0f : 1.0f, out, ldc);
      }
      if (c_bf16) {
        for (int64_t r = 0; r < m; ++r) narrow_bf16(scratch.data() + r * cols, bf16_data(o.c) + (r0 + r) * n + c0, cols);
      }
    }
  });
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
      // x is rounded once, for the first product that reads it; the others read xb as it is.
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
      // dx = sum_i dy_i W_i (each dy_i rounded into its bf16 copy first), in x's type.
      const auto x_type = static_cast<torch::ScalarType>(ctx->saved_data["x_type"].toInt());
      auto dx = torch::empty({rows, in}, xb.options().dtype(x_type));
      sum_of_products({Output{dx, terms}});
      out[0] = dx.view(ctx->saved_data["x_sizes"].toIntVector());
    } else {
      std::vector<const Term*> operands;  // dW's
      for (const auto& term : terms) operands.push_back(&term);
      round_operands(operands);
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
    parallel_tasks(static_cast<int64_t>(tasks.size()), [&](TaskQueue& q) {
      for (int64_t b; q.next(b);) {
        const auto& task = tasks[static_cast<std::size_t>(b)];
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
