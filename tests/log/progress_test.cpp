#include "qa/log/progress.hpp"

#include <gtest/gtest.h>

namespace qa {

TEST(Progress, FormatShowsStepLossLrThroughputAndEta) {
  ProgressState s{50, 200, 1.23456, 3e-4, 12345.6, 30.0};
  auto text = format_progress(s, 8);
  EXPECT_NE(text.find("step 50/200"), std::string::npos) << text;
  EXPECT_NE(text.find("[##......]"), std::string::npos) << text;
  EXPECT_NE(text.find("loss 1.2346"), std::string::npos) << text;
  EXPECT_NE(text.find("lr 3.00e-04"), std::string::npos) << text;
  EXPECT_NE(text.find("12346 tok/s"), std::string::npos) << text;
  EXPECT_NE(text.find("ETA 1m30s"), std::string::npos) << text;  // 150 steps at 0.6 s
}

TEST(Progress, BarIsInactiveWithoutATerminal) {
  // ctest captures stderr: no terminal, so the trainer falls back to log lines.
  ProgressBar bar(true);
  EXPECT_FALSE(bar.active());
  EXPECT_FALSE(ProgressBar(false).active());
}

}  // namespace qa
