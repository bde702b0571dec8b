// Parity with Hugging Face transformers: the fixture model's encoder states, logits, loss and greedy
// ids, beam-search ids and scores must match what T5ForConditionalGeneration computed for the same inputs.
#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <memory>

#include "../support/reference.hpp"
#include "qa/io/hf_model_dir.hpp"
#include "qa/model/generate.hpp"
#include "qa/train/loss.hpp"

namespace qa {
namespace {

// One reference model per family: Flan-T5 (gated-gelu, untied lm_head), original T5 (relu, tied
// embeddings with the d_model^-0.5 output rescale), and a gated-silu variant.
struct Parity : ::testing::TestWithParam<std::string> {
  void SetUp() override {
    loaded = std::make_unique<LoadedModel>(load_model_dir(test::fixture_dir(GetParam())));
    loaded->model->eval();
  }
  const nlohmann::json& ref_root() const { return test::reference_of(GetParam()); }
  std::unique_ptr<LoadedModel> loaded;

  // Checks one reference case (an example of batch 1, or the padded batch of 2).
  void check_case(const nlohmann::json& ref) {
    torch::NoGradGuard no_grad;
    T5Model& m = loaded->model;
    auto input_ids = test::tensor_of(ref["input_ids"], torch::kLong);
    auto mask = test::tensor_of(ref["attention_mask"], torch::kLong);
    auto labels = test::tensor_of(ref["labels"], torch::kLong);
    auto dec_in = test::tensor_of(ref["decoder_input_ids"], torch::kLong);

    auto enc = m->encode(input_ids, mask);
    auto enc_ref = test::tensor_of(ref["encoder_last_hidden_state"]["values"]);
    ASSERT_EQ(enc.sizes(), enc_ref.sizes());
    EXPECT_LT(test::relative_error(enc, enc_ref), 1e-4);

    auto logits = m->decode(dec_in, enc, mask);
    auto logits_ref = test::tensor_of(ref["logits"]["values"]);
    ASSERT_EQ(logits.sizes(), logits_ref.sizes());
    EXPECT_LT(test::relative_error(logits, logits_ref), 1e-4);

    const int64_t tokens = (labels != -100).sum().item<int64_t>();
    const double loss = token_cross_entropy_sum(logits, labels).item<double>() / static_cast<double>(tokens);
    const double loss_ref = ref["loss"].get<double>();
    EXPECT_LT(std::abs(loss - loss_ref) / loss_ref, 1e-5) << loss << " vs " << loss_ref;

    const auto& gen = ref_root()["generation"];
    for (bool cache : {true, false}) {
      GenerateOptions greedy;
      greedy.max_new_tokens = gen["max_new_tokens"].get<int64_t>();
      greedy.use_cache = cache;
      GenerateOptions beam = greedy;
      beam.num_beams = gen["beam"]["num_beams"].get<int64_t>();
      beam.length_penalty = gen["beam"]["length_penalty"].get<double>();
      beam.early_stopping = gen["beam"]["early_stopping"].get<bool>();
      const char* how = cache ? " (cached)" : " (uncached)";
      expect_ids(generate(m, input_ids, mask, greedy).ids, ref["greedy_ids"], std::string("greedy") + how);
      auto beams = generate(m, input_ids, mask, beam);
      expect_ids(beams.ids, ref["beam3_ids"], std::string("beam") + how);
      ASSERT_EQ(beams.scores.size(), ref["beam3_scores"].size());
      for (std::size_t r = 0; r < beams.scores.size(); ++r) {
        const double expected = ref["beam3_scores"][r].get<double>();
        EXPECT_NEAR(beams.scores[r], expected, 1e-5 * std::abs(expected)) << "beam score, row " << r << how;
      }
    }
  }

  // Reference rows: start token, the tokens, EOS if reached, then padding.
  static void expect_ids(const std::vector<std::vector<int32_t>>& ids, const nlohmann::json& ref, const std::string& what) {
    ASSERT_EQ(ids.size(), ref.size()) << what;
    for (std::size_t r = 0; r < ids.size(); ++r) {
      std::vector<int32_t> expected;
      for (std::size_t k = 1; k < ref[r].size(); ++k) {
        const int32_t t = ref[r][k].get<int32_t>();
        if (t == 1) break;
        expected.push_back(t);
      }
      EXPECT_EQ(ids[r], expected) << what << ", row " << r;
    }
  }
};
}  // namespace

TEST_P(Parity, SingleExamples) {
  const auto& examples = ref_root()["examples"];
  ASSERT_EQ(examples.size(), 3u);
  for (const auto& ex : examples) {
    SCOPED_TRACE(ex["question"].get<std::string>());
    check_case(ex);
  }
}

TEST_P(Parity, PaddedBatch) { check_case(ref_root()["padded_batch"]); }

TEST_P(Parity, ParameterNamesAreTheHuggingFaceNames) {
  std::set<std::string> ours;
  for (const auto& p : loaded->model->named_parameters()) ours.insert(p.key());
  std::set<std::string> theirs;
  for (const auto& name : ref_root()["tensors_in_safetensors"]) theirs.insert(name.get<std::string>());
  EXPECT_EQ(ours, theirs);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Parity, ::testing::Values("hf-flan-tiny", "hf-t5-relu-tied", "hf-t5-gated-silu"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (auto& c : n) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return n;
                         });

// A sharded BF16 checkpoint written by transformers' save_pretrained: loading widens the stored bf16
// values to fp32, and the logits are what transformers computes from that folder in fp32.
TEST(ShardedBf16Fixture, LoadsAndGivesTheReferenceLogits) {
  auto loaded = load_model_dir(test::fixture_dir("hf-flan-tiny-sharded-bf16"));
  loaded.model->eval();
  std::ifstream in(test::fixture_dir("hf-flan-tiny-sharded-bf16") + "/expected.json");
  auto expected = nlohmann::json::parse(in);
  torch::NoGradGuard no_grad;
  auto logits = loaded.model->forward(test::tensor_of(expected["input_ids"], torch::kLong),
                                      test::tensor_of(expected["attention_mask"], torch::kLong),
                                      test::tensor_of(expected["decoder_input_ids"], torch::kLong));
  auto want = test::tensor_of(expected["logits"]["values"]);
  ASSERT_EQ(logits.sizes(), want.sizes());
  EXPECT_LT(test::relative_error(logits, want), 1e-4);
  // And they differ from the fp32 model's: the bf16 rounding really happened.
  auto fp32 = load_model_dir(test::fixture_model_dir());
  fp32.model->eval();
  auto logits32 = fp32.model->forward(test::tensor_of(expected["input_ids"], torch::kLong),
                                      test::tensor_of(expected["attention_mask"], torch::kLong),
                                      test::tensor_of(expected["decoder_input_ids"], torch::kLong));
  EXPECT_GT((logits32 - logits).abs().max().item<double>(), 1e-2);
}

}  // namespace qa
