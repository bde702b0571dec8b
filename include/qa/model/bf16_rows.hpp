// bf16 <-> fp32 conversion of contiguous runs, vectorised for the CPU: qa-train's own bf16 kernels
// (model/fused_gated_gelu, model/bias_softmax, model/fused_attention) compute in fp32 on rows or blocks
// they widen and narrow.
#pragma once

#include <c10/util/BFloat16.h>

#include <cstdint>

namespace qa {

// out[i] = in[i] exactly (bf16 is fp32's upper half).
void widen_bf16(const c10::BFloat16* in, float* out, int64_t n);

// Round to nearest even, as LibTorch's conversion does; NaN stays NaN.
void narrow_bf16(const float* in, c10::BFloat16* out, int64_t n);

}  // namespace qa
