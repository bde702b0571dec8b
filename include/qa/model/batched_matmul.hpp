// Products of matrix stacks on the CPU (attention's scores and weighted values), one whole matrix
// product per thread. LibTorch's CPU bmm multiplies the matrices of a stack one after another, each
// product split over all threads; at attention's sizes (256 x 64 x 256) the threads then spend much of
// each product handing work over, and a thread per product runs ~1.3x faster. Strided views (heads
// split out of [B, L, H * D]) go to the BLAS as they are, without the copies torch::matmul makes, and
// each product is one call of the BLAS's sgemm (the one LibTorch calls), without a tensor view and a
// dispatch per matrix.
#pragma once

#include <torch/torch.h>

namespace qa {

// True when batched_matmul handles a x b and is worth it: CPU, fp32 (CPU autocast off), 3 or 4
// dimensions with the same leading sizes (no broadcasting) and inner sizes that match; where the BLAS
// cannot be called directly (see below), also matrices of at least 32768 multiply-adds each (32 x 64 x
// 32 and up). Otherwise callers use torch::matmul.
bool batched_matmul_applies(const torch::Tensor& a, const torch::Tensor& b);

// Whether the process has the Fortran BLAS sgemm that LibTorch's CPU products call (libblas.so.3:
// OpenBLAS, the reference BLAS), which batched_matmul then calls once per matrix. Where it has none
// (MKL linked into LibTorch and hidden), each matrix goes through at::mm_out.
bool batched_matmul_calls_blas();

// a: [..., M, K], b: [..., K, N] -> [..., M, N]. Differentiable in a and b; the backward pass runs the
// same way. Each matrix is computed by one thread, so the bits do not depend on the number of threads.
// The result is contiguous, or, when out_layout (a tensor of the result's shape) is given, laid out
// like it: attention passes its queries, [B, H, Q, D] views of [B, Q, H * D], so that its output
// merges back into [B, Q, H * D] without a copy.
torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& out_layout = {});

}  // namespace qa
