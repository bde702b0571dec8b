#include "qa/train/train_step.hpp"

#include <cmath>

#include <gtest/gtest.h>

#include "../support/tiny_model.hpp"
#include "qa/data/collate.hpp"
#include "qa/train/loss.hpp"

namespace qa {
namespace {

std::vector<torch::Tensor> grads_of(T5Model& m) {
  std::vector<torch::Tensor> g;
  for (const auto& p : m->parameters()) g.push_back(p.grad().clone());
  return g;
}

}  // namespace

// One batch of 6 versus the same examples as micro-batches of 1, 2 and 3 (different target lengths):
// the token-normalised gradients must agree, which a per-micro-batch mean would not give.
TEST(GradientAccumulation, MicroBatchesGiveTheGradientOfTheWholeBatch) {
  EncodedDataset d;
  torch::manual_seed(3);
  for (int i = 0; i < 6; ++i) {
    EncodedExample e;
    for (int j = 0; j < 5 + i; ++j) e.source.push_back(3 + (i * 7 + j) % 30);
    e.source.push_back(1);
    for (int j = 0; j < 1 + (i * 5) % 4; ++j) e.target.push_back(3 + (i + j * 3) % 30);
    e.target.push_back(1);
    d.items.push_back(e);
  }
  T5Model m(test::tiny_t5_config(40));
  m->init_weights(11);
  m->train();
  const torch::Device cpu(torch::kCPU);
  std::vector<std::size_t> all = {0, 1, 2, 3, 4, 5};
  auto whole = accumulate_gradients(m, d, {&all}, cpu, false);
  auto g_whole = grads_of(m);
  m->zero_grad();
  std::vector<std::size_t> a = {0}, b = {1, 2}, c = {3, 4, 5};
  auto split = accumulate_gradients(m, d, {&a, &b, &c}, cpu, false);
  auto g_split = grads_of(m);
  EXPECT_EQ(whole.target_tokens, split.target_tokens);
  EXPECT_NEAR(whole.loss_sum.item<double>(), split.loss_sum.item<double>(), 1e-4);
  double worst = 0;
  for (std::size_t i = 0; i < g_whole.size(); ++i) {
    worst = std::max(worst, ((g_whole[i] - g_split[i]).norm() / (g_whole[i].norm() + 1e-12)).item<double>());
  }
  EXPECT_LT(worst, 1e-5);
  // A naive mean per micro-batch would differ: make sure the test can tell.
  m->zero_grad();
  for (const auto* part : {&a, &b, &c}) accumulate_gradients(m, d, {part}, cpu, false);
  auto g_naive = grads_of(m);
  double naive = 0;
  for (std::size_t i = 0; i < g_whole.size(); ++i) {
    naive = std::max(naive, ((g_whole[i] - g_naive[i]).norm() / (g_whole[i].norm() + 1e-12)).item<double>());
  }
  EXPECT_GT(naive, 1e-2);
}

// With an answer-pointer weight the gradient is that of (cross-entropy + weight x pointer loss) over
// the target tokens, while the reported loss stays the cross-entropy.
TEST(GradientAccumulation, AnswerPointerWeightAddsTheAuxiliaryLossToTheGradientOnly) {
  EncodedDataset d;
  for (int i = 0; i < 4; ++i) {
    EncodedExample e;
    for (int j = 0; j < 6 + i; ++j) e.source.push_back(3 + (i * 5 + j) % 30);
    e.source.push_back(1);
    e.target = {e.source[2 + i % 3], e.source[3 + i % 3], 1};  // an extractive answer
    d.items.push_back(e);
  }
  T5Model m(test::tiny_t5_config(40));
  m->init_weights(5);
  const torch::Device cpu(torch::kCPU);
  std::vector<std::size_t> all = {0, 1, 2, 3};
  auto with = accumulate_gradients(m, d, {&all}, cpu, false, 0, nullptr, 0.5);
  auto g_with = grads_of(m);

  m->zero_grad();
  Batch b = collate(d, all, 0, 0);
  auto states = m->encode(b.input_ids, b.attention_mask);
  auto ce = token_cross_entropy_sum(m->decode(b.decoder_input_ids, states, b.attention_mask), b.labels);
  auto pointer = answer_pointer_loss_sum(states, b.input_ids, b.attention_mask, b.labels,
                                         answer_pointer_direction(m->config().d_model), 0, 1);
  ASSERT_GT(pointer.item<double>(), 0.1);
  ((ce + 0.5 * pointer) / static_cast<double>(b.target_tokens)).backward();
  auto g_expected = grads_of(m);
  EXPECT_NEAR(with.loss_sum.item<double>(), ce.item<double>(), 1e-4);

  m->zero_grad();
  accumulate_gradients(m, d, {&all}, cpu, false);
  auto g_plain = grads_of(m);
  double worst = 0, apart = 0;
  for (std::size_t i = 0; i < g_with.size(); ++i) {
    const double scale = g_expected[i].norm().item<double>() + 1e-12;
    worst = std::max(worst, (g_with[i] - g_expected[i]).norm().item<double>() / scale);
    apart = std::max(apart, (g_with[i] - g_plain[i]).norm().item<double>() / scale);
  }
  EXPECT_LT(worst, 1e-5);
  EXPECT_GT(apart, 1e-2);  // the auxiliary loss did change the gradient

  // Under bf16 autocast (the demo's precision) the pointer scores stay fp32 and the step is finite.
  m->zero_grad();
  auto bf16 = accumulate_gradients(m, d, {&all}, cpu, true, 0, nullptr, 0.5);
  EXPECT_TRUE(std::isfinite(bf16.loss_sum.item<double>()));
  for (const auto& g : grads_of(m)) EXPECT_TRUE(torch::isfinite(g).all().item<bool>());
}

}  // namespace qa
