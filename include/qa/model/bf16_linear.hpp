// x W^T under CPU bf16 autocast, in place of autocast's linear: oneDNN's bf16 product
// (dnnl_gemm_bf16bf16f32, runtime/blas) on fixed blocks of rows and columns, one block per call, each
// thread on its own share of the blocks and then on a slower thread's (runtime/parallel_tasks).
// Autocast's path costs, around each product, a cast of x to bf16, a bf16 result the next
// element-wise pass widens again, and in the backward pass bf16 gradients of x and W that are widened
// to fp32 once more. Here x is rounded block by block, by the first product that reads the block, the
// result comes in the type its consumer computes in, and the gradients come in fp32 from the
// product's own fp32 sums (W's straight into its fp32 gradient; x's in x's type). The operands are
// rounded as autocast rounds them, so the products are autocast's up to the summation order; the
// results are rounded once fewer (bench/RESULTS.md, eleventh CPU round). Projections that read the same
// x (q, k and v; wi_0 and wi_1; cross-attention's k and v) go through one call, bf16_linears: x is
// rounded once, and dx is one fp32 sum of their products (oneDNN adding each into the block) rather
// than separate dx_i that autograd adds afterwards (thirteenth CPU round).
#pragma once

#include <torch/torch.h>

#include <vector>

namespace qa {

// True when bf16_linear handles these: onednn_linear_enabled() (the process-wide setting that also
// governs the fp32 products), an x86-64 CPU where oneDNN's bf16 product runs, CPU autocast on in bf16,
// x fp32 or bf16 [..., in] with in > 0 on the CPU, w an fp32 contiguous [out, in] matrix. With or
// without a gradient: evaluation, generation and a checkpointed block's two passes all compute the
// same bits. Otherwise callers use torch::linear.
bool bf16_linear_applies(const torch::Tensor& x, const torch::Tensor& w);

// x W^T: [..., out] of type `out` (fp32 or bf16), from x rounded to bf16 and autocast's cached bf16
// copy of w, summed in fp32. Differentiable in x (its gradient in x's type) and w (fp32).
torch::Tensor bf16_linear(const torch::Tensor& x, const torch::Tensor& w, torch::ScalarType out);

// x W_i^T for each weight (all [out_i, in], each as bf16_linear_applies(x, w_i) requires), in the same
// type `out`. Differentiable in x (dx = sum_i dy_i W_i, summed in fp32, in x's type) and each w_i;
// an output whose gradient is undefined adds nothing.
std::vector<torch::Tensor> bf16_linears(const torch::Tensor& x, const std::vector<torch::Tensor>& ws, torch::ScalarType out);

// Whether bf16 training on `device` takes it (the CPU, the setting on, oneDNN's bf16 product running
// here). For logs and benchmark reports.
bool bf16_linear_in_training(const torch::Device& device);

// Rows of x per product call where there are at least two such blocks, a result's columns split too
// (multiples of kBf16LinearSplitColumns) where its row blocks are fewer than 16; fewer rows (decoding
// steps) are split over the result's columns alone, kBf16LinearColumnBlock at a time or more. Fixed
// sizes: which rows and columns a call sums does not depend on the thread count, nor then do the
// bits. The fp32 block of a bf16 result stays in the core's cache until it is rounded.
constexpr int64_t kBf16LinearRowBlock = 128;
constexpr int64_t kBf16LinearColumnBlock = 64;
constexpr int64_t kBf16LinearSplitColumns = 128;

}  // namespace qa
