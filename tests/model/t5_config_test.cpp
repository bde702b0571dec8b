#include "qa/model/t5_config.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "qa/util/error.hpp"

namespace qa {

TEST(T5Config, ReadsTheFixtureConfig) {
  auto c = T5Config::from_hf_file(std::string(QA_FIXTURES) + "/hf-flan-tiny/config.json");
  EXPECT_EQ(c.vocab_size, 200);
  EXPECT_EQ(c.d_model, 64);
  EXPECT_EQ(c.d_kv, 16);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.num_decoder_layers, 3);
  EXPECT_EQ(c.dense_act_fn, "gelu_new");
  EXPECT_TRUE(c.is_gated_act);
  EXPECT_FALSE(c.tie_word_embeddings);
}

TEST(T5Config, FeedForwardProjFollowsTransformersRules) {
  T5Config c;
  c.feed_forward_proj = "gated-gelu";
  c.derive_activation("x");
  EXPECT_EQ(c.dense_act_fn, "gelu_new");  // HF maps gated-gelu to the tanh approximation
  EXPECT_TRUE(c.is_gated_act);
  c.feed_forward_proj = "relu";
  c.derive_activation("x");
  EXPECT_EQ(c.dense_act_fn, "relu");
  EXPECT_FALSE(c.is_gated_act);
  c.feed_forward_proj = "gated-silu";
  c.derive_activation("x");
  EXPECT_EQ(c.dense_act_fn, "silu");
  EXPECT_TRUE(c.is_gated_act);
  for (const char* bad : {"gated-gelu-x", "fancy-relu", "gated-", "tanhh"}) {
    c.feed_forward_proj = bad;
    EXPECT_THROW(c.derive_activation("x"), Error) << bad;
  }
}

TEST(T5Config, StoredActivationOverridesTheDerivedOne) {
  nlohmann::json j = {{"vocab_size", 10}, {"feed_forward_proj", "gated-gelu"}, {"dense_act_fn", "gelu"}};
  auto c = T5Config::from_hf_json(j, "config.json");
  EXPECT_EQ(c.dense_act_fn, "gelu");
  EXPECT_TRUE(c.is_gated_act);
}

TEST(T5Config, DefaultsAreTransformersDefaults) {
  auto c = T5Config::from_hf_json({{"vocab_size", 100}, {"num_layers", 3}}, "config.json");
  EXPECT_EQ(c.num_decoder_layers, 3);  // defaults to num_layers
  EXPECT_EQ(c.dense_act_fn, "relu");
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.d_ff, 2048);
}

TEST(T5Config, BadValuesNameTheKey) {
  auto msg = [](const nlohmann::json& j) -> std::string {
    try {
      T5Config::from_hf_json(j, "m/config.json");
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kBadInput);
      return e.what();
    }
    return "";
  };
  EXPECT_NE(msg({{"vocab_size", "big"}}).find("'vocab_size'"), std::string::npos);
  EXPECT_NE(msg({{"d_model", 8}}).find("'vocab_size': is required"), std::string::npos);
  EXPECT_NE(msg({{"vocab_size", 10}, {"model_type", "bert"}}).find("model_type"), std::string::npos);
  EXPECT_NE(msg({{"vocab_size", 10}, {"num_heads", 0}}).find("num_heads"), std::string::npos);
  EXPECT_NE(msg({{"vocab_size", 10}, {"eos_token_id", 10}}).find("eos_token_id"), std::string::npos);
  EXPECT_NE(msg({{"vocab_size", 10}, {"feed_forward_proj", "gated-tanh"}}).find("feed_forward_proj"), std::string::npos);
  EXPECT_NE(msg(nlohmann::json::array()).find("m/config.json"), std::string::npos);
}

TEST(T5Config, HfJsonRoundTrips) {
  T5Config c;
  c.vocab_size = 321;
  c.d_model = 48;
  c.feed_forward_proj = "relu";
  c.tie_word_embeddings = true;
  c.derive_activation("x");
  auto j = c.to_hf_json();
  EXPECT_EQ(j["model_type"], "t5");
  EXPECT_EQ(j["architectures"][0], "T5ForConditionalGeneration");
  auto back = T5Config::from_hf_json(j, "x");
  EXPECT_EQ(back.to_hf_json(), j);
}

}  // namespace qa
