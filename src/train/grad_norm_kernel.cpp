#include "qa/train/grad_norm_kernel.hpp"

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

#include "qa/model/vector_math.hpp"

namespace qa {
namespace {

constexpr int64_t kBlock = 1 << 16;  // elements per partial sum: the unit of work and of determinism
constexpr int kLanes = 16;           // independent partial sums: lets the loop vectorise

// A function of its own with the block passed by pointer and length: see adamw_kernel for why not
// inside the parallel_for lambda.
QA_VECTOR_CLONES double block_sum_of_squares(const float* __restrict x, int64_t n) {
  double lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      const double v = x[i + l];
      lane[l] += v * v;
    }
  }
  double sum = 0.0;
  for (int l = 0; l < kLanes; ++l) sum += lane[l];
  for (; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  return sum;
}

}  // namespace

double sum_of_squares_cpu(const float* x, int64_t n) {
  if (n <= 0) return 0.0;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<std::size_t>(blocks));
  at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t from = b * kBlock;
      partial[static_cast<std::size_t>(b)] = block_sum_of_squares(x + from, std::min(kBlock, n - from));
    }
  });
  double sum = 0.0;
  for (const double p : partial) sum += p;
  return sum;
}

}  // namespace qa
