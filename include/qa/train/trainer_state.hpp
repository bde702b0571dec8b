// Where a run is: saved in every checkpoint as trainer_state.json so that a resumed run continues
// with the next micro-batch of the same epoch order, the same best model and the same counters.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace qa {

struct TrainerState {
  int64_t step = 0;      // optimizer steps done
  int64_t epoch = 0;     // epoch of the next micro-batch
  int64_t position = 0;  // index of the next micro-batch in that epoch's order
  double best_metric = NAN;
  int64_t best_step = -1;  // -1: no evaluation yet
  double best_exact_match = NAN, best_f1 = NAN, best_eval_loss = NAN;
  int64_t bad_steps = 0;   // updates skipped for non-finite values, in total

  nlohmann::json to_json() const;
  // Errors name `source` and the key (qa::Error, kBadInput).
  static TrainerState from_json(const nlohmann::json& j, const std::string& source);
};

}  // namespace qa
