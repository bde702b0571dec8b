// Step statistics kept on the device between log lines, so that a training step on a GPU never
// waits for it: the loss, the gradient norm and skipped updates (Optimizer::clip_and_step_on_device)
// are summed there and read in one transfer when a log line, checkpoint or the end needs them.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace qa {

class DeviceStepWindow {
 public:
  struct Totals {
    double loss_sum = 0;             // summed token loss of the steps since the last read
    double last_grad_norm = NAN;     // of the newest step (NAN before any)
    int64_t steps = 0;               // steps since the last read
    int64_t skipped = 0;             // updates skipped since the last read (non-finite values)
    int64_t skipped_in_a_row = 0;    // consecutive skipped updates ending at the newest step
  };

  // `loss_sum`: the step's summed loss; `grad_norm`, `skipped`: Optimizer::DeviceStep's (all 0-dim).
  void add(const torch::Tensor& loss_sum, const torch::Tensor& grad_norm, const torch::Tensor& skipped);
  // Copies the sums to the host (waits for the device) and starts a new window.
  Totals read();
  bool empty() const { return steps_ == 0; }

 private:
  torch::Tensor stats_;  // float64 [loss_sum, last_grad_norm, skipped, skipped_in_a_row]
  int64_t steps_ = 0;
};

}  // namespace qa
