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

// oneDNN's bf16 x bf16 -> fp32 product (dnnl_gemm_bf16bf16f32 of the libdnnl.so.2 LibTorch links), the
// bf16 counterpart of the above with the same arguments (operands as their bf16 bits): what LibTorch's
// CPU bf16 products run on. Whether the process has it:
bool bf16_gemm_available();

// As sgemm_row_major, through oneDNN; only when bf16_gemm_available(). Throws std::runtime_error when
// oneDNN refuses the arguments.
void gemm_bf16_row_major(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const uint16_t* a, int lda,
                         const uint16_t* b, int ldb, float beta, float* c, int ldc);

}  // namespace qa
