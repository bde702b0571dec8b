// `qa-train eval` and `qa-train predict`: run a saved model folder over a JSONL file.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace qa {

struct ModelRunOptions {
  std::string model_dir;
  std::string data;
  std::string device = "auto";
  std::string precision = "fp32";
  int64_t threads = 0;
  int64_t batch_size = 64;
  int64_t max_new_tokens = 32;
  int64_t num_beams = 1;
  int64_t max_source_length = 512;
  int64_t max_target_length = 128;
  std::string source_template = "question: {question} context: {context}";
};

// Teacher-forced loss, generated answers, EM and F1. Returns {"loss", "exact_match", "f1", "examples", ...}.
nlohmann::json run_eval(const ModelRunOptions& options);

// Writes one JSON line per input ({"id"?, "question", "prediction"}) to `out_path` (atomically);
// returns the number of lines.
std::size_t run_predict(const ModelRunOptions& options, const std::string& out_path);

}  // namespace qa
