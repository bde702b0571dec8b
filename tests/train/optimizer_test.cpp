#include "qa/train/optimizer.hpp"

#include <gtest/gtest.h>

#include "../support/tiny_model.hpp"

namespace qa {
namespace {

// One AdamW step on `p` with gradient `g`, written out (decoupled decay, bias-corrected moments).
torch::Tensor adamw_reference(torch::Tensor p, const torch::Tensor& g, double lr, double wd, double b1, double b2, double eps) {
  p = p * (1 - lr * wd);
  auto m = (1 - b1) * g, v = (1 - b2) * g * g;
  return p - lr * (m / (1 - b1)) / ((v / (1 - b2)).sqrt() + eps);
}

}  // namespace

TEST(Optimizer, NormWeightsAreNotDecayedAndParamRmsScalesEachTensor) {
  for (const char* scaling : {"none", "param_rms"}) {
    SCOPED_TRACE(scaling);
    T5Model m(test::tiny_t5_config(30));
    m->init_weights(2);
    TrainSection t;
    t.weight_decay = 0.1;
    t.lr_scaling = scaling;
    Optimizer opt(m, t);
    std::map<std::string, torch::Tensor> before;
    for (const auto& p : m->named_parameters()) {
      before[p.key()] = p.value().detach().clone();
      p.value().mutable_grad() = torch::full_like(p.value(), 0.5);
    }
    opt.set_learning_rate(0.01);
    opt.step();
    for (const auto& p : m->named_parameters()) {
      const auto& w0 = before[p.key()];
      const bool norm = p.key().find("layer_norm") != std::string::npos;
      const double scale = std::string(scaling) == "param_rms" ? std::max(1e-3, w0.pow(2).mean().sqrt().item<double>()) : 1.0;
      auto expected = adamw_reference(w0, torch::full_like(w0, 0.5), 0.01 * scale, norm ? 0.0 : 0.1, t.adam_beta1,
                                      t.adam_beta2, t.adam_epsilon);
      EXPECT_TRUE(torch::allclose(p.value(), expected, 1e-5, 1e-7)) << p.key();
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

}  // namespace qa
