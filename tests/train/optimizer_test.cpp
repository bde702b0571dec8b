#include "qa/train/optimizer.hpp"

#include <gtest/gtest.h>

#include "../support/tiny_model.hpp"

namespace qa {
namespace {

// A few forward/backward passes of a fixed batch, so that gradients are realistic.
void backward_on_batch(T5Model& m) {
  auto ids = torch::tensor({{5, 6, 7, 8, 1}, {9, 10, 1, 0, 0}}, torch::kLong);
  auto mask = (ids != 0).to(torch::kLong);
  auto dec = torch::tensor({{0, 11, 12}, {0, 13, 14}}, torch::kLong);
  auto labels = torch::tensor({{11, 12, 1}, {13, 14, 1}}, torch::kLong);
  auto logits = m->forward(ids, mask, dec);
  torch::nn::functional::cross_entropy(logits.reshape({-1, logits.size(-1)}), labels.reshape({-1})).backward();
}

}  // namespace

// The flat-buffer optimizer must do exactly what LibTorch's AdamW does (per-parameter groups with
// lr x multiplier and weight decay off for RMSNorm weights), including gradient clipping, step after step.
TEST(Optimizer, MatchesTorchAdamWStepByStep) {
  for (const char* scaling : {"none", "param_rms"}) {
    SCOPED_TRACE(scaling);
    TrainSection t;
    t.weight_decay = 0.1;
    t.lr_scaling = scaling;
    T5Model ours(test::tiny_t5_config(30)), ref(test::tiny_t5_config(30));
    ours->init_weights(4);
    ref->init_weights(4);
    Optimizer opt(ours, t);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    std::size_t i = 0;
    for (const auto& p : ref->named_parameters()) {
      const bool norm = p.key().find("layer_norm") != std::string::npos;
      groups.emplace_back(std::vector<torch::Tensor>{p.value()},
                          std::make_unique<torch::optim::AdamWOptions>(
                              torch::optim::AdamWOptions(0.01 * opt.multipliers()[i++]).weight_decay(norm ? 0.0 : 0.1)));
    }
    torch::optim::AdamW torch_adamw(std::move(groups), torch::optim::AdamWOptions(0.01));
    for (int step = 0; step < 4; ++step) {
      opt.zero_grad();
      torch_adamw.zero_grad();
      backward_on_batch(ours);
      backward_on_batch(ref);
      const double norm = opt.clip_grad_norm(0.5);
      const double ref_norm = torch::nn::utils::clip_grad_norm_(ref->parameters(), 0.5);
      EXPECT_NEAR(norm, ref_norm, 1e-4 * ref_norm);
      opt.step(0.01);
      torch_adamw.step();
    }
    auto theirs = ref->named_parameters();
    for (const auto& p : ours->named_parameters()) {
      EXPECT_TRUE(torch::allclose(p.value(), theirs[p.key()], 1e-5, 1e-6)) << p.key();
    }
  }
}

TEST(Optimizer, ParamRmsGivesEmbeddingsALargerStepThanProjections) {
  T5Model m(test::tiny_t5_config(30));
  m->init_weights(2);
  TrainSection t;
  t.lr_scaling = "param_rms";
  Optimizer opt(m, t);
  const auto names = m->named_parameters().keys();
  auto mult = [&](const std::string& name) {
    return opt.multipliers()[static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin())];
  };
  EXPECT_NEAR(mult("shared.weight"), 1.0, 0.1);  // std-1 embeddings
  EXPECT_LT(mult("encoder.block.0.layer.0.SelfAttention.q.weight"), 0.2);
}

TEST(Optimizer, ParametersStayTheModulesOwnAfterReHoming) {
  T5Model m(test::tiny_t5_config(30));
  m->init_weights(2);
  auto before = m->named_parameters()["shared.weight"].detach().clone();
  Optimizer opt(m, TrainSection{});
  EXPECT_TRUE(torch::equal(m->named_parameters()["shared.weight"], before));  // values preserved
  backward_on_batch(m);
  EXPECT_GT(opt.clip_grad_norm(0), 0.0);  // gradients reached the flat buffer
  opt.step(0.1);
  EXPECT_FALSE(torch::equal(m->shared->weight, before));  // the module sees the update
  opt.zero_grad();
  EXPECT_EQ(opt.clip_grad_norm(0), 0.0);
}

}  // namespace qa
