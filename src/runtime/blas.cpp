#include "qa/runtime/blas.hpp"

#include <dlfcn.h>

#include <stdexcept>
#include <string>

namespace qa {
namespace {

// Declared as LibTorch declares it.
using Sgemm = void (*)(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                       const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                       const float* beta, float* c, const int* ldc);

Sgemm blas_sgemm() {
  static const Sgemm fn = reinterpret_cast<Sgemm>(::dlsym(RTLD_DEFAULT, "sgemm_"));
  return fn;
}

// dnnl_status_t dnnl_sgemm(char transa, char transb, dnnl_dim_t M, dnnl_dim_t N, dnnl_dim_t K, float alpha,
// const float* A, dnnl_dim_t lda, const float* B, dnnl_dim_t ldb, float beta, float* C, dnnl_dim_t ldc):
// row-major; dnnl_dim_t is int64_t, dnnl_status_t an int enum (0: success). Same in oneDNN 2.x and 3.x.
using DnnlSgemm = int (*)(char transa, char transb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

DnnlSgemm dnnl_sgemm() {
  static const DnnlSgemm fn = reinterpret_cast<DnnlSgemm>(::dlsym(RTLD_DEFAULT, "dnnl_sgemm"));
  return fn;
}

// dnnl_gemm_bf16bf16f32: as dnnl_sgemm, A and B of uint16_t (bf16 bits). Same in oneDNN 2.x and 3.x.
using DnnlGemmBf16 = int (*)(char transa, char transb, int64_t m, int64_t n, int64_t k, float alpha, const std::uint16_t* a,
                             int64_t lda, const std::uint16_t* b, int64_t ldb, float beta, float* c, int64_t ldc);

DnnlGemmBf16 dnnl_gemm_bf16() {
  static const DnnlGemmBf16 fn = reinterpret_cast<DnnlGemmBf16>(::dlsym(RTLD_DEFAULT, "dnnl_gemm_bf16bf16f32"));
  return fn;
}

}  // namespace

bool blas_sgemm_available() { return blas_sgemm() != nullptr; }

void sgemm_row_major(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
                     const float* b, int ldb, float beta, float* c, int ldc) {
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the BLAS gets B before A, n before m.
  const char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
  blas_sgemm()(&tb, &ta, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
}

bool onednn_sgemm_available() { return dnnl_sgemm() != nullptr; }

void onednn_sgemm_row_major(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                            int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const int status = dnnl_sgemm()(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (status != 0) throw std::runtime_error("oneDNN's dnnl_sgemm failed with status " + std::to_string(status));
}

bool onednn_gemm_bf16_available() {
  // Present is not enough: oneDNN reports "unimplemented" on a CPU without AVX-512.
  static const bool usable = [] {
    if (!dnnl_gemm_bf16()) return false;
    const std::uint16_t one = 0x3f80;  // 1.0 in bf16
    float c = 0.0f;
    return dnnl_gemm_bf16()('N', 'N', 1, 1, 1, 1.0f, &one, 1, &one, 1, 0.0f, &c, 1) == 0 && c == 1.0f;
  }();
  return usable;
}

void onednn_gemm_bf16_row_major(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                                const std::uint16_t* a, int64_t lda, const std::uint16_t* b, int64_t ldb, float beta,
                                float* c, int64_t ldc) {
  const int status = dnnl_gemm_bf16()(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (status != 0) throw std::runtime_error("oneDNN's dnnl_gemm_bf16bf16f32 failed with status " + std::to_string(status));
}

}  // namespace qa
