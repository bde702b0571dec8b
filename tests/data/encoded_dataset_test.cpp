#include "qa/data/encoded_dataset.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "qa/data/source_template.hpp"
#include "qa/tokenizer/tokenizer.hpp"

namespace qa {

TEST(SourceTemplate, ReplacesPlaceholders) {
  EXPECT_EQ(render_source("question: {question} context: {context}", "Q?", "C."), "question: Q? context: C.");
  EXPECT_EQ(render_source("{context} || {question} {other}", "Q", "C"), "C || Q {other}");
}

TEST(EncodedDataset, AppendsEosTruncatesAndCounts) {
  auto tok = Tokenizer::load(std::string(QA_FIXTURES) + "/hf-flan-tiny/spiece.model");
  QAExample short_ex{"", "What color is the sky?", "The sky is blue on a clear day.", {"blue"}, 1};
  QAExample long_ex{"", "What?", std::string(200, 'a'), {"a very long answer indeed"}, 2};
  EncodeOptions opt;
  opt.max_source_length = 48;
  opt.max_target_length = 4;
  auto d = encode_dataset({short_ex, long_ex}, tok, opt);
  ASSERT_EQ(d.items.size(), 2u);
  // The reference's ids for example 0: source + EOS, target "blue" + EOS.
  EXPECT_EQ(d.items[0].source.size(), 40u);
  EXPECT_EQ(d.items[0].source.back(), 1);
  EXPECT_EQ(d.items[0].target, (std::vector<int32_t>{79, 1}));
  EXPECT_EQ(d.items[1].source.size(), 48u);
  EXPECT_EQ(d.items[1].source.back(), 1);
  EXPECT_EQ(d.items[1].target.size(), 4u);
  EXPECT_EQ(d.items[1].target.back(), 1);
  EXPECT_EQ(d.stats.truncated_sources, 1u);
  EXPECT_EQ(d.stats.truncated_targets, 1u);
  EXPECT_EQ(d.stats.max_source_length, 48u);
  EXPECT_EQ(d.stats.source_tokens, 88u);
  // The summary for logs/data_stats.json: answer lengths 2 and 4 tokens (EOS included).
  auto summary = dataset_summary(d);
  EXPECT_EQ(summary["examples"], 2);
  EXPECT_EQ(summary["truncated_targets"], 1);
  EXPECT_EQ(summary["answer_lengths"], nlohmann::json({0, 0, 1, 0, 1}));
  EXPECT_DOUBLE_EQ(summary["mean_source_tokens"].get<double>(), 44.0);
}

}  // namespace qa
