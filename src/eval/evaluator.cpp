#include "qa/eval/evaluator.hpp"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "qa/data/collate.hpp"
#include "qa/eval/squad_metrics.hpp"
#include "qa/model/generate.hpp"
#include "qa/runtime/torch_compat.hpp"
#include "qa/train/loss.hpp"

namespace qa {

EvalResult evaluate(T5Model& model, const EncodedDataset& data, const std::vector<QAExample>& examples,
                    const Tokenizer& tokenizer, const EvalOptions& options, const torch::Device& device) {
  const auto start = std::chrono::steady_clock::now();
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  const T5Config& c = model->config();

  std::size_t n = data.items.size();
  if (options.max_examples > 0) n = std::min(n, options.max_examples);
  // Similar lengths in a batch waste less padding; results are put back in dataset order.
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return data.items[a].source.size() > data.items[b].source.size();
  });

  EvalResult r;
  r.examples = n;
  if (options.generate) r.predictions.resize(n);
  double loss_sum = 0;
  for (std::size_t i = 0; i < n; i += static_cast<std::size_t>(options.batch_size)) {
    std::vector<std::size_t> idx(order.begin() + static_cast<long>(i),
                                 order.begin() + static_cast<long>(std::min(n, i + static_cast<std::size_t>(options.batch_size))));
    Batch b = collate(data, idx, c.pad_token_id, c.decoder_start_token_id).to(device);
    compat::AutocastScope autocast(device, options.bf16);
    if (options.compute_loss) {
      auto logits = model->forward(b.input_ids, b.attention_mask, b.decoder_input_ids);
      loss_sum += token_cross_entropy_sum(logits, b.labels).item<double>();
      r.target_tokens += b.target_tokens;
    }
    if (options.generate) {
      GenerateOptions g;
      g.max_new_tokens = options.max_new_tokens;
      g.num_beams = options.num_beams;
      auto ids = generate(model, b.input_ids, b.attention_mask, g).ids;
      for (std::size_t k = 0; k < idx.size(); ++k) r.predictions[idx[k]] = tokenizer.decode(ids[k]);
    }
  }
  if (options.compute_loss && r.target_tokens > 0) r.loss = loss_sum / static_cast<double>(r.target_tokens);
  if (options.generate && n > 0) {
    double em = 0, f1 = 0;
    for (std::size_t i = 0; i < n; ++i) {
      em += exact_match_score(r.predictions[i], examples[i].answers);
      f1 += f1_score(r.predictions[i], examples[i].answers);
    }
    r.exact_match = 100.0 * em / static_cast<double>(n);
    r.f1 = 100.0 * f1 / static_cast<double>(n);
  }
  if (was_training) model->train();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace qa
