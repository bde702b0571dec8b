#include "qa/train/train_step.hpp"

#include "qa/data/collate.hpp"
#include "qa/model/flops.hpp"
#include "qa/runtime/torch_compat.hpp"
#include "qa/train/loss.hpp"

namespace qa {

StepTotals accumulate_gradients(T5Model& model, const EncodedDataset& data,
                                const std::vector<const std::vector<std::size_t>*>& micro_batches,
                                const torch::Device& device, bool bf16, int64_t normalizer,
                                const std::function<void()>& before_last_backward, double answer_pointer_weight) {
  const T5Config& c = model->config();
  std::vector<Batch> batches;
  for (const auto* m : micro_batches) {
    batches.push_back(m->empty() ? Batch{} : collate(data, *m, c.pad_token_id, c.decoder_start_token_id).to(device));
  }
  return accumulate_gradients(model, batches, device, bf16, normalizer, before_last_backward, answer_pointer_weight);
}

StepTotals accumulate_gradients(T5Model& model, const std::vector<Batch>& batches, const torch::Device& device,
                                bool bf16, int64_t normalizer,
                                const std::function<void()>& before_last_backward, double answer_pointer_weight) {
  const T5Config& c = model->config();
  StepTotals totals;
  const torch::Tensor direction =
      answer_pointer_weight > 0 ? answer_pointer_direction(c.d_model).to(device) : torch::Tensor();
  // The normaliser must be known before the first backward: count the step's tokens up front.
  std::size_t last = batches.size();
  for (std::size_t k = 0; k < batches.size(); ++k) {
    if (!batches[k].input_ids.defined()) continue;
    totals.target_tokens += batches[k].target_tokens;
    last = k;
  }
  totals.loss_sum = torch::zeros({}, torch::TensorOptions().device(device));
  const double denominator = static_cast<double>(normalizer > 0 ? normalizer : totals.target_tokens);
  for (std::size_t k = 0; k < batches.size(); ++k) {
    const Batch& b = batches[k];
    if (!b.input_ids.defined()) continue;
    torch::Tensor loss, objective;
    {
      compat::AutocastScope autocast(device, bf16);
      if (answer_pointer_weight > 0) {
        auto states = model->encode(b.input_ids, b.attention_mask);
        loss = token_cross_entropy_sum(model->decode(b.decoder_input_ids, states, b.attention_mask), b.labels);
        objective = loss + answer_pointer_weight * answer_pointer_loss_sum(states, b.input_ids, b.attention_mask, b.labels,
                                                                           direction, c.pad_token_id, c.eos_token_id);
      } else {
        loss = token_cross_entropy_sum(model->forward(b.input_ids, b.attention_mask, b.decoder_input_ids), b.labels);
        objective = loss;
      }
    }
    if (k == last && before_last_backward) before_last_backward();
    (objective / denominator).backward();
    totals.loss_sum += loss.detach();
    totals.source_tokens += b.source_tokens;
    totals.padded_tokens += b.input_ids.numel() + b.labels.numel();
    totals.flops += training_flops(c, b.input_ids.size(0), b.input_ids.size(1), b.labels.size(1));
  }
  return totals;
}

}  // namespace qa
