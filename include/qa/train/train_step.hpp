// Forward and backward passes of one optimizer step over its micro-batches (gradient accumulation).
#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <functional>
#include <vector>

#include "qa/data/collate.hpp"
#include "qa/data/encoded_dataset.hpp"
#include "qa/model/t5.hpp"

namespace qa {

class GraphedMicroSteps;

struct StepTotals {
  torch::Tensor loss_sum;     // summed token cross-entropy (detached, on the device: read it only when logging)
  int64_t target_tokens = 0;  // real target tokens, the loss normaliser
  int64_t source_tokens = 0;
  int64_t padded_tokens = 0;  // source + target positions computed, padding included
  double flops = 0;           // model FLOPs of forward + backward over the padded batches
};

// What the forward and backward pass of a micro-batch needs besides the batch; fixed for a run.
struct MicroStepSpec {
  torch::Device device = torch::kCPU;
  bool bf16 = false;
  double answer_pointer_weight = 0;  // > 0: add answer_pointer_loss_sum (train/loss.hpp) to the objective
  torch::Tensor answer_direction;    // answer_pointer_direction(d_model) on `device`, built once
};
MicroStepSpec make_micro_step_spec(const T5Config& c, const torch::Device& device, bool bf16,
                                   double answer_pointer_weight);

// One micro-batch: forward, then backward of objective / denominator (a 0-dim float tensor on the
// device, so that a recorded CUDA graph can take a new value). The objective is the summed token
// cross-entropy plus, when the spec asks, the weighted answer-pointer loss. Returns the detached
// cross-entropy sum: logged losses compare across runs with and without the auxiliary loss.
torch::Tensor forward_backward(T5Model& model, const Batch& b, const MicroStepSpec& spec, const torch::Tensor& denominator);

// Accumulates into the parameters' gradients the gradient of
//   sum over all micro-batches of token cross-entropy / (target tokens of all micro-batches),
// so that any split of a batch into micro-batches gives the gradient of the whole batch.
// `normalizer` > 0 replaces the local token count (data parallelism: the target tokens of the global
// batch, so that summing the ranks' gradients gives the gradient of the whole batch). Empty
// micro-batches (a rank's share of a short last batch) are skipped.
// `before_last_backward` runs before the forward and backward pass of the last non-empty micro-batch
// (data parallelism arms the gradient all-reduce there). `answer_pointer_weight` > 0 adds that multiple of
// answer_pointer_loss_sum (train/loss.hpp) to the cross-entropy before normalising; loss_sum stays the
// cross-entropy alone, so logged losses compare across runs.
StepTotals accumulate_gradients(T5Model& model, const EncodedDataset& data,
                                const std::vector<const std::vector<std::size_t>*>& micro_batches,
                                const torch::Device& device, bool bf16, int64_t normalizer = 0,
                                const std::function<void()>& before_last_backward = nullptr,
                                double answer_pointer_weight = 0);

// The same over micro-batches already collated and on the device (BatchPrefetcher::take); entries
// without tensors (a rank's empty share) are skipped. `normalizer` 0: the batches' target tokens.
// With `graphs` (CUDA), each micro-batch runs as a replay of the recorded graph of its shape bucket.
StepTotals accumulate_gradients(T5Model& model, const std::vector<Batch>& batches, const MicroStepSpec& spec,
                                int64_t normalizer = 0, const std::function<void()>& before_last_backward = nullptr,
                                GraphedMicroSteps* graphs = nullptr);

}  // namespace qa
