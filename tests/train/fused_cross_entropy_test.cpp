#include "qa/train/fused_cross_entropy.hpp"

#include <ATen/Parallel.h>

#include <cmath>

#include <gtest/gtest.h>

namespace qa {
namespace {

constexpr int64_t kIgnore = -100;

// LibTorch's composite in double: the reference value and gradient of loss * scale.
std::pair<double, torch::Tensor> reference(const torch::Tensor& logits, const torch::Tensor& labels, double scale) {
  auto x = logits.to(torch::kDouble).detach().requires_grad_(true);
  auto loss = torch::nn::functional::cross_entropy(
      x, labels, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnore).reduction(torch::kSum));
  (loss * scale).backward();
  return {loss.item<double>(), x.grad().to(torch::kFloat)};
}

std::pair<double, torch::Tensor> fused(const torch::Tensor& logits, const torch::Tensor& labels, double scale) {
  auto x = logits.detach().requires_grad_(true);
  auto loss = fused_cross_entropy_sum(x, labels, kIgnore);
  EXPECT_EQ(loss.scalar_type(), torch::kFloat);
  EXPECT_EQ(loss.dim(), 0);
  (loss * scale).backward();
  return {loss.item<double>(), x.grad()};
}

torch::Tensor labels_for(int64_t rows, int64_t vocab, const std::vector<int64_t>& ignored) {
  auto y = torch::randint(0, vocab, {rows}, torch::kLong);
  for (int64_t i : ignored) y[i] = kIgnore;
  return y;
}

}  // namespace

TEST(FusedCrossEntropy, MatchesLibTorchInValueAndGradient) {
  torch::manual_seed(0);
  // Vocabularies below, at and off the 16-lane width, and one of flan-t5's size.
  for (int64_t vocab : {1, 7, 16, 37, 1000, 32128}) {
    SCOPED_TRACE("vocab " + std::to_string(vocab));
    const int64_t rows = vocab > 1000 ? 6 : 23;
    auto logits = torch::randn({rows, vocab}) * 3.0;
    auto labels = labels_for(rows, vocab, {1, rows - 1});
    const auto [want, want_grad] = reference(logits, labels, 0.25);
    const auto [got, got_grad] = fused(logits, labels, 0.25);
    EXPECT_NEAR(got, want, 1e-5 * std::max(1.0, std::abs(want)));
    EXPECT_TRUE(torch::allclose(got_grad, want_grad, 1e-5, 1e-7)) << (got_grad - want_grad).abs().max();
    // Ignored rows get no gradient at all.
    EXPECT_EQ(got_grad[1].abs().max().item<float>(), 0.0f);
    EXPECT_EQ(got_grad[rows - 1].abs().max().item<float>(), 0.0f);
  }
}

TEST(FusedCrossEntropy, StaysFiniteForLogitsFarApart) {
  // Spreads that overflow exp() without the maximum's shift, and a label at the very unlikely end.
  auto logits = torch::tensor({{3000.0f, -3000.0f, 0.0f, 2999.0f}, {-1e4f, -1e4f + 1, -1e4f + 2, -1e4f + 3}});
  auto labels = torch::tensor({1, 0}, torch::kLong);
  const auto [want, want_grad] = reference(logits, labels, 1.0);
  const auto [got, got_grad] = fused(logits, labels, 1.0);
  EXPECT_TRUE(std::isfinite(got));
  EXPECT_NEAR(got, want, 1e-5 * std::abs(want));
  EXPECT_TRUE(torch::allclose(got_grad, want_grad, 1e-5, 1e-7)) << got_grad << want_grad;
}

TEST(FusedCrossEntropy, ReadsRowsWithAStrideAndTheirUnitStrideColumnsOnly) {
  torch::manual_seed(1);
  auto wide = torch::randn({5, 40});
  auto logits = wide.narrow(1, 3, 33);  // rows 40 apart
  auto labels = labels_for(5, 33, {2});
  ASSERT_TRUE(fused_cross_entropy_applies(logits, labels));
  const auto [want, want_grad] = reference(logits, labels, 1.0);
  const auto [got, got_grad] = fused(logits, labels, 1.0);
  EXPECT_NEAR(got, want, 1e-5 * std::abs(want));
  EXPECT_TRUE(torch::allclose(got_grad, want_grad, 1e-5, 1e-7));
  EXPECT_FALSE(fused_cross_entropy_applies(wide.t(), torch::zeros({40}, torch::kLong)));  // columns strided
}

TEST(FusedCrossEntropy, GivesTheSameBitsOnOneAndTwoThreads) {
  torch::manual_seed(2);
  auto logits = torch::randn({64, 515});
  auto labels = labels_for(64, 515, {0, 9});
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const auto [one, one_grad] = fused(logits, labels, 0.5);
  at::set_num_threads(2);
  const auto [two, two_grad] = fused(logits, labels, 0.5);
  at::set_num_threads(threads);
  EXPECT_EQ(one, two);
  EXPECT_TRUE(torch::equal(one_grad, two_grad));
}

TEST(FusedCrossEntropy, ALabelOutsideTheVocabularyIsAnErrorNamingIt) {
  auto logits = torch::randn({3, 10});
  for (int64_t bad : {10, -1}) {
    auto labels = torch::tensor({int64_t{2}, bad, kIgnore}, torch::kLong);
    try {
      fused_cross_entropy_sum(logits, labels, kIgnore);
      ADD_FAILURE() << "no error for label " << bad;
    } catch (const c10::Error& e) {
      const std::string what = e.what_without_backtrace();
      EXPECT_NE(what.find("label " + std::to_string(bad) + " at row 1"), std::string::npos) << what;
    }
  }
}

TEST(FusedCrossEntropy, ANaNInACountedRowMakesTheLossNaNAndInAnIgnoredRowDoesNot) {
  auto logits = torch::randn({2, 20});
  logits[1][5] = std::nanf("");
  EXPECT_TRUE(std::isnan(fused_cross_entropy_sum(logits, torch::tensor({3, 4}, torch::kLong), kIgnore).item<float>()));
  EXPECT_TRUE(std::isfinite(fused_cross_entropy_sum(logits, torch::tensor({int64_t{3}, kIgnore}, torch::kLong), kIgnore).item<float>()));
}

TEST(FusedCrossEntropy, AppliesToFp32CpuMatricesWithMatchingInt64Labels) {
  auto logits = torch::randn({4, 9});
  auto labels = torch::zeros({4}, torch::kLong);
  EXPECT_TRUE(fused_cross_entropy_applies(logits, labels));
  EXPECT_FALSE(fused_cross_entropy_applies(logits.to(torch::kBFloat16), labels));
  EXPECT_FALSE(fused_cross_entropy_applies(logits.to(torch::kDouble), labels));
  EXPECT_FALSE(fused_cross_entropy_applies(logits, labels.to(torch::kInt)));
  EXPECT_FALSE(fused_cross_entropy_applies(logits.view({2, 2, 9}), labels.view({2, 2})));
  EXPECT_FALSE(fused_cross_entropy_applies(logits, torch::zeros({3}, torch::kLong)));
  EXPECT_FALSE(fused_cross_entropy_applies(torch::randn({0, 9}), torch::zeros({0}, torch::kLong)));
}

}  // namespace qa
