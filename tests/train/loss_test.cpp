#include "qa/train/loss.hpp"

#include <cmath>

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

TEST(AnswerPointerLoss, IsMinusLogOfTheSoftmaxMassOnTheAnswerTokens) {
  torch::manual_seed(1);
  const int64_t d = 8;
  auto direction = answer_pointer_direction(d);
  EXPECT_NEAR(direction.norm().item<double>(), 1.0, 1e-6);
  EXPECT_TRUE(torch::equal(direction, answer_pointer_direction(d)));  // the same on every call (resume)
  auto states = torch::randn({3, 5, d});
  // Row 0: answer ids {7, 9} at source positions 2 and 3; row 1: its answer id 9 is not in the
  // source; row 2: answer id 4 at position 1 and at position 4, which is padding.
  auto ids = torch::tensor({{5, 6, 7, 9, 1}, {5, 6, 7, 8, 1}, {6, 4, 3, 1, 4}}, torch::kLong);
  auto mask = torch::tensor({{1, 1, 1, 1, 1}, {1, 1, 1, 1, 1}, {1, 1, 1, 1, 0}}, torch::kLong);
  auto labels = torch::tensor({{7, 9, 1}, {9, 1, -100}, {4, 1, -100}}, torch::kLong);
  auto scores = torch::matmul(states, direction);
  auto p0 = torch::softmax(scores[0], 0), p2 = torch::softmax(scores[2].slice(0, 0, 4), 0);
  // EOS (id 1) is in every source and every target, and counts for no row.
  const double expected = -std::log((p0[2] + p0[3]).item<double>()) - std::log(p2[1].item<double>());
  auto loss = answer_pointer_loss_sum(states, ids, mask, labels, direction, /*pad_id=*/0, /*eos_id=*/1);
  EXPECT_EQ(loss.scalar_type(), torch::kFloat);
  EXPECT_NEAR(loss.item<double>(), expected, 1e-5);
}

TEST(AnswerPointerLoss, RowsWithoutTheAnswerInTheSourceAddNothingAndStayFinite) {
  auto states = torch::randn({1, 4, 6}, torch::requires_grad());
  auto ids = torch::tensor({{3, 4, 5, 1}}, torch::kLong);
  auto mask = torch::ones({1, 4}, torch::kLong);
  auto labels = torch::tensor({{8, 1}}, torch::kLong);
  auto loss = answer_pointer_loss_sum(states, ids, mask, labels, answer_pointer_direction(6), 0, 1);
  EXPECT_EQ(loss.item<double>(), 0.0);
  loss.backward();
  EXPECT_TRUE(torch::isfinite(states.grad()).all().item<bool>());
  EXPECT_EQ(states.grad().abs().sum().item<double>(), 0.0);
}

}  // namespace qa
