#include "qa/train/optimizer.hpp"

namespace qa {

std::unique_ptr<torch::optim::AdamW> make_adamw(T5Model& model, const TrainSection& train) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : model->named_parameters()) {
    const bool is_norm = p.key().find("layer_norm") != std::string::npos;
    (is_norm ? no_decay : decay).push_back(p.value());
  }
  auto options = [&](double wd) {
    return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(train.learning_rate)
                                                            .betas({train.adam_beta1, train.adam_beta2})
                                                            .eps(train.adam_epsilon)
                                                            .weight_decay(wd));
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, options(train.weight_decay));
  groups.emplace_back(no_decay, options(0.0));
  return std::make_unique<torch::optim::AdamW>(std::move(groups),
                                               torch::optim::AdamWOptions(train.learning_rate));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

}  // namespace qa
