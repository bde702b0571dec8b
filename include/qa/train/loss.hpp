// Token-level cross-entropy, summed, so that any batching can be normalised by its real token count.
#pragma once

#include <torch/torch.h>

namespace qa {

// Sum over non-ignored label positions (labels == -100 are skipped) of -log p(label), in fp32.
// logits [B, T, V], labels [B, T].
torch::Tensor token_cross_entropy_sum(const torch::Tensor& logits, const torch::Tensor& labels);

// Auxiliary answer-pointer loss, summed over rows, in fp32. Each source position scores its encoder
// state along one fixed unit direction (answer_pointer_direction); a row's loss is
//   -log( sum of softmax(scores over real source tokens) over the answer positions ),
// where the answer positions are the real source tokens whose id is one of the row's target ids
// (pad, EOS and ignored labels excluded): the answer's span when the answer is extractive. Rows
// whose answer tokens do not occur in the source add 0. It rewards an encoder that marks where the
// answer is, the step a model trained from scratch is slowest to discover; it adds no parameters.
// encoder_states [B, S, D], input_ids and attention_mask [B, S], labels [B, T].
torch::Tensor answer_pointer_loss_sum(const torch::Tensor& encoder_states, const torch::Tensor& input_ids,
                                      const torch::Tensor& attention_mask, const torch::Tensor& labels,
                                      const torch::Tensor& direction, int64_t pad_id, int64_t eos_id);

// The pointer direction for width d_model: a unit vector fixed by d_model alone (its own generator),
// so that a resumed run scores along the same one.
torch::Tensor answer_pointer_direction(int64_t d_model);

}  // namespace qa
