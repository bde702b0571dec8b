// Examples turned into token ids (source and target, each ending with EOS), with truncation counts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "qa/data/qa_example.hpp"

namespace qa {

class Tokenizer;

struct EncodeOptions {
  std::string source_template = "question: {question} context: {context}";
  int64_t max_source_length = 512;  // EOS included
  int64_t max_target_length = 64;   // EOS included
  int32_t eos_id = 1;
};

struct EncodedExample {
  std::vector<int32_t> source;
  std::vector<int32_t> target;
};

struct EncodingStats {
  std::size_t examples = 0;
  std::size_t truncated_sources = 0;
  std::size_t truncated_targets = 0;
  std::size_t source_tokens = 0;  // after truncation
  std::size_t target_tokens = 0;
  std::size_t max_source_length = 0;
  std::size_t max_target_length = 0;
};

struct EncodedDataset {
  std::vector<EncodedExample> items;
  EncodingStats stats;
};

EncodedDataset encode_dataset(const std::vector<QAExample>& examples, const Tokenizer& tokenizer,
                              const EncodeOptions& options);

// For logs/data_stats.json: examples, truncation counts, mean lengths, and the histogram of target
// (answer) lengths in tokens, EOS included (index = length).
nlohmann::json dataset_summary(const EncodedDataset& data);

}  // namespace qa
