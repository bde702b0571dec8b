#include "qa/util/random.hpp"

#include <algorithm>
#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace qa {

TEST(SplitMix64, MatchesTheReferenceSequence) {
  SplitMix64 r(0);
  EXPECT_EQ(r.next(), 0xE220A8397B1DCDAFull);  // the published first outputs of SplitMix64 seeded with 0
  EXPECT_EQ(r.next(), 0x6E789E6AA1B965F4ull);
}

TEST(SplitMix64, BelowIsInRangeAndCoversIt) {
  SplitMix64 r(3);
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    auto v = r.below(7);
    ASSERT_LT(v, 7u);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 7u);
}

TEST(SampleIndices, DistinctSortedInRangeAndAllWhenKCoversN) {
  SplitMix64 r(5);
  auto s = sample_indices(100, 10, r);
  ASSERT_EQ(s.size(), 10u);
  EXPECT_TRUE(std::is_sorted(s.begin(), s.end()));
  EXPECT_EQ(std::set<std::size_t>(s.begin(), s.end()).size(), 10u);
  EXPECT_LT(s.back(), 100u);
  EXPECT_EQ(sample_indices(4, 9, r), (std::vector<std::size_t>{0, 1, 2, 3}));
  SplitMix64 a(7), b(7);
  EXPECT_EQ(sample_indices(1000, 20, a), sample_indices(1000, 20, b));  // seeded: reproducible
}

TEST(Shuffle, IsAPermutationAndSeeded) {
  std::vector<int> v{0, 1, 2, 3, 4, 5, 6, 7}, w = v;
  SplitMix64 a(1), b(1);
  shuffle(v, a);
  shuffle(w, b);
  EXPECT_EQ(v, w);
  EXPECT_EQ(std::set<int>(v.begin(), v.end()).size(), 8u);
  EXPECT_NE(v, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
}

}  // namespace qa
