// Activation checkpointing changes memory, never results: the loss and every parameter gradient of a
// training step are the same with and without it (fp32 and bf16 autocast, with and without dropout),
// and forwards that do not train (eval mode, no grad, KV-cached decoding) do not use it.
#include "qa/model/activation_checkpoint.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "../support/tiny_model.hpp"
#include "qa/model/t5.hpp"
#include "qa/runtime/torch_compat.hpp"
#include "qa/train/loss.hpp"

namespace qa {
namespace {

struct StepResult {
  torch::Tensor loss;
  std::map<std::string, torch::Tensor> grads;
  bool checkpointed = false;  // the graph went through the checkpoint function
  float next_draw = 0;        // the default generator's next number after backward
};

// True when a node named like `name` is reachable from t's grad_fn.
bool graph_has(const torch::Tensor& t, const std::string& name) {
  std::vector<torch::autograd::Node*> todo;
  std::set<torch::autograd::Node*> seen;
  if (t.grad_fn()) todo.push_back(t.grad_fn().get());
  while (!todo.empty()) {
    auto* n = todo.back();
    todo.pop_back();
    if (!seen.insert(n).second) continue;
    if (n->name().find(name) != std::string::npos) return true;
    for (const auto& e : n->next_edges()) {
      if (e.function) todo.push_back(e.function.get());
    }
  }
  return false;
}

class ActivationCheckpoint : public ::testing::Test {
 protected:
  void build(double dropout) {
    auto c = test::tiny_t5_config(40, /*num_heads=*/3);
    c.dropout_rate = dropout;
    model_ = T5Model(c);
    model_->init_weights(5);
    model_->train();
    // As the optimizer does: every .grad a view of one flat buffer, which autograd must fill in place.
    int64_t total = 0;
    for (const auto& p : model_->parameters()) total += p.numel();
    flat_grads_ = torch::zeros({total});
    int64_t offset = 0;
    for (auto& p : model_->parameters()) {
      p.mutable_grad() = flat_grads_.narrow(0, offset, p.numel()).view_as(p);
      offset += p.numel();
    }
    torch::manual_seed(1);
    ids_ = torch::randint(3, 40, {3, 9}, torch::kLong);
    mask_ = torch::ones({3, 9}, torch::kLong);
    mask_.index_put_({1, torch::indexing::Slice(6, torch::indexing::None)}, 0);  // one padded row
    labels_ = torch::randint(3, 40, {3, 5}, torch::kLong);
    labels_.index_put_({2, torch::indexing::Slice(3, torch::indexing::None)}, -100);
    dec_in_ = torch::cat({torch::zeros({3, 1}, torch::kLong), labels_.slice(1, 0, 4).clamp_min(0)}, 1);
  }

  // One training step's loss and gradients (backward outside autocast, as train_step does).
  StepResult step(bool checkpointing, uint64_t seed, bool bf16 = false) {
    model_->set_activation_checkpointing(checkpointing);
    flat_grads_.zero_();
    torch::manual_seed(seed);
    StepResult r;
    torch::Tensor logits;
    {
      compat::AutocastScope autocast(torch::Device(torch::kCPU), bf16);
      logits = model_->forward(ids_, mask_, dec_in_);
    }
    r.checkpointed = graph_has(logits, "CheckpointFunction");
    r.loss = token_cross_entropy_sum(logits, labels_) / static_cast<double>((labels_ != -100).sum().item<int64_t>());
    r.loss.backward();
    r.next_draw = torch::rand({1}).item<float>();
    for (const auto& p : model_->named_parameters()) {
      EXPECT_EQ(p.value().grad().data_ptr(), static_cast<void*>(flat_grads_.data_ptr<float>() + offset_of(p.key())))
          << p.key() << ": .grad no longer a view of the flat buffer";
      r.grads[p.key()] = p.value().grad().clone();
    }
    return r;
  }

  int64_t offset_of(const std::string& name) {
    int64_t offset = 0;
    for (const auto& p : model_->named_parameters()) {
      if (p.key() == name) return offset;
      offset += p.value().numel();
    }
    return -1;
  }

  // Largest over parameters of max|a - b| / max|b|; also checks that b's gradients are all non-zero.
  static double worst_relative_gap(const StepResult& a, const StepResult& b) {
    double worst = 0;
    for (const auto& [name, gb] : b.grads) {
      const double scale = gb.abs().max().item<double>();
      EXPECT_GT(scale, 0) << name << " got no gradient";
      worst = std::max(worst, (a.grads.at(name) - gb).abs().max().item<double>() / std::max(scale, 1e-30));
    }
    return worst;
  }

