#include "qa/train/train_step.hpp"

#include <gtest/gtest.h>

#include "../support/tiny_model.hpp"

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

}  // namespace qa
