#include "qa/model/t5.hpp"

#include <gtest/gtest.h>

#include "../support/reference.hpp"
#include "../support/tiny_model.hpp"
#include "qa/runtime/op_profile.hpp"
#include "qa/runtime/torch_compat.hpp"

namespace qa {
namespace {

T5Config small_config(const std::string& ffn = "gated-gelu", bool tied = false) {
  return test::tiny_t5_config(50, /*num_heads=*/3, ffn, tied);
}

T5Model make_model(const T5Config& c) {
  T5Model m(c);
  m->init_weights(5);
  m->eval();
  return m;
}

}  // namespace

TEST(RMSNorm, ScalesByRootMeanSquareWithoutCentering) {
  RMSNorm norm(4, 1e-6);
  torch::NoGradGuard ng;
  norm->weight.copy_(torch::tensor({1.0, 2.0, 0.5, -1.0}));
  auto x = torch::tensor({{1.0, 2.0, 3.0, 4.0}});
  const double rms = std::sqrt((1 + 4 + 9 + 16) / 4.0 + 1e-6);
  auto expected = torch::tensor({{1.0 / rms, 4.0 / rms, 1.5 / rms, -4.0 / rms}});
  EXPECT_TRUE(torch::allclose(norm(x), expected, 1e-6, 1e-6));
  // Statistics in fp32 even for bf16 input: the result is fp32.
  EXPECT_EQ(norm(x.to(torch::kBFloat16)).scalar_type(), torch::kFloat);
}

TEST(Attention, PaddedSourceTokensAreInvisible) {
  auto m = make_model(small_config());
  torch::NoGradGuard ng;
  auto ids = torch::tensor({{5, 6, 7, 1, 0, 0}}, torch::kLong);
  auto mask = torch::tensor({{1, 1, 1, 1, 0, 0}}, torch::kLong);
  auto other = ids.clone();
  other[0][4] = 33;  // change what sits under the mask
  other[0][5] = 44;
  auto dec = torch::tensor({{0, 9, 10}}, torch::kLong);
  auto a = m->forward(ids, mask, dec), b = m->forward(other, mask, dec);
  EXPECT_TRUE(torch::allclose(a, b, 1e-6, 1e-6));
  auto enc_a = m->encode(ids, mask), enc_b = m->encode(other, mask);
  EXPECT_TRUE(torch::allclose(enc_a.slice(1, 0, 4), enc_b.slice(1, 0, 4), 1e-6, 1e-6));
  // And without the mask the change is visible: the test can fail.
  auto c = m->forward(other, torch::ones_like(mask), dec);
  EXPECT_FALSE(torch::allclose(a, c, 1e-4, 1e-4));
}

TEST(Attention, DecoderIsCausal) {
  auto m = make_model(small_config());
  torch::NoGradGuard ng;
  auto ids = torch::tensor({{5, 6, 7, 1}}, torch::kLong);
  auto mask = torch::ones_like(ids);
  auto a = m->forward(ids, mask, torch::tensor({{0, 9, 10, 11}}, torch::kLong));
  auto b = m->forward(ids, mask, torch::tensor({{0, 9, 12, 13}}, torch::kLong));
  EXPECT_TRUE(torch::allclose(a.slice(1, 0, 2), b.slice(1, 0, 2), 1e-6, 1e-6));  // positions 0,1 see only 0, 9
  EXPECT_FALSE(torch::allclose(a.slice(1, 2, 3), b.slice(1, 2, 3), 1e-4, 1e-4));
}

TEST(T5Model, VariantsAreConfigurationOfOneModel) {
  for (auto [ffn, tied] : {std::pair<const char*, bool>{"gated-gelu", false}, {"relu", true}, {"gated-silu", false}, {"gelu", true}}) {
    auto c = small_config(ffn, tied);
    auto m = make_model(c);
    auto names = m->named_parameters().keys();
    auto has = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) != names.end(); };
    EXPECT_EQ(has("lm_head.weight"), !tied) << ffn;
    EXPECT_EQ(has("encoder.block.0.layer.1.DenseReluDense.wi_0.weight"), c.is_gated_act) << ffn;
    EXPECT_EQ(has("encoder.block.0.layer.1.DenseReluDense.wi.weight"), !c.is_gated_act) << ffn;
    EXPECT_TRUE(has("decoder.block.1.layer.1.EncDecAttention.q.weight"));
    EXPECT_TRUE(has("decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"));
    EXPECT_FALSE(has("decoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"));  // block 0 owns it
    torch::NoGradGuard ng;
    auto logits = m->forward(torch::tensor({{3, 4, 1}}, torch::kLong), torch::ones({1, 3}, torch::kLong),
                             torch::tensor({{0, 7}}, torch::kLong));
    EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{1, 2, 50}));
    EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
  }
}

TEST(T5Model, InitialisationFollowsHuggingFaceScales) {
  auto c = small_config();
  c.d_model = 64;
  c.vocab_size = 2000;
  T5Model m(c);
  m->init_weights(1);
  auto std_of = [&](const std::string& name) { return m->named_parameters()[name].std().item<double>(); };
  EXPECT_NEAR(std_of("shared.weight"), 1.0, 0.05);
  EXPECT_NEAR(std_of("lm_head.weight"), std::pow(64.0, -0.5), 0.01);  // not HF's 1.0 (see init_weights)
  EXPECT_NEAR(std_of("encoder.block.0.layer.0.SelfAttention.q.weight"), std::pow(64.0 * 4, -0.5), 0.01);
  EXPECT_NEAR(std_of("encoder.block.0.layer.1.DenseReluDense.wo.weight"), std::pow(24.0, -0.5), 0.03);
  EXPECT_EQ(m->named_parameters()["encoder.final_layer_norm.weight"].mean().item<double>(), 1.0);
}

