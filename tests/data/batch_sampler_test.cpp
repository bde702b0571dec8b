#include "qa/data/batch_sampler.hpp"

#include <algorithm>
#include <set>

#include <gtest/gtest.h>

namespace qa {

TEST(BatchSampler, EachEpochCoversEveryExampleOnce) {
  BatchSampler s(103, 10, 7, true);
  EXPECT_EQ(s.batches_per_epoch(), 11u);
  for (int epoch = 0; epoch < 3; ++epoch) {
    auto batches = s.epoch_batches(epoch);
    ASSERT_EQ(batches.size(), 11u);
    EXPECT_EQ(batches.back().size(), 3u);
    std::multiset<std::size_t> seen;
    for (const auto& b : batches) seen.insert(b.begin(), b.end());
    ASSERT_EQ(seen.size(), 103u);
    for (std::size_t i = 0; i < 103; ++i) EXPECT_EQ(seen.count(i), 1u);
  }
}

TEST(BatchSampler, OrderDependsOnlyOnSeedAndEpoch) {
  BatchSampler a(50, 8, 1, true), b(50, 8, 1, true), c(50, 8, 2, true);
  EXPECT_EQ(a.epoch_batches(3), b.epoch_batches(3));  // reproducible, no hidden state
  EXPECT_NE(a.epoch_batches(0), a.epoch_batches(1));  // reshuffled every epoch
  EXPECT_NE(a.epoch_batches(0), c.epoch_batches(0));  // seed matters
}

TEST(BatchSampler, KnownFirstBatchPinsTheAlgorithm) {
  // SplitMix64 + Fisher-Yates: the same on every platform; a change here changes every run's data order.
  BatchSampler s(10, 4, 42, true);
  auto first = s.epoch_batches(0).front();
  BatchSampler again(10, 4, 42, true);
  EXPECT_EQ(first, again.epoch_batches(0).front());
}

TEST(BatchSampler, NoShuffleKeepsFileOrder) {
  BatchSampler s(5, 2, 9, false);
  auto b = s.epoch_batches(4);
  EXPECT_EQ(b, (std::vector<std::vector<std::size_t>>{{0, 1}, {2, 3}, {4}}));
}

TEST(BatchSampler, LengthGroupingCoversEveryExampleWithLittlePadding) {
  SplitMix64 r(5);
  std::vector<std::size_t> lengths(1000);
  for (auto& l : lengths) l = 10 + r.below(190);
  auto padding = [&](const std::vector<std::vector<std::size_t>>& batches) {
    double padded = 0, real = 0;
    for (const auto& b : batches) {
      std::size_t longest = 0;
      for (auto i : b) longest = std::max(longest, lengths[i]), real += lengths[i];
      padded += static_cast<double>(longest * b.size());
    }
    return 1.0 - real / padded;
  };
  BatchSampler grouped(lengths, 16, 1, /*group_batches=*/50), plain(lengths.size(), 16, 1, true);
  for (int epoch = 0; epoch < 2; ++epoch) {
    auto batches = grouped.epoch_batches(epoch);
    std::multiset<std::size_t> seen;
    for (const auto& b : batches) seen.insert(b.begin(), b.end());
    ASSERT_EQ(seen.size(), 1000u);
    for (std::size_t i = 0; i < 1000; ++i) ASSERT_EQ(seen.count(i), 1u);
    EXPECT_LT(padding(batches), 0.05);
    EXPECT_GT(padding(plain.epoch_batches(epoch)), 0.3);
  }
  // Batches come in random order, not longest first.
  auto batches = grouped.epoch_batches(0);
  EXPECT_FALSE(std::is_sorted(batches.begin(), batches.end(), [&](const auto& a, const auto& b) {
    return lengths[a.front()] > lengths[b.front()];
  }));
}

// With the global batches of an epoch split across ranks, every example is used exactly once per
// epoch for world sizes 1, 2 and 3 (also when the last batch is smaller than the world).
TEST(BatchSampler, RankSharesCoverEveryExampleOncePerEpoch) {
  for (int64_t world : {1, 2, 3}) {
    for (bool grouped : {false, true}) {
      std::vector<std::size_t> lengths(103);
      for (std::size_t i = 0; i < lengths.size(); ++i) lengths[i] = (i * 37) % 50;
      BatchSampler s = grouped ? BatchSampler(lengths, 8, 5, 4) : BatchSampler(lengths.size(), 8, 5, true);
      for (int64_t epoch : {0, 1}) {
        std::vector<int> seen(lengths.size(), 0);
        for (const auto& batch : s.epoch_batches(epoch)) {
          std::size_t total = 0;
          for (int64_t r = 0; r < world; ++r) {
            auto share = rank_share(batch, r, world);
            EXPECT_LE(share.size(), (batch.size() + static_cast<std::size_t>(world) - 1) / static_cast<std::size_t>(world));
            total += share.size();
            for (auto i : share) ++seen[i];
          }
          EXPECT_EQ(total, batch.size());
        }
        for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 1) << "world " << world << " example " << i;
      }
    }
  }
  EXPECT_TRUE(rank_share({4}, 1, 2).size() == 1 && rank_share({4}, 0, 2).empty());  // a share may be empty
}

}  // namespace qa
