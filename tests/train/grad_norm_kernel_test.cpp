#include "qa/train/grad_norm_kernel.hpp"

#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace qa {
namespace {

std::vector<float> random_values(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<std::size_t>(n));
  for (auto& v : x) v = normal(rng);
  return x;
}

double sum_with_threads(const std::vector<float>& x, int threads) {
  const int before = at::get_num_threads();
  at::set_num_threads(threads);
  const double s = sum_of_squares_cpu(x.data(), static_cast<int64_t>(x.size()));
  at::set_num_threads(before);
  return s;
}

}  // namespace

// Several blocks (65,536 elements each) and a tail that fills no lane group: against a plain sum in
// long double, to double precision.
TEST(GradNormKernel, MatchesAPlainSumOverBlocksAndTail) {
  for (const int64_t n : {int64_t{1}, int64_t{15}, int64_t{17}, int64_t{65536}, int64_t{200003}}) {
    const auto x = random_values(n, static_cast<unsigned>(n));
    long double expected = 0;
    for (const float v : x) expected += static_cast<long double>(v) * v;
    const double got = sum_of_squares_cpu(x.data(), n);
    EXPECT_NEAR(got, static_cast<double>(expected), 1e-12 * static_cast<double>(expected)) << n;
  }
  EXPECT_EQ(sum_of_squares_cpu(nullptr, 0), 0.0);
}

// The blocks are fixed and summed in order: one thread and two give the same bits.
TEST(GradNormKernel, BitsDoNotDependOnTheThreadCount) {
  const auto x = random_values(300001, 7);
  const double one = sum_with_threads(x, 1), two = sum_with_threads(x, 2);
  EXPECT_EQ(one, two);
}

// Clipping skips a step whose norm is not finite: a NaN or an infinity anywhere must reach the sum.
TEST(GradNormKernel, NanAndInfinityReachTheSum) {
  auto x = random_values(100000, 11);
  x[99999] = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(std::isinf(sum_of_squares_cpu(x.data(), 100000)));
  x[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(sum_of_squares_cpu(x.data(), 100000)));
}

// Float's largest values square beyond float but not beyond double.
TEST(GradNormKernel, LargeValuesDoNotOverflow) {
  const std::vector<float> x(40, 1e30f);
  const double v = x[0], expected = 40 * v * v;  // ~4e61; 1e30f squared overflows float
  EXPECT_NEAR(sum_of_squares_cpu(x.data(), 40), expected, 1e-14 * expected);
}

}  // namespace qa
