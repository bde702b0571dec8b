// libqa_spm.so: the only code that calls SentencePiece (see spm_plugin_abi.h for why).
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "qa/tokenizer/spm_plugin_abi.h"

// Present in libsentencepiece 0.1.x; declared weak so that a version without it still loads.
namespace sentencepiece::logging {
__attribute__((weak)) void SetMinLogLevel(int v);
}

struct qa_spm {
  sentencepiece::SentencePieceProcessor processor;
};

namespace {

int fail(char* err, size_t err_len, const std::string& message) {
  if (err && err_len) {
    std::size_t n = std::min(message.size(), err_len - 1);
    std::memcpy(err, message.data(), n);
    err[n] = '\0';
  }
  return 1;
}

class VectorIterator : public sentencepiece::SentenceIterator {
 public:
  VectorIterator(const char* const* sentences, const size_t* lengths, size_t count)
      : sentences_(sentences), lengths_(lengths), count_(count) {
    load();
  }
  bool done() const override { return index_ >= count_; }
  void Next() override {
    ++index_;
    load();
  }
  const std::string& value() const override { return value_; }
  sentencepiece::util::Status status() const override { return sentencepiece::util::Status(); }

 private:
  void load() {
    if (index_ < count_) value_.assign(sentences_[index_], lengths_[index_]);
  }
  const char* const* sentences_;
  const size_t* lengths_;
  size_t count_;
  size_t index_ = 0;
  std::string value_;
};

}  // namespace

extern "C" {

int qa_spm_abi_version(void) { return QA_SPM_ABI_VERSION; }

int qa_spm_load(const char* data, size_t size, qa_spm** out, char* err, size_t err_len) {
  try {
    auto model = std::make_unique<qa_spm>();
    auto status = model->processor.LoadFromSerializedProto(std::string(data, size));
    if (!status.ok()) return fail(err, err_len, "not a valid SentencePiece model (" + status.ToString() + ")");
    if (model->processor.GetPieceSize() <= 0) return fail(err, err_len, "the SentencePiece model has no pieces");
    *out = model.release();
    return 0;
  } catch (const std::exception& e) {
    return fail(err, err_len, std::string("not a valid SentencePiece model (") + e.what() + ")");
  }
}

void qa_spm_free(qa_spm* model) { delete model; }

int qa_spm_piece_size(const qa_spm* model) { return model->processor.GetPieceSize(); }

int qa_spm_is_control(const qa_spm* model, int id) { return model->processor.IsControl(id) ? 1 : 0; }

int qa_spm_encode(const qa_spm* model, const char* text, size_t len, int* ids, size_t cap, size_t* n, char* err,
                  size_t err_len) {
  try {
    std::vector<int> out;
    auto status = model->processor.Encode(std::string(text, len), &out);
    if (!status.ok()) return fail(err, err_len, status.ToString());
    *n = out.size();
    std::memcpy(ids, out.data(), std::min(cap, out.size()) * sizeof(int));
    return 0;
  } catch (const std::exception& e) {
    return fail(err, err_len, e.what());
  }
}

int qa_spm_decode(const qa_spm* model, const int* ids, size_t n_ids, char* out, size_t cap, size_t* len, char* err,
                  size_t err_len) {
  try {
    const int size = model->processor.GetPieceSize();
    std::vector<int> in;
    in.reserve(n_ids);
    for (size_t i = 0; i < n_ids; ++i) {
      // Ids beyond the tokenizer (a model's embedding may be larger) decode to nothing.
      if (ids[i] >= 0 && ids[i] < size) in.push_back(ids[i]);
    }
    std::string text;
    auto status = model->processor.Decode(in, &text);
    if (!status.ok()) return fail(err, err_len, status.ToString());
    *len = text.size();
    std::memcpy(out, text.data(), std::min(cap, text.size()));
    return 0;
  } catch (const std::exception& e) {
    return fail(err, err_len, e.what());
  }
}

int qa_spm_train(const char* const* sentences, const size_t* lengths, size_t count, const char* args,
                 unsigned int seed, char** model_out, size_t* model_size, char* err, size_t err_len) {
  try {
    sentencepiece::SetRandomGeneratorSeed(seed);
    if (sentencepiece::logging::SetMinLogLevel) sentencepiece::logging::SetMinLogLevel(1);  // warnings and up
    VectorIterator it(sentences, lengths, count);
    std::string serialized;
    auto status = sentencepiece::SentencePieceTrainer::Train(args, &it, &serialized);
    if (!status.ok()) return fail(err, err_len, status.ToString());
    char* buffer = static_cast<char*>(std::malloc(serialized.size()));
    if (!buffer) return fail(err, err_len, "out of memory");
    std::memcpy(buffer, serialized.data(), serialized.size());
    *model_out = buffer;
    *model_size = serialized.size();
    return 0;
  } catch (const std::exception& e) {
    return fail(err, err_len, e.what());
  }
}

void qa_spm_free_buffer(char* buffer) { std::free(buffer); }

}  // extern "C"
