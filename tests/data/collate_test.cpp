#include "qa/data/collate.hpp"

#include <gtest/gtest.h>

namespace qa {

TEST(Collate, PadsDynamicallyShiftsLabelsAndMasks) {
  EncodedDataset d;
  d.items = {{{5, 6, 7, 1}, {8, 9, 1}}, {{4, 1}, {3, 1}}, {{9, 9, 9, 9, 9, 1}, {2, 1}}};
  Batch b = collate(d, {0, 1}, /*pad_id=*/0, /*decoder_start_id=*/0);
  // Padded to the longest of the batch (4 source, 3 target), not of the dataset.
  EXPECT_TRUE(torch::equal(b.input_ids, torch::tensor({{5, 6, 7, 1}, {4, 1, 0, 0}}, torch::kLong)));
  EXPECT_TRUE(torch::equal(b.attention_mask, torch::tensor({{1, 1, 1, 1}, {1, 1, 0, 0}}, torch::kLong)));
  EXPECT_TRUE(torch::equal(b.labels, torch::tensor({{8, 9, 1}, {3, 1, -100}}, torch::kLong)));
  EXPECT_TRUE(torch::equal(b.decoder_input_ids, torch::tensor({{0, 8, 9}, {0, 3, 1}}, torch::kLong)));
  EXPECT_EQ(b.source_tokens, 6);
  EXPECT_EQ(b.target_tokens, 5);
  Batch c = collate(d, {2}, 0, 0);
  EXPECT_EQ(c.input_ids.size(1), 6);
}

}  // namespace qa
