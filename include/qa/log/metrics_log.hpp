// logs/metrics.jsonl: one JSON object per line and event (train log step or evaluation), flushed at once.
#pragma once

#include <cstdio>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace qa {

class MetricsLog {
 public:
  MetricsLog() = default;
  // Opens (truncating) `path`; errors name the file.
  explicit MetricsLog(const std::string& path);
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  ~MetricsLog();

  void write(const nlohmann::json& event);
  bool is_open() const { return file_ != nullptr; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace qa
