// The gated GELU of a stacked wi_0/wi_1 product (StackedProjections, model/t5.hpp): for x = [a | b]
// along the last dimension, gelu(a) * b. Autograd would return the gradients of a and b as two
// tensors and concatenate them for the stacked product's backward (one more pass over [N, 2 d_ff]);
// here the backward writes both halves of x's gradient in place. Any device and dtype.
#pragma once

#include <string>

#include <torch/torch.h>

namespace qa {

// approximate: "tanh" (Hugging Face's gelu_new / gelu_pytorch_tanh) or "none" (exact GELU).
torch::Tensor stacked_gated_gelu(const torch::Tensor& x, const std::string& approximate);

}  // namespace qa
