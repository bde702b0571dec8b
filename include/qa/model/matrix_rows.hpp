// A tensor as a [rows, cols] matrix whose rows are contiguous, for the products that hand row pointers
// and a row stride to a BLAS (model/onednn_linear, model/bf16_linear).
#pragma once

#include <torch/torch.h>

namespace qa {

// A view where t's layout allows (its last dimension contiguous, the others collapsing into rows),
// else a contiguous copy.
inline torch::Tensor matrix_rows(const torch::Tensor& t, int64_t cols) {
  auto m = t.reshape({-1, cols});
  if (m.stride(1) != 1 || m.stride(0) < cols) m = m.contiguous();
  return m;
}

}  // namespace qa
