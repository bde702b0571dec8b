#include "qa/train/device_step_window.hpp"

namespace qa {

void DeviceStepWindow::add(const torch::Tensor& loss_sum, const torch::Tensor& grad_norm, const torch::Tensor& skipped) {
  torch::NoGradGuard no_grad;
  auto s = skipped.to(torch::kDouble);
  if (!stats_.defined()) stats_ = torch::zeros({4}, loss_sum.options().dtype(torch::kDouble));
  stats_[0].add_(loss_sum.to(torch::kDouble));
  stats_[1].copy_(grad_norm);
  stats_[2].add_(s);
  stats_[3].add_(1.0).mul_(s);  // back to 0 after an update that was applied
  ++steps_;
}

DeviceStepWindow::Totals DeviceStepWindow::read() {
  Totals t;
  if (steps_ == 0) return t;
  auto host = stats_.to(torch::kCPU);
  auto* v = host.data_ptr<double>();
  t.loss_sum = v[0];
  t.last_grad_norm = v[1];
  t.steps = steps_;
  t.skipped = static_cast<int64_t>(v[2]);
  t.skipped_in_a_row = static_cast<int64_t>(v[3]);
  // The run of skipped updates continues across windows; the sums start again.
  stats_[0].zero_();
  stats_[2].zero_();
  steps_ = 0;
  return t;
}

}  // namespace qa
