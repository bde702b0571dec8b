#include "qa/train/loss.hpp"

#include <limits>

#include "qa/data/collate.hpp"
#include "qa/train/fused_cross_entropy.hpp"

namespace qa {

torch::Tensor token_cross_entropy_sum(const torch::Tensor& logits, const torch::Tensor& labels) {
  const int64_t vocab = logits.size(-1);
  const auto rows = logits.reshape({-1, vocab}).to(torch::kFloat);
  const auto targets = labels.reshape({-1});
  if (fused_cross_entropy_applies(rows, targets)) return fused_cross_entropy_sum(rows, targets, kIgnoreLabel);
  return torch::nn::functional::cross_entropy(
      rows, targets,
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnoreLabel).reduction(torch::kSum));
}

torch::Tensor answer_pointer_loss_sum(const torch::Tensor& encoder_states, const torch::Tensor& input_ids,
                                      const torch::Tensor& attention_mask, const torch::Tensor& labels,
                                      const torch::Tensor& direction, int64_t pad_id, int64_t eos_id) {
  // An elementwise product and a sum, not a matmul: autocast would make a matmul's scores bf16.
  auto scores =  // [B, S]
      (encoder_states.to(torch::kFloat) * direction.to(encoder_states.device(), torch::kFloat)).sum(-1);
  auto real = attention_mask.to(torch::kBool);
  // -1 matches no token id: the positions that must not count as answer tokens.
  auto target = labels.masked_fill(labels.eq(pad_id).logical_or(labels.eq(eos_id)).logical_or(labels.lt(0)), -1);
  auto is_answer = input_ids.unsqueeze(2).eq(target.unsqueeze(1)).any(2).logical_and(real);
  const double lowest = std::numeric_limits<float>::lowest();
  auto all = scores.masked_fill(real.logical_not(), lowest).logsumexp(1);
  auto answer = scores.masked_fill(is_answer.logical_not(), lowest).logsumexp(1);
  return torch::where(is_answer.any(1), all - answer, torch::zeros_like(all)).sum();
}

torch::Tensor answer_pointer_direction(int64_t d_model) {
  auto generator = at::detail::createCPUGenerator(0x9e3779b9);
  auto v = torch::randn({d_model}, generator, torch::TensorOptions().dtype(torch::kFloat));
  return v / v.norm();
}

}  // namespace qa
