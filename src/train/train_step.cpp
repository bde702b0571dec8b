#include "qa/train/train_step.hpp"

#include "qa/data/collate.hpp"
#include "qa/model/flops.hpp"
#include "qa/runtime/torch_compat.hpp"
#include "qa/train/loss.hpp"

namespace qa {

int64_t count_target_tokens(const EncodedDataset& data, const std::vector<const std::vector<std::size_t>*>& micro_batches) {
  int64_t n = 0;
  for (const auto* m : micro_batches) {
    for (auto i : *m) n += static_cast<int64_t>(data.items[i].target.size());
  }
  return n;
}

StepTotals accumulate_gradients(T5Model& model, const EncodedDataset& data,
                                const std::vector<const std::vector<std::size_t>*>& micro_batches,
                                const torch::Device& device, bool bf16, int64_t normalizer,
                                const std::function<void()>& before_last_backward) {
  const T5Config& c = model->config();
  StepTotals totals;
  // The normaliser must be known before the first backward: count the step's tokens up front.
  totals.target_tokens = count_target_tokens(data, micro_batches);
  const double denominator = static_cast<double>(normalizer > 0 ? normalizer : totals.target_tokens);
  totals.loss_sum = torch::zeros({}, torch::TensorOptions().device(device));
  std::size_t last = micro_batches.size();
  for (std::size_t k = 0; k < micro_batches.size(); ++k) {
    if (!micro_batches[k]->empty()) last = k;
  }
  for (std::size_t k = 0; k < micro_batches.size(); ++k) {
    const auto* m = micro_batches[k];
    if (m->empty()) continue;
    Batch b = collate(data, *m, c.pad_token_id, c.decoder_start_token_id).to(device);
    torch::Tensor loss;
    {
      compat::AutocastScope autocast(device, bf16);
      loss = token_cross_entropy_sum(model->forward(b.input_ids, b.attention_mask, b.decoder_input_ids), b.labels);
    }
    if (k == last && before_last_backward) before_last_backward();
    (loss / denominator).backward();
    totals.loss_sum += loss.detach();
    totals.source_tokens += b.source_tokens;
    totals.padded_tokens += b.input_ids.numel() + b.labels.numel();
    totals.flops += training_flops(c, b.input_ids.size(0), b.input_ids.size(1), b.labels.size(1));
  }
  return totals;
}

}  // namespace qa
