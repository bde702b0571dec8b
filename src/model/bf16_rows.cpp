#include "qa/model/bf16_rows.hpp"

#include "qa/model/vector_math.hpp"

namespace qa {

QA_VECTOR_CLONES void widen_bf16(const c10::BFloat16* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = vec::bits_to_float(static_cast<uint32_t>(in[i].x) << 16);
}

QA_VECTOR_CLONES void narrow_bf16(const float* in, c10::BFloat16* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t u = vec::float_to_bits(in[i]);
    const uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    out[i].x = static_cast<uint16_t>(in[i] != in[i] ? 0x7FC0u : rounded);
  }
}

}  // namespace qa
