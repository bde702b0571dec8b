#include "qa/train/graphed_micro_steps.hpp"

#include <gtest/gtest.h>

#include "../support/tiny_model.hpp"
#include "qa/data/collate.hpp"
#include "qa/runtime/cuda_graph.hpp"
#include "qa/train/optimizer.hpp"

namespace qa {
namespace {

EncodedDataset examples(int n, int salt) {
  EncodedDataset d;
  for (int i = 0; i < n; ++i) {
    EncodedExample e;
    for (int j = 0; j < 4 + (i * 3 + salt) % 9; ++j) e.source.push_back(3 + (i * 7 + j + salt) % 30);
    e.source.push_back(1);
    // The answer's tokens occur in the source, so that the answer-pointer loss is not zero.
    for (int j = 0; j < 1 + (i + salt) % 3; ++j) e.target.push_back(e.source[static_cast<std::size_t>(j + 1)]);
    e.target.push_back(1);
    d.items.push_back(e);
  }
  return d;
}

torch::Tensor flat_grad(T5Model& m) {
  std::vector<torch::Tensor> g;
  for (const auto& p : m->parameters()) g.push_back(p.grad().reshape({-1}).to(torch::kCPU));
  return torch::cat(g);
}

double relative(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).norm() / (b.norm() + 1e-12)).item<double>();
}

}  // namespace

TEST(ShapeBucket, RoundsLengthsUpAndKeepsRows) {
  const BatchShape s = shape_bucket(7, 65, 3);
  EXPECT_EQ(s.rows, 7);
  EXPECT_EQ(s.source_length, 128);
  EXPECT_EQ(s.target_length, 16);
  EXPECT_EQ(shape_bucket(2, 64, 16).source_length, 64);
  EXPECT_EQ(shape_bucket(2, 64, 16).target_length, 16);
}

// What the graphs rely on: padding a micro-batch to its bucket changes neither its loss nor its
// gradient (with the answer-pointer loss too).
TEST(GraphedMicroSteps, PaddingToTheBucketChangesNoLossOrGradient) {
  const EncodedDataset d = examples(5, 0);
  T5Model m(test::tiny_t5_config(40));
  m->init_weights(5);
  m->train();
  const MicroStepSpec spec = make_micro_step_spec(m->config(), torch::kCPU, false, 0.5);
  const Batch b = collate(d, {0, 1, 2, 3, 4}, 0, 0);
  const auto denominator = torch::scalar_tensor(static_cast<double>(b.target_tokens));
  m->zero_grad();
  const double loss = forward_backward(m, b, spec, denominator).item<double>();
  const auto g = flat_grad(m);
  m->zero_grad();
  const double padded_loss = forward_backward(m, padded_to(b, 64, 16, 0), spec, denominator).item<double>();
  const auto padded_g = flat_grad(m);
  EXPECT_NEAR(padded_loss, loss, 1e-5 * std::abs(loss));
  EXPECT_LT(relative(padded_g, g), 1e-5);
  EXPECT_GT(g.norm().item<double>(), 0);
}

TEST(GraphedMicroSteps, NeedsCuda) {
  T5Model m(test::tiny_t5_config(40));
  EXPECT_THROW(GraphedMicroSteps(m, make_micro_step_spec(m->config(), torch::kCPU, false, 0)), std::runtime_error);
}

// On a GPU: the first micro-batch of a bucket runs eagerly and records the graph, later ones replay
// it with new data, and a second bucket gets its own graph; every time the accumulated gradient
// (in the optimizer's flat buffer) equals the eager one, in fp32 and bf16.
TEST(GraphedMicroSteps, ReplaysGiveTheEagerGradientOnCuda) {
  if (!CudaGraph::supported() || !torch::cuda::is_available()) GTEST_SKIP() << "needs LibTorch with CUDA and a GPU";
  const torch::Device cuda(torch::kCUDA, 0);
  for (const bool bf16 : {false, true}) {
    T5Model eager(test::tiny_t5_config(40)), graphed(test::tiny_t5_config(40));
    eager->init_weights(9);
    graphed->init_weights(9);
    eager->to(cuda), graphed->to(cuda);
    eager->train(), graphed->train();
    TrainSection train;
    Optimizer eager_opt(eager, train), graphed_opt(graphed, train);
    const MicroStepSpec spec = make_micro_step_spec(eager->config(), cuda, bf16, 0.5);
    GraphedMicroSteps graphs(graphed, spec);
    // Batches 0 and 1 share a bucket (5 rows, 64 / 16); batch 2 has 3 rows: another bucket.
    const std::vector<EncodedDataset> data = {examples(5, 0), examples(5, 1), examples(3, 2)};
    for (std::size_t k = 0; k < data.size(); ++k) {
      std::vector<std::size_t> rows(data[k].items.size());
      for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = i;
      const Batch b = collate(data[k], rows, 0, 0).to(cuda);
      const double denominator = static_cast<double>(b.target_tokens) + 3.0;
      eager_opt.zero_grad();
      graphed_opt.zero_grad();
      const double eager_loss =
          forward_backward(eager, b, spec, torch::scalar_tensor(denominator, torch::TensorOptions().device(cuda)))
              .item<double>();
      const double graphed_loss = graphs.forward_backward(b, denominator).item<double>();
      EXPECT_NEAR(graphed_loss, eager_loss, (bf16 ? 1e-2 : 1e-5) * std::abs(eager_loss)) << "batch " << k << " bf16 " << bf16;
      EXPECT_LT(relative(flat_grad(graphed), flat_grad(eager)), bf16 ? 2e-2 : 1e-5) << "batch " << k << " bf16 " << bf16;
    }
    EXPECT_EQ(graphs.graphs(), 2u);
  }
}

}  // namespace qa
