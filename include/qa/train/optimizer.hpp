// AdamW with decoupled weight decay on every weight except the RMSNorm scales (as HF Trainer does),
// and optional per-tensor learning-rate scaling by the tensor's RMS (Adafactor's scale_parameter).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "qa/config/config.hpp"
#include "qa/model/t5.hpp"

namespace qa {

class Optimizer {
 public:
  Optimizer(T5Model& model, const TrainSection& train);
  // Sets the schedule's learning rate; each tensor gets lr x its multiplier.
  void set_learning_rate(double lr);
  void step() { adamw_->step(); }
  void zero_grad() { adamw_->zero_grad(); }
  torch::optim::AdamW& adamw() { return *adamw_; }
  const std::vector<double>& multipliers() const { return multipliers_; }

 private:
  std::unique_ptr<torch::optim::AdamW> adamw_;
  std::vector<double> multipliers_;  // one per parameter group
};

}  // namespace qa
