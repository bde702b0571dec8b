// The qa-train configuration: typed sections, loaded from JSON, overridden with `--set key=value`,
// validated up front (every error names the file and the key), written back as the effective config.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "qa/model/t5_config.hpp"

namespace qa {

struct ModelSection {
  T5Config t5;            // architecture, HF names
  std::string init_from;  // a Hugging Face folder to fine-tune: its architecture, weights and tokenizer
};

struct TokenizerSection {
  std::string model;              // existing SentencePiece model; empty: train one on data.train
  int64_t vocab_size = 4000;      // upper bound when training (hard_vocab_limit=false)
  double character_coverage = 1.0;
  int64_t max_training_examples = 50000;  // sample for training; 0 = all (training time grows with it)
};

struct DataSection {
  std::string train;
  std::string validation;
  std::string source_template = "question: {question} context: {context}";
  int64_t max_source_length = 512;
  int64_t max_target_length = 64;
  bool group_by_length = true;   // batches of similar source length (less padding), random batch order
};

struct TrainSection {
  int64_t seed = 42;
  int64_t batch_size = 16;
  int64_t grad_accum_steps = 1;
  int64_t epochs = 1;
  int64_t max_steps = 0;         // > 0 overrides epochs
  double max_time_minutes = 0;   // > 0: stop (evaluate, save) once this much time has passed
  double learning_rate = 3e-4;
  double weight_decay = 0.01;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.999;
  double adam_epsilon = 1e-8;
  std::string lr_schedule = "linear";  // linear | cosine | constant
  std::string lr_scaling = "none";     // none | param_rms (each tensor's lr x its initial RMS)
  int64_t warmup_steps = 0;
  double min_lr_ratio = 0.0;     // floor of the decay, as a fraction of learning_rate
  double max_grad_norm = 1.0;    // 0 disables clipping
  double answer_pointer_weight = 0;  // auxiliary loss: encoder states point at the answer's tokens (0 = off)
  std::string precision = "fp32";  // fp32 | bf16 (autocast matmuls; fp32 weights, norms, softmax, loss)
  int64_t log_every_steps = 10;
  int64_t max_bad_steps = 5;     // consecutive non-finite steps (skipped) before giving up
  bool activation_checkpointing = false;  // recompute each block's activations in backward (less memory)
  bool cuda_graphs = false;  // CUDA: each micro-batch's forward and backward replayed from a recorded graph
};

struct EvalSection {
  int64_t every_steps = 0;     // 0: only at the end
  int64_t batch_size = 64;
  int64_t max_new_tokens = 32;
  int64_t num_beams = 1;       // 1: greedy decoding
  std::string metric = "exact_match";  // exact_match | f1 | loss: picks the best model
  int64_t max_examples = 0;    // 0: the whole validation file
};

struct OutputSection {
  std::string dir = "output";
  int64_t save_every_steps = 500;  // 0: only at the end (and on a stop signal)
  int64_t keep_last = 2;           // newest checkpoints kept, besides the best one
  std::string resume;              // "", "auto" or a checkpoint folder
  bool overwrite = false;          // a fresh run may delete an earlier run's checkpoints
};

struct RuntimeSection {
  std::string device = "auto";  // auto | cpu | cuda
  int64_t threads = 0;          // 0: all available cores
  std::string log_level = "info";
};

// Data-parallel runs (several processes, see runtime/process_layout.hpp): rendezvous and timeouts.
struct DistributedSection {
  std::string master_addr;     // used when MASTER_ADDR is not set
  int64_t master_port = 29500; // used when MASTER_PORT is not set
  double timeout_seconds = 600;  // joining, and every collective: a dead rank stops the others after this
};

struct Config {
  ModelSection model;
  TokenizerSection tokenizer;
  DataSection data;
  TrainSection train;
  EvalSection eval;
  OutputSection output;
  DistributedSection distributed;
  RuntimeSection runtime;

  std::string source = "<defaults>";  // where it was loaded from, for error messages

  // Parses a config file (paths relative to its folder).
  static Config load_file(const std::string& path);
  // Parses config JSON text; `source` names it in errors, `base_dir` anchors relative paths.
  static Config from_json_text(const std::string& text, const std::string& source, const std::string& base_dir);
  // Applies one "section.key=value" override (paths relative to `base_dir`, usually the cwd).
  void apply_override(const std::string& assignment, const std::string& base_dir);
  // Cross-key checks that need the whole config (run after all overrides).
  void validate() const;
  // The effective config as nested JSON (section -> key -> value), every key present.
  nlohmann::json to_json() const;
};

// Every config key ("section.key"), in schema order.
std::vector<std::string> config_keys();

}  // namespace qa
