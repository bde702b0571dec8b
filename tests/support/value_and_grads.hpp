// Test support: a two-input differentiable function's value and both gradients for a given output
// gradient, computed on fresh leaf copies of the inputs (what the fused-kernel tests compare).
#pragma once

#include <torch/torch.h>

#include <functional>

namespace qa::test {

struct ValueAndGrads {
  torch::Tensor value, grad_a, grad_b;
};

inline ValueAndGrads value_and_grads(const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& f,
                                     const torch::Tensor& a0, const torch::Tensor& b0, const torch::Tensor& grad) {
  auto a = a0.clone().requires_grad_(true);
  auto b = b0.clone().requires_grad_(true);
  auto value = f(a, b);
  value.backward(grad);
  return {value.detach(), a.grad(), b.grad()};
}

}  // namespace qa::test
