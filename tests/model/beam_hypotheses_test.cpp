// BeamHypotheses follows transformers' BeamHypotheses: length-normalised scores, n-best pruning, and
// the early_stopping rules.
#include "qa/model/beam_hypotheses.hpp"

#include <gtest/gtest.h>

namespace qa {

TEST(BeamHypotheses, ScoresAreNormalisedByLengthToThePenalty) {
  BeamHypotheses h(2, 1.0, false);
  h.add({0, 5, 6, 7}, -2.0);  // length 4 (start token included)
  EXPECT_DOUBLE_EQ(h.best().score, -0.5);
  BeamHypotheses h2(2, 2.0, false);
  h2.add({0, 5}, -2.0);
  EXPECT_DOUBLE_EQ(h2.best().score, -0.5);
  BeamHypotheses h0(2, 0.0, false);
  h0.add({0, 5, 6}, -2.0);
  EXPECT_DOUBLE_EQ(h0.best().score, -2.0);
}

TEST(BeamHypotheses, KeepsTheNBestAndTracksTheWorst) {
  BeamHypotheses h(2, 1.0, false);
  h.add({0, 1}, -4.0);  // -2
  EXPECT_DOUBLE_EQ(h.worst_score(), -2.0);
  h.add({0, 2}, -2.0);  // -1
  EXPECT_DOUBLE_EQ(h.worst_score(), -2.0);
  h.add({0, 3}, -6.0);  // -3: not better than the worst of a full set, dropped
  EXPECT_EQ(h.size(), 2u);
  EXPECT_DOUBLE_EQ(h.worst_score(), -2.0);
  h.add({0, 4}, -1.0);  // -0.5: evicts -2; the worst becomes -1
  EXPECT_EQ(h.size(), 2u);
  EXPECT_DOUBLE_EQ(h.worst_score(), -1.0);
  EXPECT_EQ(h.best().tokens, (std::vector<int32_t>{0, 4}));
}

TEST(BeamHypotheses, AmongEqualScoresTheLastAddedIsBest) {
  BeamHypotheses h(3, 1.0, false);
  h.add({0, 7}, -2.0);
  h.add({0, 8}, -2.0);
  EXPECT_EQ(h.best().tokens, (std::vector<int32_t>{0, 8}));
}

TEST(BeamHypotheses, DoneRules) {
  BeamHypotheses lazy(2, 1.0, false);
  EXPECT_FALSE(lazy.is_done(-0.1, 3));  // fewer than num_beams finished: never done
  lazy.add({0, 1}, -3.0);               // -1.5
  lazy.add({0, 2}, -2.0);               // -1.0; worst -1.5
  // An open beam with sum -6 at length 3 can reach -2 < -1.5: done. With sum -3, -1 > -1.5: not done.
  EXPECT_TRUE(lazy.is_done(-6.0, 3));
  EXPECT_FALSE(lazy.is_done(-3.0, 3));
  BeamHypotheses eager(2, 1.0, true);
  eager.add({0, 1}, -3.0);
  EXPECT_FALSE(eager.is_done(-100.0, 3));
  eager.add({0, 2}, -2.0);
  EXPECT_TRUE(eager.is_done(0.0, 3));
}

}  // namespace qa
