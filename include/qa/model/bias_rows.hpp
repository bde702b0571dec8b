// Rows of an attention bias that broadcasts: [B or 1, H or 1, Q or 1, K], read through its strides
// by qa-train's own attention kernels (model/fused_attention, model/bias_softmax).
#pragma once

#include <torch/torch.h>

namespace qa {

// The bias with its keys contiguous (a copy only where they are not), as BiasRows reads it.
inline torch::Tensor with_contiguous_keys(const torch::Tensor& bias) {
  return bias.size(3) > 1 && bias.stride(3) != 1 ? bias.contiguous() : bias;
}

// The bias's row for query i of matrix (b, h), through its strides, 0 where it broadcasts. The last
// stride must be 1 (with_contiguous_keys); undefined (default) gives null rows.
struct BiasRows {
  const float* data = nullptr;
  int64_t sb = 0, sh = 0, sq = 0;

  BiasRows() = default;
  explicit BiasRows(const torch::Tensor& t) : data(t.data_ptr<float>()) {
    sb = t.size(0) == 1 ? 0 : t.stride(0);
    sh = t.size(1) == 1 ? 0 : t.stride(1);
    sq = t.size(2) == 1 ? 0 : t.stride(2);
  }
  const float* row(int64_t b, int64_t h, int64_t i) const { return data ? data + b * sb + h * sh + i * sq : nullptr; }
};

}  // namespace qa
