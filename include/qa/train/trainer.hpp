// Fine-tuning from a config: read and check every input, build tokenizer and model, train with
// periodic evaluation, keep the best model in <output>/model, log to <output>/logs.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "qa/config/config.hpp"

namespace qa {

struct TrainSummary {
  int64_t steps = 0;
  double seconds = 0;
  bool evaluated = false;
  int64_t best_step = 0;
  double best_exact_match = NAN;
  double best_f1 = NAN;
  double best_eval_loss = NAN;
  double final_train_loss = NAN;
  std::string model_dir;
};

TrainSummary train(const Config& config);

}  // namespace qa
