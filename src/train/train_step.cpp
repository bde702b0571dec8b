#include "qa/train/train_step.hpp"

#include "qa/data/collate.hpp"
#include "qa/model/flops.hpp"
#include "qa/runtime/torch_compat.hpp"
#include "qa/train/graphed_micro_steps.hpp"
#include "qa/train/loss.hpp"

namespace qa {

MicroStepSpec make_micro_step_spec(const T5Config& c, const torch::Device& device, bool bf16,
                                   double answer_pointer_weight) {
  MicroStepSpec spec;
  spec.device = device;
  spec.bf16 = bf16;
  spec.answer_pointer_weight = answer_pointer_weight;
  if (answer_pointer_weight > 0) spec.answer_direction = answer_pointer_direction(c.d_model).to(device);
  return spec;
}

torch::Tensor forward_backward(T5Model& model, const Batch& b, const MicroStepSpec& spec, const torch::Tensor& denominator) {
  const T5Config& c = model->config();
  torch::Tensor loss, objective;
  {
    compat::AutocastScope autocast(spec.device, spec.bf16);
    if (spec.answer_pointer_weight > 0) {
      auto states = model->encode(b.input_ids, b.attention_mask);
      loss = token_cross_entropy_sum(model->decode(b.decoder_input_ids, states, b.attention_mask), b.labels);
      objective = loss + spec.answer_pointer_weight * answer_pointer_loss_sum(states, b.input_ids, b.attention_mask,
                                                                              b.labels, spec.answer_direction,
                                                                              c.pad_token_id, c.eos_token_id);
    } else {
      loss = token_cross_entropy_sum(model->forward(b.input_ids, b.attention_mask, b.decoder_input_ids), b.labels);
      objective = loss;
    }
  }
  (objective / denominator).backward();
  return loss.detach();
}

StepTotals accumulate_gradients(T5Model& model, const EncodedDataset& data,
                                const std::vector<const std::vector<std::size_t>*>& micro_batches,
                                const torch::Device& device, bool bf16, int64_t normalizer,
                                const std::function<void()>& before_last_backward, double answer_pointer_weight) {
  const T5Config& c = model->config();
  std::vector<Batch> batches;
  for (const auto* m : micro_batches) {
    batches.push_back(m->empty() ? Batch{} : collate(data, *m, c.pad_token_id, c.decoder_start_token_id).to(device));
  }
  return accumulate_gradients(model, batches, make_micro_step_spec(c, device, bf16, answer_pointer_weight), normalizer,
                              before_last_backward);
}

StepTotals accumulate_gradients(T5Model& model, const std::vector<Batch>& batches, const MicroStepSpec& spec,
                                int64_t normalizer, const std::function<void()>& before_last_backward,
                                GraphedMicroSteps* graphs) {
  const T5Config& c = model->config();
  StepTotals totals;
  // The normaliser must be known before the first backward: count the step's tokens up front.
  std::size_t last = batches.size();
  for (std::size_t k = 0; k < batches.size(); ++k) {
    if (!batches[k].input_ids.defined()) continue;
    totals.target_tokens += batches[k].target_tokens;
    last = k;
  }
  totals.loss_sum = torch::zeros({}, torch::TensorOptions().device(spec.device));
  const double denominator = static_cast<double>(normalizer > 0 ? normalizer : totals.target_tokens);
  torch::Tensor denominator_tensor;
  for (std::size_t k = 0; k < batches.size(); ++k) {
    const Batch& b = batches[k];
    if (!b.input_ids.defined()) continue;
    if (k == last && before_last_backward) before_last_backward();
    int64_t rows = b.input_ids.size(0), source = b.input_ids.size(1), target = b.labels.size(1);
    if (graphs) {
      const auto shape = graphs->shape_of(b);
      source = shape.source_length, target = shape.target_length;
      totals.loss_sum += graphs->forward_backward(b, denominator);  // added before the next replay overwrites it
    } else {
      if (!denominator_tensor.defined()) denominator_tensor = torch::scalar_tensor(denominator, torch::TensorOptions().device(spec.device));
      totals.loss_sum += forward_backward(model, b, spec, denominator_tensor);
    }
    totals.source_tokens += b.source_tokens;
    totals.padded_tokens += rows * (source + target);
    totals.flops += training_flops(c, rows, source, target);
  }
  return totals;
}

}  // namespace qa
