#include "qa/data/batch_prefetcher.hpp"

#include <gtest/gtest.h>

namespace qa {
namespace {

EncodedDataset dataset() {
  EncodedDataset d;
  d.items = {{{5, 6, 7, 1}, {8, 9, 1}}, {{4, 1}, {3, 1}}, {{9, 9, 9, 9, 9, 1}, {2, 1}}, {{7, 1}, {6, 6, 1}}};
  return d;
}

void expect_same(const Batch& a, const Batch& b) {
  EXPECT_TRUE(torch::equal(a.input_ids, b.input_ids));
  EXPECT_TRUE(torch::equal(a.attention_mask, b.attention_mask));
  EXPECT_TRUE(torch::equal(a.decoder_input_ids, b.decoder_input_ids));
  EXPECT_TRUE(torch::equal(a.labels, b.labels));
  EXPECT_EQ(a.source_tokens, b.source_tokens);
  EXPECT_EQ(a.target_tokens, b.target_tokens);
}

}  // namespace

TEST(BatchPrefetcher, GivesWhatCollateGivesPrefetchedOrNot) {
  const EncodedDataset d = dataset();
  BatchPrefetcher p(d, /*pad_id=*/0, /*decoder_start_id=*/0, torch::Device(torch::kCPU));
  const MicroBatches step1 = {{0, 1}, {}, {2}}, step2 = {{3, 0}};
  // Nothing prefetched: collated on the spot. An empty share stays an empty entry.
  auto b1 = p.take(step1);
  ASSERT_EQ(b1.size(), 3u);
  expect_same(b1[0], collate(d, {0, 1}, 0, 0));
  EXPECT_FALSE(b1[1].input_ids.defined());
  expect_same(b1[2], collate(d, {2}, 0, 0));
  // Prefetched: the background thread's batches.
  p.prefetch(step2);
  auto b2 = p.take(step2);
  ASSERT_EQ(b2.size(), 1u);
  expect_same(b2[0], collate(d, {3, 0}, 0, 0));
  // A prefetch for other examples than those taken is dropped, never served.
  p.prefetch(step2);
  auto b3 = p.take(step1);
  ASSERT_EQ(b3.size(), 3u);
  expect_same(b3[0], collate(d, {0, 1}, 0, 0));
}

}  // namespace qa
