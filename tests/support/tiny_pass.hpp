// Test support: one forward and backward pass of a model on a fixed small batch (a padded source, a
// 3-token decoder input), for tests that compare two ways of computing the same model.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "qa/model/t5.hpp"
#include "qa/runtime/op_profile.hpp"
#include "qa/runtime/torch_compat.hpp"
#include "tiny_model.hpp"

namespace qa::test {

struct TinyPass {
  torch::Tensor logits;              // fp32, on the CPU
  std::vector<torch::Tensor> grads;  // of every parameter, on the CPU
};

// The tiny model (tiny_model.hpp) with `num_heads` heads, initialised from `seed`, on `device`, in
// training mode (dropout 0 in the tiny config: deterministic). On CUDA the heads are 8 wide: the
// memory-efficient kernel wants 16-byte rows.
inline T5Model tiny_training_model(int64_t num_heads, uint64_t seed, torch::Device device = torch::kCPU) {
  auto c = tiny_t5_config(40, num_heads);
  if (device.is_cuda()) c.d_kv = 8;
  T5Model m(c);
  m->init_weights(seed);
  m->to(device);
  m->train();
  return m;
}

// Logits under bf16 autocast when `bf16`, then the gradients of mean(logits^2). `around_forward`, if
// given, is called with the forward pass to run (to profile it, say).
inline TinyPass tiny_pass(T5Model& m, torch::Device device, bool bf16,
                          const std::function<void(const std::function<void()>&)>& around_forward = {}) {
  auto ids = torch::tensor({{5, 6, 7, 8, 9, 1}, {10, 11, 1, 0, 0, 0}}, torch::kLong).to(device);
  auto mask = (ids != 0).to(torch::kLong);
  auto dec = torch::tensor({{0, 12, 13}, {0, 14, 1}}, torch::kLong).to(device);
  TinyPass p;
  const std::function<void()> forward = [&] {
    compat::AutocastScope scope(device, bf16);
    p.logits = m->forward(ids, mask, dec).to(torch::kFloat);
  };
  around_forward ? around_forward(forward) : forward();
  p.logits.pow(2).mean().backward();
  for (const auto& t : m->parameters()) p.grads.push_back(t.grad().cpu().clone());
  p.logits = p.logits.detach().cpu();
  return p;
}

// tiny_pass, also counting the calls of operator `op` in its forward pass (runtime/op_profile).
inline TinyPass tiny_pass_counting(T5Model& m, torch::Device device, bool bf16, const std::string& op, int64_t& calls) {
  return tiny_pass(m, device, bf16, [&](const std::function<void()>& forward) {
    OpProfiler profiler;
    profiler.start();
    forward();
    for (const auto& r : profiler.stop())
      if (r.name == op) calls += r.calls;
  });
}

// max |a - b| / max |b|
inline double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), 1e-12);
}

}  // namespace qa::test
