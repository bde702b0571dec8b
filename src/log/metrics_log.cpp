#include "qa/log/metrics_log.hpp"

#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "qa/util/error.hpp"

namespace qa {

MetricsLog::MetricsLog(const std::string& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "w");
  if (!file_) throw Error(path + ": cannot write the metrics log: " + std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::write(const nlohmann::json& event) {
  if (!file_) return;
  const std::string line = event.dump() + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    throw Error(path_ + ": cannot write the metrics log: " + std::strerror(errno));
  }
}

}  // namespace qa
