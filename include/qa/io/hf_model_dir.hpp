// A model folder in the Hugging Face layout: config.json, model.safetensors (HF tensor names),
// spiece.model, plus the tokenizer and generation configs transformers reads.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "qa/model/t5.hpp"
#include "qa/tokenizer/tokenizer.hpp"

namespace qa {

struct LoadedModel {
  T5Config config;
  T5Model model{nullptr};
  Tokenizer tokenizer;
};

// Loads config.json, model.safetensors and spiece.model from `dir` (CPU, fp32).
LoadedModel load_model_dir(const std::string& dir);

// Writes the folder atomically: everything goes into a staging folder that replaces `dir` in one rename.
void save_model_dir(const std::string& dir, T5Model& model, const Tokenizer& tokenizer);

// The parameters under their Hugging Face names (tied copies omitted, as transformers saves them).
std::vector<std::pair<std::string, torch::Tensor>> hf_state_dict(T5Model& model);

// Copies `tensors` into the model. Every parameter must be present with its exact shape; unknown
// names are errors; encoder/decoder.embed_tokens (and lm_head when tied) may be present or absent.
// Errors name `source` and the tensor.
void load_hf_state_dict(T5Model& model, const std::map<std::string, torch::Tensor>& tensors, const std::string& source);

}  // namespace qa
