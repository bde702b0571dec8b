// The scaled_dot_product_attention path (LibTorch >= 2.1: the container's 2.6 build, GPU machines)
// computes what the explicit products compute: logits and every gradient, fp32 and bf16 autocast.
#include <gtest/gtest.h>

#include "../support/tiny_model.hpp"
#include "qa/model/t5.hpp"
#include "qa/runtime/torch_compat.hpp"

namespace qa {
namespace {

struct Pass {
  torch::Tensor logits;
  std::vector<torch::Tensor> grads;
};

Pass run(bool sdpa, bool bf16) {
  auto c = test::tiny_t5_config(40, /*num_heads=*/2);
  T5Model m(c);
  m->init_weights(7);
  m->train();  // dropout 0 in the tiny config: deterministic
  EXPECT_EQ(m->use_sdpa(sdpa), sdpa);
  auto ids = torch::tensor({{5, 6, 7, 8, 9, 1}, {10, 11, 1, 0, 0, 0}}, torch::kLong);
  auto mask = (ids != 0).to(torch::kLong);
  auto dec = torch::tensor({{0, 12, 13}, {0, 14, 1}}, torch::kLong);
  Pass p;
  {
    compat::AutocastScope scope(torch::kCPU, bf16);
    p.logits = m->forward(ids, mask, dec).to(torch::kFloat);
  }
  p.logits.pow(2).mean().backward();
  for (const auto& t : m->parameters()) p.grads.push_back(t.grad().clone());
  p.logits = p.logits.detach();
  return p;
}

double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-12);
}

TEST(SdpaAttention, SameLogitsAndGradientsAsTheExplicitProducts) {
  if (!compat::kHasSdpa) GTEST_SKIP() << "LibTorch " << TORCH_VERSION << " has no scaled_dot_product_attention with scale";
  for (const bool bf16 : {false, true}) {
    SCOPED_TRACE(bf16 ? "bf16" : "fp32");
    const Pass ref = run(false, bf16), got = run(true, bf16);
    const double tol = bf16 ? 3e-2 : 1e-5;
    EXPECT_LT(rel_err(got.logits, ref.logits), tol);
    ASSERT_EQ(got.grads.size(), ref.grads.size());
    for (std::size_t i = 0; i < ref.grads.size(); ++i) EXPECT_LT(rel_err(got.grads[i], ref.grads[i]), bf16 ? 6e-2 : 1e-4) << i;
  }
}

TEST(SdpaAttention, UnavailableBefore2_1) {
  T5Model m(test::tiny_t5_config(40));
  EXPECT_EQ(m->use_sdpa(true), compat::kHasSdpa);
  EXPECT_FALSE(m->use_sdpa(false));
}

}  // namespace
}  // namespace qa
