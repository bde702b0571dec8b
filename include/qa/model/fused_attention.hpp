// T5's attention core on the CPU in fp32, softmax(q k^T + bias) v, as one pass per (batch, head)
// matrix forward and one backward: each thread takes whole matrices, multiplies them through the
// BLAS's sgemm directly (oneDNN's where the BLAS runs a generic kernel: model/onednn_linear), and
// adds the bias, normalises and (backward) differentiates the softmax on the [Q, K] matrix it just
// computed, while it is still in cache. Separate operators instead stream
// every [B, H, Q, K] tensor through memory four more times (bias add, softmax, softmax backward, the
// bias gradient). No 1/sqrt(d_kv) scaling: T5 folds it into the initialisation of q.
#pragma once

#include <torch/torch.h>

namespace qa {

// True when fused_attention handles these operands: CPU, fp32 (CPU autocast off), the BLAS's sgemm
// callable directly (runtime/blas), q [B, H, Q, D], k and v [B, H, K, D], bias undefined or an fp32
// [B or 1, H or 1, Q or 1, K] tensor; and at least as many (batch, head) matrices as LibTorch has
// threads. Otherwise callers use products and softmax.
bool fused_attention_applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                             const torch::Tensor& bias);

// dropout(softmax(q k^T + bias, -1)) v, differentiable in q, k, v and bias (its gradient summed over
// the dimensions it broadcasts over). Dropout (probability in [0, 1); 0: none) zeroes weights with
// LibTorch's generator and scales the rest by 1 / (1 - p), as torch::dropout in training does. The
// result is [B, H, Q, D] laid out as [B, Q, H, D], so that
// merging the heads afterwards is a view. Each matrix is computed by one thread, so the bits do not
// depend on the number of threads. Rows whose keys are all masked with the lowest float give the
// mean of the values, as softmax does.
torch::Tensor fused_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& bias, double dropout = 0.0);

}  // namespace qa
