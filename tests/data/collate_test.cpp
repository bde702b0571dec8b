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

TEST(Collate, PaddedToAFixedShapeKeepsTheBatchAndPadsTheRest) {
  EncodedDataset d;
  d.items = {{{5, 6, 7, 1}, {8, 9, 1}}, {{4, 1}, {3, 1}}};
  Batch b = collate(d, {0, 1}, /*pad_id=*/0, /*decoder_start_id=*/0);
  Batch p = padded_to(b, 6, 4, /*pad_id=*/0);
  EXPECT_TRUE(torch::equal(p.input_ids, torch::tensor({{5, 6, 7, 1, 0, 0}, {4, 1, 0, 0, 0, 0}}, torch::kLong)));
  EXPECT_TRUE(torch::equal(p.attention_mask, torch::tensor({{1, 1, 1, 1, 0, 0}, {1, 1, 0, 0, 0, 0}}, torch::kLong)));
  EXPECT_TRUE(torch::equal(p.labels, torch::tensor({{8, 9, 1, -100}, {3, 1, -100, -100}}, torch::kLong)));
  EXPECT_TRUE(torch::equal(p.decoder_input_ids, torch::tensor({{0, 8, 9, 0}, {0, 3, 1, 0}}, torch::kLong)));
  EXPECT_EQ(p.source_tokens, b.source_tokens);
  EXPECT_EQ(p.target_tokens, b.target_tokens);
  // Writing a shorter batch into the same tensors leaves no trace of the earlier one.
  Batch shorter = collate(d, {1, 1}, 0, 0);
  copy_padded(shorter, p, 0);
  EXPECT_TRUE(torch::equal(p.input_ids, torch::tensor({{4, 1, 0, 0, 0, 0}, {4, 1, 0, 0, 0, 0}}, torch::kLong)));
  EXPECT_TRUE(torch::equal(p.labels, torch::tensor({{3, 1, -100, -100}, {3, 1, -100, -100}}, torch::kLong)));
  // A batch longer than the tensors does not fit.
  Batch small = padded_to(shorter, 2, 2, 0);
  EXPECT_THROW(copy_padded(b, small, 0), c10::Error);
}

}  // namespace qa
