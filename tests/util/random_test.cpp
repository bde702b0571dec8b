#include "qa/util/random.hpp"

#include <set>

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

}  // namespace qa
