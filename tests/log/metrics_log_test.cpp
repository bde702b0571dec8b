#include "qa/log/metrics_log.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace qa {

// A resumed run rewinds metrics.jsonl to its checkpoint's step, dropping a torn last line too.
TEST(MetricsLog, RewindKeepsEventsUpToTheStepThenAppendContinues) {
  auto path = (std::filesystem::temp_directory_path() / ("qa-metrics-" + std::to_string(::getpid()))).string();
  {
    MetricsLog log(path);
    for (int s = 1; s <= 6; ++s) log.write({{"event", "train"}, {"step", s}});
    log.write({{"event", "eval"}, {"step", 4}});
  }
  std::ofstream(path, std::ios::app) << "{\"event\": \"train\", \"st";  // killed mid-line
  rewind_metrics_log(path, 4);
  {
    MetricsLog log(path, /*append=*/true);
    log.write({{"event", "train"}, {"step", 5}});
  }
  std::ifstream in(path);
  std::vector<int> steps;
  for (std::string line; std::getline(in, line);) steps.push_back(nlohmann::json::parse(line)["step"].get<int>());
  EXPECT_EQ(steps, (std::vector<int>{1, 2, 3, 4, 4, 5}));
  rewind_metrics_log(path + ".missing", 3);  // nothing to rewind: fine
  std::filesystem::remove(path);
}

}  // namespace qa
