// logs/metrics.jsonl: one JSON object per line and event (train log step or evaluation), flushed at once.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace qa {

class MetricsLog {
 public:
  MetricsLog() = default;
  // Opens `path`, truncating it, or appending to it (a resumed run); errors name the file.
  explicit MetricsLog(const std::string& path, bool append = false);
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  ~MetricsLog();

  void write(const nlohmann::json& event);
  bool is_open() const { return file_ != nullptr; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

// Keeps only the events of steps <= `step` (a resumed run rewinds the log to its checkpoint, so that
// the steps it repeats are not logged twice). A missing file is fine. Atomic.
void rewind_metrics_log(const std::string& path, int64_t step);

}  // namespace qa
