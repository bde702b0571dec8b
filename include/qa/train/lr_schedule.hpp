// Learning rate per optimizer step: linear warmup, then linear or cosine decay (or constant).
#pragma once

#include <cstdint>
#include <string>

namespace qa {

struct LrSchedule {
  double peak = 3e-4;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  std::string kind = "linear";  // linear | cosine | constant
  double min_ratio = 0.0;       // decay floor, fraction of peak

  // Learning rate for update number `step` (1-based): warmup reaches the peak at step == warmup_steps;
  // the decay ends at total_steps (unlike HF's, the first update already moves: lr(1) = peak / warmup).
  double at(int64_t step) const;
};

}  // namespace qa
