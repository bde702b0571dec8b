// A model folder in the Hugging Face layout: config.json, model.safetensors (HF tensor names),
// spiece.model, plus the tokenizer and generation configs transformers reads.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "qa/io/hf_checkpoint_files.hpp"
#include "qa/model/t5.hpp"
#include "qa/tokenizer/tokenizer.hpp"

namespace qa {

struct LoadedModel {
  T5Config config;
  T5Model model{nullptr};
  Tokenizer tokenizer;
};

// Loads config.json, the weights (model.safetensors or a sharded checkpoint; F32, BF16, F16 or F64
// tensors, converted to fp32) and spiece.model from `dir`, on the CPU.
LoadedModel load_model_dir(const std::string& dir);

// Writes the folder atomically: everything goes into a staging folder that replaces `dir` in one rename.
void save_model_dir(const std::string& dir, T5Model& model, const Tokenizer& tokenizer);

// The parameters under their Hugging Face names (tied copies omitted, as transformers saves them).
std::vector<std::pair<std::string, torch::Tensor>> hf_state_dict(T5Model& model);

// Copies the tensors of `files` straight from the mapped files into the model's parameters (one
// copy, converting the dtype). Every parameter must be present once with its exact shape; unknown
// names are errors; encoder/decoder.embed_tokens (and lm_head when tied) may be present or absent;
// in a sharded checkpoint every tensor must sit in the shard the index names. Errors name the file
// and the tensor.
void load_hf_weights(T5Model& model, const CheckpointFiles& files);

}  // namespace qa
