#include "qa/model/generate.hpp"

#include <gtest/gtest.h>

#include "../support/reference.hpp"
#include "qa/io/hf_model_dir.hpp"

namespace qa {

// Cached and uncached decoding, and a batch of 8 versus one row at a time, give identical ids (greedy and beam).
TEST(Generate, CacheAndBatchingDoNotChangeTheAnswer) {
  auto loaded = load_model_dir(test::fixture_model_dir());
  loaded.model->eval();
  std::vector<std::string> texts = {"question: Where is the cat? context: The cat sleeps under the old table.",
                                    "question: Who? context: Bob.",
                                    "question: What color is the sky? context: The sky is blue on a clear day.",
                                    "question: a b c d e f g h i j k l m n o p q r s t u v w x y z",
                                    "question: How many? context: Seven apples and three pears.",
                                    "question: x context: y",
                                    "question: When did it start? context: It started in 1999 at noon.",
                                    "question: Why? context: Because the river flooded the town twice."};
  std::vector<std::vector<int64_t>> rows;
  int64_t longest = 0;
  for (const auto& t : texts) {
    auto ids = loaded.tokenizer.encode(t);
    std::vector<int64_t> r(ids.begin(), ids.end());
    r.push_back(1);
    longest = std::max<int64_t>(longest, static_cast<int64_t>(r.size()));
    rows.push_back(r);
  }
  auto input = torch::zeros({8, longest}, torch::kLong);
  auto mask = torch::zeros({8, longest}, torch::kLong);
  for (int64_t i = 0; i < 8; ++i) {
    for (std::size_t j = 0; j < rows[i].size(); ++j) {
      input[i][static_cast<int64_t>(j)] = rows[i][j];
      mask[i][static_cast<int64_t>(j)] = 1;
    }
  }
  for (int64_t beams : {int64_t{1}, int64_t{3}}) {
    SCOPED_TRACE("num_beams " + std::to_string(beams));
    GenerateOptions cached_opts;
    cached_opts.max_new_tokens = 12;
    cached_opts.num_beams = beams;
    GenerateOptions uncached_opts = cached_opts;
    uncached_opts.use_cache = false;
    auto cached = generate(loaded.model, input, mask, cached_opts);
    auto uncached = generate(loaded.model, input, mask, uncached_opts);
    EXPECT_EQ(cached.ids, uncached.ids);
    bool some_finished_early = false;
    for (int64_t i = 0; i < 8; ++i) {
      auto n = static_cast<int64_t>(rows[i].size());
      auto single = generate(loaded.model, input.slice(0, i, i + 1).slice(1, 0, n),
                             mask.slice(0, i, i + 1).slice(1, 0, n), cached_opts);
      EXPECT_EQ(single.ids[0], cached.ids[i]) << "row " << i;
      EXPECT_NEAR(single.scores[0], cached.scores[i], 1e-5) << "row " << i;
      some_finished_early = some_finished_early || cached.ids[i].size() < 12;
    }
    EXPECT_TRUE(some_finished_early);  // rows leave the batch at different steps: that path is exercised
  }
}

TEST(Generate, MaxNewTokensBoundsTheLength) {
  auto loaded = load_model_dir(test::fixture_model_dir());
  loaded.model->eval();
  auto ids = torch::tensor({{58, 10, 65, 1}}, torch::kLong);
  for (int64_t beams : {int64_t{1}, int64_t{4}}) {
    GenerateOptions o;
    o.max_new_tokens = 3;
    o.num_beams = beams;
    EXPECT_LE(generate(loaded.model, ids, torch::ones_like(ids), o).ids[0].size(), 3u);
  }
}

}  // namespace qa
