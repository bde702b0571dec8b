// The SentencePiece/LibTorch protobuf clash crashes a process that links both before main() runs.
// This test binary links LibTorch and, through the plugin, SentencePiece: merely starting proves the
// design; the test then trains a tokenizer, encodes text and runs the model on the ids in one process.
#include <gtest/gtest.h>

#include "../support/tiny_model.hpp"

#include "qa/model/t5.hpp"
#include "qa/tokenizer/tokenizer.hpp"

namespace qa {

TEST(SentencePieceWithTorch, TrainEncodeAndRunTheModelInOneProcess) {
  std::vector<std::string> text;
  for (int i = 0; i < 200; ++i) text.push_back("question: who is number " + std::to_string(i) + "? context: nobody.");
  TokenizerTrainOptions opts;
  opts.vocab_size = 100;
  auto tok = Tokenizer::train(text, opts);  // the trainer logs through std::cerr inside the plugin
  auto ids = tok.encode("question: who is number 7? context: nobody.");
  ids.push_back(1);
  T5Model m(test::tiny_t5_config(tok.vocab_size()));
  m->init_weights(0);
  auto input = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).unsqueeze(0);
  auto logits = m->forward(input, torch::ones_like(input), torch::zeros({1, 1}, torch::kLong));
  EXPECT_EQ(logits.size(2), tok.vocab_size());
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());
}

}  // namespace qa
