// A tensor as a [rows, cols] matrix whose rows are contiguous (and back), for the products that hand row pointers
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

// A [rows, cols] matrix viewed with the leading dimensions of `like` (the other way round): [..., cols].
inline torch::Tensor with_leading_dims_of(const torch::Tensor& m, const torch::Tensor& like) {
  auto sizes = like.sizes().vec();
  sizes.back() = m.size(1);
  return m.view(sizes);
}

}  // namespace qa
