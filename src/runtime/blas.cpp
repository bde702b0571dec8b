#include "qa/runtime/blas.hpp"

#include <dlfcn.h>

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

}  // namespace

bool blas_sgemm_available() { return blas_sgemm() != nullptr; }

void sgemm_row_major(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a, int lda,
                     const float* b, int ldb, float beta, float* c, int ldc) {
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the BLAS gets B before A, n before m.
  const char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
  blas_sgemm()(&tb, &ta, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
}

}  // namespace qa
