// AdamW over one flat buffer: every parameter and its gradient are views into two contiguous fp32
// buffers, so a step is a handful of vectorised operations instead of ~10 per tensor (the per-op
// overhead dominated small models), the global gradient norm is one reduction, and the whole state
// is three buffers (easy to checkpoint or all-reduce).
//
// Semantics are torch.optim.AdamW's: decoupled weight decay (not on RMSNorm weights, as HF Trainer),
// bias-corrected moments; optionally each tensor's learning rate is multiplied by its RMS at the start
// (Adafactor's scale_parameter).
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "qa/config/config.hpp"
#include "qa/model/t5.hpp"
#include "qa/train/adamw_kernel.hpp"

namespace qa {

class Optimizer {
 public:
  // Re-homes the model's parameters (and gradients) into flat buffers on the parameters' device.
  Optimizer(T5Model& model, const TrainSection& train);

  // Clips the global gradient norm to `max_norm` (0: no clipping); returns the norm before clipping.
  // On CPU the factor is applied by step() as it reads the gradients (flat_gradients() keeps the
  // unclipped values until then); elsewhere the gradients are scaled here.
  double clip_grad_norm(double max_norm);
  // One AdamW update with learning rate `lr` (times each tensor's multiplier); on CPU a single fused
  // pass over the buffers (train/adamw_kernel).
  // On CPU, step() also zeroes the gradients as it reads them (zero_grad() is then free).
  void step(double lr);
  void zero_grad();

  // Clipping and update decided on the device, for accelerators: nothing here waits for the GPU.
  // `loss` is the step's summed loss (0-dim, on the device). Where it or the gradient norm is not
  // finite, the update is skipped (parameters, moments and step count untouched), as step() callers
  // do on the host. The returned 0-dim fp32 tensors are read only when logging.
  struct DeviceStep {
    torch::Tensor grad_norm;  // before clipping
    torch::Tensor skipped;    // 1 where the update was skipped, else 0
  };
  DeviceStep clip_and_step_on_device(double max_norm, double lr, const torch::Tensor& loss);

  // The flat buffers the model's parameters and gradients are views of (data parallelism broadcasts
  // the first and all-reduces the second in a few large calls).
  const torch::Tensor& flat_parameters() const { return params_; }
  const torch::Tensor& flat_gradients() const { return grads_; }

  // Per parameter, in named_parameters() order: the learning-rate multiplier.
  const std::vector<double>& multipliers() const { return multipliers_; }

  // The state a checkpoint needs to continue bitwise: both moment buffers and the step count
  // ("exp_avg", "exp_avg_sq": flat fp32 in named_parameters() order; "step": a float64 scalar, exact).
  std::vector<std::pair<std::string, torch::Tensor>> state() const;
  // Restores state(); errors name `source` and the tensor (missing, or sized for another model).
  void load_state(const std::map<std::string, torch::Tensor>& state, const std::string& source);

 private:
  TrainSection options_;
  torch::Tensor params_, grads_, exp_avg_, exp_avg_sq_;
  std::vector<AdamWSegment> segments_;  // per parameter tensor: its range, multiplier and decay
  // Per element, the same (the composite update's operands): built on first use, since on CPU they
  // would cost two parameter-sized buffers that the fused kernel does not need.
  const torch::Tensor& lr_scale();
  const torch::Tensor& decay();
  torch::Tensor lr_scale_, decay_;
  bool grads_zeroed_ = false;  // step() left the gradients zeroed
  std::vector<double> multipliers_;
  int64_t step_ = 0;
  torch::Tensor device_step_;  // float32 step count of clip_and_step_on_device (skips not counted)
  // at::_fused_adamw_ groups (where LibTorch has it for the device): views of the flat buffers of
  // the tensors that share a learning-rate multiplier and weight decay.
  struct FusedGroup {
    double lr_multiplier, weight_decay;
    std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs;
  };
  std::vector<FusedGroup> fused_groups_;
  double grad_scale_ = 1.0;  // clipping factor step() still has to apply (CPU)
};

}  // namespace qa
