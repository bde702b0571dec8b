// AdamW with decoupled weight decay on every weight except the RMSNorm scales (as HF Trainer does).
#pragma once

#include <torch/torch.h>

#include <memory>

#include "qa/config/config.hpp"
#include "qa/model/t5.hpp"

namespace qa {

std::unique_ptr<torch::optim::AdamW> make_adamw(T5Model& model, const TrainSection& train);
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

}  // namespace qa
