// Activation checkpointing, as Hugging Face's `gradient_checkpointing` (torch.utils.checkpoint with
// use_reentrant=True): a function's forward keeps only its inputs, and the backward pass runs it
// again with gradients on and back-propagates through that recompute. Activation memory falls from
// every intermediate of every block to the blocks' inputs, for about one more forward pass.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace qa {

using CheckpointedFn = std::function<torch::Tensor(const std::vector<torch::Tensor>& inputs)>;

// Returns fn(inputs) without recording its graph. The recompute in backward sees the inputs (detached),
// the autocast settings (CPU and CUDA) and the default random generators (CPU and the inputs' devices)
// as the first run saw them, so dropout masks and casts are the same; the generators are then left
// where they were before the recompute. Parameters used by fn get their gradients accumulated into
// .grad in place; inputs get theirs through the graph. `inputs` may hold undefined tensors (passed on
// as such). Where no input requires grad, or grad mode is off, fn simply runs: a checkpoint would
// then cut fn's parameters off the graph.
torch::Tensor checkpoint(const CheckpointedFn& fn, const std::vector<torch::Tensor>& inputs);

}  // namespace qa
