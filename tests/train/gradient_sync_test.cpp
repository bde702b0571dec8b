// The overlapped gradient all-reduce starts buckets during backward and leaves the exact sum: checked
// in a one-process Gloo group (the sum over one rank is the gradient itself).
#include "qa/train/gradient_sync.hpp"

#include <gtest/gtest.h>

#include "../support/free_port.hpp"
#include "../support/tiny_model.hpp"
#include "qa/train/optimizer.hpp"

namespace qa {
namespace {

void backward_twice(T5Model& m, const std::function<void()>& before_last) {
  for (int k = 0; k < 2; ++k) {  // two micro-batches: only the last backward is armed
    torch::manual_seed(11 + k);
    auto ids = torch::randint(3, 50, {2, 6}, torch::kLong);
    auto dec = torch::randint(3, 50, {2, 4}, torch::kLong);
    auto logits = m->forward(ids, torch::ones_like(ids), dec);
    auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, 50}), dec.reshape({-1}));
    if (k == 1 && before_last) before_last();
    loss.backward();
  }
}

}  // namespace

TEST(GradientSync, BucketsStartDuringBackwardAndTheSumIsExact) {
  if (!DataParallel::has_gloo()) GTEST_SKIP() << "this LibTorch ships no Gloo headers";
  TrainSection train;
  T5Model reference(test::tiny_t5_config(50));
  reference->init_weights(4);
  Optimizer ref_opt(reference, train);
  backward_twice(reference, nullptr);

  T5Model m(test::tiny_t5_config(50));
  m->init_weights(4);
  Optimizer opt(m, train);
  ProcessLayout one;
  one.world_size = 1;
  one.master_addr = "127.0.0.1";
  one.master_port = test::free_port();
  DataParallel dp(one, torch::kCPU, 30);
  GradientSync sync(dp, m, opt.flat_gradients(), /*bucket_bytes=*/4096);  // many small buckets
  ASSERT_GT(sync.buckets(), 5);
  backward_twice(m, [&] { sync.arm(); });
  EXPECT_GT(sync.started_during_backward(), sync.buckets() / 2);  // most buckets overlapped the backward
  sync.finish();
  EXPECT_TRUE(torch::equal(opt.flat_gradients(), ref_opt.flat_gradients()));
  // A step in which this rank ran no backward still sums every bucket (the other ranks wait for them).
  opt.zero_grad();
  sync.finish();
  EXPECT_EQ(opt.flat_gradients().abs().sum().item<double>(), 0.0);
}

}  // namespace qa