TEST(T5Model, LocalPositionBiasInitFallsWithDistance) {
  auto c = small_config();
  c.position_bias_init = "local";
  T5Model m(c);
  m->init_weights(1);
  for (const bool encoder : {true, false}) {
    auto& a = *(encoder ? m->encoder : m->decoder)->block[0]->as<BlockImpl>()->self_attention->SelfAttention;
    auto bias = a.position_bias(1, 40, 39).squeeze(0).squeeze(1);  // [H, 40]: distances 39..0 to the left
    const int64_t heads = bias.size(0);
    for (int64_t h = 0; h < heads; ++h) {
      EXPECT_EQ(bias[h][39].item<float>(), 0.0f);  // distance 0
      for (int64_t k = 1; k < 40; ++k) EXPECT_GE(bias[h][k].item<float>(), bias[h][k - 1].item<float>()) << h << " " << k;
      if (h > 0) {
        EXPECT_LT(bias[h - 1][0].item<float>(), bias[h][0].item<float>());  // head 0 the most local
      }
    }
    // Distance 5 is an exact bucket: -slope * 5 with ALiBi's slope for head 0.
    EXPECT_NEAR(bias[0][34].item<float>(), -5.0 * std::pow(2.0, -8.0 / static_cast<double>(heads)), 1e-6);
  }
  EXPECT_FALSE(m->config().to_hf_json().contains("position_bias_init"));  // not a Hugging Face key
}

TEST(T5Model, Bf16AutocastStaysCloseToFp32) {
  auto m = make_model(small_config());
  torch::NoGradGuard ng;
  auto ids = torch::tensor({{5, 6, 7, 8, 9, 1}}, torch::kLong);
  auto mask = torch::ones_like(ids);
  auto dec = torch::tensor({{0, 9, 10}}, torch::kLong);
  auto fp32 = m->forward(ids, mask, dec);
  torch::Tensor bf16;
  {
    compat::AutocastScope scope(torch::kCPU, true);
    bf16 = m->forward(ids, mask, dec);
  }
  EXPECT_EQ(bf16.scalar_type(), torch::kFloat);  // the products' sums widened: the loss reads fp32
  EXPECT_LT(test::relative_error(bf16, fp32), 3e-2);
  EXPECT_GT(test::relative_error(bf16, fp32), 0.0);  // autocast really changed the arithmetic
}

// Under bf16 autocast each weight is cast once per autocast scope, not once per call: a second
// decoding step casts only its activations. (torch::nn::Linear's own forward hid the weights behind a
// transposed view that autocast does not cache, and every generated token re-cast the whole model.)
TEST(T5Model, Bf16DecodingCastsEachWeightOncePerScope) {
  const auto c = small_config();
  auto m = make_model(c);
  torch::NoGradGuard ng;
  compat::AutocastScope scope(torch::kCPU, true);
  auto ids = torch::tensor({{5, 6, 7, 8, 9, 1}}, torch::kLong);
  auto mask = torch::ones_like(ids);
  auto state = m->start_decoding(m->encode(ids, mask), mask);
  const auto casts_in_one_step = [&] {
    OpProfiler profiler;
    profiler.start();
    m->decode_step(torch::zeros({1}, torch::kLong), state);
    int64_t casts = 0;
    for (const auto& op : profiler.stop())
      if (op.name == "aten::_to_copy") casts += op.calls;
    return casts;
  };
  const int64_t first = casts_in_one_step(), second = casts_in_one_step();
  // Per decoder block: self-attention q, k, v, o; cross-attention q, o (and k, v, projected in the first
  // step only); wi_0, wi_1, wo. Then the lm_head.
  const int64_t weights_per_step = 9 * c.num_decoder_layers + 1;
  EXPECT_GE(first - second, weights_per_step) << first << " casts in the first step, " << second << " in the second";
}

}  // namespace qa

namespace qa {

// The capturable lookup (CUDA graphs) is the same embedding: same logits, same gradient.
TEST(T5Model, CapturableEmbeddingGivesTheSameLogitsAndGradient) {
  T5Model m(test::tiny_t5_config(50));
  m->init_weights(4);
  auto ids = torch::randint(3, 50, {3, 7}, torch::kLong);
  ids[0][2] = ids[0][5];  // a repeated token: its gradient rows add up
  auto dec = torch::randint(3, 50, {3, 4}, torch::kLong);
  auto mask = torch::ones_like(ids);
  std::vector<torch::Tensor> logits, grads;
  for (const bool capturable : {false, true}) {
    m->set_capturable_embedding(capturable);
    m->zero_grad();
    auto out = m->forward(ids, mask, dec);
    out.pow(2).sum().backward();
    logits.push_back(out.detach());
    grads.push_back(m->shared->weight.grad().clone());
  }
  EXPECT_TRUE(torch::allclose(logits[0], logits[1]));
  EXPECT_TRUE(torch::allclose(grads[0], grads[1], 1e-5, 1e-6));
  EXPECT_GT(grads[0].abs().sum().item<double>(), 0);
}

}  // namespace qa
