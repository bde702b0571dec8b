// Sums the gradients over ranks while the backward pass is still running, as PyTorch's DDP reducer
// does: the flat gradient buffer is cut into buckets of consecutive parameters (in reverse order, the
// order backward produces them), and a bucket's all-reduce starts as soon as every parameter in it has
// its gradient of the step's last micro-batch accumulated (a post hook on each parameter's
// AccumulateGrad node). The result is the same sum as one all-reduce after backward.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "qa/model/t5.hpp"
#include "qa/train/data_parallel.hpp"

namespace qa {

class GradientSync {
 public:
  // `flat_grads` is the buffer every parameter's .grad is a view of, in named_parameters() order.
  GradientSync(DataParallel& dp, T5Model& model, const torch::Tensor& flat_grads, int64_t bucket_bytes = 25 << 20);
  ~GradientSync();

  // The next backward pass is the step's last: start each bucket's sum as soon as it is complete.
  void arm();
  // Starts the buckets that did not fill (unused parameters, or no backward on this rank), waits for
  // every sum, and disarms.
  void finish();

  int64_t buckets() const;
  // Buckets whose sum the hooks started during the last armed backward pass (the overlap).
  int64_t started_during_backward() const;

  struct State;  // shared with the autograd hooks, which may outlive this object

 private:
  std::shared_ptr<State> state_;
};

}  // namespace qa
