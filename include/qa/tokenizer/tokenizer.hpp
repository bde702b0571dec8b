// SentencePiece tokenizer, reached through the libqa_spm.so plugin (see spm_plugin_abi.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace qa {

struct TokenizerTrainOptions {
  int64_t vocab_size = 4000;  // upper bound: a small corpus yields fewer pieces (hard_vocab_limit=false)
  double character_coverage = 1.0;
  int num_threads = 1;
  unsigned int seed = 42;
};

class Tokenizer {
 public:
  // Loads a spiece.model file; errors name the file.
  static Tokenizer load(const std::string& path);
  // Loads serialized model bytes; `source` names them in errors.
  static Tokenizer from_bytes(std::string bytes, const std::string& source);
  // Trains a unigram model with T5's special ids (pad 0, eos 1, unk 2, no bos).
  static Tokenizer train(const std::vector<std::string>& sentences, const TokenizerTrainOptions& options);

  std::vector<int32_t> encode(std::string_view text) const;  // no EOS appended
  std::string decode(const std::vector<int32_t>& ids) const; // control ids (pad, eos) are dropped
  int64_t vocab_size() const;
  const std::string& model_bytes() const { return bytes_; }  // what to save as spiece.model

  // Where the plugin is looked for: $QA_TRAIN_SPM_PLUGIN, next to the executable, then ../lib/qa-train/.
  static std::string plugin_path();

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

 private:
  struct Model;
  Tokenizer(std::shared_ptr<Model> model, std::string bytes);
  std::shared_ptr<Model> model_;
  std::string bytes_;
};

}  // namespace qa
