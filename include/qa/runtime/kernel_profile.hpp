// Where a CUDA step's GPU time goes, per kernel: LibTorch's Kineto profiler (CUPTI) reduced to a
// table of GPU time by kernel name and by kind of work (matrix products, attention, element-wise,
// ...). The host-side op table (op_profile.hpp) cannot show this: on a GPU the host only queues work.
// Torch-free header.
#pragma once

#include <string>
#include <vector>

#include "qa/runtime/op_profile.hpp"

namespace qa {

// Records every kernel, copy and fill the GPU runs between start() and stop(). Kernels replayed from
// a CUDA graph may not be listed one by one; profile eager steps. Not reentrant.
class KernelProfiler {
 public:
  void start();  // throws qa::Error when this LibTorch has no Kineto/CUPTI
  // Kernels by name (calls, GPU time in self_ms), largest first.
  std::vector<OpTime> stop();
};

// The kind of work a CUDA kernel does, from its name: "matmul", "attention", "softmax",
// "element-wise", "reduction", "normalization", "embedding/indexing", "optimizer", "copy/fill", "other".
std::string kernel_category(const std::string& kernel_name);

// The same times summed by kernel_category, largest first.
std::vector<OpTime> by_kernel_category(const std::vector<OpTime>& kernels);

}  // namespace qa
