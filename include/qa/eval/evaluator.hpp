// Evaluation of a model on a dataset: teacher-forced token loss, generated answers (greedy or beam), EM and F1.
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "qa/data/encoded_dataset.hpp"
#include "qa/data/qa_example.hpp"
#include "qa/model/t5.hpp"
#include "qa/tokenizer/tokenizer.hpp"

namespace qa {

struct EvalOptions {
  int64_t batch_size = 64;
  int64_t max_new_tokens = 32;
  int64_t num_beams = 1;      // 1: greedy
  bool bf16 = false;          // autocast matrix products to bfloat16
  bool compute_loss = true;
  bool generate = true;
  std::size_t max_examples = 0;  // 0: all
};

struct EvalResult {
  std::size_t examples = 0;
  double loss = NAN;          // mean token cross-entropy over all target tokens (EOS included)
  int64_t target_tokens = 0;
  double exact_match = NAN;   // 0-100
  double f1 = NAN;            // 0-100
  std::vector<std::string> predictions;  // in dataset order (when generating)
  double seconds = 0;
};

EvalResult evaluate(T5Model& model, const EncodedDataset& data, const std::vector<QAExample>& examples,
                    const Tokenizer& tokenizer, const EvalOptions& options, const torch::Device& device);

}  // namespace qa
