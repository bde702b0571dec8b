#include "qa/tokenizer/tokenizer.hpp"

#include <gtest/gtest.h>

#include "qa/util/error.hpp"

namespace qa {
namespace {

std::vector<std::string> corpus() {
  std::vector<std::string> out;
  const char* names[] = {"Alice", "Bob", "Carol", "Dave", "Erin", "Frank"};
  const char* cities[] = {"Paris", "Oslo", "Lima", "Cairo"};
  for (int i = 0; i < 300; ++i) {
    out.push_back(std::string(names[i % 6]) + " lives in " + cities[i % 4] + " and is " + std::to_string(20 + i % 50) +
                  " years old.");
  }
  return out;
}

}  // namespace

TEST(Tokenizer, FixtureModelEncodesLikeTheReference) {
  // Ids from tests/fixtures/hf-flan-tiny/reference.json (examples[0].input_ids without EOS).
  auto tok = Tokenizer::load(std::string(QA_FIXTURES) + "/hf-flan-tiny/spiece.model");
  EXPECT_EQ(tok.vocab_size(), 200);
  auto ids = tok.encode("question: What color is the sky? context: The sky is blue on a clear day.");
  std::vector<int32_t> expected = {58, 10, 65, 17, 42, 25, 63, 35, 6, 7, 3, 14, 4, 3, 9, 37, 91, 16, 63, 60,
                                   62, 17, 30, 3, 9, 37, 91, 3, 14, 79, 51, 3, 5, 3, 197, 35, 59, 90, 8};
  EXPECT_EQ(ids, expected);
}

TEST(Tokenizer, TrainedModelRoundTripsAndUsesT5SpecialIds) {
  TokenizerTrainOptions opts;
  opts.vocab_size = 5000;  // an upper bound: this corpus yields fewer pieces, which must not fail
  auto tok = Tokenizer::train(corpus(), opts);
  EXPECT_GT(tok.vocab_size(), 20);
  EXPECT_LT(tok.vocab_size(), 5000);
  const std::string text = "Carol lives in Lima and is 42 years old.";
  auto ids = tok.encode(text);
  EXPECT_FALSE(ids.empty());
  for (auto id : ids) EXPECT_GE(id, 2);  // never pad (0) or eos (1)
  EXPECT_EQ(tok.decode(ids), text);
  auto with_eos = ids;
  with_eos.push_back(1);
  with_eos.push_back(0);
  EXPECT_EQ(tok.decode(with_eos), text);  // control ids decode to nothing
  // The serialized model reloads to the same tokenizer.
  auto again = Tokenizer::from_bytes(tok.model_bytes(), "bytes");
  EXPECT_EQ(again.encode(text), ids);
}

TEST(Tokenizer, TemplatedTextStillGetsItsFrequentWordsAsPieces) {
  // Every line of corpus() repeats "lives in ... and is ... years old.": such words must become
  // single pieces (SentencePiece's seed search misses them unless word order is shuffled).
  TokenizerTrainOptions opts;
  opts.vocab_size = 200;
  auto tok = Tokenizer::train(corpus(), opts);
  for (const char* word : {"lives", "years"}) EXPECT_EQ(tok.encode(word).size(), 1u) << word;
}

TEST(Tokenizer, TrainingIsDeterministic) {
  TokenizerTrainOptions opts;
  opts.vocab_size = 60;
  EXPECT_EQ(Tokenizer::train(corpus(), opts).model_bytes(), Tokenizer::train(corpus(), opts).model_bytes());
}

TEST(Tokenizer, CorruptModelIsAClearError) {
  try {
    Tokenizer::from_bytes("this is not a model", "bad/spiece.model");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("bad/spiece.model: ", 0), 0u) << e.what();
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
  }
  EXPECT_THROW(Tokenizer::from_bytes("", "empty.model"), Error);
  EXPECT_THROW(Tokenizer::load("/nonexistent/spiece.model"), Error);
}

TEST(Tokenizer, UnicodeTextSurvivesTheRoundTrip) {
  auto c = corpus();
  c.push_back("Zoë lives in Zürich, café crème.");
  auto tok = Tokenizer::train(c, {});
  EXPECT_EQ(tok.decode(tok.encode("Zoë lives in Zürich")), "Zoë lives in Zürich");
}

}  // namespace qa
