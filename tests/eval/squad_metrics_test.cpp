#include "qa/eval/squad_metrics.hpp"

#include <gtest/gtest.h>

namespace qa {

// Cases of the official SQuAD v1.1 evaluate script's normalisation (lower case, punctuation,
// articles, whitespace) and its token F1.
TEST(SquadMetrics, NormalizeAnswer) {
  EXPECT_EQ(normalize_answer("The Cat"), "cat");
  EXPECT_EQ(normalize_answer("  an  apple, a pear; THE plum!  "), "apple pear plum");
  EXPECT_EQ(normalize_answer("U.S.A."), "usa");
  EXPECT_EQ(normalize_answer("theatre"), "theatre");  // articles only as whole words
  EXPECT_EQ(normalize_answer("rock-n-roll"), "rocknroll");
  EXPECT_EQ(normalize_answer("Zürich"), "zürich");     // non-ASCII bytes kept
  EXPECT_EQ(normalize_answer("the"), "");
}

TEST(SquadMetrics, ExactMatchTakesTheBestGold) {
  EXPECT_EQ(exact_match_score("the Eiffel Tower", {"Eiffel Tower"}), 1.0);
  EXPECT_EQ(exact_match_score("Eiffel", {"Eiffel Tower"}), 0.0);
  EXPECT_EQ(exact_match_score("paris", {"London", "Paris."}), 1.0);
  EXPECT_EQ(exact_match_score("", {"x"}), 0.0);
}

TEST(SquadMetrics, F1CountsTokenOverlap) {
  EXPECT_DOUBLE_EQ(f1_score("Eiffel Tower", {"the Eiffel Tower"}), 1.0);
  // pred {eiffel}, gold {eiffel, tower}: p = 1, r = 0.5 -> 2/3
  EXPECT_DOUBLE_EQ(f1_score("Eiffel", {"Eiffel Tower"}), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(f1_score("blue red", {"green"}), 0.0);
  // repeated tokens count once per occurrence: pred {x x y}, gold {x y y} -> 2 shared, p = r = 2/3
  EXPECT_DOUBLE_EQ(f1_score("x x y", {"x y y"}), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(f1_score("tower", {"bridge", "Eiffel Tower"}), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(f1_score("", {""}), 0.0);  // v1.1: no common tokens -> 0
}

}  // namespace qa
