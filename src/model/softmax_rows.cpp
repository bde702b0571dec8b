#include "qa/model/softmax_rows.hpp"

#include <limits>

#include "qa/model/vector_math.hpp"

namespace qa {
namespace {

constexpr int kLanes = 16;  // independent partial maxima and sums: lets the reductions vectorise

}  // namespace

QA_VECTOR_CLONES float row_max(const float* x, int64_t n) {
  float lane_max[kLanes];
  for (int l = 0; l < kLanes; ++l) lane_max[l] = -std::numeric_limits<float>::infinity();
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) lane_max[l] = x[j + l] > lane_max[l] ? x[j + l] : lane_max[l];
  }
  float m = -std::numeric_limits<float>::infinity();
  for (int l = 0; l < kLanes; ++l) m = lane_max[l] > m ? lane_max[l] : m;
  for (; j < n; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

QA_VECTOR_CLONES void softmax_row(float* x, int64_t n) {
  const float m = row_max(x, n);
  float lane_sum[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const float d = x[j + l] - m;
      const float e = vec::exp_clamped(d);
      x[j + l] = d < -87.0f ? 0.0f : e;
      lane_sum[l] += x[j + l];
    }
  }
  float sum = 0.0f;
  for (int l = 0; l < kLanes; ++l) sum += lane_sum[l];
  for (; j < n; ++j) {
    const float d = x[j] - m;
    const float e = vec::exp_clamped(d);
    x[j] = d < -87.0f ? 0.0f : e;
    sum += x[j];
  }
  const float scale = 1.0f / sum;
  for (j = 0; j < n; ++j) x[j] *= scale;
}

QA_VECTOR_CLONES void softmax_backward_row(const float* p, float* dp, int64_t n) {
  float lane_dot[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    for (int l = 0; l < kLanes; ++l) lane_dot[l] += p[j + l] * dp[j + l];
  }
  float dot = 0.0f;
  for (int l = 0; l < kLanes; ++l) dot += lane_dot[l];
  for (; j < n; ++j) dot += p[j] * dp[j];
  for (j = 0; j < n; ++j) dp[j] = p[j] * (dp[j] - dot);
}

}  // namespace qa
