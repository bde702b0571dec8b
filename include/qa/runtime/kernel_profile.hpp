// Where a CUDA step's GPU time goes, per kernel: LibTorch's Kineto profiler (CUPTI) reduced to a
// table of GPU time by kernel name and by kind of work (matrix products, attention, element-wise,
// ...). The host-side op table (op_profile.hpp) cannot show this: on a GPU the host only queues work.
// Torch-free header.
#pragma once

#include <string>
#include <vector>

#include "qa/runtime/op_profile.hpp"

namespace qa {

struct KernelProfile {
  std::vector<OpTime> kernels;  // by kernel name (calls, GPU time in self_ms), largest first
  // The same GPU time by the operator that launched it: "aten::add_ [16384, 768] [16384, 768]", its
  // input shapes, and " in MulBackward0" where the backward pass ran it. Names what a kernel was for
  // (a cast, a residual add, a gradient accumulation) where kernel names alone do not.
  std::vector<OpTime> by_op;
};

// Records every kernel, copy and fill the GPU runs between start() and stop(). Kernels replayed from
// a CUDA graph may not be listed one by one; profile eager steps. Not reentrant.
class KernelProfiler {
 public:
  void start();  // throws qa::Error when this LibTorch has no Kineto/CUPTI
  KernelProfile stop();
};

// "aten::mul [8, 4] [] in MulBackward0": an operator, its inputs' shapes (at most four, scalars as
// []), and the autograd node it ran in, if any ("autograd::engine::evaluate_function: MulBackward0").
std::string launching_op_label(const std::string& op, const std::vector<std::vector<int64_t>>& shapes,
                               const std::string& autograd_node);

// The kind of work a CUDA kernel does, from its name: "matmul", "attention", "softmax",
// "element-wise", "reduction", "normalization", "embedding/indexing", "optimizer", "copy/fill", "other".
std::string kernel_category(const std::string& kernel_name);

// The same times summed by kernel_category, largest first.
std::vector<OpTime> by_kernel_category(const std::vector<OpTime>& kernels);

}  // namespace qa
