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

// dnnl_status_t dnnl_gemm_bf16bf16f32(char transa, char transb, dnnl_dim_t M, dnnl_dim_t N, dnnl_dim_t K,
// float alpha, const bfloat16_t* A, dnnl_dim_t lda, const bfloat16_t* B, dnnl_dim_t ldb, float beta,
// float* C, dnnl_dim_t ldc): row-major; dnnl_dim_t is int64_t, dnnl_status_t an int enum (0: success).
using GemmBf16 = int (*)(char transa, char transb, int64_t m, int64_t n, int64_t k, float alpha, const uint16_t* a,
                         int64_t lda, const uint16_t* b, int64_t ldb, float beta, float* c, int64_t ldc);

GemmBf16 dnnl_gemm_bf16() {
  static const GemmBf16 fn = reinterpret_cast<GemmBf16>(::dlsym(RTLD_DEFAULT, "dnnl_gemm_bf16bf16f32"));
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

bool bf16_gemm_available() { return dnnl_gemm_bf16() != nullptr; }

void gemm_bf16_row_major(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const uint16_t* a, int lda,
                         const uint16_t* b, int ldb, float beta, float* c, int ldc) {
  const int status = dnnl_gemm_bf16()(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  if (status != 0) throw std::runtime_error("oneDNN's dnnl_gemm_bf16bf16f32 failed with status " + std::to_string(status));
}

}  // namespace qa
