#include "qa/train/optimizer.hpp"

#include <algorithm>

namespace qa {

Optimizer::Optimizer(T5Model& model, const TrainSection& train) {
  auto options = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(train.learning_rate)
                                                            .betas({train.adam_beta1, train.adam_beta2})
                                                            .eps(train.adam_epsilon)
                                                            .weight_decay(wd));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (train.lr_scaling == "param_rms") {
    // T5 initialises embeddings with std 1 and projections with std ~d^-0.5: with one absolute step
    // size the embeddings move orders of magnitude slower, relative to their size, than the rest.
    // Scaling each tensor's step by its RMS at the start (Adafactor's scale_parameter) evens that out.
    torch::NoGradGuard no_grad;
    for (const auto& p : model->named_parameters()) {
      const bool is_norm = p.key().find("layer_norm") != std::string::npos;
      groups.emplace_back(std::vector<torch::Tensor>{p.value()}, options(is_norm ? 0.0 : train.weight_decay));
      multipliers_.push_back(std::max(1e-3, p.value().pow(2).mean().sqrt().item<double>()));
    }
  } else {
    std::vector<torch::Tensor> decay, no_decay;
    for (const auto& p : model->named_parameters()) {
      const bool is_norm = p.key().find("layer_norm") != std::string::npos;
      (is_norm ? no_decay : decay).push_back(p.value());
    }
    groups.emplace_back(decay, options(train.weight_decay));
    groups.emplace_back(no_decay, options(0.0));
    multipliers_ = {1.0, 1.0};
  }
  adamw_ = std::make_unique<torch::optim::AdamW>(std::move(groups), torch::optim::AdamWOptions(train.learning_rate));
}

void Optimizer::set_learning_rate(double lr) {
  auto& groups = adamw_->param_groups();
  for (std::size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(lr * multipliers_[i]);
}

}  // namespace qa
