#include "qa/train/loss.hpp"

#include <gtest/gtest.h>

namespace qa {

TEST(Loss, SumsCrossEntropyOverRealLabelsOnly) {
  torch::manual_seed(0);
  auto logits = torch::randn({2, 3, 5});
  auto labels = torch::tensor({{1, 4, -100}, {0, -100, -100}}, torch::kLong);
  double expected = 0;
  auto logp = torch::log_softmax(logits, -1);
  for (auto [r, t] : {std::pair<int, int>{0, 0}, {0, 1}, {1, 0}}) {
    expected -= logp[r][t][labels[r][t].item<int64_t>()].item<double>();
  }
  EXPECT_NEAR(token_cross_entropy_sum(logits, labels).item<double>(), expected, 1e-5);
  // Whatever the logits at ignored positions, the loss does not change.
  auto changed = logits.clone();
  changed[0][2].fill_(100.0);
  changed[1][1].fill_(-50.0);
  EXPECT_NEAR(token_cross_entropy_sum(changed, labels).item<double>(), expected, 1e-5);
}

TEST(Loss, Bf16LogitsAreLiftedToFp32) {
  auto logits = torch::randn({1, 2, 7}).to(torch::kBFloat16);
  auto labels = torch::tensor({{3, 1}}, torch::kLong);
  EXPECT_EQ(token_cross_entropy_sum(logits, labels).scalar_type(), torch::kFloat);
}

}  // namespace qa
