// T5 architecture description, named exactly as Hugging Face's T5Config (config.json).
// One struct describes every variant (T5 v1.1 / Flan-T5 gated-gelu untied, original T5 relu tied).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace qa {

struct T5Config {
  int64_t vocab_size = 0;  // 0 in a qa-train config: take it from the tokenizer
  int64_t d_model = 512;
  int64_t d_kv = 64;
  int64_t d_ff = 1024;
  int64_t num_layers = 8;
  int64_t num_decoder_layers = 8;
  int64_t num_heads = 6;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  double dropout_rate = 0.1;
  double layer_norm_epsilon = 1e-6;
  double initializer_factor = 1.0;
  std::string feed_forward_proj = "gated-gelu";
  bool tie_word_embeddings = false;
  int64_t pad_token_id = 0;
  int64_t eos_token_id = 1;
  int64_t decoder_start_token_id = 0;
  // Training from scratch only (not part of config.json): "hf" draws the relative position bias
  // like Hugging Face (std d_model^-0.5, attention starts out nearly uniform); "local" starts each
  // head with a bias falling linearly with distance (ALiBi's slopes 2^(-8(h+1)/H) per position), so
  // that the first heads look at their neighbours from the first step.
  std::string position_bias_init = "hf";
  // Training from scratch only: how much of each self-attention key projection starts as a copy of
  // its query projection (k = (1-m) k + m q, then rescaled to k's std): m > 0 makes identical tokens
  // attend to each other from the start ("mimetic" initialisation; 0 = Hugging Face's init).
  double qk_mimetic = 0.0;

  // Derived from feed_forward_proj by Hugging Face's rules (configuration_t5.py); a config.json
  // that stores them explicitly overrides the derived values, as transformers does.
  std::string dense_act_fn = "gelu_new";
  bool is_gated_act = true;

  int64_t inner_dim() const { return num_heads * d_kv; }

  // Applies HF's feed_forward_proj rules: "ACT" or "gated-ACT"; "gated-gelu" means gelu_new.
  // Throws qa::Error naming `source` and the key when the value is not of that form.
  void derive_activation(const std::string& source);
  // Checks sizes and ids; `source`/`prefix` name where the values came from in errors.
  void validate(const std::string& source, const std::string& prefix) const;

  // Hugging Face config.json (model_type t5, architectures T5ForConditionalGeneration).
  nlohmann::json to_hf_json() const;
  // Reads a Hugging Face config.json; unknown keys are ignored (debug log), wrong types are errors.
  static T5Config from_hf_json(const nlohmann::json& j, const std::string& source);
  static T5Config from_hf_file(const std::string& path);
};

// Activation names qa-train implements (HF's ACT2FN names).
bool is_supported_activation(const std::string& name);

}  // namespace qa
