// The Fortran BLAS sgemm that LibTorch's own CPU products call (libblas.so.3: OpenBLAS, or the
// reference BLAS), for qa-train's kernels that run one whole matrix product per thread: a direct call
// costs no tensor views, selects or dispatch (~10 us each through at::mm_out, as long as a 64 x 32 x 64
// product takes). Found in the process at first use rather than linked: it is LibTorch's dependency,
// not ours. Called inside a parallel region, OpenBLAS and oneDNN run single-threaded.
#pragma once

#include <cstdint>

namespace qa {

// Whether the process has it. Where it has none (a LibTorch with MKL linked in and hidden), callers
// take LibTorch's operators instead.
bool blas_sgemm_available();

// Row-major C = alpha op(A) op(B) + beta C, with op(A) m x k and op(B) k x n; op transposes where
// trans_a / trans_b is set (A is then stored k x m). lda, ldb, ldc: row strides in elements. Only
// when blas_sgemm_available().
void sgemm_row_major(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
                     const float* b, int ldb, float beta, float* c, int ldc);

// oneDNN's fp32 product (dnnl_sgemm of the libdnnl that Debian's LibTorch links; absent where a
// LibTorch links oneDNN statically and hides it). On the Zen 4 CPU here it runs the backward pass's
// products of T5's projections ~10% faster than OpenBLAS's Cooperlake kernel, and x W^T slower at half
// of the shapes (bench/RESULTS.md). Threads: OpenMP's, like LibTorch's.
bool onednn_sgemm_available();

// As sgemm_row_major, through dnnl_sgemm (64-bit sizes). Only when onednn_sgemm_available(); throws
// std::runtime_error if oneDNN reports a failure.
void onednn_sgemm_row_major(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                            int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// Whether oneDNN's bf16 product (dnnl_gemm_bf16bf16f32: bf16 operands, fp32 accumulation and result)
// is there and runs on this CPU (it needs AVX-512; checked once, with a 1 x 1 x 1 product).
bool onednn_gemm_bf16_available();

// As onednn_sgemm_row_major with bf16 operands (their bits, as c10::BFloat16 stores them) and an fp32
// C. Only when onednn_gemm_bf16_available(); throws std::runtime_error if oneDNN reports a failure.
void onednn_gemm_bf16_row_major(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                                const std::uint16_t* a, int64_t lda, const std::uint16_t* b, int64_t ldb, float beta,
                                float* c, int64_t ldc);

}  // namespace qa
