// Parity of the backward pass with Hugging Face transformers: the loss and every parameter gradient
// of the fixture model on reference.json's padded batch (tests/fixtures/hf-flan-tiny/gradients.json,
// written by scripts/make_hf_grad_fixture.py). Guards what the forward parity cannot see: the fused
// RMSNorm backward, the position-bias gradient shared by all layers, masking in the backward pass.
#include <gtest/gtest.h>

#include <fstream>

#include "../support/reference.hpp"
#include "qa/io/hf_model_dir.hpp"
#include "qa/train/loss.hpp"

namespace qa {

TEST(GradientParity, LossAndEveryGradientMatchHuggingFace) {
  std::ifstream in(test::fixture_model_dir() + "/gradients.json");
  const auto ref = nlohmann::json::parse(in);
  const auto& batch = test::reference()["padded_batch"];
  LoadedModel loaded = load_model_dir(test::fixture_model_dir());
  T5Model& m = loaded.model;
  m->train();  // dropout_rate is 0 in the fixture
  auto labels = test::tensor_of(batch["labels"], torch::kLong);
  auto logits = m->forward(test::tensor_of(batch["input_ids"], torch::kLong),
                           test::tensor_of(batch["attention_mask"], torch::kLong),
                           test::tensor_of(batch["decoder_input_ids"], torch::kLong));
  auto loss = token_cross_entropy_sum(logits, labels) / (labels != -100).sum();
  loss.backward();
  const double loss_ref = ref["loss"].get<double>();
  EXPECT_NEAR(loss.item<double>(), loss_ref, 1e-5 * loss_ref);

  const auto params = m->named_parameters();
  ASSERT_EQ(params.size(), ref["gradients"].size());
  for (const auto& [name, r] : ref["gradients"].items()) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(params.contains(name));
    const torch::Tensor g = params[name].grad().reshape({-1}).to(torch::kDouble);
    ASSERT_EQ(params[name].sizes().vec(), r["shape"].get<std::vector<int64_t>>());
    const double norm_ref = r["norm"].get<double>();
    EXPECT_NEAR(g.norm().item<double>(), norm_ref, 1e-4 * norm_ref);
    // Single values: relative to the tensor's scale, as tiny entries carry rounding noise.
    const double scale = norm_ref / std::sqrt(static_cast<double>(g.numel()));
    const auto first = r["first_values"].get<std::vector<double>>();
    for (std::size_t i = 0; i < first.size(); ++i) {
      EXPECT_NEAR(g[static_cast<int64_t>(i)].item<double>(), first[i], 1e-3 * scale) << "value " << i;
    }
    const auto stride = r["stride"].get<int64_t>();
    const auto strided = r["strided_values"].get<std::vector<double>>();
    for (std::size_t i = 0; i < strided.size(); ++i) {
      EXPECT_NEAR(g[static_cast<int64_t>(i) * stride].item<double>(), strided[i], 1e-3 * scale) << "value " << i * stride;
    }
  }
}

}  // namespace qa
