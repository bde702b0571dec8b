#include "qa/train/device_step_window.hpp"

#include <gtest/gtest.h>

namespace qa {
namespace {

void add(DeviceStepWindow& w, double loss, double norm, bool skipped) {
  w.add(torch::tensor(loss, torch::kFloat), torch::tensor(norm, torch::kFloat), torch::tensor(skipped ? 1.0f : 0.0f));
}

}  // namespace

TEST(DeviceStepWindow, SumsLossesAndCountsSkippedUpdatesAcrossReads) {
  DeviceStepWindow w;
  EXPECT_TRUE(w.empty());
  EXPECT_EQ(w.read().steps, 0);
  add(w, 2.0, 0.5, false);
  add(w, 3.0, 0.25, true);
  add(w, 1.0, 0.75, true);
  auto t = w.read();
  EXPECT_EQ(t.steps, 3);
  EXPECT_DOUBLE_EQ(t.loss_sum, 6.0);
  EXPECT_DOUBLE_EQ(t.last_grad_norm, 0.75);
  EXPECT_EQ(t.skipped, 2);
  EXPECT_EQ(t.skipped_in_a_row, 2);
  EXPECT_TRUE(w.empty());
  // A run of skipped updates carries over into the next window; an applied update ends it.
  add(w, 1.0, 0.5, true);
  t = w.read();
  EXPECT_EQ(t.skipped, 1);
  EXPECT_EQ(t.skipped_in_a_row, 3);
  add(w, 1.0, 0.5, false);
  add(w, 4.0, 0.5, false);
  t = w.read();
  EXPECT_DOUBLE_EQ(t.loss_sum, 5.0);
  EXPECT_EQ(t.skipped, 0);
  EXPECT_EQ(t.skipped_in_a_row, 0);
}

}  // namespace qa
