#include "qa/train/lr_schedule.hpp"

#include <gtest/gtest.h>

namespace qa {

TEST(LrSchedule, LinearWarmupThenLinearDecayToZero) {
  LrSchedule s{1.0, 10, 110, "linear", 0.0};
  EXPECT_DOUBLE_EQ(s.at(1), 0.1);
  EXPECT_DOUBLE_EQ(s.at(5), 0.5);
  EXPECT_DOUBLE_EQ(s.at(10), 1.0);
  EXPECT_DOUBLE_EQ(s.at(60), 0.5);
  EXPECT_DOUBLE_EQ(s.at(110), 0.0);
  EXPECT_DOUBLE_EQ(s.at(200), 0.0);
}

TEST(LrSchedule, CosineDecayWithFloor) {
  LrSchedule s{2.0, 0, 100, "cosine", 0.1};
  EXPECT_DOUBLE_EQ(s.at(0), 2.0);
  EXPECT_NEAR(s.at(50), 2.0 * (0.1 + 0.9 * 0.5), 1e-12);
  EXPECT_NEAR(s.at(100), 0.2, 1e-12);
}

TEST(LrSchedule, ConstantAfterWarmup) {
  LrSchedule s{3e-4, 4, 100, "constant", 0.0};
  EXPECT_DOUBLE_EQ(s.at(2), 1.5e-4);
  EXPECT_DOUBLE_EQ(s.at(4), 3e-4);
  EXPECT_DOUBLE_EQ(s.at(99), 3e-4);
}

}  // namespace qa
