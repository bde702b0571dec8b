// Saving and loading a training checkpoint: <output>/checkpoints/step-N/ holds
//   model.safetensors      the weights (Hugging Face names, fp32)
//   config.json            the architecture (Hugging Face T5Config)
//   spiece.model           the tokenizer
//   optimizer.safetensors  AdamW's moments and step count
//   rng.json               the CPU (and CUDA) random generator states: dropout continues identically
//   trainer_state.json     step, epoch, position in the epoch's order, best metric, counters
//   run.json               what must not change on resume (data fingerprint and order settings) and
//                          the effective qa-train config
//   manifest.json          size and CRC-32C of every file above, written last
// It is filled in a staging folder, flushed, and published with one rename: a folder named step-N is
// complete, and a kill at any moment leaves at worst a staging folder that the next start deletes.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "qa/model/t5.hpp"
#include "qa/tokenizer/tokenizer.hpp"
#include "qa/train/optimizer.hpp"
#include "qa/train/trainer_state.hpp"

namespace qa {

// What a resumed run must share with the saved one, besides the architecture: {"key": value, ...}
// with config keys ("train.batch_size") and "data.train_checksum".
using RunIdentity = nlohmann::json;

// Writes the checkpoint of `state.step` under `output_dir` and returns its folder. A failed write
// throws qa::Error and removes the partial staging folder; existing checkpoints are untouched.
std::string save_checkpoint(const std::string& output_dir, T5Model& model, const Optimizer& optimizer,
                            const Tokenizer& tokenizer, const TrainerState& state, const RunIdentity& identity,
                            const nlohmann::json& effective_config);

// The newest checkpoint under `output_dir` that verifies ("" when none); each one that fails
// verification is reported with a warning and skipped.
std::string find_resumable_checkpoint(const std::string& output_dir);

// Reads a checkpoint's architecture (config.json) and tokenizer, to rebuild the model it was saved from.
T5Config checkpoint_architecture(const std::string& dir);
Tokenizer checkpoint_tokenizer(const std::string& dir);

// Verifies `dir` (manifest), checks that `identity` matches the saved one (a difference is an error
// naming the key and both values), then restores weights, optimizer state and RNG states and returns
// the trainer state.
TrainerState load_checkpoint(const std::string& dir, T5Model& model, Optimizer& optimizer, const RunIdentity& identity);

}  // namespace qa
