#include "qa/train/optimizer.hpp"

#include <gtest/gtest.h>

#include <cmath>

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

// The device-side step (accelerators, no host synchronisation) must equal the host path: clip, update,
// and a step with a non-finite gradient skipped entirely (the trainer skips it on the host).
TEST(Optimizer, DeviceStepEqualsHostStepAndSkipsNonFiniteSteps) {
  TrainSection t;
  t.weight_decay = 0.1;
  t.lr_scaling = "param_rms";
  T5Model host(test::tiny_t5_config(30)), dev(test::tiny_t5_config(30));
  host->init_weights(4);
  dev->init_weights(4);
  Optimizer host_opt(host, t), dev_opt(dev, t);
  const auto loss = torch::tensor(2.5f);
  for (int step = 0; step < 5; ++step) {
    SCOPED_TRACE(step);
    host_opt.zero_grad();
    dev_opt.zero_grad();
    backward_on_batch(host);
    backward_on_batch(dev);
    const bool poison = step == 2;
    if (poison) {
      host_opt.flat_gradients()[3] = NAN;
      dev_opt.flat_gradients()[3] = NAN;
    }
    const double norm = host_opt.clip_grad_norm(0.5);
    if (std::isfinite(norm)) host_opt.step(0.01);
    auto r = dev_opt.clip_and_step_on_device(0.5, 0.01, loss);
    EXPECT_EQ(r.skipped.item<float>(), poison ? 1.0f : 0.0f);
    if (!poison) {
      EXPECT_NEAR(r.grad_norm.item<double>(), norm, 1e-5 * norm);
    }
  }
  EXPECT_TRUE(torch::allclose(dev_opt.flat_parameters(), host_opt.flat_parameters(), 1e-5, 1e-7));
  auto hs = host_opt.state(), ds = dev_opt.state();
  for (std::size_t i = 0; i < hs.size(); ++i) {
    EXPECT_EQ(hs[i].first, ds[i].first);
    // at::_fused_adamw_ (LibTorch >= 2.4 on CPU) divides by the inverse clip factor: ~1e-5 rounding.
    EXPECT_TRUE(torch::allclose(ds[i].second, hs[i].second, 1e-4, 1e-8))
        << hs[i].first << ": largest difference " << (ds[i].second - hs[i].second).abs().max().item<double>() << " where "
        << hs[i].second.flatten()[(ds[i].second - hs[i].second).abs().flatten().argmax()].item<double>();
  }
  EXPECT_EQ(ds[2].second.item<double>(), 4.0);  // 5 steps, one skipped
  // A non-finite loss alone also skips the update.
  dev_opt.zero_grad();
  backward_on_batch(dev);
  auto before = dev_opt.flat_parameters().clone();
  auto r = dev_opt.clip_and_step_on_device(0.5, 0.01, torch::tensor(NAN));
  EXPECT_EQ(r.skipped.item<float>(), 1.0f);
  EXPECT_TRUE(torch::equal(dev_opt.flat_parameters(), before));
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
  // The position bias is added to logits as is: its step is not shrunk by its small initial RMS.
  EXPECT_EQ(mult("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"), 1.0);
  EXPECT_EQ(mult("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"), 1.0);
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
