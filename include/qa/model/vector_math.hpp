// Element-wise math for qa-train's own CPU kernels (the fused gated GELU, the fused attention's
// softmax): the loops are only fast when vectorised, and the build targets plain x86-64.
#pragma once

#include <cstdint>
#include <cstring>

// Each loop marked QA_VECTOR_CLONES is compiled for AVX-512 (with FMA), AVX2 and plain x86-64 and picked
// at load time by the CPU's features. Feature clones, not "arch=" ones: those test the CPU model, and
// an AMD EPYC with AVX-512 got the plain loop (2.3x slower than LibTorch's kernels instead of 2.9x
// faster). Units using these need -fno-trapping-math, or the comparisons below are not if-converted.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define QA_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define QA_VECTOR_CLONES
#endif
// The helpers must be inlined into each clone (a call in the loop stops vectorisation).
#define QA_INLINE inline __attribute__((always_inline))

namespace qa::vec {

QA_INLINE float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

QA_INLINE uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// e^x for x in [-87, 87] (clamped there): 2^k * e^r with |r| <= ln2 / 2 and a degree-6 Taylor
// polynomial (relative error < 2e-7), branch-free so that the loops vectorise.
QA_INLINE float exp_clamped(float x) {
  x = x < -87.0f ? -87.0f : x;  // not std::min/max: those are not inlined into the clones
  x = x > 87.0f ? 87.0f : x;
  const float k = (x * 1.4426950408889634f + 12582912.0f) - 12582912.0f;  // round to nearest
  const float r = (x - k * 0.693145751953125f) - k * 1.428606765330187e-06f;
  float p = 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * bits_to_float(static_cast<uint32_t>(static_cast<int32_t>(k) + 127) << 23);
}

}  // namespace qa::vec