  T5Model model_{nullptr};
  torch::Tensor flat_grads_, ids_, mask_, labels_, dec_in_;
};

TEST_F(ActivationCheckpoint, SameLossAndGradientsWithoutDropout) {
  build(0.0);
  const auto plain = step(false, 7);
  const auto ckpt = step(true, 7);
  EXPECT_FALSE(plain.checkpointed);
  EXPECT_TRUE(ckpt.checkpointed);
  EXPECT_EQ(plain.loss.item<float>(), ckpt.loss.item<float>());
  EXPECT_LE(worst_relative_gap(ckpt, plain), 1e-6);
}

// The recompute must draw the same dropout masks as the first run: without restoring the generator
// these gradients differ by O(1).
TEST_F(ActivationCheckpoint, SameDropoutMasksFromTheSameSeed) {
  build(0.1);
  const auto plain = step(false, 7);
  const auto ckpt = step(true, 7);
  EXPECT_TRUE(ckpt.checkpointed);
  EXPECT_EQ(plain.loss.item<float>(), ckpt.loss.item<float>());
  EXPECT_LE(worst_relative_gap(ckpt, plain), 1e-6);
  // The generator is left where the plain run leaves it, so later draws (next step's dropout) agree.
  EXPECT_EQ(plain.next_draw, ckpt.next_draw);
  // Dropout is really on: another seed gives another loss.
  EXPECT_NE(plain.loss.item<float>(), step(false, 8).loss.item<float>());
}

// bf16 autocast: the recompute (run in backward, outside the autocast scope) re-enters it, so its
// products round as the first run's did.
TEST_F(ActivationCheckpoint, SameGradientsUnderBf16AutocastOnCpu) {
  build(0.1);
  const auto plain = step(false, 7, /*bf16=*/true);
  const auto ckpt = step(true, 7, /*bf16=*/true);
  const auto fp32 = step(false, 7, /*bf16=*/false);
  EXPECT_TRUE(ckpt.checkpointed);
  EXPECT_EQ(plain.loss.item<float>(), ckpt.loss.item<float>());
  EXPECT_LE(worst_relative_gap(ckpt, plain), 1e-5);
  // bf16 is really in use: its gradients differ from fp32's far more than the tolerance above.
  EXPECT_GT(worst_relative_gap(fp32, plain), 1e-3);
}

TEST_F(ActivationCheckpoint, EvalNoGradAndCachedDecodingAreUnaffected) {
  build(0.1);
  model_->set_activation_checkpointing(true);
  {
    model_->eval();
    const auto logits = model_->forward(ids_, mask_, dec_in_);
    EXPECT_FALSE(graph_has(logits, "CheckpointFunction"));
    model_->set_activation_checkpointing(false);
    EXPECT_TRUE(torch::equal(logits, model_->forward(ids_, mask_, dec_in_)));
    model_->set_activation_checkpointing(true);
  }
  {
    model_->train();
    torch::NoGradGuard no_grad;
    torch::manual_seed(3);
    const auto logits = model_->forward(ids_, mask_, dec_in_);
    EXPECT_FALSE(logits.requires_grad());
    model_->set_activation_checkpointing(false);
    torch::manual_seed(3);
    EXPECT_TRUE(torch::equal(logits, model_->forward(ids_, mask_, dec_in_)));
    model_->set_activation_checkpointing(true);
  }
  {
    model_->train();  // a KV cache is never checkpointed, even while training
    auto state = model_->start_decoding(model_->encode(ids_, mask_).detach(), mask_);  // only the decoder's graph
    const auto logits = model_->decode_step(torch::zeros({3}, torch::kLong), state);
    EXPECT_FALSE(graph_has(logits, "CheckpointFunction"));
  }
}

// The function on its own: undefined inputs pass through, inputs without grad mean no checkpoint.
TEST(ActivationCheckpointFunction, UndefinedInputsAndInputsWithoutGrad) {
  auto w = torch::randn({4, 4}, torch::requires_grad());
  auto x = torch::randn({2, 4}, torch::requires_grad());
  const CheckpointedFn fn = [&w](const std::vector<torch::Tensor>& in) {
    EXPECT_FALSE(in[1].defined());
    return torch::tanh(torch::matmul(in[0], w)).sum(-1) * in[2];
  };
  auto scale = torch::full({2}, 3.0, torch::requires_grad());
  auto y = checkpoint(fn, {x, torch::Tensor(), scale});
  EXPECT_TRUE(graph_has(y, "CheckpointFunction"));
  y.sum().backward();
  const auto gw = w.grad().clone(), gx = x.grad().clone(), gs = scale.grad().clone();
  w.mutable_grad().zero_(), x.mutable_grad().zero_(), scale.mutable_grad().zero_();
  fn({x, torch::Tensor(), scale}).sum().backward();
  EXPECT_TRUE(torch::allclose(gw, w.grad(), 1e-6, 0));
  EXPECT_TRUE(torch::allclose(gx, x.grad(), 1e-6, 0));
  EXPECT_TRUE(torch::allclose(gs, scale.grad(), 1e-6, 0));
  // No input requires grad: fn runs as is, and w still gets its gradient.
  auto plain = checkpoint(fn, {x.detach(), torch::Tensor(), scale.detach()});
  EXPECT_FALSE(graph_has(plain, "CheckpointFunction"));
  EXPECT_TRUE(plain.requires_grad());
}

}  // namespace
}  // namespace qa
