#include "qa/data/encoded_dataset.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "qa/data/source_template.hpp"
#include "qa/tokenizer/tokenizer.hpp"

namespace qa {
namespace {

// Keeps the first max_len - 1 tokens and ends with EOS, as Hugging Face's T5 tokenizer truncates.
bool finish(std::vector<int32_t>& ids, int64_t max_len, int32_t eos) {
  bool truncated = static_cast<int64_t>(ids.size()) + 1 > max_len;
  if (truncated) ids.resize(static_cast<std::size_t>(max_len - 1));
  ids.push_back(eos);
  return truncated;
}

}  // namespace

EncodedDataset encode_dataset(const std::vector<QAExample>& examples, const Tokenizer& tokenizer,
                              const EncodeOptions& options) {
  EncodedDataset out;
  out.items.reserve(examples.size());
  auto& st = out.stats;
  for (const auto& ex : examples) {
    EncodedExample e;
    e.source = tokenizer.encode(render_source(options.source_template, ex.question, ex.context));
    e.target = tokenizer.encode(ex.answers.front());
    st.truncated_sources += finish(e.source, options.max_source_length, options.eos_id);
    st.truncated_targets += finish(e.target, options.max_target_length, options.eos_id);
    st.source_tokens += e.source.size();
    st.target_tokens += e.target.size();
    st.max_source_length = std::max(st.max_source_length, e.source.size());
    st.max_target_length = std::max(st.max_target_length, e.target.size());
    out.items.push_back(std::move(e));
  }
  st.examples = out.items.size();
  return out;
}

nlohmann::json dataset_summary(const EncodedDataset& data) {
  std::vector<std::size_t> answer_lengths;
  for (const auto& e : data.items) {
    if (answer_lengths.size() <= e.target.size()) answer_lengths.resize(e.target.size() + 1, 0);
    ++answer_lengths[e.target.size()];
  }
  const auto& s = data.stats;
  const double n = s.examples ? static_cast<double>(s.examples) : 1.0;
  return {{"examples", s.examples},
          {"truncated_sources", s.truncated_sources},
          {"truncated_targets", s.truncated_targets},
          {"mean_source_tokens", static_cast<double>(s.source_tokens) / n},
          {"mean_target_tokens", static_cast<double>(s.target_tokens) / n},
          {"max_source_tokens", s.max_source_length},
          {"max_target_tokens", s.max_target_length},
          {"answer_lengths", answer_lengths}};
}

}  // namespace qa
