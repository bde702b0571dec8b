// Training progress: a redrawn one-line bar on a terminal, or nothing (the trainer then logs lines).
#pragma once

#include <cstdint>
#include <string>

namespace qa {

struct ProgressState {
  int64_t step = 0;
  int64_t total_steps = 0;
  double loss = 0;
  double lr = 0;
  double tokens_per_sec = 0;
  double elapsed_sec = 0;
};

// The bar text without terminal control characters (testable).
std::string format_progress(const ProgressState& s, int width = 24);

class ProgressBar {
 public:
  // Draws only when stderr is a terminal (and `enabled`).
  explicit ProgressBar(bool enabled);
  bool active() const { return active_; }
  void update(const ProgressState& s);
  // Erases the bar so that a log line can be printed; the next update redraws it.
  void clear();
  void finish();

 private:
  bool active_;
  bool drawn_ = false;
};

}  // namespace qa
