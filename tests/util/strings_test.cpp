#include "qa/util/strings.hpp"

#include <gtest/gtest.h>

namespace qa {

TEST(Strings, LevenshteinCountsEdits) {
  EXPECT_EQ(levenshtein("", ""), 0u);
  EXPECT_EQ(levenshtein("abc", "abc"), 0u);
  EXPECT_EQ(levenshtein("kitten", "sitting"), 3u);
  EXPECT_EQ(levenshtein("", "abc"), 3u);
}

TEST(Strings, ClosestMatchSuggestsNearKeysOnly) {
  std::vector<std::string> keys = {"train.learning_rate", "train.batch_size", "model.d_model"};
  EXPECT_EQ(closest_match("train.learnig_rate", keys), "train.learning_rate");
  EXPECT_EQ(closest_match("train.batchsize", keys), "train.batch_size");
  EXPECT_EQ(closest_match("eval.batch_size", keys), "train.batch_size");  // same last component
  EXPECT_EQ(closest_match("completely.different", keys), "");
}

TEST(Strings, FormatNumberIsShortAndExact) {
  EXPECT_EQ(format_number(0.0003), "0.0003");
  EXPECT_EQ(format_number(12), "12");
  EXPECT_EQ(format_number(1e-6), "1e-06");
  EXPECT_EQ(std::stod(format_number(0.1 + 0.2)), 0.1 + 0.2);
}

TEST(Strings, FormatDuration) {
  EXPECT_EQ(format_duration(42), "42s");
  EXPECT_EQ(format_duration(185), "3m05s");
  EXPECT_EQ(format_duration(3720), "1h02m");
  EXPECT_EQ(format_duration(-1), "?");
}

}  // namespace qa
