// x W^T for fp32 training on the CPU, with the backward pass's two products (dx = dy W, dW = dy^T x)
// through oneDNN's sgemm (runtime/blas). On the Zen 4 CPU here oneDNN runs those ~10% faster than
// OpenBLAS's Cooperlake kernel at every projection shape of T5, lm_head included, while OpenBLAS runs
// the forward x W^T faster at half of them. oneDNN's x (W^T), with W^T copied first, beats both at every
// shape, but the copy pays only over many rows: so forward products of at least
// kOnednnTransposedForwardMinRows rows (the encoder's, the cross-attention's keys and values) take
// that, shorter ones stay LibTorch's (bench/RESULTS.md), unless LibTorch's BLAS runs below the CPU
// (runtime's blas_kernel_older_than_cpu: OpenBLAS on a generic kernel, 2-3x slower than oneDNN there,
// or the reference BLAS). Measured on AVX-512 CPUs only, so only used on those.
#pragma once

#include <torch/torch.h>

namespace qa {

// Forward products of at least this many rows (x's elements over `in`) go through oneDNN.
constexpr int64_t kOnednnTransposedForwardMinRows = 1024;

// True when onednn_linear handles these operands: onednn_linear_usable(), CPU, fp32 (CPU autocast
// off), x [..., in], w a contiguous [out, in] matrix, and a gradient wanted (grad mode on and x or w
// requiring one) unless the forward product is oneDNN's (onednn_forward_for_rows: then evaluation and
// generation take it too, and a block recomputed by activation checkpointing computes what its first
// pass did). Otherwise callers use torch::linear.
bool onednn_linear_applies(const torch::Tensor& x, const torch::Tensor& w);

// x W^T: [..., out]. The forward product is torch::linear's own (same bits) unless
// onednn_forward_for_rows(); differentiable in x and w.
torch::Tensor onednn_linear(const torch::Tensor& x, const torch::Tensor& w);

// Process-wide, on by default: off leaves every product to LibTorch (bench --cpu-gemm blas; tests
// that compare the two). Like the BLAS kernel itself, a property of the process, not of one model.
void set_onednn_linear_enabled(bool on);
bool onednn_linear_enabled();

// The setting above on, oneDNN's sgemm callable, an x86-64 CPU with AVX-512.
bool onednn_linear_usable();

// onednn_linear_usable() and LibTorch's BLAS below the CPU: every forward product through oneDNN too.
bool onednn_linear_forward();

// Whether a forward product of `rows` rows goes through oneDNN: onednn_linear_forward(), or usable and
// at least kOnednnTransposedForwardMinRows rows.
bool onednn_forward_for_rows(int64_t rows);

// Whether training on `device` in bf16 (autocast) or fp32 takes it: usable, the CPU, fp32. For logs
// and benchmark reports.
bool onednn_linear_in_training(const torch::Device& device, bool bf16);

}  // namespace qa
