#include "qa/log/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "qa/util/strings.hpp"

namespace qa {

std::string format_progress(const ProgressState& s, int width) {
  const double frac = s.total_steps > 0 ? std::clamp(static_cast<double>(s.step) / s.total_steps, 0.0, 1.0) : 0.0;
  const int filled = static_cast<int>(std::lround(frac * width));
  const double eta = s.step > 0 ? s.elapsed_sec / s.step * (s.total_steps - s.step) : NAN;
  char buf[256];
  std::snprintf(buf, sizeof buf, "step %lld/%lld [%s%s] loss %.4f lr %.2e %.0f tok/s ETA %s",
                static_cast<long long>(s.step), static_cast<long long>(s.total_steps),
                std::string(static_cast<std::size_t>(filled), '#').c_str(),
                std::string(static_cast<std::size_t>(width - filled), '.').c_str(), s.loss, s.lr, s.tokens_per_sec,
                format_duration(eta).c_str());
  return buf;
}

ProgressBar::ProgressBar(bool enabled) : active_(enabled && ::isatty(STDERR_FILENO)) {}

void ProgressBar::update(const ProgressState& s) {
  if (!active_) return;
  std::fprintf(stderr, "\r\033[K%s", format_progress(s).c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::clear() {
  if (!active_ || !drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

void ProgressBar::finish() { clear(); }

}  // namespace qa
